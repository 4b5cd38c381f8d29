"""Pipeline probes: each component down is named; Connect's and the stream job's states are read right."""
from __future__ import annotations

from typing import Iterator

import pytest

from dashboard.pipeline import (PipelineProbe, hide_deleted_connector_groups, probe_connect, probe_kafka, probe_registry,
                                probe_stream)
from fraudpipe import contracts
from fraudpipe.broker import free_port
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.core import QuietHandler, loopback_http
from tests.fixtures.dashboard import MINUTE, dashboard_test_config, metrics_row

NOW = 1_795_000_000_000 - 1_795_000_000_000 % MINUTE

# GET /connectors?expand=status as the Kafka Connect REST API documents it
CONNECT_BODY = {
    "sqlite-sink": {"status": {"name": "sqlite-sink", "type": "sink", "connector": {"state": "RUNNING", "worker_id": "w"},
                               "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "w"},
                                         {"id": 1, "state": "FAILED", "worker_id": "w", "trace": "StoreError: disk full"}]}},
}


@pytest.fixture()
def connect_like_server() -> Iterator[str]:
    """A tiny HTTP server answering Connect's documented status body (this is a unit test of parsing)."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            ok = self.path == "/connectors?expand=status"
            self.answer(200 if ok else 404, CONNECT_BODY if ok else {"error_code": 404, "message": "nope"})

    with loopback_http(Handler) as url:
        yield url


def test_connect_states_are_reported(connect_like_server: str):
    result = probe_connect(connect_like_server, 2.0)
    assert result["up"] and result["error"] is None
    (connector,) = result["connectors"]
    assert connector["name"] == "sqlite-sink" and connector["state"] == "RUNNING"
    assert [(t["id"], t["state"]) for t in connector["tasks"]] == [(0, "RUNNING"), (1, "FAILED")]
    assert connector["tasks"][1]["trace"] == "StoreError: disk full"


def test_down_components_are_named_not_raised():
    dead = f"http://127.0.0.1:{free_port()}"
    assert probe_registry(dead, 0.3)["up"] is False
    assert probe_connect(dead, 0.3)["component"] == "kafka connect"
    kafka = probe_kafka(f"127.0.0.1:{free_port()}", 0.3)
    assert kafka["up"] is False and kafka["component"] == "kafka" and kafka["error"]


def test_stream_status_from_latest_metrics_row(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    assert probe_stream(store, stale_seconds=60, now=NOW)["status"] == "not running"
    store.upsert_metrics([metrics_row(NOW - 2 * MINUTE, 7, transactions=10, flagged=0)])  # updated_at = NOW - 58 s
    running = probe_stream(store, stale_seconds=60, now=NOW)
    assert running["up"] and running["status"] == "running" and running["last_batch_id"] == 7
    stalled = probe_stream(store, stale_seconds=30, now=NOW)
    assert not stalled["up"] and stalled["status"] == "stalled" and "stale after 30 s" in stalled["error"]
    store.close()


def test_last_batch_is_the_stream_s_last_batch_not_its_last_closed_window(tmp_path):
    """Windows close once a minute; batches run every trigger. The page reports the batch."""
    store = SqliteStore(tmp_path / "s.db")
    minute_row = metrics_row(NOW - 2 * MINUTE, 7, transactions=10, flagged=0)
    store.upsert_metrics([{**minute_row, "updated_at": NOW - 34_000}])  # the last window closed 34 s ago
    store.record_stream_progress({"query": contracts.STREAM_QUERY_NAME, "batch_id": 24, "updated_at": NOW - 1_500})
    status = probe_stream(store, stale_seconds=60, now=NOW)
    assert status["status"] == "running" and status["last_batch_id"] == 24
    assert status["last_batch_at"] == NOW - 1_500 and status["age_seconds"] == 1.5
    store.close()


def test_a_deleted_connector_s_consumer_group_is_not_listed():
    kafka = {"component": "kafka", "up": True, "groups": [
        {"group": "connect-sqlite-sink", "lag": [{"topic": "transactions", "lag": 3}]},
        {"group": "connect-deleted-sink", "lag": [{"topic": "transactions", "lag": 90_000}]},
        {"group": "my-own-app", "lag": []},
    ]}
    connect = {"component": "kafka connect", "up": True, "connectors": [{"name": name} for name in CONNECT_BODY]}
    assert [g["group"] for g in hide_deleted_connector_groups(kafka, connect)["groups"]] == [
        "connect-sqlite-sink", "my-own-app"]
    # Connect down: nothing to compare with, every group stays
    assert hide_deleted_connector_groups(kafka, {"component": "kafka connect", "up": False}) == kafka


def test_snapshot_is_cached_for_probe_cache_seconds(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    probe = PipelineProbe(dashboard_test_config(store.path, probe_cache_seconds=600.0), lambda: store)
    first = probe.snapshot()
    assert first["down"] and probe.snapshot() is first
    uncached = PipelineProbe(dashboard_test_config(store.path, probe_cache_seconds=0.0), lambda: store)
    assert uncached.snapshot() is not uncached.snapshot()
    store.close()

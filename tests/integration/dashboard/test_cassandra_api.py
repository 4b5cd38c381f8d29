"""The dashboard's JSON API answering from Apache Cassandra on the real-stack bench.

The same pipeline history (`fill_store`) goes into SQLite and into Cassandra; every API
route then answers from Cassandra with the rows written, and with exactly the payload it
gives on SQLite (the reference adapter).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from dashboard.app import create_app
from fraudpipe.config import StoreConfig
from fraudpipe.store.cassandra import CassandraStore
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.dashboard import MINUTE, dashboard_test_config, fill_store

pytestmark = pytest.mark.integration

NOW = int(time.time() * 1000) // MINUTE * MINUTE + 30_000


def test_every_api_route_answers_from_cassandra_as_from_sqlite(cassandra_store_config: StoreConfig, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "reference.db") as reference:
        facts = fill_store(reference, now_ms=NOW)
    with CassandraStore(cassandra_store_config) as store:
        assert fill_store(store, now_ms=NOW) == facts

    sqlite_config = dashboard_test_config(tmp_path / "reference.db")
    cassandra_config = dataclasses.replace(sqlite_config, store=cassandra_store_config)
    on_sqlite = create_app(sqlite_config).test_client()
    on_cassandra = create_app(cassandra_config).test_client()

    fraud = facts["fraud_sender"]
    alerts = on_cassandra.get("/api/alerts?minutes=60").get_json()["alerts"]
    assert len(alerts) == facts["alerts"]
    assert {(a["sender_account"], a["window_start"]) for a in alerts} == \
           {(fraud, w) for w in facts["fraud_windows"][:2]} | {("acct-3", facts["false_positive"])}
    sender = on_cassandra.get(f"/api/senders/{fraud}?minutes=60").get_json()
    assert len(sender["transactions"]) == 36 and {t["sender_account"] for t in sender["transactions"]} == {fraud}
    overview = on_cassandra.get("/api/overview?minutes=60").get_json()
    assert len(overview["series"]) == 30 and overview["series"][0]["transactions"] == 120 + 80
    assert [m["version"] for m in on_cassandra.get("/api/models").get_json()["models"]] == \
           ["v20261121-0001", "v20261120-0001"]
    assert on_cassandra.get("/api/quality").get_json()["labels_considered"] == facts["labels"]

    window = f"since={NOW - 60 * MINUTE}&until={NOW + MINUTE}"  # fixed bounds: both apps answer the same range
    for path in (f"/api/overview?{window}", f"/api/alerts?{window}", f"/api/alerts?{window}&min_score=3",
                 f"/api/senders/{fraud}?{window}", f"/api/senders/acct-3?{window}", "/api/models", "/api/quality"):
        from_cassandra, from_sqlite = on_cassandra.get(path), on_sqlite.get(path)
        assert from_cassandra.status_code == from_sqlite.status_code == 200, path
        assert from_cassandra.get_json() == from_sqlite.get_json(), path

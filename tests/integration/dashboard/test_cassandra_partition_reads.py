"""Every query the dashboard issues is a partition-key read on Cassandra.

The witness is the Cassandra store itself: every CQL text it prepares is checked against
the partition key of its table in cassandra/init.cql (each partition key column restricted
by `=`; no unrestricted scan, no ALLOW FILTERING). Two sweeps on the real-stack bench:
each Store method the dashboard's code calls, with the arguments that take each of its
branches; then every GET route of the dashboard app, with the query parameters that page
and filter.
"""
from __future__ import annotations

import dataclasses
import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from dashboard.app import create_app
from dashboard.params import encode_cursor
from fraudpipe.config import StoreConfig, load_config
from fraudpipe.store.base import MAX_LIMIT
from fraudpipe.store.cassandra import CassandraStore
from fraudpipe.store.cql import table_specs
from fraudpipe.contracts import STREAM_QUERY_NAME
from tests.fixtures.realstack import CassandraEndpoint, store_config_for

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[3] / "dashboard"
MINUTE = 60_000
DAY = 86_400_000
NOW = int(time.time() * 1000) // MINUTE * MINUTE
_SELECT = re.compile(r"SELECT (?P<columns>.+?) FROM (?:\w+\.)?(?P<table>\w+)(?: WHERE (?P<where>.+?))?(?: LIMIT \?)?$", re.S)
_CONDITION = re.compile(r"^(?P<column>\w+) (?P<op>=|<|<=|>|>=|IN) \?$")


def dashboard_store_methods() -> set[str]:
    """The Store methods that the dashboard's code calls (`store.x(` or `store().x(`)."""
    source = "\n".join(path.read_text() for path in DASHBOARD_DIR.glob("*.py"))
    return set(re.findall(r"\bstore(?:\(\))?\.(\w+)\(", source)) - {"close"}


def partition_key_violations(statements: tuple[str, ...]) -> list[str]:
    """Each SELECT that does not restrict its table's whole partition key by equality, with why."""
    specs = table_specs()
    problems = []
    for cql in statements:
        if not cql.startswith("SELECT"):
            problems.append(f"not a read: {cql}")
            continue
        match = _SELECT.match(cql)
        if match is None or "ALLOW FILTERING" in cql.upper():
            problems.append(f"not a plain single-table read: {cql}")
            continue
        conditions = [_CONDITION.match(part.strip()) for part in (match["where"] or "").split(" AND ")]
        if match["where"] is None or not all(conditions):
            problems.append(f"no WHERE, or a condition that is not `column op ?`: {cql}")
            continue
        equal = {c["column"] for c in conditions if c and c["op"] == "="}
        key = specs[match["table"]].partition_key
        if not set(key) <= equal:
            problems.append(f"partition key {key} of {match['table']} not restricted by '=': {cql}")
    return problems


def fill(store: CassandraStore) -> None:
    """Two days of alerts (more than MAX_LIMIT in one span), labels, transactions, metrics and models."""
    alerts = [{"window_start": NOW - m * MINUTE, "window_end": NOW - m * MINUTE + MINUTE, "sender_account": f"s{i}",
               "tx_count": 3, "total_amount_minor": 10, "failed_count": 1, "distinct_receivers": 2, "max_amount_minor": 5,
               "features": "{}", "score": float(i), "cluster": 1, "model_version": "v1", "explanation": "[]",
               "created_at": NOW - m * MINUTE + MINUTE, "latency_ms": 100}
              for m in (0, 1, 2, 3, 24 * 60 + 1) for i in range(210)]
    store.upsert_alerts(alerts)
    store.upsert_labels([{"transaction_id": f"t{i}", "pattern": "card_testing", "sender_account": f"s{i % 210}",
                          "event_time": NOW - (i % 4) * MINUTE, "labeled_at": NOW - i * 1000} for i in range(1200)]
                        + [{"transaction_id": "old", "pattern": "mule_fan_out", "sender_account": "s1",
                            "event_time": NOW - 3 * DAY, "labeled_at": NOW - 2 * DAY}])
    store.upsert_transactions([{"transaction_id": f"x{i}", "event_time": NOW - i * 1000, "sender_account": "s1",
                                "receiver_account": "r", "amount_minor": i, "currency": "USD", "transaction_type": "PURCHASE",
                                "status": "APPROVED", "channel": "ONLINE"} for i in range(50)])
    store.upsert_metrics([{"minute": NOW - m * MINUTE, "batch_id": b, "transactions": 5, "updated_at": NOW}
                          for m in (0, 1, 24 * 60 + 1) for b in range(2)])
    store.record_stream_progress({"query": STREAM_QUERY_NAME, "batch_id": 7, "updated_at": NOW})
    store.record_model({"version": "v1", "trained_at": NOW - DAY, "path": "/m", "metrics": "{}", "metadata": "{}"})


# Each dashboard Store method, with calls that take each branch of its Cassandra reads.
CALLS: dict[str, list[Callable[[CassandraStore], Any]]] = {
    "latest_alerts": [
        lambda s: s.latest_alerts(since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE, limit=300),
        lambda s: s.latest_alerts(since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE, limit=50, min_score=100.0,
                                  after=(NOW - MINUTE, "s7")),
    ],
    "alerts_for_sender": [lambda s: s.alerts_for_sender(sender="s1", since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE)],
    "alert_windows": [lambda s: s.alert_windows(since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE, limit=MAX_LIMIT)],
    "alerted_windows": [lambda s: s.alerted_windows(windows=[("s1", NOW), ("s2", NOW - DAY), ("nobody", NOW)])],
    "transactions_for_sender": [lambda s: s.transactions_for_sender(sender="s1", since_ms=NOW - DAY, until_ms=NOW + 1)],
    "recent_labels": [lambda s: s.recent_labels(limit=MAX_LIMIT), lambda s: s.recent_labels(limit=3)],
    "metric_rows": [lambda s: s.metric_rows(since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE)],
    "metrics_by_minute": [lambda s: s.metrics_by_minute(since_ms=NOW - 2 * DAY, until_ms=NOW + MINUTE, bucket_minutes=5)],
    "models": [lambda s: s.models(limit=20)],
    "stream_progress": [lambda s: s.stream_progress(STREAM_QUERY_NAME)],
}


@pytest.fixture(scope="module")
def filled(real_cassandra: CassandraEndpoint) -> StoreConfig:
    """One keyspace for the module: the tests only read."""
    config = store_config_for(real_cassandra, f"fraudpipe_reads_{uuid.uuid4().hex[:8]}")
    with CassandraStore(config) as store:
        fill(store)
    return config


def test_the_sweep_covers_every_store_method_the_dashboard_calls() -> None:
    assert dashboard_store_methods() == set(CALLS)


def test_the_check_rejects_scans_and_partial_keys() -> None:
    assert partition_key_violations(("SELECT * FROM labels LIMIT ?",))
    assert partition_key_violations(("SELECT * FROM alerts WHERE window_start >= ? AND window_start < ?",))
    assert partition_key_violations(("SELECT * FROM transactions WHERE sender_account > ?",))
    assert partition_key_violations(("SELECT * FROM metrics WHERE day = ? ALLOW FILTERING",))
    assert not partition_key_violations(("SELECT * FROM alerts WHERE day = ? AND window_start >= ? LIMIT ?",))


@pytest.mark.parametrize("method", sorted(CALLS))
def test_each_dashboard_store_method_reads_by_partition_key(method: str, filled: StoreConfig) -> None:
    with CassandraStore(filled) as store:
        before = set(store.prepared_statements)
        results = [call(store) for call in CALLS[method]]
        issued = tuple(s for s in store.prepared_statements if s not in before)
    assert all(results), f"{method} found nothing: the sweep must read real rows"
    assert issued, f"{method} prepared no statement"
    assert partition_key_violations(issued) == []


def test_every_dashboard_route_reads_by_partition_key(filled: StoreConfig, caplog: pytest.LogCaptureFixture) -> None:
    config = dataclasses.replace(load_config(), store=filled)
    app = create_app(config)
    client = app.test_client()
    cursor = encode_cursor(NOW - MINUTE, "s7")
    queries = {"": [""], "alerts": ["", "?limit=200", f"?cursor={cursor}", "?sender=s1&min_score=2", "?min_score=150"],
               "quality": ["", "?labels=1000"], "models": ["", "?limit=5"]}
    rules = [r for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint != "static" and "vendor" not in r.rule]
    served = []
    for rule in rules:
        # s1 has an alert in the window that starts at NOW (fill)
        path = rule.rule.replace("<sender>", "s1").replace("<window_start>", str(NOW))
        for query in queries.get(path.rstrip("/").rsplit("/", 1)[-1], [""]):
            response = client.get(path + query if path != "/senders" else path + "?sender=s1", follow_redirects=True)
            assert response.status_code == 200, (path, query, response.get_data(as_text=True)[:300])
            served.append(path + query)
    statements = app.extensions["fraudpipe"].store().prepared_statements
    app.extensions["fraudpipe"].close()
    # every route once, the ones with queries once per query
    assert len(served) >= len(rules) + sum(len(q) - 1 for q in queries.values()) and statements
    assert partition_key_violations(statements) == []
    used = {m["table"] for m in (_SELECT.match(s) for s in statements) if m}
    # (the pipeline page reads the stream_progress row; metric_rows is its fallback for a stream that never wrote one)
    assert {"alerts", "alerts_by_sender", "labels_by_day", "label_days", "transactions", "stream_progress", "metrics_by_minute",
            "models"} <= used
    # statements carry their keyspace; a session-wide `USE` draws a server warning on each prepare
    assert [r.getMessage() for r in caplog.records if r.name.startswith("cassandra") and "anti-pattern" in r.getMessage()] == []

"""One contract suite for the Store port, run against every adapter that can run here.

SQLite always; Cassandra whenever FRAUDPIPE_TEST_CASSANDRA=host:port is set.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudpipe.errors import StoreError
from fraudpipe.store.base import MAX_LIMIT, Store, day_of
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.core import cassandra_store_config, cassandra_target

MINUTE = 60_000
T0 = 1_795_000_020_000 - (1_795_000_020_000 % MINUTE)  # a minute boundary in Nov 2026

ADAPTERS = ["sqlite"] + (["cassandra"] if cassandra_target() else [])


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        adapter: Store = SqliteStore(tmp_path / "store.db")
    else:
        from fraudpipe.store.cassandra import CassandraStore

        adapter = CassandraStore(cassandra_store_config())
    yield adapter
    adapter.close()


def tx(i: int, sender: str = "s1", t: int = T0) -> dict:
    return {
        "transaction_id": f"tx-{i}",
        "event_time": t + i * 1000,
        "sender_account": sender,
        "receiver_account": f"r{i % 3}",
        "amount_minor": 100 * i,
        "currency": "USD",
        "transaction_type": "PURCHASE",
        "status": "APPROVED",
        "channel": "ONLINE",
    }


def alert(sender: str, window_start: int, score: float = 1.0) -> dict:
    return {
        "window_start": window_start,
        "window_end": window_start + MINUTE,
        "sender_account": sender,
        "tx_count": 20,
        "total_amount_minor": 2000,
        "failed_count": 15,
        "distinct_receivers": 12,
        "max_amount_minor": 300,
        "features": json.dumps({"tx_count": 20}),
        "score": score,
        "cluster": 3,
        "model_version": "v1",
        "explanation": json.dumps([{"feature": "failed_count", "value": 15, "normal": 0.1}]),
        "created_at": window_start + MINUTE + 500,
        "latency_ms": 500,
    }


def test_transactions_upsert_is_idempotent(store: Store):
    rows = [tx(i) for i in range(10)]
    store.upsert_transactions(rows)
    store.upsert_transactions(rows)  # a replay
    store.upsert_transactions([{**rows[3], "status": "FAILED"}])
    found = store.transactions_for_sender(sender="s1", since_ms=T0, until_ms=T0 + MINUTE)
    assert [r["transaction_id"] for r in found] == [f"tx-{i}" for i in reversed(range(10))]
    assert next(r for r in found if r["transaction_id"] == "tx-3")["status"] == "FAILED"
    assert found[0]["amount_minor"] == 900 and found[0]["event_time"] == T0 + 9000


def test_transactions_range_and_limit(store: Store):
    store.upsert_transactions([tx(i) for i in range(10)] + [tx(i, sender="s2") for i in range(10, 13)])
    found = store.transactions_for_sender(sender="s1", since_ms=T0 + 2000, until_ms=T0 + 5000)
    assert [r["transaction_id"] for r in found] == ["tx-4", "tx-3", "tx-2"]
    assert len(store.transactions_for_sender(sender="s1", since_ms=T0, until_ms=T0 + MINUTE, limit=4)) == 4
    assert store.transactions_for_sender(sender="nobody", since_ms=T0, until_ms=T0 + MINUTE) == []


def test_alerts_upsert_by_sender_and_window(store: Store):
    store.upsert_alerts([alert("s1", T0), alert("s2", T0), alert("s1", T0 + MINUTE, score=2.0)])
    store.upsert_alerts([alert("s1", T0, score=5.0)])  # same natural key: replaces
    latest = store.latest_alerts(since_ms=T0, until_ms=T0 + 10 * MINUTE)
    assert [(a["sender_account"], a["window_start"]) for a in latest] == [("s1", T0 + MINUTE), ("s1", T0), ("s2", T0)]
    assert latest[1]["score"] == 5.0 and latest[1]["day"] == day_of(T0)
    assert [a["window_start"] for a in store.alerts_for_sender(sender="s1", since_ms=T0, until_ms=T0 + 10 * MINUTE)] == [T0 + MINUTE, T0]
    assert len(store.latest_alerts(since_ms=T0, until_ms=T0 + 10 * MINUTE, min_score=4.0)) == 1
    assert len(store.latest_alerts(since_ms=T0, until_ms=T0 + 10 * MINUTE, limit=2)) == 2


def test_alerts_keyset_pages_walk_every_alert_once(store: Store):
    day = 86_400_000
    rows = [alert(f"s{i}", T0 - day) for i in range(3)] + [alert(f"s{i}", T0 + m * MINUTE, score=float(m)) for i in range(4) for m in range(2)]
    store.upsert_alerts(rows)
    seen: list[tuple[str, int]] = []
    after = None
    while True:  # pages of 3 cross a shared window (4 senders) and a day bucket
        page = store.latest_alerts(since_ms=T0 - 2 * day, until_ms=T0 + day, limit=3, after=after)
        if not page:
            break
        seen += [(a["sender_account"], a["window_start"]) for a in page]
        after = (page[-1]["window_start"], page[-1]["sender_account"])
    expected = [(f"s{i}", T0 + MINUTE) for i in range(4)] + [(f"s{i}", T0) for i in range(4)] + [(f"s{i}", T0 - day) for i in range(3)]
    assert seen == expected
    high = store.latest_alerts(since_ms=T0, until_ms=T0 + day, min_score=1.0, after=(T0 + MINUTE, "s1"))
    assert [(a["sender_account"], a["window_start"]) for a in high] == [("s2", T0 + MINUTE), ("s3", T0 + MINUTE)]


def test_alerts_across_day_buckets(store: Store):
    day = 86_400_000
    store.upsert_alerts([alert("s1", T0 - day), alert("s1", T0)])
    found = store.latest_alerts(since_ms=T0 - 2 * day, until_ms=T0 + day)
    assert [a["window_start"] for a in found] == [T0, T0 - day]


def test_metrics_replayed_batch_does_not_double(store: Store):
    row = {"minute": T0, "batch_id": 4, "transactions": 100, "flagged_windows": 2, "latency_ms_max": 900}
    store.upsert_metrics([row, {**row, "batch_id": 5, "transactions": 50, "latency_ms_max": 300}])
    store.upsert_metrics([row])  # batch 4 replayed after a crash
    minutes = store.metrics_by_minute(since_ms=T0, until_ms=T0 + MINUTE)
    assert len(minutes) == 1
    assert minutes[0]["transactions"] == 150 and minutes[0]["flagged_windows"] == 4
    assert minutes[0]["latency_ms_max"] == 900
    assert store.totals(since_ms=T0 - MINUTE, until_ms=T0 + MINUTE)["transactions"] == 150
    assert store.metrics_by_minute(since_ms=T0 + MINUTE, until_ms=T0 + 2 * MINUTE) == []


def test_metrics_by_minute_agrees_with_the_port_definition(store: Store):
    # adapters may sum in the database; the result must equal the port's own summing of metric_rows
    rows = [{"minute": T0 + m * MINUTE, "batch_id": b, "transactions": 10 * m + b, "late_records": b % 2,
             "latency_ms_sum": 100 * b, "latency_ms_max": 50 * b} for m in range(3) for b in range(4)]
    store.upsert_metrics(rows + [{"minute": T0 + 3 * MINUTE, "batch_id": 0}])  # a row with counters unset
    since, until = T0 - MINUTE, T0 + 10 * MINUTE
    assert store.metrics_by_minute(since_ms=since, until_ms=until) == Store.metrics_by_minute(store, since_ms=since, until_ms=until)
    assert len(store.metrics_by_minute(since_ms=since, until_ms=until)) == 4


def test_minute_totals_stay_exact_through_replays_and_later_batches(store: Store):
    def batch(batch_id: int, minutes: range, transactions: int, latency: int) -> list[dict]:
        return [{"minute": T0 + m * MINUTE, "batch_id": batch_id, "transactions": transactions, "windows": 2,
                 "latency_ms_sum": latency, "latency_ms_max": latency, "updated_at": T0 + batch_id} for m in minutes]

    store.upsert_metrics(batch(1, range(0, 3), 10, 700))
    store.upsert_metrics(batch(2, range(2, 4), 5, 400))  # minute 2 gets a second batch
    store.upsert_metrics(batch(2, range(2, 4), 6, 900))  # batch 2 replayed, with other latencies and counts
    store.upsert_metrics(batch(3, range(1, 2), 1, 100) + [{"minute": T0 + 1440 * MINUTE, "batch_id": 3, "late_records": 4}])
    since, until = T0 - MINUTE, T0 + 2000 * MINUTE
    minutes = store.metrics_by_minute(since_ms=since, until_ms=until)
    assert minutes == Store.metrics_by_minute(store, since_ms=since, until_ms=until)
    assert [(m["minute"] - T0) // MINUTE for m in minutes] == [0, 1, 2, 3, 1440]
    assert [m["transactions"] for m in minutes] == [10, 11, 16, 6, 0]
    assert [m["latency_ms_max"] for m in minutes] == [700, 700, 900, 900, 0]
    assert minutes[2]["windows"] == 4 and minutes[2]["latency_ms_sum"] == 1600 and minutes[4]["late_records"] == 4
    assert [m["minute"] for m in store.metrics_by_minute(since_ms=T0 + MINUTE, until_ms=T0 + 3 * MINUTE)] == [T0 + MINUTE, T0 + 2 * MINUTE]
    assert store.totals(since_ms=since, until_ms=until)["transactions"] == 43


def test_alert_windows_are_the_keys_of_latest_alerts(store: Store):
    day = 86_400_000
    store.upsert_alerts([alert(f"s{i}", T0 + m * MINUTE) for i in range(3) for m in range(2)] + [alert("s9", T0 - day)])
    since, until = T0 - 2 * day, T0 + day
    keys = [(a["sender_account"], a["window_start"]) for a in store.latest_alerts(since_ms=since, until_ms=until)]
    assert store.alert_windows(since_ms=since, until_ms=until) == keys and len(keys) == 7  # across two day buckets
    assert store.alert_windows(since_ms=since, until_ms=until, limit=4) == keys[:4]
    assert store.alert_windows(since_ms=T0, until_ms=T0 + MINUTE) == [("s0", T0), ("s1", T0), ("s2", T0)]
    assert store.alert_windows(since_ms=T0 + day, until_ms=T0 + 2 * day) == []


def test_alerted_windows_are_point_reads_of_alert_keys(store: Store):
    store.upsert_alerts([alert("s1", T0), alert("s1", T0 + 2 * MINUTE), alert("s2", T0 + MINUTE)])
    asked = [("s1", T0), ("s1", T0 + MINUTE), ("s2", T0 + MINUTE), ("s2", T0), ("nobody", T0), ("s1", T0)]
    assert store.alerted_windows(windows=asked) == {("s1", T0), ("s2", T0 + MINUTE)}
    assert store.alerted_windows(windows=[]) == set()
    many = [(f"x{i}", T0) for i in range(MAX_LIMIT - 2)] + [("s2", T0 + MINUTE), ("s1", T0 + 2 * MINUTE)]
    assert store.alerted_windows(windows=many) == {("s2", T0 + MINUTE), ("s1", T0 + 2 * MINUTE)}
    with pytest.raises(StoreError):
        store.alerted_windows(windows=many + [("s1", T0 - MINUTE)])


def test_labels(store: Store):
    labels = [
        {"transaction_id": f"tx-{i}", "pattern": "card_testing", "sender_account": "s1", "event_time": T0, "labeled_at": T0 + i}
        for i in range(5)
    ]
    store.upsert_labels(labels)
    store.upsert_labels(labels)
    assert sorted(r["transaction_id"] for r in store.labels_for(["tx-1", "tx-3", "nope"])) == ["tx-1", "tx-3"]
    assert [r["transaction_id"] for r in store.recent_labels(limit=2)] == ["tx-4", "tx-3"]


def test_model_registry(store: Store):
    assert store.latest_model() is None
    store.record_model({"version": "20261121T120000Z", "trained_at": T0, "path": "/m/1", "metrics": "{}", "metadata": "{}"})
    store.record_model({"version": "20261121T130000Z", "trained_at": T0 + 1, "path": "/m/2", "metrics": "{}", "metadata": "{}"})
    assert store.latest_model()["version"] == "20261121T130000Z"
    assert [m["version"] for m in store.models()] == ["20261121T130000Z", "20261121T120000Z"]


def test_stream_progress_keeps_the_newest_batch_per_query(store: Store):
    assert store.stream_progress("fraud_detection") is None
    store.record_stream_progress({"query": "fraud_detection", "batch_id": 41, "updated_at": T0})
    store.record_stream_progress({"query": "fraud_detection", "batch_id": 42, "updated_at": T0 + 2_000})
    store.record_stream_progress({"query": "other", "batch_id": 1, "updated_at": T0})
    assert store.stream_progress("fraud_detection") == {"query": "fraud_detection", "batch_id": 42, "updated_at": T0 + 2_000}


def test_empty_store_reads(store: Store):
    assert store.latest_alerts(since_ms=T0, until_ms=T0 + MINUTE) == []
    assert store.totals(since_ms=T0, until_ms=T0 + MINUTE)["transactions"] == 0
    assert store.labels_for([]) == []


def test_scan_transactions_yields_bounded_chunks_of_the_time_range(store: Store):
    store.upsert_transactions([tx(i) for i in range(10)] + [tx(i, sender="s2") for i in range(10, 25)])
    chunks = list(store.scan_transactions(chunk_size=4))
    assert chunks and all(1 <= len(chunk) <= 4 for chunk in chunks)
    rows = [row for chunk in chunks for row in chunk]
    assert sorted(r["transaction_id"] for r in rows) == sorted(f"tx-{i}" for i in range(25))
    assert next(r for r in rows if r["transaction_id"] == "tx-12") == {**tx(12, sender="s2")}
    ranged = [r for chunk in store.scan_transactions(since_ms=T0 + 5000, until_ms=T0 + 12_000) for r in chunk]
    assert sorted(r["event_time"] for r in ranged) == [T0 + i * 1000 for i in range(5, 12)]
    assert list(store.scan_transactions(since_ms=T0 + 60 * MINUTE, until_ms=T0 + 61 * MINUTE)) == []


def test_scan_labels_by_event_time(store: Store):
    store.upsert_labels([
        {"transaction_id": f"tx-{i}", "pattern": "mule_fan_out", "sender_account": "s1", "event_time": T0 + i * MINUTE,
         "labeled_at": T0 + i * MINUTE + 5} for i in range(7)
    ])
    assert sorted(r["transaction_id"] for c in store.scan_labels(chunk_size=3) for r in c) == [f"tx-{i}" for i in range(7)]
    assert all(len(c) <= 3 for c in store.scan_labels(chunk_size=3))
    ranged = [r for c in store.scan_labels(since_ms=T0 + 2 * MINUTE, until_ms=T0 + 4 * MINUTE) for r in c]
    assert sorted(r["transaction_id"] for r in ranged) == ["tx-2", "tx-3"] and ranged[0]["pattern"] == "mule_fan_out"

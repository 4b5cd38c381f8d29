"""One contract suite for the Store port, run against every adapter that can run here.

SQLite, and Cassandra 5.0 on the real-stack bench (tests/fixtures/realstack.py): skipped with
the reason where Java or Maven is missing, a failure under CI when it cannot start.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from fraudpipe.errors import StoreError
from fraudpipe.store.base import MAX_LIMIT, Store, day_of
from fraudpipe.store.sqlite import SqliteStore

MINUTE = 60_000
T0 = 1_795_000_020_000 - (1_795_000_020_000 % MINUTE)  # a minute boundary in Nov 2026

ADAPTERS = ["sqlite", pytest.param("cassandra", marks=pytest.mark.realstack)]


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        adapter: Store = SqliteStore(tmp_path / "store.db")
    else:
        from fraudpipe.store.cassandra import CassandraStore

        adapter = CassandraStore(request.getfixturevalue("cassandra_store_config"))
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


def label(i: int, labeled_at: int, pattern: str = "card_testing") -> dict:
    return {"transaction_id": f"lb-{i:03d}", "pattern": pattern, "sender_account": f"s{i % 4}", "event_time": labeled_at - 5000,
            "labeled_at": labeled_at}


def test_recent_labels_are_the_newest_by_labeled_at_across_days(store: Store):
    day = 86_400_000
    # three day buckets, written out of order, with ties on labeled_at inside a day
    rows = [label(i, T0 - 2 * day + i) for i in range(5)] + [label(10 + i, T0 + (i // 2) * 1000) for i in range(30)] \
        + [label(50 + i, T0 + day + i) for i in range(3)]
    store.upsert_labels(list(reversed(rows)))
    expected = sorted(rows, key=lambda r: (-r["labeled_at"], r["transaction_id"]))
    assert store.recent_labels(limit=1000) == expected
    assert store.recent_labels(limit=2) == expected[:2]  # the newest day alone
    assert store.recent_labels(limit=20) == expected[:20]  # into the middle of a day with ties
    assert store.recent_labels(limit=36) == expected[:36]  # into the oldest day
    assert store.recent_labels(limit=0) == expected[:1]  # limits are bounded to 1..MAX_LIMIT


def test_recent_labels_rewrites_are_idempotent(store: Store):
    rows = [label(i, T0 + i * 1000) for i in range(12)]
    store.upsert_labels(rows)
    store.upsert_labels(rows[::2])  # a replay of part of the topic
    store.upsert_labels([{**rows[4], "pattern": "mule_fan_out"}])  # same key, new value
    newest = store.recent_labels(limit=1000)
    assert [r["transaction_id"] for r in newest] == [f"lb-{i:03d}" for i in reversed(range(12))]
    assert next(r for r in newest if r["transaction_id"] == "lb-004")["pattern"] == "mule_fan_out"
    assert store.labels_for(["lb-004"])[0]["pattern"] == "mule_fan_out"


def test_labels_need_labeled_at(store: Store):
    with pytest.raises(StoreError, match="labeled_at is required"):
        store.upsert_labels([{**label(1, T0), "labeled_at": None}])
    assert store.recent_labels(limit=10) == []


def test_every_read_returns_the_port_types(store: Store):
    big = 2**40 + 7  # beyond 32 bits: bigint columns stay exact
    store.upsert_transactions([{**tx(1), "amount_minor": big}])
    store.upsert_labels([label(1, T0 + 1)])
    store.upsert_alerts([alert("s1", T0, score=0.1 + 0.2)])
    store.upsert_metrics([{"minute": T0, "batch_id": 1, "transactions": big, "latency_ms_max": 5}])
    store.record_model({"version": "v1", "trained_at": T0, "path": "/m", "metrics": "{\"k\": 1}", "metadata": "{}"})
    [t] = store.transactions_for_sender(sender="s1", since_ms=T0, until_ms=T0 + MINUTE)
    assert t == {**tx(1), "amount_minor": big} and type(t["event_time"]) is int and type(t["amount_minor"]) is int
    [lab] = store.recent_labels(limit=5)
    assert lab == label(1, T0 + 1) and store.labels_for(["lb-001"]) == [lab]
    [a] = store.latest_alerts(since_ms=T0, until_ms=T0 + MINUTE)
    assert {k: a[k] for k in alert("s1", T0)} == alert("s1", T0, score=0.1 + 0.2) and a["day"] == day_of(T0)
    assert type(a["score"]) is float and type(a["tx_count"]) is int and type(a["window_start"]) is int
    [by_sender] = store.alerts_for_sender(sender="s1", since_ms=T0, until_ms=T0 + MINUTE)
    assert {k: by_sender[k] for k in alert("s1", T0)} == alert("s1", T0, score=0.1 + 0.2)
    [m] = store.metric_rows(since_ms=T0, until_ms=T0 + MINUTE)
    assert (m["minute"], m["batch_id"], m["transactions"], m["latency_ms_max"], m["day"]) == (T0, 1, big, 5, day_of(T0))
    assert store.totals(since_ms=T0, until_ms=T0 + MINUTE)["transactions"] == big
    [model] = store.models()
    assert {k: model[k] for k in ("version", "trained_at", "path", "metrics", "metadata")} == \
        {"version": "v1", "trained_at": T0, "path": "/m", "metrics": "{\"k\": 1}", "metadata": "{}"}


def test_time_ranges_include_since_and_exclude_until(store: Store):
    store.upsert_transactions([tx(0), tx(5)])  # event_time T0 and T0 + 5 s
    store.upsert_alerts([alert("s1", T0), alert("s1", T0 + MINUTE)])
    store.upsert_metrics([{"minute": T0, "batch_id": 1, "transactions": 1}, {"minute": T0 + MINUTE, "batch_id": 1, "transactions": 2}])
    tx_ids = lambda since, until: [r["transaction_id"] for r in store.transactions_for_sender(sender="s1", since_ms=since, until_ms=until)]  # noqa: E731
    assert tx_ids(T0, T0 + 5000) == ["tx-0"] and tx_ids(T0 + 1, T0 + 5001) == ["tx-5"]
    assert [a["window_start"] for a in store.latest_alerts(since_ms=T0, until_ms=T0 + MINUTE)] == [T0]
    assert [a["window_start"] for a in store.alerts_for_sender(sender="s1", since_ms=T0 + 1, until_ms=T0 + MINUTE + 1)] == [T0 + MINUTE]
    assert store.alert_windows(since_ms=T0, until_ms=T0 + MINUTE) == [("s1", T0)]
    assert [m["minute"] for m in store.metric_rows(since_ms=T0, until_ms=T0 + MINUTE)] == [T0]
    assert [m["minute"] for m in store.metrics_by_minute(since_ms=T0 + 1, until_ms=T0 + 2 * MINUTE)] == [T0 + MINUTE]
    assert store.totals(since_ms=T0, until_ms=T0 + MINUTE)["transactions"] == 1


def test_metric_buckets_and_totals_span_day_buckets(store: Store):
    day = 86_400_000
    midnight = T0 - T0 % day + day
    rows = [{"minute": midnight + m * MINUTE, "batch_id": 7, "transactions": 1, "latency_ms_max": m + 3} for m in range(-3, 3)]
    store.upsert_metrics(rows)
    buckets = store.metrics_by_minute(since_ms=midnight - day, until_ms=midnight + day, bucket_minutes=5)
    assert [(b["minute"] - midnight) // MINUTE for b in buckets] == [-5, 0]
    assert [(b["transactions"], b["minutes"], b["latency_ms_max"]) for b in buckets] == [(3, 3, 2), (3, 3, 5)]
    assert store.totals(since_ms=midnight - day, until_ms=midnight + day)["transactions"] == 6
    assert len(store.metric_rows(since_ms=midnight - 2 * MINUTE, until_ms=midnight + MINUTE)) == 3


def test_alerts_for_sender_limit_and_latest_alerts_after_outside_the_range(store: Store):
    store.upsert_alerts([alert("s1", T0 + m * MINUTE, score=float(m)) for m in range(6)])
    newest = store.alerts_for_sender(sender="s1", since_ms=T0, until_ms=T0 + 10 * MINUTE, limit=2)
    assert [a["window_start"] for a in newest] == [T0 + 5 * MINUTE, T0 + 4 * MINUTE]
    # a cursor past the range's end pages from the range's own newest alert; one before it ends the walk
    after_end = store.latest_alerts(since_ms=T0, until_ms=T0 + 3 * MINUTE, after=(T0 + 9 * MINUTE, "s1"))
    assert [a["window_start"] for a in after_end] == [T0 + 2 * MINUTE, T0 + MINUTE, T0]
    assert store.latest_alerts(since_ms=T0 + MINUTE, until_ms=T0 + 3 * MINUTE, after=(T0, "s1")) == []
    assert [a["score"] for a in store.latest_alerts(since_ms=T0, until_ms=T0 + 10 * MINUTE, min_score=3.5)] == [5.0, 4.0]


def test_model_rewrites_and_schema_are_idempotent(store: Store):
    store.record_model({"version": "v1", "trained_at": T0, "path": "/a", "metrics": "{}", "metadata": "{}"})
    store.record_model({"version": "v1", "trained_at": T0, "path": "/b", "metrics": "{}", "metadata": "{}"})
    store.ensure_schema()  # again, on a store with data: nothing is lost
    assert [(m["version"], m["path"]) for m in store.models()] == [("v1", "/b")]
    for i in range(3):
        store.record_model({"version": f"v{i + 2}", "trained_at": T0 + i, "path": "/c", "metrics": "{}", "metadata": "{}"})
    assert [m["version"] for m in store.models(limit=2)] == ["v4", "v3"] and store.latest_model()["version"] == "v4"


def test_min_score_pages_past_low_scores_before_older_days(store: Store):
    day = 86_400_000
    low = [alert(f"low{i:02d}", T0 + 30 * MINUTE, score=0.5) for i in range(40)]  # the newest window: 40 low scores
    high_today = [alert(f"s{i}", T0 + m * MINUTE, score=9.0) for i in range(2) for m in range(3)]
    high_yesterday = [alert("old", T0 - day, score=9.0)]
    store.upsert_alerts(low + high_today + high_yesterday)
    found = store.latest_alerts(since_ms=T0 - 2 * day, until_ms=T0 + day, limit=3, min_score=5.0)
    assert [(a["sender_account"], a["window_start"]) for a in found] == \
        [("s0", T0 + 2 * MINUTE), ("s1", T0 + 2 * MINUTE), ("s0", T0 + MINUTE)]
    after = store.latest_alerts(since_ms=T0 - 2 * day, until_ms=T0 + day, limit=3, min_score=5.0,
                                after=(T0 + 30 * MINUTE, "low00"))
    assert [(a["sender_account"], a["window_start"]) for a in after] == [("s0", T0 + 2 * MINUTE), ("s1", T0 + 2 * MINUTE), ("s0", T0 + MINUTE)]
    everything = store.latest_alerts(since_ms=T0 - 2 * day, until_ms=T0 + day, limit=1000, min_score=5.0)
    assert len(everything) == 7 and everything[-1]["sender_account"] == "old"


def test_the_suite_exercises_every_public_method_of_the_port():
    import inspect

    public = {name for name, _ in inspect.getmembers(Store, inspect.isfunction) if not name.startswith("_")}
    source = Path(__file__).read_text()
    called = set(re.findall(r"store\.(\w+)\(", source)) | {"close"}  # the fixture closes every store
    assert public - called == set()

"""The stream job's transforms on small DataFrames: window bounds, carriers, features, scoring output."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd
import pytest

from fraudpipe.config import Config
from spark_apps.stream import decode as sd
from spark_apps.stream.job import BatchWriter, transform_windows
from spark_apps.history import SenderHistory
from spark_apps.stream.context import BatchWindows
from spark_apps.stream.outputs import build_outputs
from workloads.stream import CARD_TESTING_WINDOW, publish_model, tiny_model

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
CARD_TESTING_MINUTE = {"tx_count": 12, "total_amount_minor": 1_800, "failed_count": 9, "small_amount_count": 12,
                       "max_amount_minor": 300, "avg_amount_minor": 150.0, "failed_ratio": 0.75, "distinct_receivers": 2,
                       "receiver_hashes": [11, 12]}
MS = dt.timedelta(milliseconds=1)


def tx(sender, at, amount=1000, status="APPROVED", receiver="R1", kind=sd.KIND_TRANSACTION):
    return {"transaction_id": f"{sender}-{at}", "event_time": at, "sender_account": sender, "receiver_account": receiver,
            "amount_minor": amount, "currency": "USD", "transaction_type": "PURCHASE", "status": status,
            "channel": "ONLINE", sd.KIND_COLUMN: kind}


@pytest.fixture()
def windows(spark):
    rows = [
        tx("A", T0, 100, "DECLINED", "R1"),
        tx("A", T0 + dt.timedelta(seconds=59) + 999 * MS, 300, "APPROVED", "R2"),
        tx("A", T0 + dt.timedelta(minutes=1), 5000, "FAILED", "R1"),  # first instant of the next window
        tx("B", T0 + dt.timedelta(seconds=10), 700, "APPROVED", "R1"),
        # carriers: two late, one undecodable, all in the first window of no sender
        tx(None, T0 + MS, 999, kind=sd.KIND_LATE),
        tx(None, T0 + MS, 999, kind=sd.KIND_LATE),
        {**{k: None for k in tx("x", T0)}, "event_time": T0 + MS, sd.KIND_COLUMN: sd.KIND_DLQ},
    ]
    frame = spark.createDataFrame(pd.DataFrame(rows).astype({sd.KIND_COLUMN: "int8"}), schema=sd.spark_ddl(1))
    result = transform_windows(frame, watermark_seconds=30).toPandas()
    return result.sort_values(["window_start", "sender_account"], na_position="first").reset_index(drop=True)


@pytest.mark.spark
def test_tumbling_windows_are_one_minute_half_open_per_sender(windows):
    real = windows[windows["sender_account"].notna()]
    keys = [(r.sender_account, r.window_start.strftime("%H:%M:%S"), r.window_end.strftime("%H:%M:%S"))
            for r in real.itertuples()]
    assert keys == [("A", "12:00:00", "12:01:00"), ("B", "12:00:00", "12:01:00"), ("A", "12:01:00", "12:02:00")]
    first = real.iloc[0]
    assert (first.tx_count, first.total_amount_minor, first.failed_count, first.distinct_receivers,
            first.max_amount_minor) == (2, 400, 1, 2, 300)


@pytest.mark.spark
def test_carriers_aggregate_apart_with_their_late_and_dlq_counts(windows):
    carriers = windows[windows["sender_account"].isna()]
    assert len(carriers) == 1
    assert carriers.iloc[0].tx_count == 3 and carriers.iloc[0].total_amount_minor == 1  # 3 carried, 1 of them DLQ


@pytest.mark.spark
def test_outputs_flag_card_testing_with_explanation_and_count_every_record(windows):
    # a card-testing minute: the model's pair features come from these window values (no earlier minute)
    card = {**{k: v for k, v in windows.iloc[1].items()}, "sender_account": "C", **CARD_TESTING_MINUTE}
    batch = pd.concat([windows, pd.DataFrame([card])], ignore_index=True)
    model = tiny_model("v1", fraud_first=True)
    now = int((T0 + dt.timedelta(minutes=5)).timestamp() * 1000)
    outputs = build_outputs(BatchWindows.from_pandas(batch), model, batch_id=7, now_ms=now, history=SenderHistory())
    assert [(a["sender_account"], a["model_version"], a["cluster"]) for a in outputs.alerts] == [("C", "v1", 0)]
    alert = outputs.alerts[0]
    explanation = json.loads(alert["explanation"])
    assert {e["feature"] for e in explanation} >= {"small_amount_count"}
    small = next(e for e in explanation if e["feature"] == "small_amount_count")
    assert small["value"] == 12 and small["text"].startswith("12 charges under $5.00")  # in user units
    assert alert["latency_ms"] == now - alert["window_end"]
    totals = {k: sum(r[k] for r in outputs.metrics) for k in ("transactions", "windows", "flagged_windows",
                                                             "flagged_transactions", "late_records", "dlq_records")}
    assert totals == {"transactions": 4 + 12, "windows": 4, "flagged_windows": 1, "flagged_transactions": 12,
                      "late_records": 2, "dlq_records": 1}
    assert {(r["minute"], r["batch_id"]) for r in outputs.metrics} == {
        (int(T0.timestamp() * 1000), 7), (int(T0.timestamp() * 1000) + 60_000, 7)}
    # a replay (from the history as of the batch before) writes the same keyed rows
    again = build_outputs(BatchWindows.from_pandas(batch), model, batch_id=7, now_ms=now, history=SenderHistory())
    assert again.alerts == outputs.alerts and again.metrics == outputs.metrics


def test_the_writer_picks_up_a_newer_model_on_the_next_batch(tmp_path):
    config = Config()
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, dir=str(tmp_path)))
    publish_model(tmp_path, tiny_model("20260101T000000000Z"))
    writer = BatchWriter(config)
    assert writer.model().version == "20260101T000000000Z"
    publish_model(tmp_path, tiny_model("20260102T000000000Z", fraud_first=True))
    assert writer.model().version == "20260102T000000000Z"
    assert writer.model().fraud_clusters == (0,)


def test_fast_scoring_equals_score_windows_on_flagged_rows():
    from spark_apps.scoring import score_windows
    from spark_apps.stream.outputs import score_all

    model = tiny_model("v1")
    rows = pd.DataFrame([{**CARD_TESTING_WINDOW, "sender_account": "C"},
                         {**{k: v * 0 + 1 for k, v in CARD_TESTING_WINDOW.items()}, "sender_account": "N"}])
    fast, reference = score_all(rows, model), score_windows(rows, model)
    for column in ("is_fraud", "score", "cluster", "model_version"):
        assert fast[column].tolist() == reference[column].tolist()
    assert fast["explanation"][0] == reference["explanation"][0] and fast["is_fraud"][0]


def test_every_batch_records_the_stream_s_progress_even_one_that_closes_no_window(spark, tmp_path):
    from fraudpipe import contracts
    from fraudpipe.store.sqlite import SqliteStore
    from spark_apps.stream.job import with_store_path

    writer = BatchWriter(with_store_path(Config(), str(tmp_path / "s.db")))
    empty = spark.createDataFrame([], "sender_account string, window_start timestamp")
    writer(empty, 5)
    with SqliteStore(tmp_path / "s.db") as store:
        progress = store.stream_progress(contracts.STREAM_QUERY_NAME)
        assert progress is not None and progress["batch_id"] == 5 and progress["updated_at"] > 0
        now = progress["updated_at"]
        assert store.metric_rows(since_ms=now - 3_600_000, until_ms=now + 60_000) == []  # nothing to count


def _minute(sender: str, minute: int, *, tx: int, amount: int, failed: int, small: int, first_s: int, last_s: int) -> dict:
    """One closed window as the streaming aggregation emits it."""
    start = int(T0.timestamp() * 1000) + minute * 60_000
    return {"sender_account": sender, "window_start": T0 + dt.timedelta(minutes=minute),
            "window_end": T0 + dt.timedelta(minutes=minute + 1), "tx_count": tx,
            "total_amount_minor": amount, "failed_count": failed, "small_amount_count": small,
            "max_amount_minor": amount // tx, "avg_amount_minor": amount / tx, "failed_ratio": failed / tx,
            "distinct_types": 1, "transfer_count": 0, "remote_amount_minor": amount, "distinct_receivers": 1,
            "first_event_ms": start + first_s * 1000, "last_event_ms": start + last_s * 1000, "receiver_hashes": [11]}


def test_a_batch_that_only_extends_an_alert_moves_its_end_and_totals_not_its_score(tmp_path):
    from fraudpipe.store.sqlite import SqliteStore

    model = tiny_model("v1", fraud_first=True)
    history, now = SenderHistory(), int((T0 + dt.timedelta(minutes=9)).timestamp() * 1000)
    card = _minute("C", 0, tx=12, amount=1_800, failed=9, small=12, first_s=1, last_s=20)
    first = build_outputs(BatchWindows.from_pandas(pd.DataFrame([card])), model, batch_id=1, now_ms=now, history=history)
    assert [a["tx_count"] for a in first.alerts] == [12] and not first.alert_extensions
    # the sender's next minute: one ordinary purchase, not paired (a quiet half minute), scored normal on its own
    quiet = _minute("C", 1, tx=1, amount=3_500, failed=0, small=0, first_s=50, last_s=50)
    second = build_outputs(BatchWindows.from_pandas(pd.DataFrame([quiet])), model, batch_id=2, now_ms=now + 1,
                           history=history)
    assert second.alerts == [] and len(second.alert_extensions) == 1
    assert [m["flagged_windows"] for m in second.metrics] == [1]  # under the alert, counted as flagged
    with SqliteStore(tmp_path / "s.db") as store:
        store.upsert_alerts(first.alerts)
        for _ in range(2):  # the batch replayed: the same row
            store.upsert_alerts(BatchWriter.extended_alerts(store, second.alert_extensions))
            rows = store.alerts_for_sender(sender="C", since_ms=0, until_ms=now)
            assert len(rows) == 1
            row, opened = rows[0], first.alerts[0]
            assert row["window_start"] == opened["window_start"] and row["window_end"] == opened["window_end"] + 60_000
            assert (row["tx_count"], row["total_amount_minor"]) == (13, 1_800 + 3_500)
            assert (row["score"], row["explanation"], row["latency_ms"]) == (
                opened["score"], opened["explanation"], opened["latency_ms"])
            assert row["score"] >= model.threshold

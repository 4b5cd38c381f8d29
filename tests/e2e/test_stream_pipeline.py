"""Producer -> embedded broker -> Spark stream job -> SQLite, checked against what the input implies."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from spark_apps.stream.context import ALERT_COLUMNS, ALERT_START, ALERT_WRITE
from spark_apps.stream.job import BatchWriter, start_query
from tests.fixtures.stream import (
    expected_outputs,
    offsets_log,
    publish_garbage,
    publish_sentinel,
    publish_transactions,
    stored_alerts,
    stored_totals,
)

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration]

WATERMARK_MS = 30_000


def records_read(config) -> int:
    """Records the query has planned so far, from the newest entry of its offsets log."""
    if not (Path(config.spark.checkpoint_dir) / "offsets").is_dir():
        return 0
    log = offsets_log(Path(config.spark.checkpoint_dir))
    return sum(log[-1][1].values()) if log else 0


def close_windows_and_settle(config, topic: str, expected_records: int, last_event_ms: int, *,
                             alive=lambda: True, timeout: float = 240.0) -> dict[str, int]:
    """Once the job has read every record, publish a sentinel far ahead in event time, then wait
    until every record is accounted for in the store.

    Sending the sentinel only after the data keeps it out of the data's batches: a sentinel read
    together with data would push the watermark past the rest, and the carriers of those late
    records would wait for a window that only newer data could close.
    """
    deadline = time.monotonic() + timeout
    while records_read(config) < expected_records and time.monotonic() < deadline and alive():
        time.sleep(0.2)
    publish_sentinel(config, topic, event_ms=last_event_ms + WATERMARK_MS + 120_000)
    totals = stored_totals(config)
    while time.monotonic() < deadline and alive():
        totals = stored_totals(config)
        if totals["transactions"] + totals["late_records"] + totals["dlq_records"] >= expected_records:
            break
        time.sleep(0.5)
    # and Spark committed the batch that wrote them (its sender history is then the query's too)
    while time.monotonic() < deadline and alive() and not all_batches_committed(config):
        time.sleep(0.2)
    return totals


def all_batches_committed(config) -> bool:
    checkpoint = Path(config.spark.checkpoint_dir)
    ids = {kind: [int(p.name) for p in (checkpoint / kind).iterdir() if p.name.isdigit()]
           for kind in ("offsets", "commits") if (checkpoint / kind).is_dir()}
    return bool(ids.get("commits")) and max(ids["commits"]) == max(ids["offsets"])


def run_until_settled(spark, config, topic: str, expected_records: int, last_event_ms: int, *, timeout: float = 240.0):
    """Run the query in-process until every record is accounted for in the store (or time runs out)."""
    writer = BatchWriter(config)
    query = start_query(spark, config, topic=topic, writer=writer)
    try:
        totals = close_windows_and_settle(config, topic, expected_records, last_event_ms,
                                          alive=lambda: query.isActive, timeout=timeout)
        assert query.exception() is None, query.exception()
        assert query.isActive
    finally:
        query.stop()
    return writer, totals


def assert_matches_input(spark, config, topic: str, totals: dict[str, int]):
    checkpoint = Path(config.spark.checkpoint_dir)
    scored, late, dlq = expected_outputs(spark, config, topic, checkpoint)
    flagged = scored[scored["is_fraud"]]
    assert totals["transactions"] == int(scored["tx_count"].sum())
    assert totals["windows"] == len(scored)
    assert totals["flagged_windows"] == len(flagged)
    assert totals["flagged_transactions"] == int(flagged["tx_count"].sum())
    assert totals["amount_flagged_minor"] == int(flagged["total_amount_minor"].sum())
    assert totals["amount_normal_minor"] == int(scored[~scored["is_fraud"]]["total_amount_minor"].sum())
    assert totals["failed_transactions"] == int(scored["failed_count"].sum())
    assert totals["late_records"] == late
    assert totals["dlq_records"] == dlq
    # one alert row per sender and burst: the newest window of each chain of flagged minutes
    alerts = stored_alerts(config)
    written = scored[scored[ALERT_WRITE]]
    assert set(alerts) == set(zip(written["sender_account"], written[ALERT_START].astype(int)))
    ends = pd.to_datetime(written["window_end"], utc=True).astype("int64") // 1_000_000
    for (_, row), end in zip(written.iterrows(), ends):
        alert = alerts[(row["sender_account"], int(row[ALERT_START]))]
        assert alert["window_end"] == end
        for column, total in ALERT_COLUMNS.items():
            assert alert[column] == row[total], column
        assert alert["score"] == pytest.approx(row["score"])
        assert alert["model_version"] == row["model_version"]
        assert alert["explanation"] == row["explanation"]
    return scored, late, dlq


def card_testing_bursts(batches) -> dict[int, tuple[str, int, int]]:
    """Every injected card-testing instance: sender, first and last event time (ms)."""
    bursts: dict[int, tuple[str, int, int]] = {}
    for batch in batches:
        index = batch.pattern_names.index("card_testing")
        for row in np.flatnonzero(batch.pattern == index):
            sender, at = batch.sender[row].tobytes().decode(), int(batch.event_time[row])
            _, first, last = bursts.get(int(batch.instance[row]), (sender, at, at))
            bursts[int(batch.instance[row])] = (sender, min(first, at), max(last, at))
    return bursts


def alerts_over(alerts: dict, sender: str, first_ms: int, last_ms: int) -> list[dict]:
    """Stored alerts of `sender` whose [window_start, window_end) overlaps [first_ms, last_ms]."""
    return [a for (who, start), a in alerts.items() if who == sender and start <= last_ms and a["window_end"] > first_ms]


def test_every_card_testing_window_is_alerted_and_totals_equal_the_input(spark, stream_config, topic):
    ensure_topics(stream_config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1})
    count = 6000
    batches = publish_transactions(stream_config, topic, count=count)
    last_ms = max(int(b.event_time.max()) for b in batches)

    writer, totals = run_until_settled(spark, stream_config, topic, count, last_ms)

    scored, late, dlq = assert_matches_input(spark, stream_config, topic, totals)
    assert totals["transactions"] + late == count  # every record counted exactly once
    assert dlq == 0
    bursts = card_testing_bursts(batches)
    assert len(bursts) >= 5
    straddling = [b for b in bursts.values() if b[1] // 60_000 != b[2] // 60_000]
    assert straddling  # bursts cross minute boundaries: each is still caught, by one alert
    alerts = stored_alerts(stream_config)
    assert {instance: len(alerts_over(alerts, *burst)) for instance, burst in bursts.items()} == \
           {instance: 1 for instance in bursts}
    assert writer.last_model_version == "20000101T000000000Z"


def test_schema_v2_mid_stream_keeps_flowing_without_loss(spark, stream_config, topic):
    ensure_topics(stream_config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1})
    first = publish_transactions(stream_config, topic, count=2000, schema_version=1)
    second = publish_transactions(stream_config, topic, count=2000, schema_version=2, skip=2000)
    last_ms = max(int(b.event_time.max()) for b in first + second)

    _, totals = run_until_settled(spark, stream_config, topic, 4000, last_ms)

    _, late, dlq = assert_matches_input(spark, stream_config, topic, totals)
    assert dlq == 0
    assert totals["transactions"] + late == 4000


def test_poison_pills_go_to_the_dlq_and_metrics_and_the_query_keeps_running(spark, stream_config, topic):
    from confluent_kafka import Consumer, TopicPartition

    ensure_topics(stream_config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1})
    garbage = [b"not avro at all", b"", b"\x00\x00\x00\x7f\xff garbage with an unknown schema id",
               b"\x00\x00\x00\x00\x01\xff\xff"]
    batches = publish_transactions(stream_config, topic, count=1500)
    publish_garbage(stream_config, topic, garbage)
    more = publish_transactions(stream_config, topic, count=1500, skip=1500)
    last_ms = max(int(b.event_time.max()) for b in batches + more)

    _, totals = run_until_settled(spark, stream_config, topic, 3000 + len(garbage), last_ms)

    _, late, dlq = assert_matches_input(spark, stream_config, topic, totals)
    assert dlq == len(garbage) == totals["dlq_records"]
    assert totals["transactions"] + late == 3000
    consumer = Consumer({"bootstrap.servers": stream_config.kafka.bootstrap_servers, "group.id": "dlq-check",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(contracts.STREAM_DLQ_TOPIC, 0, 0)])
    mine = []
    deadline = time.monotonic() + 20
    while len(mine) < len(garbage) and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.5):
            headers = dict(message.headers() or [])
            if message.error() is None and headers.get("fraudpipe.source.topic") == topic.encode():
                mine.append((message.value(), headers))
    consumer.close()
    assert sorted(v or b"" for v, _ in mine) == sorted(garbage)
    assert all(h["fraudpipe.error.reason"] and h["fraudpipe.source.offset"] for _, h in mine)

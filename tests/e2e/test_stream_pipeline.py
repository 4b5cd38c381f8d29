"""Producer -> embedded broker -> Spark stream job -> SQLite, checked against what the input implies."""
from __future__ import annotations

import numpy as np
import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from spark_apps.stream.decode import DLQ_HEADER_OFFSET, DLQ_HEADER_REASON
from tests.fixtures.stream import (
    POISON_PILLS,
    assert_matches_input,
    dead_letters,
    publish_garbage,
    publish_transactions,
    run_until_settled,
    stored_alerts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration]

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
    ensure_topics(stream_config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1})
    garbage = POISON_PILLS
    batches = publish_transactions(stream_config, topic, count=1500)
    publish_garbage(stream_config, topic, garbage)
    more = publish_transactions(stream_config, topic, count=1500, skip=1500)
    last_ms = max(int(b.event_time.max()) for b in batches + more)

    _, totals = run_until_settled(spark, stream_config, topic, 3000 + len(garbage), last_ms)

    _, late, dlq = assert_matches_input(spark, stream_config, topic, totals)
    assert dlq == len(garbage) == totals["dlq_records"]
    assert totals["transactions"] + late == 3000
    mine = dead_letters(stream_config, topic, expected=len(garbage))
    assert sorted(v for v, _ in mine) == sorted(garbage)
    assert all(h[DLQ_HEADER_REASON] and h[DLQ_HEADER_OFFSET] for _, h in mine)

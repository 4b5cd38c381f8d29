"""The Spark stream job on the real-stack bench, on both Kafka sources (spark.kafka_source python
and jvm): Apache Kafka in, alerts and metrics into Cassandra.

One scenario per source, run once and checked by the tests below: v1 records, poison pills, v2
records (a writer-schema change mid-stream); the job is killed -9 between a batch's Cassandra
writes and its Spark commit and restarted from the checkpoint; the same input on a second topic
runs uninterrupted. The job is driven only through its public entry points (`fraudpipe stream`
with its config from the environment, and `start_query`), as tests/e2e/test_stream_crash.py
does on SQLite.
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from fraudpipe.config import Config
from spark_apps.stream.decode import DLQ_HEADER_OFFSET, DLQ_HEADER_REASON
from tests.fixtures.crash import cassandra_batches, crash_and_recover, stable_alerts, stable_totals
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, create_keyspace, store_config_for
from tests.fixtures.stream import (
    KAFKA_SOURCES,
    POISON_PILLS,
    InProcessRun,
    assert_matches_input,
    dead_letters,
    offsets_log,
    publish_garbage,
    read_topic,
    require_kafka_jars,
    stored_alerts,
    stored_history,
)
from workloads.stream import publish_model, publish_transactions, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration, pytest.mark.timeout(900)]

COUNT = 1200  # half written with schema v1, half with v2
PER_TRIGGER = 150  # 8+ batches before the sentinel's
TIMEOUT_S = 420.0


@dataclass(frozen=True)
class Runs:
    """The crashed and the uninterrupted run of one source, after both settled."""
    crashed: Config
    clean: Config
    topic: str
    clean_topic: str
    killed_in: int
    crashed_totals: dict[str, int]
    clean_totals: dict[str, int]


def publish_input(config: Config, topic: str) -> int:
    """v1 records, the poison pills, then v2 records; returns the last event time (ms)."""
    first = publish_transactions(config, topic, count=COUNT // 2, schema_version=1)
    publish_garbage(config, topic, POISON_PILLS)
    second = publish_transactions(config, topic, count=COUNT // 2, schema_version=2, skip=COUNT // 2)
    return max(int(b.event_time.max()) for b in first + second)


@pytest.fixture(scope="module", params=KAFKA_SOURCES)
def runs(request: pytest.FixtureRequest, config: Config, real_kafka: KafkaEndpoint, real_cassandra: CassandraEndpoint,
         registry, spark, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    source = request.param
    jars = require_kafka_jars(source)
    tmp = tmp_path_factory.mktemp(f"realstack-stream-{source}")
    publish_model(tmp / "models", tiny_model("20000101T000000000Z"))
    crashed = dataclasses.replace(
        config,
        kafka=dataclasses.replace(config.kafka, bootstrap_servers=real_kafka.bootstrap_servers, embedded=False),
        schema_registry=dataclasses.replace(config.schema_registry, url=registry.url),
        store=store_config_for(real_cassandra, create_keyspace(real_cassandra)),
        model=dataclasses.replace(config.model, dir=str(tmp / "models")),
        spark=dataclasses.replace(config.spark, checkpoint_dir=str(tmp / "checkpoint"), trigger_seconds=0.5,
                                  watermark_seconds=30, max_records_per_trigger=PER_TRIGGER, history_snapshot_batches=3,
                                  kafka_source=source, kafka_jars_dir=str(jars or "")))
    clean = dataclasses.replace(
        crashed, store=store_config_for(real_cassandra, create_keyspace(real_cassandra)),
        spark=dataclasses.replace(crashed.spark, checkpoint_dir=str(tmp / "clean-ck")))
    topic = f"stream-{source}-{uuid.uuid4().hex[:8]}"
    clean_topic = topic + "-clean"
    ensure_topics(crashed.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1, topic: 2, clean_topic: 2})
    last_ms = publish_input(crashed, topic)
    publish_input(crashed, clean_topic)

    uninterrupted = InProcessRun(spark, clean, clean_topic)  # runs alongside the crashed one
    cluster = real_cassandra.cluster()
    try:
        killed_in, crashed_totals = crash_and_recover(
            crashed, topic, count=COUNT + len(POISON_PILLS), last_ms=last_ms, log=tmp / "stream.log",
            written=cassandra_batches(cluster.connect(), crashed.store.keyspace), timeout=TIMEOUT_S, poll_s=0.01)
    except BaseException:
        uninterrupted.stop()
        raise
    finally:
        cluster.shutdown()
    clean_totals = uninterrupted.settle(COUNT + len(POISON_PILLS), last_ms, timeout=TIMEOUT_S)
    return Runs(crashed, clean, topic, clean_topic, killed_in, crashed_totals, clean_totals)


def test_totals_are_exact_after_kill_9_across_a_writer_schema_change(spark, runs: Runs) -> None:
    totals = runs.crashed_totals
    _, late, dlq = assert_matches_input(spark, runs.crashed, runs.topic, totals)
    assert totals["transactions"] + late == COUNT
    assert dlq == totals["dlq_records"] == len(POISON_PILLS)
    # the input really changed writer schema mid-stream: the records carry two schema ids, v1's and v2's
    ends = offsets_log(Path(runs.crashed.spark.checkpoint_dir))[-1][1]
    records = [value for _, _, value in read_topic(runs.crashed, runs.topic, ends) if value not in POISON_PILLS]
    assert len({int.from_bytes(value[1:5], "big") for value in records}) == 2


def test_a_kill_9_run_equals_an_uninterrupted_run(runs: Runs) -> None:
    assert runs.killed_in >= 2
    assert stable_totals(runs.crashed_totals) == stable_totals(runs.clean_totals)
    clean_alerts = stored_alerts(runs.clean)
    assert clean_alerts and stable_alerts(stored_alerts(runs.crashed)) == stable_alerts(clean_alerts)
    assert stored_history(runs.crashed) == stored_history(runs.clean)  # every sender's profile, exactly


def test_poison_pills_reach_the_dlq_with_their_headers(runs: Runs) -> None:
    clean = dead_letters(runs.clean, runs.clean_topic, expected=len(POISON_PILLS))
    assert sorted(value for value, _ in clean) == sorted(POISON_PILLS)  # once each, uninterrupted
    crashed = dead_letters(runs.crashed, runs.topic, expected=len(POISON_PILLS))
    assert {value for value, _ in crashed} == set(POISON_PILLS)  # a replayed batch may forward again
    for _, headers in clean + crashed:
        assert headers[DLQ_HEADER_REASON] and headers[DLQ_HEADER_OFFSET]

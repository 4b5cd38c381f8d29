"""The Spark stream job on the real-stack bench: Apache Kafka in, alerts and metrics into Cassandra,
kill -9 of the job between a batch's Cassandra writes and its Spark commit, restart from the
checkpoint: the same alerts and metrics as an uninterrupted run, and what the input implies.

It drives the job only through its public entry points (`fraudpipe stream` with its config
from the environment, and `start_query`), as tests/e2e/test_stream_crash.py does on SQLite.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from fraudpipe.config import Config
from tests.e2e.test_stream_crash import COUNT, STABLE_ALERT_COLUMNS, job_env
from tests.e2e.test_stream_pipeline import assert_matches_input, close_windows_and_settle, run_until_settled
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, create_keyspace, store_config_for
from tests.fixtures.stream import stored_alerts
from workloads.stream import publish_model, publish_transactions, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration, pytest.mark.timeout(1500)]


@pytest.fixture()
def realstack_stream_config(config: Config, real_kafka: KafkaEndpoint, real_cassandra: CassandraEndpoint, registry,
                            fresh_cassandra_keyspace: str, tmp_path: Path) -> Config:
    """The stream test config on Apache Kafka and a Cassandra keyspace of the test's own."""
    model_dir = tmp_path / "models"
    publish_model(model_dir, tiny_model("20000101T000000000Z"))
    return dataclasses.replace(
        config,
        kafka=dataclasses.replace(config.kafka, bootstrap_servers=real_kafka.bootstrap_servers, embedded=False),
        schema_registry=dataclasses.replace(config.schema_registry, url=registry.url),
        store=store_config_for(real_cassandra, fresh_cassandra_keyspace),
        model=dataclasses.replace(config.model, dir=str(model_dir)),
        spark=dataclasses.replace(config.spark, checkpoint_dir=str(tmp_path / "checkpoint"), trigger_seconds=0.5,
                                  watermark_seconds=30, max_records_per_trigger=800),
    )


def cassandra_env(config: Config) -> dict[str, str]:
    """The job's config as FRAUDPIPE_* variables: the SQLite crash test's, with the store on Cassandra."""
    store = config.store
    env = {k: v for k, v in job_env(dataclasses.replace(
        config, store=dataclasses.replace(store, backend="sqlite"))).items() if not k.startswith("FRAUDPIPE_STORE__")}
    env.update({"FRAUDPIPE_KAFKA__EMBEDDED": "false", "FRAUDPIPE_STORE__BACKEND": "cassandra",
                "FRAUDPIPE_STORE__CASSANDRA_CONTACT_POINTS": ",".join(store.cassandra_contact_points),
                "FRAUDPIPE_STORE__CASSANDRA_PORT": str(store.cassandra_port), "FRAUDPIPE_STORE__KEYSPACE": store.keyspace,
                "FRAUDPIPE_STORE__CONSISTENCY": store.consistency})
    return env


def start_job(config: Config, topic: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "stream", "--topic", topic],
                            env=cassandra_env(config), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: kill -9 reaches the JVM too


def written_batches(session, keyspace: str) -> set[int]:
    return {row.batch_id for row in session.execute(f"SELECT batch_id FROM {keyspace}.{contracts.METRICS_TABLE}")}


def batch_in_flight(config: Config, session) -> int | None:
    """A batch >= 2 with metrics rows in Cassandra that Spark has not committed yet."""
    checkpoint = Path(config.spark.checkpoint_dir)
    try:
        offsets = {int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit()}
        commits = {int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit()}
    except FileNotFoundError:
        return None
    open_batches = sorted(b for b in offsets - commits if b >= 2)
    if not open_batches:
        return None
    hits = [b for b in open_batches if b in written_batches(session, config.store.keyspace)]
    return hits[0] if hits else None


def test_kill_9_mid_batch_on_kafka_and_cassandra_equals_an_uninterrupted_run(
        spark, realstack_stream_config: Config, real_cassandra: CassandraEndpoint, tmp_path: Path) -> None:
    config = realstack_stream_config
    topic = f"stream-{tmp_path.name[-12:]}-{os.getpid()}"
    clean_topic = topic + "-clean"
    ensure_topics(config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1, topic: 2, clean_topic: 2})
    batches = publish_transactions(config, topic, count=COUNT)
    publish_transactions(config, clean_topic, count=COUNT)
    last_ms = max(int(b.event_time.max()) for b in batches)
    log = tmp_path / "stream.log"

    cluster = real_cassandra.cluster()
    session = cluster.connect()
    job = start_job(config, topic, log)
    try:
        killed_in = None
        deadline = time.monotonic() + 420
        while killed_in is None and time.monotonic() < deadline and job.poll() is None:
            killed_in = batch_in_flight(config, session)
            if killed_in is None:
                time.sleep(0.01)
        assert killed_in is not None, f"no batch caught between its Cassandra writes and its commit; log:\n{log.read_text()[-3000:]}"
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        cluster.shutdown()
    assert not (Path(config.spark.checkpoint_dir) / "commits" / str(killed_in)).exists()

    job = start_job(config, topic, log)
    try:
        crashed_totals = close_windows_and_settle(config, topic, COUNT, last_ms, alive=lambda: job.poll() is None,
                                                  timeout=420)
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
    assert crashed_totals["transactions"] + crashed_totals["late_records"] == COUNT, log.read_text()[-3000:]
    assert_matches_input(spark, config, topic, crashed_totals)
    crashed_alerts = stored_alerts(config)

    clean = dataclasses.replace(
        config, store=dataclasses.replace(config.store, keyspace=create_keyspace(real_cassandra)),
        spark=dataclasses.replace(config.spark, checkpoint_dir=str(tmp_path / "clean-ck")))
    _, clean_totals = run_until_settled(spark, clean, clean_topic, COUNT, last_ms, timeout=420)
    ignore = ("latency_ms_sum",)  # wall-clock dependent
    assert {k: v for k, v in crashed_totals.items() if k not in ignore} == \
           {k: v for k, v in clean_totals.items() if k not in ignore}
    clean_alerts = stored_alerts(clean)
    assert set(crashed_alerts) == set(clean_alerts) and clean_alerts
    for key, alert in clean_alerts.items():
        assert {c: crashed_alerts[key][c] for c in STABLE_ALERT_COLUMNS} == {c: alert[c] for c in STABLE_ALERT_COLUMNS}

"""The real-stack bench itself: real Kafka and Cassandra answer, keep data across a restart,
and `fraudpipe realstack up|status|down` drives a bench by hand."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from fraudpipe.broker import ensure_topics
from fraudpipe.cli import main as fraudpipe_cli
from fraudpipe.realstack.bench import Bench
from fraudpipe.realstack.cassandra import release_version
from fraudpipe.realstack.service import pid_alive
from tests.fixtures.core import read_to_eof
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(count):
        producer.produce(topic, key=f"k{i % 7}", value=f"v{i}")
    assert producer.flush(30) == 0


def test_kafka_round_trips_records_and_keeps_them_across_a_restart(real_kafka: KafkaEndpoint) -> None:
    topic = f"realstack-{uuid.uuid4().hex[:10]}"
    ensure_topics(real_kafka.bootstrap_servers, {topic: 3})
    produce(real_kafka.bootstrap_servers, topic, 500)
    assert sorted(m.value().decode() for m in read_to_eof(real_kafka.bootstrap_servers, topic)) == sorted(f"v{i}" for i in range(500))
    if real_kafka.server is None:
        pytest.skip("external broker: not restarted")
    real_kafka.server.stop()
    real_kafka.server.start()  # same ports, same log dirs: a durable broker, unlike the embedded one
    assert len(read_to_eof(real_kafka.bootstrap_servers, topic)) == 500


def test_cassandra_is_5_0_and_answers_cql(real_cassandra: CassandraEndpoint, cassandra_keyspace: str) -> None:
    version = release_version(real_cassandra.contact_point, real_cassandra.port)
    assert version is not None and version.startswith("5.0.")
    cluster = real_cassandra.cluster()
    try:
        session = cluster.connect(cassandra_keyspace)
        tables = {row.table_name for row in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [cassandra_keyspace])}
    finally:
        cluster.shutdown()
    assert {"transactions", "labels", "alerts", "alerts_by_sender", "metrics", "metrics_by_minute", "models"} <= tables


@pytest.mark.realstack
def test_cli_starts_reports_and_stops_a_bench(tmp_path: Path) -> None:
    from tests.fixtures.realstack import unavailable
    from fraudpipe.realstack import jars

    if reason := jars.missing_tools():
        unavailable("CLI", reason)
    runner = CliRunner()
    root = tmp_path / "bench"
    up = runner.invoke(fraudpipe_cli, ["realstack", "up", "--only", "kafka", "--root", str(root)])
    try:
        assert up.exit_code == 0, up.output
        state = json.loads((root / "state.json").read_text())
        assert f"bootstrap.servers={state['kafka']['bootstrap_servers']}  (ok)" in up.output
        assert "cassandra" not in state and pid_alive(state["kafka"]["pid"])
        status = runner.invoke(fraudpipe_cli, ["realstack", "status", "--root", str(root)])
        assert status.exit_code == 0 and "(ok)" in status.output
        again = runner.invoke(fraudpipe_cli, ["realstack", "up", "--root", str(root)])
        assert again.exit_code == 1 and "already running" in again.output
    finally:
        down = runner.invoke(fraudpipe_cli, ["realstack", "down", "--wipe", "--root", str(root)])
    assert down.exit_code == 0 and not pid_alive(state["kafka"]["pid"]) and not root.exists()
    assert Bench.load(root) is None

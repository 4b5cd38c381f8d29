"""Bring your own Kafka and Cassandra: `fraudpipe up` with examples/byo.yml against the real-stack
bench starts only fraudpipe's own parts, creates the topics and the keyspace when they are
missing, and reaches the first alert, written to Cassandra and served by the dashboard."""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from fraudpipe import contracts
from fraudpipe.contracts import PROJECT_ROOT
from tests.fixtures.launch import launched_until_first_alert, stack_env
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, table_counts
from workloads.stream import publish_model, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

BYO_CONFIG = PROJECT_ROOT / "examples" / "byo.yml"
OWN_PARTS = ("registry", "connect", "producer", "stream", "dashboard")


def _keyspaces(cassandra: CassandraEndpoint) -> set[str]:
    cluster = cassandra.cluster()
    try:
        return {row.keyspace_name for row in cluster.connect().execute("SELECT keyspace_name FROM system_schema.keyspaces")}
    finally:
        cluster.shutdown()


def test_fraudpipe_up_on_your_own_kafka_and_cassandra_reaches_the_first_alert(
        real_kafka: KafkaEndpoint, real_cassandra: CassandraEndpoint, tmp_path: Path) -> None:
    keyspace = f"byo_{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": real_kafka.bootstrap_servers})
    ours = {contracts.TRANSACTIONS_TOPIC, contracts.LABELS_TOPIC}
    if real_kafka.server is not None:  # the bench's own Kafka: fraudpipe's topics are not there yet
        assert not ours & set(admin.list_topics(timeout=30).topics)
    assert keyspace not in _keyspaces(real_cassandra)
    model_dir = tmp_path / "models"
    publish_model(model_dir, tiny_model())  # a published model: no first training run (test_dev_up covers that)

    ports, env = stack_env()
    env.update({
        "FRAUDPIPE_CONFIG": str(BYO_CONFIG),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": real_kafka.bootstrap_servers,
        "FRAUDPIPE_STORE__CASSANDRA_CONTACT_POINTS": real_cassandra.contact_point,
        "FRAUDPIPE_STORE__CASSANDRA_PORT": str(real_cassandra.port),
        "FRAUDPIPE_STORE__KEYSPACE": keyspace,
        "FRAUDPIPE_SCHEMA_REGISTRY__DATA_DIR": str(tmp_path / "registry"),
        "FRAUDPIPE_CONNECT__DATA_DIR": str(tmp_path / "connect"),
        "FRAUDPIPE_STACK__RUN_DIR": str(tmp_path / "run"),
        "FRAUDPIPE_SPARK__CHECKPOINT_DIR": str(tmp_path / "checkpoint"),
        "FRAUDPIPE_SPARK__WATERMARK_SECONDS": "5",
        "FRAUDPIPE_MODEL__DIR": str(model_dir),
        "PYTHONUNBUFFERED": "1",
    })
    with launched_until_first_alert([sys.executable, "-m", "fraudpipe.cli", "up"], cwd=PROJECT_ROOT, env=env,
                                    log_path=tmp_path / "up.log", dashboard_port=ports["dashboard"]) as up:
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        assert [c["name"] for c in state["components"]] == list(OWN_PARTS)  # no broker of its own
        assert ours <= set(admin.list_topics(timeout=30).topics)
        assert keyspace in _keyspaces(real_cassandra)
        counts = table_counts(real_cassandra, keyspace, (contracts.ALERTS_TABLE, contracts.TRANSACTIONS_TABLE))
        assert counts[contracts.ALERTS_TABLE] >= 1 and counts[contracts.TRANSACTIONS_TABLE] > 0  # stream and sink wrote
        up.stop_with_ctrl_c()
    output = up.output()
    assert up.process.returncode == 0, output[-4000:]
    assert "starting broker" not in output and "embedded broker" not in output

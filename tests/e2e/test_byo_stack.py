"""Bring your own Kafka and Cassandra: `fraudpipe up` with examples/byo.yml against the real-stack
bench starts only fraudpipe's own parts, creates the topics and the keyspace when they are
missing, and reaches the first alert, written to Cassandra and served by the dashboard."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from fraudpipe import contracts
from fraudpipe.broker import free_port
from fraudpipe.contracts import PROJECT_ROOT
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, table_counts
from workloads.stream import publish_model, tiny_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

BYO_CONFIG = PROJECT_ROOT / "examples" / "byo.yml"
OWN_PARTS = ("registry", "connect", "producer", "stream", "dashboard")


def _alerts(port: int) -> list[dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/alerts?limit=5", timeout=3) as response:
            return json.loads(response.read())["alerts"]
    except (OSError, ValueError, KeyError):
        return []


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

    ports = {name: free_port() for name in ("registry", "connect", "dashboard")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    env.update({
        "FRAUDPIPE_CONFIG": str(BYO_CONFIG),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": real_kafka.bootstrap_servers,
        "FRAUDPIPE_STORE__CASSANDRA_CONTACT_POINTS": real_cassandra.contact_point,
        "FRAUDPIPE_STORE__CASSANDRA_PORT": str(real_cassandra.port),
        "FRAUDPIPE_STORE__KEYSPACE": keyspace,
        "FRAUDPIPE_SCHEMA_REGISTRY__PORT": str(ports["registry"]),
        "FRAUDPIPE_SCHEMA_REGISTRY__URL": f"http://127.0.0.1:{ports['registry']}",
        "FRAUDPIPE_SCHEMA_REGISTRY__DATA_DIR": str(tmp_path / "registry"),
        "FRAUDPIPE_CONNECT__PORT": str(ports["connect"]),
        "FRAUDPIPE_CONNECT__URL": f"http://127.0.0.1:{ports['connect']}",
        "FRAUDPIPE_CONNECT__DATA_DIR": str(tmp_path / "connect"),
        "FRAUDPIPE_DASHBOARD__PORT": str(ports["dashboard"]),
        "FRAUDPIPE_STACK__RUN_DIR": str(tmp_path / "run"),
        "FRAUDPIPE_SPARK__CHECKPOINT_DIR": str(tmp_path / "checkpoint"),
        "FRAUDPIPE_SPARK__WATERMARK_SECONDS": "5",
        "FRAUDPIPE_MODEL__DIR": str(model_dir),
        "PYTHONUNBUFFERED": "1",
    })
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")
    up = subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "up"], cwd=PROJECT_ROOT, env=env, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
    first_alert = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and up.poll() is None and not first_alert:
            first_alert = _alerts(ports["dashboard"])
            time.sleep(2)
        output = log_path.read_text(errors="replace")
        assert first_alert, f"no alert through the dashboard API; fraudpipe up said:\n{output[-4000:]}"
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        assert [c["name"] for c in state["components"]] == list(OWN_PARTS)  # no broker of its own
        assert ours <= set(admin.list_topics(timeout=30).topics)
        assert keyspace in _keyspaces(real_cassandra)
        counts = table_counts(real_cassandra, keyspace, (contracts.ALERTS_TABLE, contracts.TRANSACTIONS_TABLE))
        assert counts[contracts.ALERTS_TABLE] >= 1 and counts[contracts.TRANSACTIONS_TABLE] > 0  # stream and sink wrote
        up.send_signal(signal.SIGINT)
        up.wait(timeout=180)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        log.close()
    output = log_path.read_text(errors="replace")
    assert up.returncode == 0, output[-4000:]
    assert "starting broker" not in output and "embedded broker" not in output

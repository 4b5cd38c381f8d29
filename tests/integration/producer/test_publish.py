"""The producer against the real embedded broker and registry, read back with confluent-kafka's AvroDeserializer."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe import contracts
from fraudpipe.broker import EmbeddedBroker, ensure_topics, free_port
from fraudpipe.cli import main
from fraudpipe.config import ProducerConfig, load_config
from producer.generator import TransactionGenerator
from producer.publisher import Publisher
from producer.runner import run
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration
START = 1_700_000_000_000
ROOT = Path(__file__).resolve().parents[3]


def millis(value) -> int:
    return int(value.timestamp() * 1000)


def fresh_topics(broker: EmbeddedBroker) -> tuple[str, str]:
    names = (f"tx-{uuid.uuid4().hex[:10]}", f"labels-{uuid.uuid4().hex[:10]}")
    ensure_topics(broker.bootstrap_servers, {name: 2 for name in names})
    return names


def publisher_for(broker, registry, topics, *, config: ProducerConfig | None = None, **kwargs) -> Publisher:
    kafka = dataclasses.replace(load_config().kafka, bootstrap_servers=broker.bootstrap_servers)
    return Publisher(kafka, config or ProducerConfig(), registry_url=registry.url, topic=topics[0],
                     labels_topic=topics[1], **kwargs)


def test_50k_transactions_and_labels_round_trip_through_avro_deserializer(any_broker, registry):
    broker = any_broker  # the embedded broker, then Apache Kafka
    topics = fresh_topics(broker)
    config = dataclasses.replace(ProducerConfig(), clock="simulated", rate=0.0)
    stats = run(publisher_for(broker, registry, topics, config=config),
                TransactionGenerator(config, seed=21, start_ms=START), rate=0, count=50_000)
    expected, expected_labels = [], []
    for batch in TransactionGenerator(config, seed=21, start_ms=START).batches(50_000):
        expected += batch.records()
        expected_labels += batch.labels()
    assert (stats.sent, stats.labels_sent, stats.errors) == (50_000, len(expected_labels), 0)

    client = SchemaRegistryClient({"url": registry.url})
    deserialize = AvroDeserializer(client)
    tx_context = SerializationContext(topics[0], MessageField.VALUE)
    messages = read_to_eof(broker.bootstrap_servers, topics[0])
    assert len(messages) == 50_000
    by_id = {}
    for message in messages:
        record = deserialize(message.value(), tx_context)
        assert message.key().decode() == record["sender_account"]  # keyed by sender
        record["event_time"] = millis(record["event_time"])
        by_id[record["transaction_id"]] = record
    assert by_id == {r["transaction_id"]: r for r in expected}  # every record valid and exactly as generated

    # The bytes on the topic are exactly what AvroSerializer writes for those records.
    serializer = AvroSerializer(client, contracts.transaction_schema_str(1))
    by_value = {m.value() for m in messages}
    assert all(serializer(r, tx_context) in by_value for r in expected[:2000])

    label_context = SerializationContext(topics[1], MessageField.VALUE)
    labels = [(m.key().decode(), deserialize(m.value(), label_context)) for m in read_to_eof(broker.bootstrap_servers, topics[1])]
    assert len(labels) == len(expected_labels) > 0
    delay = int(config.label_delay_seconds * 1000)
    for key, label in labels:
        assert key == label["transaction_id"]
        transaction = by_id[label["transaction_id"]]  # every label's transaction is present
        assert label["sender_account"] == transaction["sender_account"]
        assert millis(label["event_time"]) == transaction["event_time"]
        assert millis(label["labeled_at"]) == transaction["event_time"] + delay
    assert {label["pattern"] for _, label in labels} == set(config.patterns)
    assert "pattern" not in messages[0].value().decode("latin-1")  # the transactions topic carries no label


def test_schema_version_2_via_the_cli(broker, registry):
    topics = fresh_topics(broker)
    env = {"FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers, "FRAUDPIPE_SCHEMA_REGISTRY__URL": registry.url}
    result = CliRunner().invoke(main, ["produce", "--schema-version", "2", "--clock", "simulated", "--rate", "0",
                                       "--count", "3000", "--topic", topics[0], "--labels-topic", topics[1], "--quiet"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "sent 3,000 transactions" in result.output
    client = SchemaRegistryClient({"url": registry.url})
    deserialize = AvroDeserializer(client)
    records = [deserialize(m.value(), SerializationContext(topics[0], MessageField.VALUE))
               for m in read_to_eof(broker.bootstrap_servers, topics[0])]
    assert len(records) == 3000
    assert all(r["device_id"].startswith("DEV-") for r in records)
    latest = client.get_latest_version(contracts.value_subject(topics[0]))
    assert "device_id" in latest.schema.schema_str


def produce_cli(*args: str, broker_url: str, registry_url: str):
    env = {"FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": broker_url, "FRAUDPIPE_SCHEMA_REGISTRY__URL": registry_url}
    return CliRunner().invoke(main, ["produce", "--clock", "simulated", "--rate", "0", "--count", "100", "--quiet", *args], env=env)


def test_unknown_topic_is_a_clear_error(broker, registry):
    result = produce_cli("--topic", f"missing-{uuid.uuid4().hex[:8]}", broker_url=broker.bootstrap_servers, registry_url=registry.url)
    assert result.exit_code == 1
    assert "unknown topic 'missing-" in result.output and "--create-topics" in result.output


def test_registry_down_is_a_clear_error(broker):
    topics = fresh_topics(broker)
    down = f"http://127.0.0.1:{free_port()}"
    result = produce_cli("--topic", topics[0], "--labels-topic", topics[1], broker_url=broker.bootstrap_servers, registry_url=down)
    assert result.exit_code == 1
    assert f"schema registry at {down}" in result.output


def test_broker_down_is_a_clear_error(registry):
    down = f"127.0.0.1:{free_port()}"
    result = produce_cli(broker_url=down, registry_url=registry.url)
    assert result.exit_code == 1
    assert f"broker at {down} is not reachable" in result.output


def test_delivery_errors_are_counted_and_reported(registry, tmp_path):
    config = dataclasses.replace(ProducerConfig(), clock="simulated", rate=0.0, delivery_timeout_ms=1500, linger_ms=0)
    with EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log") as own:
        topics = fresh_topics(own)
        publisher = publisher_for(own, registry, topics, config=config)
        batches = TransactionGenerator(config, seed=2, start_ms=START).batches(4000)
        first = next(batches)
        publisher.start(first)
        publisher.publish(first, 0, 1000)
        assert publisher.flush(10) == 0
        own.stop()  # the broker dies mid-run
        publisher.publish(first, 1000, 3000)
        publisher.flush(10)
    assert publisher.stats.sent == 3000
    assert publisher.stats.errors >= 2000
    assert publisher.stats.first_error


def test_ctrl_c_flushes_and_prints_a_summary(broker, registry):
    topics = fresh_topics(broker)
    env = {**os.environ, "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "FRAUDPIPE_SCHEMA_REGISTRY__URL": registry.url}
    process = subprocess.Popen(
        [sys.executable, "-m", "fraudpipe.cli", "produce", "--rate", "2000", "--topic", topics[0], "--labels-topic", topics[1]],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "sent" not in seen:  # wait for the first progress line
        chunk = process.stderr.read(1)
        assert chunk, f"producer exited early: {seen}"
        seen += chunk
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 0, seen + rest
    summary = [line for line in (seen + rest).replace("\r", "\n").splitlines() if line.startswith("interrupted:")]
    assert summary and "delivery errors 0" in summary[0]
    sent = int(summary[0].split("sent ")[1].split(" tx")[0].replace(",", ""))
    assert len(read_to_eof(broker.bootstrap_servers, topics[0])) == sent > 0  # everything sent was flushed

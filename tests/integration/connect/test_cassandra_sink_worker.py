"""Our Connect worker's Cassandra sink on the real-stack bench: Avro records on Apache Kafka ->
rows in Apache Cassandra, with exact row counts, replays, a bad record and committed offsets."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import requests

from fraudpipe import contracts
from fraudpipe.avro import encode
from fraudpipe.broker import ensure_topics
from fraudpipe.connect.server import ConnectServer
from fraudpipe.store.base import day_of
from fraudpipe.store.cassandra import CassandraStore
from tests.fixtures.connect import produce, produce_transactions, register_schema, transaction, wait_for, wait_running
from tests.fixtures.core import read_to_eof
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, store_config_for, table_counts

pytestmark = pytest.mark.integration

MIDNIGHT = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
LABEL_TABLES = (contracts.LABELS_TABLE, contracts.LABELS_BY_DAY_TABLE, contracts.LABEL_DAYS_TABLE)


def shipped_config(*, keyspace: str, tx_topic: str, label_topic: str, cassandra: CassandraEndpoint,
                   registry_url: str, dlq: str) -> dict[str, str]:
    """connectors/cassandra-sink.json as shipped, pointed at the bench, a test keyspace and test topics."""
    config = json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())["config"]
    renamed = {}
    for key, value in config.items():
        key = key.replace(f"topic.{contracts.LABELS_TOPIC}.", f"topic.{label_topic}.")
        key = key.replace(f"topic.{contracts.TRANSACTIONS_TOPIC}.", f"topic.{tx_topic}.")
        key = key.replace(f".{contracts.KEYSPACE}.", f".{keyspace}.")
        renamed[key] = value.replace(f"{contracts.KEYSPACE}.", f"{keyspace}.")
    renamed.update({"topics": f"{tx_topic},{label_topic}", "contactPoints": cassandra.contact_point,
                    "port": str(cassandra.port), "value.converter.schema.registry.url": registry_url,
                    "errors.deadletterqueue.topic.name": dlq})
    return renamed


def test_the_worker_sinks_transactions_and_labels_into_cassandra_exactly(
        real_connect_worker: ConnectServer, real_kafka: KafkaEndpoint, real_cassandra: CassandraEndpoint,
        registry, fresh_cassandra_keyspace: str) -> None:
    # a keyspace of its own: if this test fails, its connector may still be writing
    cassandra_store_config = store_config_for(real_cassandra, fresh_cassandra_keyspace)
    run = uuid.uuid4().hex[:8]
    tx_topic, label_topic, dlq = f"tx-{run}", f"labels-{run}", f"dlq-{run}"
    ensure_topics(real_kafka.bootstrap_servers, {tx_topic: 3, label_topic: 2, dlq: 1})
    tx_schema = register_schema(registry.url, contracts.value_subject(tx_topic), contracts.transaction_schema_str(1))
    label_schema = register_schema(registry.url, contracts.value_subject(label_topic), contracts.label_schema_str())
    name = f"cassandra-sink-{run}"
    config = shipped_config(keyspace=cassandra_store_config.keyspace, tx_topic=tx_topic, label_topic=label_topic,
                            cassandra=real_cassandra, registry_url=registry.url, dlq=dlq)
    response = requests.put(f"{real_connect_worker.url}/connectors/{name}/config", json=config, timeout=30)
    assert response.status_code == 201, response.text
    wait_running(real_connect_worker.url, name)

    records = [transaction(i, run=run) for i in range(3000)]
    produce_transactions(real_kafka.bootstrap_servers, tx_topic, tx_schema, records)
    produce_transactions(real_kafka.bootstrap_servers, tx_topic, tx_schema, records[:500])  # a replay upstream
    produce(real_kafka.bootstrap_servers, tx_topic, [("k", b"not avro")])  # to the dead-letter topic
    labels = [{"transaction_id": r["transaction_id"], "pattern": "card_testing", "sender_account": r["sender_account"],
               "event_time": r["event_time"], "labeled_at": MIDNIGHT + dt.timedelta(seconds=i - 200)}
              for i, r in enumerate(records[:400])]  # labeled across midnight UTC: two day buckets
    produce(real_kafka.bootstrap_servers, label_topic,
            [(label["transaction_id"], encode(label_schema, contracts.label_schema(), label)) for label in labels])

    produced = {tx_topic: 3501, label_topic: 400}

    def committed() -> dict[str, int]:
        offsets = requests.get(f"{real_connect_worker.url}/connectors/{name}/offsets", timeout=10).json()["offsets"]
        totals = {tx_topic: 0, label_topic: 0}
        for entry in offsets:
            totals[entry["partition"]["kafka_topic"]] += entry["offset"]["kafka_offset"]
        return totals

    wait_for(lambda: committed() == produced, timeout=180, what=f"committed offsets {produced}")
    counts = table_counts(real_cassandra, cassandra_store_config.keyspace, (contracts.TRANSACTIONS_TABLE, *LABEL_TABLES))
    days = {day_of(int(label["labeled_at"].timestamp() * 1000)) for label in labels}
    assert counts == {contracts.TRANSACTIONS_TABLE: 3000, contracts.LABELS_TABLE: 400, contracts.LABELS_BY_DAY_TABLE: 400,
                      contracts.LABEL_DAYS_TABLE: len(days)} and len(days) == 2
    dead = read_to_eof(real_kafka.bootstrap_servers, dlq)
    assert [m.value() for m in dead] == [b"not avro"]

    with CassandraStore(cassandra_store_config) as store:
        sample = records[1234]
        [row] = [r for r in store.transactions_for_sender(sender=sample["sender_account"], since_ms=0, until_ms=2**62, limit=1000)
                 if r["transaction_id"] == sample["transaction_id"]]
        newest = store.recent_labels(limit=1000)
    assert row == {**sample, "event_time": int(sample["event_time"].timestamp() * 1000)}
    assert len(newest) == 400 and newest[0]["labeled_at"] == max(int(l["labeled_at"].timestamp() * 1000) for l in labels)
    assert requests.delete(f"{real_connect_worker.url}/connectors/{name}", timeout=60).status_code in (200, 204)

"""Producer -> Apache Kafka -> our Connect worker -> Cassandra on the real-stack bench, with kill -9
of the worker mid-stream: after a restart over the same data dir, `transactions` and the label
tables hold exactly what the producer sent, and the offsets committed before the kill never ran
ahead of the rows that were durable in Cassandra."""
from __future__ import annotations

import dataclasses
import threading
import uuid
from pathlib import Path

import pytest
import requests

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics, free_port
from fraudpipe.config import ProducerConfig, load_config
from fraudpipe.connect.server import ConnectServer
from fraudpipe.store.base import day_of
from producer.generator import TransactionGenerator
from producer.publisher import Publisher
from producer.runner import run
from tests.fixtures.connect import wait_for, wait_running
from tests.fixtures.realstack import CassandraEndpoint, KafkaEndpoint, table_counts
from tests.integration.connect.test_cassandra_sink_worker import LABEL_TABLES, shipped_config

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TOTAL = 20_000
RATE = 2_000.0  # tx/s: the stream lasts ~10 s, long enough for a kill in the middle
START = 1_764_460_800_000  # 2025-11-30T00:00Z


def committed(url: str, name: str, topics: tuple[str, str]) -> dict[str, int]:
    """Offsets the worker has committed, summed per topic (= records consumed from offset 0)."""
    totals = dict.fromkeys(topics, 0)
    for entry in requests.get(f"{url}/connectors/{name}/offsets", timeout=10).json()["offsets"]:
        totals[entry["partition"]["kafka_topic"]] += entry["offset"]["kafka_offset"]
    return totals


def test_producer_to_cassandra_through_the_worker_survives_kill_9_exactly(
        real_kafka: KafkaEndpoint, real_cassandra: CassandraEndpoint, registry, fresh_cassandra_keyspace: str,
        tmp_path: Path) -> None:
    keyspace = fresh_cassandra_keyspace
    run_id = uuid.uuid4().hex[:8]
    tx_topic, label_topic, dlq = f"tx-{run_id}", f"labels-{run_id}", f"dlq-{run_id}"
    topics = (tx_topic, label_topic)
    ensure_topics(real_kafka.bootstrap_servers, {tx_topic: 3, label_topic: 2, dlq: 1})

    config = dataclasses.replace(ProducerConfig(), clock="simulated", rate=RATE)
    expected_tx, expected_labels = [], []
    for batch in TransactionGenerator(config, seed=16, start_ms=START).batches(TOTAL):
        expected_tx += batch.records()
        expected_labels += batch.labels()
    assert len({r["transaction_id"] for r in expected_tx}) == TOTAL and expected_labels

    # small batches: many write+commit cycles, so the kill lands between and inside them
    worker = ConnectServer(free_port(), tmp_path / "state", real_kafka.bootstrap_servers, registry.url,
                           log_path=tmp_path / "connect.log", cwd=tmp_path, env={"FRAUDPIPE_CONNECT__BATCH_SIZE": "500"})
    worker.start()
    try:
        name = f"cassandra-sink-{run_id}"
        sink = shipped_config(keyspace=keyspace, tx_topic=tx_topic, label_topic=label_topic, cassandra=real_cassandra,
                              registry_url=registry.url, dlq=dlq)
        assert requests.put(f"{worker.url}/connectors/{name}/config", json=sink, timeout=30).status_code == 201
        wait_running(worker.url, name)

        kafka = dataclasses.replace(load_config().kafka, bootstrap_servers=real_kafka.bootstrap_servers, embedded=False)
        publisher = Publisher(kafka, config, registry_url=registry.url, topic=tx_topic, labels_topic=label_topic)
        sent: list = []
        producing = threading.Thread(target=lambda: sent.append(
            run(publisher, TransactionGenerator(config, seed=16, start_ms=START), rate=RATE, count=TOTAL)))
        producing.start()

        def rows() -> int:
            return table_counts(real_cassandra, keyspace, (contracts.TRANSACTIONS_TABLE,))[contracts.TRANSACTIONS_TABLE]

        wait_for(lambda: rows() >= TOTAL // 5, timeout=180, interval=0.5, what="the sink to be mid-stream")
        before_kill = committed(worker.url, name, topics)
        worker.kill()
        at_kill = table_counts(real_cassandra, keyspace, (contracts.TRANSACTIONS_TABLE, contracts.LABELS_TABLE))
        producing.join(timeout=300)
        assert not producing.is_alive() and sent[0].sent == TOTAL and sent[0].errors == 0
        assert sent[0].labels_sent == len(expected_labels)
        # offsets are committed after durable writes: what was committed is in Cassandra
        assert before_kill[tx_topic] <= at_kill[contracts.TRANSACTIONS_TABLE] < TOTAL
        assert before_kill[label_topic] <= at_kill[contracts.LABELS_TABLE]

        worker.start()  # same data dir, no REST call: the stored connector comes back by itself
        wait_running(worker.url, name, timeout=120)
        produced = {tx_topic: TOTAL, label_topic: len(expected_labels)}
        wait_for(lambda: committed(worker.url, name, topics) == produced, timeout=300, interval=1.0,
                 what=f"committed offsets {produced}")
    finally:
        worker.stop()

    days = {day_of(label["labeled_at"]) for label in expected_labels}
    counts = table_counts(real_cassandra, keyspace, (contracts.TRANSACTIONS_TABLE, *LABEL_TABLES))
    assert counts == {contracts.TRANSACTIONS_TABLE: TOTAL, contracts.LABELS_TABLE: len(expected_labels),
                      contracts.LABELS_BY_DAY_TABLE: len(expected_labels), contracts.LABEL_DAYS_TABLE: len(days)}
    cluster = real_cassandra.cluster()
    try:
        session = cluster.connect(keyspace)
        stored_ids = {row.transaction_id for row in session.execute(f"SELECT transaction_id FROM {contracts.TRANSACTIONS_TABLE}")}
        label_ids = {row.transaction_id for row in session.execute(f"SELECT transaction_id FROM {contracts.LABELS_TABLE}")}
    finally:
        cluster.shutdown()
    assert stored_ids == {r["transaction_id"] for r in expected_tx}
    assert label_ids == {label["transaction_id"] for label in expected_labels}

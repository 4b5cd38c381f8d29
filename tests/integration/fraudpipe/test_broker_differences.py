"""Where the embedded Tansu broker and Apache Kafka differ, each one's actual behaviour, asserted.

The README's "Brokers" list and docs/realstack.md name these tests. Both brokers run the
same code; only the expected answer differs, and the test says which broker gives which.
"""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudpipe.broker import EmbeddedBroker, ensure_topics, free_port
from tests.fixtures.brokers import BrokerUnderTest
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration
T0 = 1_764_460_800_000  # record timestamps (CreateTime), ms


def produce_timed(bootstrap: str, topic: str, count: int) -> None:
    """`count` records into partition 0, record i stamped T0 + i seconds."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, value=f"r{i}".encode(), partition=0, timestamp=T0 + i * 1000)
    assert producer.flush(30) == 0


def test_offsets_for_times_finds_the_first_record_at_or_after_a_time(any_broker: BrokerUnderTest, any_topic: str) -> None:
    produce_timed(any_broker.bootstrap_servers, any_topic, 10)
    consumer = Consumer({"bootstrap.servers": any_broker.bootstrap_servers, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        [found] = consumer.offsets_for_times([TopicPartition(any_topic, 0, T0 + 6_500)], timeout=30)
    finally:
        consumer.close()
    assert found.error is None
    # Kafka: offset 7, the first record stamped at or after T0 + 6.5 s. Tansu answers offset 0
    # whatever the time, so fraudpipe never seeks by time (the stream job keeps offsets in its checkpoint).
    assert found.offset == {"kafka": 7, "tansu": 0}[any_broker.kind]


@pytest.mark.parametrize("kind", ["tansu", pytest.param("kafka", marks=pytest.mark.realstack)])
def test_records_across_a_broker_restart(kind: str, request: pytest.FixtureRequest, tmp_path) -> None:
    """Tansu keeps records in memory only: a restart empties it. Kafka keeps them on disk."""
    topic = f"restart-{uuid.uuid4().hex[:10]}"
    if kind == "tansu":
        broker = EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log")  # its own: the session's stays up
        broker.start()
        bootstrap, restart, stop = broker.bootstrap_servers, lambda: (broker.stop(), broker.start()), broker.stop
    else:
        real_kafka = request.getfixturevalue("real_kafka")
        if real_kafka.server is None:
            pytest.skip("external broker (FRAUDPIPE_TEST_KAFKA): not restarted by the tests")
        bootstrap = real_kafka.bootstrap_servers
        restart, stop = lambda: (real_kafka.server.stop(), real_kafka.server.start(timeout=240.0)), lambda: None
    try:
        ensure_topics(bootstrap, {topic: 1})
        produce_timed(bootstrap, topic, 50)
        assert len(read_to_eof(bootstrap, topic)) == 50
        restart()
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
        if kind == "tansu":
            assert topic not in topics  # topic and records are gone
        else:
            assert topic in topics and len(read_to_eof(bootstrap, topic)) == 50
    finally:
        stop()

"""Both brokers (the embedded Tansu broker and Apache Kafka on the bench) carry fraudpipe's records:
confluent-kafka produces and consumes through each; the embedded broker's own lifecycle besides."""
from __future__ import annotations

import datetime as dt

import pytest
from confluent_kafka import Producer

from fraudpipe import contracts
from fraudpipe.avro import AvroCodec, encode
from fraudpipe.broker import EmbeddedBroker, free_port
from fraudpipe.errors import BrokerError
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration
SCHEMA_ID = 1


def make_record(i: int) -> dict:
    return {
        "transaction_id": f"tx-{i:06d}",
        "event_time": dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=i),
        "sender_account": f"acct-{i % 97}",
        "receiver_account": f"acct-{(i * 7) % 101}",
        "amount_minor": i * 13 + 1,
        "currency": "USD",
        "transaction_type": "PURCHASE",
        "status": "APPROVED" if i % 10 else "FAILED",
        "channel": "ONLINE",
    }


def test_10k_avro_records_round_trip(any_broker, any_topic: str):
    broker, topic = any_broker, any_topic
    schema = contracts.transaction_schema_str(1)
    records = [make_record(i) for i in range(10_000)]
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5, "acks": "all"})
    errors = []
    for record in records:
        producer.produce(topic, key=record["sender_account"], value=encode(SCHEMA_ID, schema, record),
                         on_delivery=lambda err, _msg: err and errors.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []

    messages = read_to_eof(broker.bootstrap_servers, topic)
    codec = AvroCodec({SCHEMA_ID: schema}.__getitem__)
    decoded = {codec.decode(m.value())["transaction_id"]: (m.key().decode(), codec.decode(m.value())) for m in messages}
    assert len(messages) == len(records)
    for record in records:
        key, value = decoded[record["transaction_id"]]
        assert value == record and key == record["sender_account"]


def test_same_key_lands_in_one_partition_in_order(any_broker, any_topic: str):
    broker, topic = any_broker, any_topic
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(200):
        producer.produce(topic, key="acct-same", value=str(i).encode())
    producer.flush(30)
    messages = read_to_eof(broker.bootstrap_servers, topic)
    assert len({m.partition() for m in messages}) == 1
    assert [int(m.value()) for m in messages] == list(range(200))


def test_broker_refuses_a_taken_port(broker: EmbeddedBroker):
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(broker.port).start()


def test_broker_stops_cleanly():
    running = EmbeddedBroker(free_port()).start()
    process = running.process
    running.stop()
    assert process is not None and process.poll() is not None

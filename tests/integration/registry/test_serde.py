"""AvroSerializer/AvroDeserializer against our registry, through the embedded broker, across v1 -> v2."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from confluent_kafka import (
    Producer,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe.broker import EmbeddedBroker
from fraudpipe.contracts import transaction_schema_str, value_subject
from fraudpipe.registry.server import RegistryServer
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration


def transaction(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"tx-{n}",
        "event_time": datetime(2024, 5, 1, 12, 0, n, tzinfo=timezone.utc),
        "sender_account": f"acc-{n}",
        "receiver_account": "acc-merchant",
        "amount_minor": 1000 + n,
        "currency": "EUR",
        "transaction_type": "PURCHASE",
        "status": "APPROVED",
        "channel": "ONLINE",
        **extra,
    }


def test_v1_and_v2_writers_read_by_v1_and_v2_readers(
    broker: EmbeddedBroker, registry: RegistryServer, topic: str
) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    context = SerializationContext(topic, MessageField.VALUE)
    write_v1 = AvroSerializer(client, transaction_schema_str(1))
    write_v2 = AvroSerializer(client, transaction_schema_str(2))
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    sent = [write_v1(transaction(1), context), write_v1(transaction(2), context),
            write_v2(transaction(3, device_id="dev-3"), context), write_v2(transaction(4, device_id=None), context)]
    for value in sent:
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(15) == 0

    subject = value_subject(topic)
    assert client.get_versions(subject) == [1, 2]  # v2 registered as a compatible evolution
    ids = [int.from_bytes(frame[1:5], "big") for frame in sent]
    assert ids[0] == ids[1] == client.get_version(subject, 1).schema_id
    assert ids[2] == ids[3] == client.get_version(subject, 2).schema_id

    received = [m.value() for m in read_to_eof(broker.bootstrap_servers, topic, timeout=30)]
    assert received == sent
    # Fresh clients, so the writer schemas really come from the registry by id.
    read_v1 = AvroDeserializer(SchemaRegistryClient({"url": registry.url}), transaction_schema_str(1))
    read_v2 = AvroDeserializer(SchemaRegistryClient({"url": registry.url}), transaction_schema_str(2))
    as_v1 = [read_v1(value, context) for value in received]
    as_v2 = [read_v2(value, context) for value in received]
    assert as_v1 == [transaction(n) for n in (1, 2, 3, 4)]  # v1 reader drops device_id
    assert as_v2 == [transaction(1, device_id=None), transaction(2, device_id=None),
                     transaction(3, device_id="dev-3"), transaction(4, device_id=None)]
    # And with no reader schema the writer's own schema is used.
    as_written = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    assert as_written(received[2], context)["device_id"] == "dev-3"
    assert "device_id" not in as_written(received[0], context)

"""The session registry fixture serves the core endpoints to confluent-kafka's client."""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from fraudpipe.contracts import transaction_schema_str
from fraudpipe.registry.server import RegistryServer

pytestmark = pytest.mark.integration


def test_register_then_read_back_by_id_and_latest(registry: RegistryServer) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    subject = f"smoke-{uuid.uuid4().hex[:8]}-value"
    schema_id = client.register_schema(subject, Schema(transaction_schema_str(1), "AVRO"))
    assert client.get_schema(schema_id).schema_str == client.get_latest_version(subject).schema.schema_str
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, subject)
    assert registry.data_dir.joinpath("registry.db").exists()

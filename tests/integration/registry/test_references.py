"""Schema references through confluent-kafka's own client and Avro serializers, against our registry.

A shared Address record lives in its own subject; Customer records in topic subjects
reference it by name, as users with shared record types do with Confluent's registry.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe.broker import EmbeddedBroker, free_port
from fraudpipe.registry.migrations import MIGRATIONS
from fraudpipe.registry.server import RegistryServer
from fraudpipe.registry.storage import DB_FILE
from tests.fixtures.core import read_to_eof
from tests.integration.registry.conftest import expect_error

pytestmark = pytest.mark.integration

NS = "com.example.shared"
ADDRESS = {"type": "record", "name": "Address", "namespace": NS,
           "fields": [{"name": "street", "type": "string"}, {"name": "city", "type": "string"}]}
ADDRESS_WITH_ZIP = {**ADDRESS, "fields": [*ADDRESS["fields"], {"name": "zip", "type": ["null", "string"], "default": None}]}
ADDRESS_WITH_COUNTRY = {**ADDRESS, "fields": [*ADDRESS["fields"], {"name": "country", "type": "string"}]}
CUSTOMER = {"type": "record", "name": "Customer", "namespace": NS, "fields": [
    {"name": "id", "type": "string"},
    {"name": "home", "type": "Address"},  # short name, resolved in the record's namespace
    {"name": "work", "type": ["null", f"{NS}.Address"], "default": None},
]}


def avro(schema: dict[str, Any], *references: SchemaReference) -> Schema:
    return Schema(json.dumps(schema), "AVRO", list(references))


@pytest.fixture()
def address(client: SchemaRegistryClient) -> str:
    """A fresh subject holding Address as version 1."""
    name = f"address-{uuid.uuid4().hex[:12]}"
    client.register_schema(name, avro(ADDRESS))
    return name


def customer(n: int, *, work: bool = False) -> dict[str, Any]:
    home = {"street": f"{n} Main St", "city": "Utrecht"}
    return {"id": f"c-{n}", "home": home, "work": {"street": "1 Office Rd", "city": "Delft"} if work else None}


def test_register_get_and_lookup_carry_the_references(
    client: SchemaRegistryClient, registry: RegistryServer, address: str, subject: str
) -> None:
    ref = SchemaReference(f"{NS}.Address", address, 1)
    schema_id = client.register_schema(subject, avro(CUSTOMER, ref))
    fresh = SchemaRegistryClient({"url": registry.url})  # no client cache: the answers come from the server
    assert fresh.get_schema(schema_id).references == [ref]
    assert json.loads(fresh.get_schema(schema_id).schema_str) == CUSTOMER
    version = fresh.get_version(subject, 1)
    assert (version.schema_id, version.schema.references) == (schema_id, [ref])
    assert fresh.get_latest_version(subject).schema.references == [ref]
    found = SchemaRegistryClient({"url": registry.url}).lookup_schema(subject, avro(CUSTOMER, ref))
    assert (found.schema_id, found.version) == (schema_id, 1)
    assert fresh.get_referenced_by(address, 1) == [schema_id]
    assert fresh.get_referenced_by(address) == [schema_id]  # "latest"
    # The wire bodies, as Confluent writes them: references present when there are some, absent otherwise.
    body = requests.get(f"{registry.url}/schemas/ids/{schema_id}", timeout=10).json()
    assert body["references"] == [{"name": f"{NS}.Address", "subject": address, "version": 1}]
    address_id = fresh.get_version(address, 1).schema_id
    assert "references" not in requests.get(f"{registry.url}/schemas/ids/{address_id}", timeout=10).json()
    versions = requests.get(f"{registry.url}/schemas/ids/{schema_id}/versions", timeout=10).json()
    assert versions == [{"subject": subject, "version": 1}]


def test_same_text_with_other_references_is_another_schema(
    client: SchemaRegistryClient, registry: RegistryServer, address: str, subject: str
) -> None:
    other_address = f"{address}-copy"
    client.register_schema(other_address, avro(ADDRESS))
    first = client.register_schema(subject, avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 1)))
    second = client.register_schema(subject, avro(CUSTOMER, SchemaReference(f"{NS}.Address", other_address, 1)))
    assert first != second and client.get_versions(subject) == [1, 2]
    # "latest" (-1) is pinned to the version it meant when registered.
    latest = SchemaRegistryClient({"url": registry.url}).register_schema(
        f"{subject}-latest", avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, -1)))
    assert latest == first
    assert client.get_version(f"{subject}-latest", 1).schema.references == [
        SchemaReference(f"{NS}.Address", address, 1)]
    # A lookup with references nobody registered under this subject is 40403.
    stranger = f"{address}-stranger"
    client.register_schema(stranger, avro(ADDRESS))
    lookup = SchemaRegistryClient({"url": registry.url}).lookup_schema
    expect_error(40403, 404, lookup, subject, avro(CUSTOMER, SchemaReference(f"{NS}.Address", stranger, 1)))


def test_missing_or_absent_references_are_invalid_schemas(
    client: SchemaRegistryClient, address: str, subject: str
) -> None:
    message = expect_error(42201, 422, client.register_schema, subject,
                           avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 9)))
    assert f'No schema reference found for subject "{address}" and version 9' in message
    expect_error(42201, 422, client.register_schema, subject, avro(CUSTOMER))  # Address is not defined
    assert client.get_subjects(subject_prefix=subject) == []


def test_compatibility_checks_resolve_the_referenced_types(
    client: SchemaRegistryClient, address: str, subject: str
) -> None:
    client.register_schema(address, avro(ADDRESS_WITH_ZIP))  # v2: optional field, BACKWARD compatible
    client.set_compatibility(address, "NONE")
    client.register_schema(address, avro(ADDRESS_WITH_COUNTRY))  # v3: a required field
    client.register_schema(subject, avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 1)))
    # The Customer text never changes; what it references does. Old data has no country.
    breaking = avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 3))
    assert client.test_compatibility(subject, breaking) is False
    message = expect_error(409, 409, client.register_schema, subject, breaking)
    assert "country" in message
    fine = avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 2))
    assert client.test_compatibility(subject, fine) is True
    assert client.register_schema(subject, fine) > 0 and client.get_versions(subject) == [1, 2]


def test_avro_serializer_round_trip_with_a_referenced_type(
    broker: EmbeddedBroker, registry: RegistryServer, address: str, topic: str
) -> None:
    writer_client = SchemaRegistryClient({"url": registry.url})
    schema = avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 1))
    context = SerializationContext(topic, MessageField.VALUE)
    serialize = AvroSerializer(writer_client, schema)  # auto-registers under <topic>-value, with its references
    sent = [customer(1), customer(2, work=True)]
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for record in sent:
        producer.produce(topic, value=serialize(record, context), partition=0)
    assert producer.flush(15) == 0
    registered = writer_client.get_latest_version(f"{topic}-value")
    assert registered.schema.references == [SchemaReference(f"{NS}.Address", address, 1)]

    received = [m.value() for m in read_to_eof(broker.bootstrap_servers, topic, timeout=30)]
    assert {int.from_bytes(value[1:5], "big") for value in received} == {registered.schema_id}
    # Fresh clients: the writer schema and what it references come from the registry by id.
    as_written = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    with_reader = AvroDeserializer(SchemaRegistryClient({"url": registry.url}), schema)
    assert [as_written(value, context) for value in received] == sent
    assert [with_reader(value, context) for value in received] == sent


def test_a_referenced_version_cannot_be_deleted_until_its_referrers_are(
    client: SchemaRegistryClient, registry: RegistryServer, address: str, subject: str
) -> None:
    referrer = client.register_schema(subject, avro(CUSTOMER, SchemaReference(f"{NS}.Address", address, 1)))
    message = expect_error(42206, 422, client.delete_version, address, 1)
    assert message == f"One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={address},version=1}}."
    expect_error(42206, 422, client.delete_subject, address)
    assert client.get_versions(address) == [1]  # nothing was deleted

    client.delete_subject(subject)  # the referrer is soft-deleted: it can still be read
    assert client.get_referenced_by(address, 1) == []
    assert requests.get(f"{registry.url}/subjects/{address}/versions/1/referencedby",
                        params={"deleted": "true"}, timeout=10).json() == [referrer]
    assert client.delete_version(address, 1) == 1  # no live referrer: a soft delete is allowed
    expect_error(42206, 422, client.delete_version, address, 1, permanent=True)
    expect_error(42206, 422, client.delete_subject, address, permanent=True)
    client.delete_subject(subject, permanent=True)
    assert client.delete_subject(address, permanent=True) == [1]


def test_references_survive_a_restart(private_registry: RegistryServer) -> None:
    server = private_registry
    client = SchemaRegistryClient({"url": server.url})
    client.register_schema("address", avro(ADDRESS))
    ref = SchemaReference(f"{NS}.Address", "address", 1)
    schema_id = client.register_schema("customer-value", avro(CUSTOMER, ref))
    server.kill()
    server.start()
    after = SchemaRegistryClient({"url": server.url})
    assert after.get_schema(schema_id).references == [ref]
    assert after.get_referenced_by("address", 1) == [schema_id]
    assert after.register_schema("customer-value", avro(CUSTOMER, ref)) == schema_id
    expect_error(42206, 422, after.delete_version, "address", 1)


def test_a_data_dir_from_before_references_is_migrated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / DB_FILE, isolation_level=None)
    for statement in MIGRATIONS[0]:  # the tables of the first release, user_version 0
        db.execute(statement)
    db.execute("INSERT INTO schemas (id, schema_type, schema) VALUES (1, 'AVRO', ?)",
               (json.dumps(ADDRESS, separators=(",", ":")),))
    db.execute("INSERT INTO versions (subject, version, schema_id, deleted) VALUES ('address', 1, 1, 0)")
    db.close()
    with RegistryServer(free_port(), data, log_path=tmp_path / "registry.log") as running:
        client = SchemaRegistryClient({"url": running.url})
        assert json.loads(client.get_schema(1).schema_str) == ADDRESS
        schema_id = client.register_schema("customer-value", avro(CUSTOMER, SchemaReference(f"{NS}.Address", "address", 1)))
        assert schema_id == 2 and client.get_referenced_by("address", 1) == [2]

"""Every endpoint and error code, driven over HTTP by confluent-kafka's SchemaRegistryClient.

Raw `requests` calls appear only where the client has no method for a parameter or path.
"""
from __future__ import annotations

import json

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.schema_registry_client import ConfigCompatibilityLevel, ServerConfig

from fraudpipe.contracts import transaction_schema, transaction_schema_str
from fraudpipe.registry.server import RegistryServer
from tests.integration.registry.conftest import expect_error

pytestmark = pytest.mark.integration

V1 = Schema(transaction_schema_str(1), "AVRO")
V2 = Schema(transaction_schema_str(2), "AVRO")


def breaking() -> Schema:
    """v1 with a new required field: old data has no value for it, so BACKWARD rejects it."""
    schema = transaction_schema(1)
    schema["fields"].append({"name": "merchant_id", "type": "string"})
    return Schema(json.dumps(schema), "AVRO")


def test_root_and_schema_types(registry: RegistryServer, client: SchemaRegistryClient) -> None:
    response = requests.get(registry.url + "/")
    assert response.status_code == 200 and response.json() == {}
    assert response.headers["Content-Type"].startswith("application/vnd.schemaregistry.v1+json")
    assert client.get_schema_types() == ["AVRO"]


def test_register_is_idempotent_and_ids_are_shared_across_subjects(
    client: SchemaRegistryClient, subject: str, registry: RegistryServer
) -> None:
    first = client.register_schema(subject, V1)
    # Same schema, other spelling, fresh client (no client cache): same id, no new version.
    spaced = Schema(json.dumps(transaction_schema(1), indent=2), "AVRO")
    assert SchemaRegistryClient({"url": registry.url}).register_schema(subject, spaced) == first
    assert client.get_versions(subject) == [1]
    assert client.register_schema(subject + "-other", V1) == first
    # The session registry is shared, so other tests' subjects may hold the same schema too.
    assert {subject, subject + "-other"} <= set(client.get_subjects_by_schema_id(first))
    mine = [(v.subject, v.version) for v in client.get_schema_versions(first) if v.subject.startswith(subject)]
    assert sorted(mine) == sorted([(subject, 1), (subject + "-other", 1)])
    assert client.get_subjects_by_schema_id(first, subject_name=subject) == [subject]
    # The stored text is the canonical form: compact JSON, the same whatever was sent.
    stored = client.get_schema(first).schema_str
    assert json.loads(stored) == json.loads(transaction_schema_str(1)) and ": " not in stored.split('"doc"')[0]


def test_versions_latest_minus_one_and_raw_schema(
    client: SchemaRegistryClient, subject: str, registry: RegistryServer
) -> None:
    id1 = client.register_schema(subject, V1)
    id2 = client.register_schema(subject, V2)
    assert id2 != id1 and client.get_versions(subject) == [1, 2]
    assert client.get_version(subject, 1).schema_id == id1
    for version in ("latest", -1):
        found = client.get_version(subject, version)
        assert (found.version, found.schema_id, found.subject) == (2, id2, subject)
    raw = requests.get(f"{registry.url}/subjects/{subject}/versions/1/schema")
    assert raw.json() == json.loads(client.get_schema(id1).schema_str)
    assert requests.get(f"{registry.url}/schemas/ids/{id2}/schema").json()["fields"][-1]["name"] == "device_id"
    found = client.lookup_schema(subject, V1)
    assert (found.schema_id, found.version, found.subject) == (id1, 1, subject)


def test_subjects_listing_with_prefix_and_deleted(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, V1)
    client.register_schema(subject + "-gone", V1)
    client.delete_subject(subject + "-gone")
    prefix = subject.rsplit("-", 1)[0]
    assert client.get_subjects(subject_prefix=prefix) == [subject]
    assert client.get_subjects(subject_prefix=prefix, deleted=True) == [subject, subject + "-gone"]
    assert client.get_subjects(subject_prefix=prefix, deleted_only=True) == [subject + "-gone"]
    assert subject in client.get_subjects()


def test_soft_then_permanent_delete_of_a_version(client: SchemaRegistryClient, subject: str) -> None:
    id1 = client.register_schema(subject, V1)
    client.register_schema(subject, V2)
    expect_error(40407, 404, client.delete_version, subject, 1, permanent=True)  # not soft-deleted first
    assert client.delete_version(subject, 1) == 1
    expect_error(40406, 404, client.delete_version, subject, 1)                # already soft-deleted
    assert client.get_versions(subject) == [2]
    assert client.get_versions(subject, deleted=True) == [1, 2]
    assert client.get_version(subject, 1, deleted=True).schema_id == id1
    expect_error(40402, 404, SchemaRegistryClient({"url": client._rest_client.base_urls[0]}).get_version, subject, 1)
    assert client.get_schema(id1) is not None                                   # still readable by id
    assert client.delete_version(subject, 1, permanent=True) == 1
    assert client.get_versions(subject, deleted=True) == [2]
    expect_error(40402, 404, client.delete_version, subject, 7)
    expect_error(40401, 404, client.delete_version, subject + "-none", 1)
    expect_error(42202, 422, client.delete_version, subject, 0)


def test_soft_then_permanent_delete_of_a_subject(
    client: SchemaRegistryClient, subject: str, registry: RegistryServer
) -> None:
    schema_id = client.register_schema(subject, V1)
    client.register_schema(subject, V2)
    client.set_compatibility(subject, "FULL")
    expect_error(40405, 404, client.delete_subject, subject, permanent=True)
    assert client.delete_subject(subject) == [1, 2]
    expect_error(40404, 404, client.delete_subject, subject)
    expect_error(40401, 404, client.get_versions, subject)
    expect_error(40408, 404, client.get_compatibility, subject)  # soft delete drops the subject's config
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    expect_error(40401, 404, client.delete_subject, subject)
    expect_error(40401, 404, client.get_versions, subject, deleted=True)
    # Re-registering starts a fresh history with the same id for the same schema.
    assert client.register_schema(subject, V1) == schema_id
    assert client.get_versions(subject) == [1]


def test_lookup_errors(client: SchemaRegistryClient, subject: str) -> None:
    expect_error(40401, 404, client.lookup_schema, subject, V1)
    client.register_schema(subject, V1)
    expect_error(40403, 404, client.lookup_schema, subject, V2)
    expect_error(42201, 422, client.lookup_schema, subject, Schema('{"type": "record"}', "AVRO"))


def test_not_found_and_invalid_input_codes(client: SchemaRegistryClient, subject: str, registry: RegistryServer) -> None:
    expect_error(40401, 404, client.get_latest_version, subject)
    expect_error(40401, 404, client.get_version, subject, 1)
    client.register_schema(subject, V1)
    expect_error(40402, 404, client.get_version, subject, 5)
    expect_error(40403, 404, client.get_schema, 2_000_000)
    expect_error(40403, 404, client.get_subjects_by_schema_id, 2_000_000)
    expect_error(42202, 422, client.get_version, subject, "first")
    expect_error(42202, 422, client.get_version, subject, 0)
    expect_error(42201, 422, client.register_schema, subject, Schema('{"type": "nope"}', "AVRO"))
    expect_error(42201, 422, client.register_schema, subject, Schema("not json", "AVRO"))
    expect_error(42201, 422, client.register_schema, subject, Schema('"string"', "PROTOBUF"))
    expect_error(42203, 422, client.set_compatibility, subject, "SIDEWAYS")
    expect_error(42204, 422, client.update_mode, subject, "WRITEONLY")
    unknown = requests.get(registry.url + "/no/such/path")
    assert unknown.status_code == 404 and unknown.json() == {"error_code": 404, "message": "HTTP 404 Not Found"}


def test_incompatible_registration_is_409_with_reasons(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, V1)
    message = expect_error(409, 409, client.register_schema, subject, breaking())
    assert "merchant_id" in message and "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    assert "BACKWARD" in message and client.get_versions(subject) == [1]


def test_compatibility_endpoints(client: SchemaRegistryClient, subject: str, registry: RegistryServer) -> None:
    assert client.test_compatibility(subject, breaking()) is True  # latest of an empty subject
    expect_error(40401, 404, client.test_compatibility, subject, V2, version=1)
    client.register_schema(subject, V1)
    assert client.test_compatibility(subject, V2) is True
    assert client.test_compatibility(subject, breaking(), version=1) is False
    assert client.test_compatibility_all_versions(subject, breaking()) is False
    expect_error(40402, 404, client.test_compatibility, subject, V2, version=3)
    expect_error(42202, 422, client.test_compatibility, subject, V2, version="newest")
    expect_error(42201, 422, client.test_compatibility, subject, Schema("{", "AVRO"))
    url = f"{registry.url}/compatibility/subjects/{subject}/versions/latest"
    verbose = requests.post(url, params={"verbose": "True"}, json=breaking().to_dict()).json()
    assert verbose["is_compatible"] is False and any("merchant_id" in m for m in verbose["messages"])
    quiet = requests.post(url, json=breaking().to_dict()).json()
    assert quiet == {"is_compatible": False}
    assert requests.post(url, params={"verbose": "true"}, json=V2.to_dict()).json() == \
        {"is_compatible": True, "messages": []}


def test_subject_config(client: SchemaRegistryClient, subject: str, registry: RegistryServer) -> None:
    expect_error(40408, 404, client.get_compatibility, subject)
    default = requests.get(f"{registry.url}/config/{subject}", params={"defaultToGlobal": "TRUE"}).json()
    assert default == {"compatibilityLevel": client.get_compatibility()}
    assert client.set_compatibility(subject, "none") == {"compatibility": "NONE"}
    assert client.get_compatibility(subject) == "NONE"
    assert client.get_config(subject).compatibility_level is ConfigCompatibilityLevel.NONE
    client.register_schema(subject, V1)
    client.register_schema(subject, breaking())  # NONE lets it through
    config = ServerConfig(compatibility=ConfigCompatibilityLevel.FULL_TRANSITIVE)
    assert client.set_config(subject, config) == {"compatibility": "FULL_TRANSITIVE"}
    assert client.delete_config(subject).compatibility_level is ConfigCompatibilityLevel.FULL_TRANSITIVE
    expect_error(40408, 404, client.delete_config, subject)


def test_subject_mode_readonly_blocks_writes(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, V1)
    expect_error(40409, 404, client.get_mode, subject)
    assert client.update_mode(subject, "readonly") == "READONLY"
    assert client.get_mode(subject) == "READONLY"
    expect_error(42205, 422, client.register_schema, subject, V2)
    expect_error(42205, 422, client.delete_version, subject, 1)
    expect_error(42205, 422, client.delete_subject, subject)
    assert client.lookup_schema(subject, V1).version == 1  # reads still work
    assert client.delete_mode(subject) == "READONLY"
    assert client.register_schema(subject, V2) > 0
    expect_error(42205, 422, client.update_mode, subject, "IMPORT")  # has live schemas; needs force
    assert client.update_mode(subject, "IMPORT", force=True) == "IMPORT"


def test_subject_names_with_slashes_and_unicode(client: SchemaRegistryClient) -> None:
    for name in ("team/a/transactions-value", "überweisung-välue", "a b?c#d"):
        schema_id = client.register_schema(name, V1)
        assert client.get_latest_version(name).subject == name
        assert name in client.get_subjects_by_schema_id(schema_id)


def test_vnd_content_types_and_case_insensitive_booleans(registry: RegistryServer, subject: str) -> None:
    for content_type in ("application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json",
                         "application/json", "application/octet-stream"):
        response = requests.post(f"{registry.url}/subjects/{subject}/versions", data=json.dumps(V1.to_dict()),
                                 headers={"Content-Type": content_type})
        assert response.status_code == 200 and "id" in response.json()
    requests.delete(f"{registry.url}/subjects/{subject}/versions/1")
    for spelling in ("true", "True", "TRUE"):
        found = requests.get(f"{registry.url}/subjects/{subject}/versions", params={"deleted": spelling})
        assert found.json() == [1]
    assert requests.get(f"{registry.url}/subjects/{subject}/versions", params={"deleted": "False"}).status_code == 404


def test_global_config_and_mode(own_registry: RegistryServer) -> None:
    client = SchemaRegistryClient({"url": own_registry.url})
    assert client.get_compatibility() == "BACKWARD"
    assert client.set_compatibility(level="FORWARD") == {"compatibility": "FORWARD"}
    assert client.get_config().compatibility_level is ConfigCompatibilityLevel.FORWARD
    expect_error(42203, 422, client.set_compatibility, level="BACKWARDS")
    assert client.delete_config().compatibility_level is ConfigCompatibilityLevel.FORWARD
    assert client.get_compatibility() == "BACKWARD"

    assert client.get_global_mode() == "READWRITE"
    expect_error(42204, 422, client.update_global_mode, "SOMETIMES")
    assert client.update_global_mode("READONLY") == "READONLY"
    expect_error(42205, 422, client.register_schema, "readonly-value", V1)
    assert client.update_global_mode("READWRITE") == "READWRITE"
    client.register_schema("imported-value", V1)
    expect_error(42205, 422, client.update_global_mode, "IMPORT")  # existing subjects, no force


def test_import_mode_keeps_given_ids_and_versions(own_registry: RegistryServer) -> None:
    client = SchemaRegistryClient({"url": own_registry.url})
    subject = "import-target-value"
    assert client.update_mode(subject, "IMPORT") == "IMPORT"  # empty subject: no force needed
    url = f"{own_registry.url}/subjects/{subject}/versions"
    body = {**V1.to_dict(), "id": 500, "version": 3}
    assert requests.post(url, json=body).json() == {"id": 500}
    assert client.get_version(subject, 3).schema_id == 500
    clash = requests.post(url, json={**V2.to_dict(), "id": 500, "version": 4})
    assert clash.status_code == 422 and clash.json()["error_code"] == 42205
    client.delete_mode(subject)
    refused = requests.post(url, json={**V2.to_dict(), "id": 501})
    assert refused.json()["error_code"] == 42205  # ids are only given in IMPORT mode
    # Ids after an import continue above it, never reusing one.
    assert client.register_schema(subject, V2) > 500

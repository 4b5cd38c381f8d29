"""Compatibility levels as the running registry applies them to registrations and checks."""
from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from tests.integration.registry.conftest import expect_error

pytestmark = pytest.mark.integration


def record(*fields: tuple[str, Any, dict[str, Any]]) -> Schema:
    return Schema(json.dumps({"type": "record", "name": "Payment", "fields": [
        {"name": name, "type": type_, **extra} for name, type_, extra in fields]}), "AVRO")


BASE = record(("a", "string", {}))
ADD_OPTIONAL = record(("a", "string", {}), ("b", ["null", "long"], {"default": None}))
ADD_REQUIRED = record(("a", "string", {}), ("b", "long", {}))
DROP_REQUIRED = record(("b", ["null", "long"], {"default": None}))

# candidate -> compatible with BASE? per level
EXPECTED = {
    "NONE": {"ADD_OPTIONAL": True, "ADD_REQUIRED": True, "DROP_REQUIRED": True},
    "BACKWARD": {"ADD_OPTIONAL": True, "ADD_REQUIRED": False, "DROP_REQUIRED": True},
    "BACKWARD_TRANSITIVE": {"ADD_OPTIONAL": True, "ADD_REQUIRED": False, "DROP_REQUIRED": True},
    "FORWARD": {"ADD_OPTIONAL": True, "ADD_REQUIRED": True, "DROP_REQUIRED": False},
    "FORWARD_TRANSITIVE": {"ADD_OPTIONAL": True, "ADD_REQUIRED": True, "DROP_REQUIRED": False},
    "FULL": {"ADD_OPTIONAL": True, "ADD_REQUIRED": False, "DROP_REQUIRED": False},
    "FULL_TRANSITIVE": {"ADD_OPTIONAL": True, "ADD_REQUIRED": False, "DROP_REQUIRED": False},
}
CANDIDATES = {"ADD_OPTIONAL": ADD_OPTIONAL, "ADD_REQUIRED": ADD_REQUIRED, "DROP_REQUIRED": DROP_REQUIRED}


@pytest.mark.parametrize("level", sorted(EXPECTED))
def test_every_level_on_check_and_register(client: SchemaRegistryClient, subject: str, level: str) -> None:
    client.set_compatibility(subject, level)
    client.register_schema(subject, BASE)
    for name, candidate in CANDIDATES.items():
        assert client.test_compatibility(subject, candidate) is EXPECTED[level][name], name
    for name, candidate in CANDIDATES.items():
        per_level = f"{subject}-{name}"
        client.set_compatibility(per_level, level)
        client.register_schema(per_level, BASE)
        if EXPECTED[level][name]:
            client.register_schema(per_level, candidate)
            assert client.get_versions(per_level) == [1, 2]
        else:
            expect_error(409, 409, client.register_schema, per_level, candidate)


@pytest.mark.parametrize("level", ["BACKWARD", "BACKWARD_TRANSITIVE"])
def test_transitive_levels_differ_on_registration(client: SchemaRegistryClient, subject: str, level: str) -> None:
    # v1 a:string, v2 a:int (let in under NONE), then a candidate a:long reads v2 but not v1.
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, record(("a", "string", {})))
    client.register_schema(subject, record(("a", "int", {})))
    client.set_compatibility(subject, level)
    candidate = record(("a", "long", {}))
    assert client.test_compatibility(subject, candidate) is True  # one chosen version: latest
    assert client.test_compatibility(subject, candidate, version=1) is False
    if level == "BACKWARD":
        assert client.test_compatibility_all_versions(subject, candidate) is True
        assert client.register_schema(subject, candidate) > 0
    else:
        assert client.test_compatibility_all_versions(subject, candidate) is False
        message = expect_error(409, 409, client.register_schema, subject, candidate)
        assert "{oldSchemaVersion: 1}" in message and "{oldSchemaVersion: 2}" not in message


@pytest.mark.parametrize("level", ["BACKWARD", "BACKWARD_TRANSITIVE"])
def test_soft_deleted_versions_are_left_out(client: SchemaRegistryClient, subject: str, level: str) -> None:
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, record(("a", "string", {})))
    client.register_schema(subject, record(("a", "int", {})))  # the one in the way
    client.set_compatibility(subject, level)
    candidate = record(("a", "string", {}), ("c", ["null", "string"], {"default": None}))
    assert client.test_compatibility_all_versions(subject, candidate) is False
    expect_error(409, 409, client.register_schema, subject, candidate)
    client.delete_version(subject, 2)
    assert client.test_compatibility_all_versions(subject, candidate) is True
    assert client.test_compatibility(subject, candidate) is True  # latest is now v1
    client.register_schema(subject, candidate)
    assert client.get_versions(subject) == [1, 3]

"""Canonical schema text: one text per schema however it is spelled, and 42201 for anything invalid."""
from __future__ import annotations

import json

import pytest

from fraudpipe.contracts import transaction_schema, transaction_schema_str
from fraudpipe.errors import RegistryError
from fraudpipe.registry.schemas import canonical_schema


def test_whitespace_and_key_order_do_not_change_the_canonical_text() -> None:
    schema = transaction_schema(1)
    shuffled = {key: schema[key] for key in reversed(list(schema))}
    shuffled["fields"] = [{k: f[k] for k in reversed(list(f))} for f in schema["fields"]]
    assert canonical_schema(json.dumps(shuffled, indent=4)) == canonical_schema(transaction_schema_str(1))


def test_canonical_text_is_compact_keeps_docs_and_orders_keys() -> None:
    text = canonical_schema(transaction_schema_str(1))
    parsed = json.loads(text)
    assert " " not in text.split('"doc"')[0]
    assert list(parsed)[:4] == ["type", "name", "namespace", "doc"]
    assert parsed["doc"] == transaction_schema(1)["doc"]
    assert [list(f)[:2] for f in parsed["fields"]] == [["name", "type"]] * len(parsed["fields"])


def test_a_primitive_in_an_object_is_the_primitive() -> None:
    assert canonical_schema('{"type": "string"}') == canonical_schema('"string"') == '"string"'
    assert canonical_schema('{"type": "long", "logicalType": "timestamp-millis"}') == \
        '{"type":"long","logicalType":"timestamp-millis"}'


@pytest.mark.parametrize(
    "text",
    [
        None, "", "   ", 42, "{not json", "3", "null", "{}", '{"type": "nope"}', '["int", "int"]',
        '{"type": "record", "name": "R"}', '{"type": "record", "name": "R", "fields": [{"name": "a"}]}',
        '{"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}', '{"type": "fixed", "name": "F"}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_invalid_schemas_raise_42201(text: object) -> None:
    with pytest.raises(RegistryError) as info:
        canonical_schema(text)
    assert info.value.error_code == 42201 and info.value.http_status == 422


def test_only_avro_is_stored() -> None:
    assert canonical_schema('"int"', "AVRO") == '"int"'
    with pytest.raises(RegistryError) as info:
        canonical_schema('"int"', "PROTOBUF")
    assert info.value.error_code == 42201

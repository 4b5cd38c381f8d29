"""Parsing and the canonical text of Avro schemas, as the registry stores and compares them.

The canonical text is compact JSON with the attributes of each type in one fixed order
(the order Avro's Java `Schema.toString()` writes them), so the same schema sent with
other whitespace or key order gets the same text and therefore the same id.

A schema with references names types defined in other subjects' schemas; `named` is the
canonical texts of those schemas, dependencies first, parsed into one namespace before it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import avro.schema

from fraudpipe.registry import codes

AVRO = "AVRO"
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

# Leading keys per kind of type; any other attribute (logicalType, custom props) follows in
# the order it was given.
_NAMED_HEAD = ("type", "name", "namespace", "doc")
_KEY_ORDER = {
    "record": (*_NAMED_HEAD, "fields", "aliases"),
    "error": (*_NAMED_HEAD, "fields", "aliases"),
    "enum": (*_NAMED_HEAD, "symbols", "default", "aliases"),
    "fixed": (*_NAMED_HEAD, "size", "aliases"),
    "array": ("type", "items"),
    "map": ("type", "values"),
}
_FIELD_ORDER = ("name", "type", "doc", "default", "order", "aliases")


def canonical_schema(text: Any, schema_type: Any = None, named: tuple[str, ...] = ()) -> str:
    """Validate an Avro schema given as JSON text and return its canonical text.

    Raises the registry's 42201 error (invalid schema) naming what is wrong.
    """
    canonical = canonical_text(text, schema_type)
    validate(canonical, named)
    return canonical


def canonical_text(text: Any, schema_type: Any = None) -> str:
    """The canonical text of a JSON schema, checked as JSON but not yet as Avro (see `validate`)."""
    if schema_type not in (None, AVRO):
        raise codes.invalid_schema(f"unsupported schemaType {schema_type!r}; this registry stores AVRO schemas only")
    if not isinstance(text, str) or not text.strip():
        raise codes.invalid_schema("the request needs a non-empty string field 'schema' holding the Avro schema JSON")
    try:
        return json.dumps(_canonical(json.loads(text)), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError) as exc:
        raise codes.invalid_schema(f"schema is not valid JSON: {exc}") from exc


def validate(canonical: str, named: tuple[str, ...] = ()) -> None:
    """Raise 42201 unless `canonical` parses as Avro with the types of `named` known."""
    try:
        parse(canonical, named)
    except codes.RegistryError:
        raise
    except RecursionError as exc:
        raise codes.invalid_schema("schema nests too deeply") from exc
    except Exception as exc:  # avro raises SchemaParseException, TypeError, AttributeError... for bad input
        raise codes.invalid_schema(f"{type(exc).__name__}: {exc}") from exc


@lru_cache(maxsize=1024)
def parse(canonical: str, named: tuple[str, ...] = ()) -> avro.schema.Schema:
    """The avro package's parsed schema for a canonical text whose references resolve to `named`.

    Cached: stored texts and the references of a stored schema never change.
    """
    if not named:
        return avro.schema.parse(canonical)
    names = _JavaNames()
    for text in named:  # dependencies first, so each finds the types it uses already defined
        avro.schema.make_avsc_object(json.loads(text), names)
    top = json.loads(canonical)
    if isinstance(top, str) and top not in PRIMITIVES and names.has_name(top, None):
        return names.get_name(top, None)  # the schema is just a referenced type's name, as Java's parser allows
    return avro.schema.make_avsc_object(top, names)


class _JavaNames(avro.schema.Names):
    """Name lookup as Java's parser (which Confluent's registry runs) does it: a short name not
    defined in the enclosing namespace is looked up in the null namespace too, so a schema in
    `com.x` can use a referenced `Address` that has no namespace."""

    def has_name(self, name_attr: str, space_attr: str | None = None) -> bool:
        return self.get_name(name_attr, space_attr) is not None

    def get_name(self, name_attr: str, space_attr: str | None = None) -> Any:
        found = super().get_name(name_attr, space_attr)
        if found is None and space_attr is None and "." not in name_attr:
            found = super().get_name(name_attr, "")
        return found


def _canonical(node: Any) -> Any:
    if isinstance(node, list):
        return [_canonical(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if isinstance(kind, str) and kind in PRIMITIVES and set(node) == {"type"}:
        return kind  # {"type": "string"} and "string" are the same schema
    head = _KEY_ORDER.get(kind, ("type",)) if isinstance(kind, str) else ("type",)
    out: dict[str, Any] = {}
    for key in (*head, *node):
        if key in node and key not in out:
            out[key] = _canonical_value(key, node[key], kind)
    return out


def _canonical_value(key: str, value: Any, kind: Any) -> Any:
    if key in ("type", "items", "values"):
        return _canonical(value)
    if key == "fields" and kind in ("record", "error") and isinstance(value, list):
        return [_canonical_field(field) for field in value]
    return value


def _canonical_field(field: Any) -> Any:
    if not isinstance(field, dict):
        return field
    out: dict[str, Any] = {}
    for key in (*_FIELD_ORDER, *field):
        if key in field and key not in out:
            out[key] = _canonical(field[key]) if key == "type" else field[key]
    return out

"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary body.

Encoding and decoding use fastavro's schemaless reader/writer with parsed schemas
cached per schema id, so the hot path does no JSON parsing.
"""
from __future__ import annotations

import io
import json
import struct
from typing import Any, Callable, Mapping

import fastavro
from fastavro.types import Schema

from fraudpipe.errors import SchemaError, SerializationError, UnknownSchemaIdError

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5 bytes

SchemaLookup = Callable[[int], "str | Mapping[str, Any]"]


def parse_schema(schema: str | Mapping[str, Any]) -> Schema:
    """Parse an Avro schema given as JSON text or a dict, with a SchemaError on failure."""
    try:
        as_dict = json.loads(schema) if isinstance(schema, str) else dict(schema)
        return fastavro.parse_schema(as_dict)
    except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"invalid Avro schema: {exc}") from exc


def frame_header(schema_id: int) -> bytes:
    """The 5-byte Confluent header for `schema_id`."""
    return HEADER.pack(MAGIC_BYTE, schema_id)


def split_frame(frame: bytes | None) -> tuple[int, memoryview]:
    """Return (schema_id, body) of a Confluent frame, or raise SerializationError saying why not."""
    if frame is None:
        raise SerializationError("empty frame: the record value is null")
    if len(frame) < HEADER_SIZE:
        raise SerializationError(f"short frame: {len(frame)} bytes, a Confluent frame has at least {HEADER_SIZE}")
    if frame[0] != MAGIC_BYTE:
        raise SerializationError(f"bad magic byte {frame[0]}: expected {MAGIC_BYTE} (not Confluent-framed Avro)")
    schema_id = int.from_bytes(frame[1:HEADER_SIZE], "big")
    return schema_id, memoryview(frame)[HEADER_SIZE:]


class AvroCodec:
    """Encodes and decodes Confluent frames; writer schemas are found by id through `lookup`.

    `lookup(schema_id)` returns the writer schema (text or dict) and raises KeyError or
    UnknownSchemaIdError for an unknown id. A reader schema, when given, is what decoded
    records are resolved to (Avro schema resolution), so evolved writers keep flowing.
    """

    def __init__(self, lookup: SchemaLookup, *, reader_schema: str | Mapping[str, Any] | None = None) -> None:
        self._lookup = lookup
        self._reader = parse_schema(reader_schema) if reader_schema is not None else None
        self._writers: dict[int, Schema] = {}

    def writer_schema(self, schema_id: int) -> Schema:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            try:
                text = self._lookup(schema_id)
            except UnknownSchemaIdError:
                raise
            except KeyError as exc:
                raise UnknownSchemaIdError(schema_id) from exc
            parsed = self._writers[schema_id] = parse_schema(text)
        return parsed

    def decode(self, frame: bytes | None) -> dict[str, Any]:
        schema_id, body = split_frame(frame)
        writer = self.writer_schema(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(body), writer, self._reader)
        except (EOFError, ValueError, IndexError, TypeError, UnicodeDecodeError, OverflowError) as exc:
            raise SerializationError(f"corrupt Avro body for schema id {schema_id}: {exc!r}") from exc
        except fastavro.read.SchemaResolutionError as exc:
            raise SerializationError(f"schema id {schema_id} cannot be resolved to the reader schema: {exc}") from exc

    def encode(self, schema_id: int, record: Mapping[str, Any]) -> bytes:
        writer = self.writer_schema(schema_id)
        buffer = io.BytesIO()
        buffer.write(frame_header(schema_id))
        try:
            fastavro.schemaless_writer(buffer, writer, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"record does not match schema id {schema_id}: {exc}") from exc
        return buffer.getvalue()


def encode(schema_id: int, schema: str | Mapping[str, Any] | Schema, record: Mapping[str, Any]) -> bytes:
    """One-off encode of `record` with `schema` under `schema_id`."""
    return AvroCodec({schema_id: schema}.__getitem__).encode(schema_id, record)

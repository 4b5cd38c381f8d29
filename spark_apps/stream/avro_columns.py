"""Columnar Avro decoding: a whole chunk of Confluent frames into Arrow columns with numpy, no per-record Python.

A flat record of strings, longs, ints, enums and ["null", X] unions is read field by field
across all records at once: every record keeps a read position, a varint is decoded for all
of them in one (n, 10) byte matrix, a string becomes (start, length) pairs gathered into an
Arrow string buffer. The result is resolved to the job's reader schema by field name
(Avro resolution: reader-only fields take their default, writer-only fields are skipped,
enum symbols map by name).

It is an accelerator, not a second opinion: any frame it cannot prove well-formed (bad
header, a varint or string running past the frame, an enum index out of range, non-ASCII
text, a schema shape it does not plan) is left to fastavro, record by record, so values,
errors and DLQ reasons are fastavro's. tests/unit/spark_apps/test_avro_columns.py checks
equality with fastavro on v1 and v2 writers and on poison frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from fraudpipe.avro import HEADER_SIZE, MAGIC_BYTE
from fraudpipe.errors import SerializationError
from spark_apps.stream import arrow_arrays as aa

_VARINT_MAX = 10
_SHIFTS = np.arange(0, 7 * _VARINT_MAX, 7, dtype=np.uint64)
_STEPS = np.arange(_VARINT_MAX, dtype=np.int64)
_SUPPORTED = {"string", "long", "int", "enum"}
_ARROW = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "enum": pa.string()}


@dataclass(frozen=True)
class _Type:
    kind: str  # string | long | int | enum
    symbols: tuple[str, ...] = ()
    default: str | None = None  # enum default (reader side)


@dataclass(frozen=True)
class _Field:
    """One writer field: how to read it and which reader column (if any) it fills."""

    name: str
    kind: _Type
    nullable_branch: int | None  # for ["null", X] unions: the branch index of X; None for a plain X
    target: str | None  # reader field name, None if the reader has no such field (skip)
    reader: _Type | None = None  # the reader field's type
    reader_nullable: bool = True


def _simple(avro_type: Any) -> _Type | None:
    if isinstance(avro_type, str):
        return _Type(avro_type) if avro_type in _SUPPORTED - {"enum"} else None
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "enum":
            return _Type("enum", tuple(avro_type["symbols"]), avro_type.get("default"))
        if avro_type.get("logicalType") is None and avro_type.get("type") in _SUPPORTED - {"enum"}:
            return _Type(avro_type["type"])
    return None


def _unwrap(avro_type: Any) -> tuple[_Type | None, int | None]:
    """(inner type, branch of X) for ["null", X] / [X, "null"]; (type, None) for a plain type."""
    if isinstance(avro_type, list):
        if len(avro_type) != 2 or "null" not in avro_type:
            return None, None
        branch = 1 - avro_type.index("null")
        return _simple(avro_type[branch]), branch
    return _simple(avro_type), None


class ReaderColumns:
    """The reader schema's columns (Arrow types) and defaults, for planning writers against it."""

    def __init__(self, reader_schema: Mapping[str, Any]) -> None:
        self.fields: list[tuple[str, _Type | None, bool, Any, bool]] = []  # name, type, nullable, default, has default
        for field in reader_schema["fields"]:
            kind, branch = _unwrap(field["type"])
            self.fields.append((field["name"], kind, branch is not None, field.get("default"), "default" in field))

    def arrow_type(self, name: str) -> pa.DataType:
        for field_name, kind, _, _, _ in self.fields:
            if field_name == name and kind is not None:
                return _ARROW[kind.kind]
        raise KeyError(name)


def plan(writer: Mapping[str, Any], reader: ReaderColumns) -> list[_Field] | None:
    """How to read `writer` into `reader`'s columns, or None when the shape is not one this module decodes."""
    if writer.get("type") != "record":
        return None
    readers = {name: (kind, nullable) for name, kind, nullable, _, _ in reader.fields}
    steps: list[_Field] = []
    for field in writer["fields"]:
        kind, branch = _unwrap(field["type"])
        if kind is None:
            return None
        target = field["name"] if field["name"] in readers else None
        reader_kind, reader_nullable = readers.get(target, (None, True))
        if target is not None and (reader_kind is None or not _compatible(kind, reader_kind)):
            return None
        steps.append(_Field(field["name"], kind, branch, target, reader_kind, reader_nullable))
    written = {f.target for f in steps}
    for name, kind, nullable, default, has_default in reader.fields:
        if name not in written and (kind is None or not has_default):
            return None  # fastavro reports the missing default; leave such writers to it
    return steps


def _compatible(writer: _Type, reader: _Type) -> bool:
    if writer.kind == reader.kind:
        return True
    return writer.kind == "int" and reader.kind == "long"  # Avro's int -> long promotion


def read_varints(buf: np.ndarray, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zig-zag varints at `pos` (one per record): (values int64, bytes used, ok mask)."""
    index = pos[:, None] + _STEPS
    inside = index < end[:, None]
    raw = buf[np.minimum(index, len(buf) - 1)]
    more = ((raw & 0x80) != 0) | ~inside  # past the frame counts as "continues": never terminates
    stops = ~more
    ok = stops.any(axis=1)
    used = np.argmax(stops, axis=1) + 1
    keep = _STEPS[None, :] < used[:, None]
    groups = (raw & 0x7F).astype(np.uint64) << _SHIFTS
    unsigned = np.bitwise_or.reduce(np.where(keep, groups, np.uint64(0)), axis=1)
    ok &= ~((used == _VARINT_MAX) & (raw[:, -1] > 1))  # more than 64 bits: let fastavro speak
    values = (unsigned >> np.uint64(1)).astype(np.int64) ^ -(unsigned & np.uint64(1)).astype(np.int64)
    return values, used, ok


def _gather(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Arrow int32 offsets, concatenated bytes) of the slices buf[start:start+length]."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return offsets.astype(np.int32), np.zeros(0, dtype=np.uint8)
    index = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
    return offsets.astype(np.int32), buf[index]


class ColumnarDecoder:
    """Decodes chunks of frames whose writer schema it can plan; reports which records it left to fastavro."""

    def __init__(self, reader_schema: Mapping[str, Any], writer_schema: Callable[[int], Mapping[str, Any]],
                 keep: Sequence[str] | None = None) -> None:
        self._reader = ReaderColumns(reader_schema)
        self._writer_schema = writer_schema  # raises SerializationError for unknown ids
        self._plans: dict[int, list[_Field] | None] = {}
        # Reader columns to build; the others are still read and validated (a record is
        # rejected for the same reasons either way), just never materialised.
        self._keep = [name for name, kind, _, _, _ in self._reader.fields
                      if kind is not None and (keep is None or name in keep)]

    def _plan(self, schema_id: int) -> list[_Field] | None:
        if schema_id not in self._plans:
            try:
                writer = self._writer_schema(schema_id)
            except SerializationError:
                return None  # unknown id: fastavro's path raises the same error per record (not cached: ids may appear)
            self._plans[schema_id] = plan(writer, self._reader)
        return self._plans[schema_id]

    def decode(self, values: Sequence[bytes | None]) -> tuple[dict[str, pa.Array], np.ndarray]:
        """(reader columns of the decoded records, in order; indexes of the decoded records).

        Records not in the index list are for the caller's per-record fastavro path.
        """
        n = len(values)
        lengths = np.fromiter((-1 if v is None else len(v) for v in values), dtype=np.int64, count=n)
        buf = np.frombuffer(b"".join(v for v in values if v is not None) + b"\x00", dtype=np.uint8)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(np.maximum(lengths, 0)[:-1], out=starts[1:])
        ends = starts + np.maximum(lengths, 0)
        ok = lengths >= HEADER_SIZE
        safe = np.where(ok, starts, 0)
        ok &= buf[safe] == MAGIC_BYTE
        ids = np.zeros(n, dtype=np.int64)
        for k in range(1, HEADER_SIZE):
            ids = (ids << 8) | buf[np.minimum(safe + k, len(buf) - 1)].astype(np.int64)
        # high-byte counts before each position: a string is ASCII iff the count does not change over it
        high = np.zeros(len(buf) + 1, dtype=np.int64)
        np.cumsum(buf >= 0x80, out=high[1:])
        done = np.zeros(n, dtype=bool)
        parts: list[tuple[np.ndarray, dict[str, pa.Array]]] = []
        for schema_id in np.unique(ids[ok]).tolist():
            steps = self._plan(int(schema_id))
            if steps is None:
                continue
            rows = np.flatnonzero(ok & (ids == schema_id))
            columns, good = self._decode_rows(buf, high, starts[rows] + HEADER_SIZE, ends[rows], steps)
            if not good.all():
                rows = rows[good]
                columns = {name: array.filter(aa.booleans(good)) for name, array in columns.items()}
            done[rows] = True
            parts.append((rows, columns))
        decoded = np.flatnonzero(done)
        if len(parts) == 1:
            return parts[0][1], decoded
        if not parts:
            return self._empty(), decoded
        order = np.argsort(np.concatenate([rows for rows, _ in parts]), kind="stable")
        merged = {name: pa.concat_arrays([cols[name] for _, cols in parts]).take(aa.numbers(order, pa.int64()))
                  for name in parts[0][1]}
        return merged, decoded

    def _empty(self) -> dict[str, pa.Array]:
        return {name: pa.nulls(0, self._reader.arrow_type(name)) for name in self._keep}

    def _decode_rows(self, buf: np.ndarray, high: np.ndarray, pos: np.ndarray, end: np.ndarray,
                     steps: list[_Field]) -> tuple[dict[str, pa.Array], np.ndarray]:
        n = len(pos)
        pos = pos.copy()
        ok = np.ones(n, dtype=bool)
        out: dict[str, pa.Array] = {}
        for step in steps:
            present = np.ones(n, dtype=bool)
            if step.nullable_branch is not None:
                branch, used, good = read_varints(buf, pos, end)
                ok &= good & ((branch == 0) | (branch == 1))
                pos += used
                present = branch == step.nullable_branch
                if step.target is not None and not step.reader_nullable:
                    ok &= present  # a null into a non-null reader field: fastavro's error
            value, used, good = read_varints(buf, pos, end)
            ok &= good | ~present
            active = present & ok
            if step.kind.kind == "string":
                length = np.where(active, value, 0)
                ok &= ~active | ((length >= 0) & (length <= end - pos - used))
                length = np.where(ok & present, length, 0)
                text_start = np.where(ok & present, pos + used, 0)
                pos = np.where(present, text_start + length, pos)
                if step.target is not None:
                    # non-ASCII, read or skipped: UTF-8 checks are fastavro's
                    ok &= high[text_start + length] == high[text_start]
                if step.target in self._keep:
                    out[step.target] = self._strings(*_gather(buf, text_start, length), present)
            else:
                pos = np.where(present, pos + used, pos)
                if step.kind.kind == "int":
                    ok &= ~present | ((value >= -(1 << 31)) & (value < (1 << 31)))
                if step.kind.kind == "enum":
                    ok &= ~present | ((value >= 0) & (value < len(step.kind.symbols)))
                if step.target is not None:
                    value = np.where(ok & present, value, 0)
                    if step.kind.kind == "enum":
                        value = self._resolve_enum(step, value, present, ok)
                    if step.target in self._keep:
                        out[step.target] = self._scalars(step, value, present)
        for name, kind, _, default, _ in self._reader.fields:
            if name not in out and name in self._keep:
                out[name] = aa.repeated(default, _ARROW[kind.kind], n)
        ok &= pos <= end
        return {name: out[name] for name in self._keep}, ok

    @staticmethod
    def _strings(offsets: np.ndarray, data: np.ndarray, present: np.ndarray) -> pa.Array:
        validity = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
        return pa.StringArray.from_buffers(len(present), pa.py_buffer(offsets), pa.py_buffer(data), validity)

    @staticmethod
    def _resolve_enum(step: _Field, value: np.ndarray, present: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Writer symbol indexes -> reader symbol indexes (Avro: by name, else the reader's default)."""
        symbols = list(step.reader.symbols)
        mapped = []
        for symbol in step.kind.symbols:
            if symbol in symbols:
                mapped.append(symbols.index(symbol))
            elif step.reader.default in symbols:
                mapped.append(symbols.index(step.reader.default))
            else:
                mapped.append(-1)
        index = np.asarray(mapped, dtype=np.int64)[value]
        ok &= ~present | (index >= 0)  # no mapping and no default: fastavro's error
        return np.maximum(index, 0)

    @staticmethod
    def _scalars(step: _Field, value: np.ndarray, present: np.ndarray) -> pa.Array:
        mask = None if present.all() else ~present
        if step.kind.kind == "enum":
            return aa.strings(list(step.reader.symbols)).take(aa.numbers(value, pa.int64(), mask))
        arrow = _ARROW[step.reader.kind]
        return aa.numbers(value, arrow, mask)

"""Turning raw Kafka records of the transactions topic into Arrow batches for Spark.

Pure logic (no Spark, no Kafka client): writer schemas by id from the registry, Avro
resolution to the job's reader schema, the one decision of what is undecodable (to the
DLQ) and what is a real failure, and the watermark rule that marks late records.

Rows come in three kinds. A *transaction* is a decoded on-time record. A record that is
late (its 1-minute window already closed under the batch watermark) or undecodable is
turned into a *carrier* row: no sender, event time just past the watermark, so it rides
the streaming aggregation in a window that is still open and is counted when that
window closes. Spark itself would drop a late row silently; carriers make every record
end up counted exactly once, in step with the checkpointed state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Final, Mapping, Sequence

import numpy as np
import pyarrow as pa

from fraudpipe import contracts
from fraudpipe.avro import AvroCodec
from fraudpipe.errors import SerializationError, StreamError
from fraudpipe.registry_client import RegistrySchemas
from spark_apps.stream import arrow_arrays as aa

WINDOW_MS: Final = 60_000  # tumbling window length; the late rule below depends on it

KIND_TRANSACTION: Final = 0
KIND_LATE: Final = 1
KIND_DLQ: Final = 2
KIND_COLUMN: Final = "record_kind"

# DLQ headers, in the spirit of Kafka Connect's errors.deadletterqueue.context.headers.
DLQ_HEADER_REASON: Final = "fraudpipe.error.reason"
DLQ_HEADER_CLASS: Final = "fraudpipe.error.class"
DLQ_HEADER_TOPIC: Final = "fraudpipe.source.topic"
DLQ_HEADER_PARTITION: Final = "fraudpipe.source.partition"
DLQ_HEADER_OFFSET: Final = "fraudpipe.source.offset"

def dlq_headers(reason: str, error_class: str, *, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The stream's DLQ headers for one undecodable record (both sources write the same)."""
    return [(DLQ_HEADER_REASON, reason.encode()), (DLQ_HEADER_CLASS, error_class.encode()),
            (DLQ_HEADER_TOPIC, topic.encode()), (DLQ_HEADER_PARTITION, str(partition).encode()),
            (DLQ_HEADER_OFFSET, str(offset).encode())]


_AVRO_TO_ARROW: Final = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(),
                         "boolean": pa.bool_(), "enum": pa.string()}
_ARROW_TO_DDL: Final = {pa.string(): "string", pa.int64(): "bigint", pa.int32(): "int", pa.float64(): "double",
                        pa.bool_(): "boolean", pa.int8(): "tinyint"}
TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")  # what Spark's TimestampType is in Arrow


def _field_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, is timestamp-millis) of one field of the transaction schema."""
    if isinstance(avro_type, list):  # ["null", X]: nullable X
        (inner,) = [t for t in avro_type if t != "null"]
        return _field_type(inner)
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis":
            return TIMESTAMP_TYPE, True
        return _AVRO_TO_ARROW[avro_type["type"]], False
    return _AVRO_TO_ARROW[avro_type], False


# The late/DLQ carrier rule rewrites these two, so a projection must keep them.
REQUIRED_COLUMNS: Final = ("event_time", "sender_account")


def output_schema(reader_version: int = 1, columns: Sequence[str] | None = None) -> pa.Schema:
    """Arrow schema of the rows the source yields: the reader schema's fields (or the
    `columns` among them, in schema order) plus the kind.

    Python data sources get no column pruning from Spark, so a job names the columns it
    uses; every other field is skipped while decoding and never crosses into the JVM.
    """
    fields = [pa.field(f["name"], _field_type(f["type"])[0]) for f in contracts.transaction_schema(reader_version)["fields"]]
    if columns is not None:
        names = [f.name for f in fields]
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise StreamError(f"columns {unknown} are not fields of transaction schema v{reader_version} ({', '.join(names)})")
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise StreamError(f"a column projection must keep {', '.join(missing)} (late and DLQ records need them)")
        fields = [f for f in fields if f.name in columns]
    return pa.schema([*fields, pa.field(KIND_COLUMN, pa.int8())])


def spark_ddl(reader_version: int = 1, columns: Sequence[str] | None = None) -> str:
    """The same schema as a Spark DDL string (what DataSource.schema() returns)."""
    parts = []
    for f in output_schema(reader_version, columns):
        ddl = "timestamp" if f.type == TIMESTAMP_TYPE else _ARROW_TO_DDL[f.type]
        parts.append(f"{f.name} {ddl}")
    return ", ".join(parts)


def plain_longs(schema: Any) -> Any:
    """The schema with timestamp-millis turned into plain longs.

    Decoding epoch millis as ints and converting whole columns with numpy is far cheaper
    than building a datetime per record.
    """
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return "long"
        return {k: plain_longs(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [plain_longs(s) for s in schema]
    return schema


def registry_lookup(url: str) -> RegistrySchemas:
    """Writer schemas by id for the stream (fraudpipe/registry_client.py), timestamps as plain longs.

    An unknown id is an UnknownSchemaIdError (the record goes to the DLQ); a registry that is
    down or failing is a StreamError, because skipping records for an outage would lose data.
    """
    return RegistrySchemas(url, unavailable=StreamError, transform=plain_longs)


def make_codec(lookup: Callable[[int], Any], reader_version: int = 1) -> AvroCodec:
    """A codec resolving any registered writer version to the job's reader schema."""
    return AvroCodec(lookup, reader_schema=plain_longs(contracts.transaction_schema(reader_version)))


def window_end_ms(event_ms: np.ndarray) -> np.ndarray:
    """End of the 1-minute tumbling window each epoch-millisecond timestamp falls in."""
    return (event_ms // WINDOW_MS) * WINDOW_MS + WINDOW_MS


def late_mask(event_ms: np.ndarray, watermark_ms: int) -> np.ndarray:
    """Rows Spark's windowed aggregation would drop: their window ended at or before the watermark."""
    if watermark_ms <= 0:  # no watermark yet (first batch): nothing is late
        return np.zeros(len(event_ms), dtype=bool)
    return window_end_ms(event_ms) <= watermark_ms


@dataclass
class Rejected:
    """One undecodable record and why, for the DLQ."""

    value: bytes | None
    key: bytes | None
    offset: int
    reason: str
    error_class: str


@dataclass
class DecodedBatch:
    """Result of decoding a chunk of records: the Arrow batch and what went to the DLQ."""

    batch: pa.RecordBatch
    rejected: list[Rejected] = field(default_factory=list)
    late: int = 0


def classify_decode_error(exc: Exception) -> bool:
    """True when a decode failure means a bad record (skip to DLQ), False when it must fail the task.

    Bad frames, corrupt bodies and unknown schema ids are properties of the record;
    registry outages and our own bugs are not, and must not silently drop data.
    """
    return isinstance(exc, SerializationError)


class BatchDecoder:
    """Decodes chunks of (key, value, offset) into Arrow batches of the output schema.

    Frames of writer schemas the columnar decoder plans are decoded in bulk with numpy
    (spark_apps/stream/avro_columns.py); the rest (other schema shapes, anything malformed) go
    through fastavro one by one, which alone decides what is rejected and why.
    """

    def __init__(self, codec: AvroCodec, reader_version: int = 1, columns: Sequence[str] | None = None) -> None:
        from spark_apps.stream.avro_columns import ColumnarDecoder

        self._codec = codec
        self.schema = output_schema(reader_version, columns)
        self._fields = [f.name for f in self.schema if f.name != KIND_COLUMN]
        self._ts_fields = {f.name for f in self.schema if f.type == TIMESTAMP_TYPE}
        self._columnar = ColumnarDecoder(plain_longs(contracts.transaction_schema(reader_version)),
                                         codec.writer_schema, keep=self._fields)

    def decode(self, records: Sequence[tuple[bytes | None, bytes | None, int]], *, watermark_ms: int) -> DecodedBatch:
        """Decode (key, value, offset) records."""
        return self.decode_values([value for _, value, _ in records], watermark_ms=watermark_ms,
                                  origin=lambda i: (records[i][0], records[i][2]))

    def decode_values(self, values: Sequence[bytes | None], *, watermark_ms: int,
                      origin: Callable[[int], tuple[bytes | None, int]]) -> DecodedBatch:
        """Decode record values; `origin(i)` gives (key, offset) of record i, asked only for rejected ones."""
        columns, decoded = self._columnar.decode(values)
        if len(decoded) == len(values):
            return self._to_arrow(columns, 0, watermark_ms=watermark_ms, rejected=[])
        done = np.zeros(len(values), dtype=bool)
        done[decoded] = True
        decode = self._codec.decode
        slow_rows: list[Mapping[str, Any]] = []
        slow_index: list[int] = []
        rejected: list[Rejected] = []
        for i in np.flatnonzero(~done).tolist():
            value = values[i]
            try:
                slow_rows.append(decode(value))
                slow_index.append(i)
            except Exception as exc:  # noqa: BLE001 - classified just below, re-raised unless a bad record
                if not classify_decode_error(exc):
                    raise
                key, offset = origin(i)
                rejected.append(Rejected(value, key, offset, str(exc), type(exc).__name__))
        if slow_rows:  # merge fastavro's rows back in record order
            order = np.argsort(np.concatenate([decoded, np.asarray(slow_index, dtype=np.int64)]), kind="stable")
            columns = {name: pa.concat_arrays([array, self._column(name, [r[name] for r in slow_rows])])
                       .take(aa.numbers(order, pa.int64())) for name, array in columns.items()}
        return self._to_arrow(columns, len(rejected), watermark_ms=watermark_ms, rejected=rejected)

    def _column(self, name: str, values: list[Any]) -> pa.Array:
        # the per-record fallback only (rare): pa.array may load pandas into this worker here
        field = self.schema.field(name)
        return pa.array(values, type=pa.int64() if field.type == TIMESTAMP_TYPE else field.type)

    def _to_arrow(self, columns: Mapping[str, pa.Array], dlq: int, *, watermark_ms: int,
                  rejected: list[Rejected]) -> DecodedBatch:
        import pyarrow.compute as pc

        (ts_name,) = self._ts_fields or ("event_time",)
        event_ms = aa.to_numbers(columns[ts_name]).astype(np.int64, copy=False)
        late = late_mask(event_ms, watermark_ms)
        n_late = int(late.sum())
        carrier_ms = np.int64(max(watermark_ms, 0) + 1)  # just past the watermark: always an open window
        kinds = np.where(late, KIND_LATE, KIND_TRANSACTION).astype(np.int8)
        if n_late:
            event_ms = np.where(late, carrier_ms, event_ms)
        arrays = []
        for f in self.schema:
            if f.name == KIND_COLUMN:
                data = np.concatenate([kinds, np.full(dlq, KIND_DLQ, dtype=np.int8)])
                arrays.append(aa.numbers(data, pa.int8()))
            elif f.name == ts_name:
                micros = np.concatenate([event_ms, np.full(dlq, carrier_ms, dtype=np.int64)]) * 1000
                arrays.append(aa.numbers(micros, pa.int64()).view(TIMESTAMP_TYPE))
            else:
                values = columns[f.name]
                if f.name == "sender_account" and n_late:
                    # carriers have no sender: they must not join any real sender's window
                    values = pc.if_else(aa.booleans(late), pa.nulls(len(values), f.type), values)
                if dlq:
                    values = pa.concat_arrays([values, pa.nulls(dlq, f.type)])
                arrays.append(values.cast(f.type) if values.type != f.type else values)
        return DecodedBatch(pa.RecordBatch.from_arrays(arrays, schema=self.schema), rejected, n_late)

"""`fraudpipe produce --to-file`: write the stream to files instead of Kafka (training data, no broker).

Two formats, chosen by the file extension:

- **Parquet** (`*.parquet`, the default): `<path>` holds the transactions with the columns
  of schema.avsc (`event_time` as `timestamp[ms, tz=UTC]`, enums as strings, `amount_minor`
  int64) **plus nullable `pattern`, `fraud_instance` and `fraud_variant` columns**: the fraud
  family a row belongs to, the id of its fraud instance (one burst of one sender) and the
  instance's variant (`family.variant`), all null = not fraud (docs/producer.md). `<stem>.labels.parquet` next to it holds the labels exactly as the
  labels topic carries them (label.avsc columns). Spark reads either.
- **Avro container** (`*.avro`): `<path>` holds transactions with exactly schema.avsc (no
  label, like the topic) and `<stem>.labels.avro` the labels with label.avsc.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fraudpipe import contracts
from fraudpipe.avro import parse_schema
from fraudpipe.errors import ProducerError
from producer.generator import TransactionBatch
from producer.traffic import CHANNELS, STATUSES, TYPES

TIMESTAMP = pa.timestamp("ms", tz="UTC")


def labels_path(path: Path) -> Path:
    """Where the labels of a transactions file go: <stem>.labels<suffix>."""
    return path.with_name(f"{path.stem}.labels{path.suffix}")


def _fixed_strings(matrix: np.ndarray) -> pa.Array:
    n, width = matrix.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(matrix).tobytes()))


def _symbols(codes: np.ndarray, symbols: tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(symbols)).cast(pa.string())


def transactions_table(batch: TransactionBatch, *, schema_version: int = 1, with_pattern: bool = True) -> pa.Table:
    """The batch as an Arrow table with schema.avsc's columns (+ device_id for v2, + pattern, fraud_instance, fraud_variant)."""
    columns: dict[str, pa.Array] = {
        "transaction_id": _fixed_strings(batch.transaction_id),
        "event_time": pa.array(batch.event_time, type=pa.int64()).cast(TIMESTAMP),
        "sender_account": _fixed_strings(batch.sender),
        "receiver_account": _fixed_strings(batch.receiver),
        "amount_minor": pa.array(batch.amount_minor, type=pa.int64()),
        "currency": pa.array([batch.currency] * len(batch), type=pa.string()),
        "transaction_type": _symbols(batch.transaction_type, TYPES),
        "status": _symbols(batch.status, STATUSES),
        "channel": _symbols(batch.channel, CHANNELS),
    }
    if contracts.DEVICE_ID_FIELD in contracts.added_field_names(schema_version):
        columns[contracts.DEVICE_ID_FIELD] = _fixed_strings(batch.device)
    if with_pattern:
        not_fraud = batch.pattern < 0
        names = pa.array(batch.pattern_names, type=pa.string())
        columns[contracts.PATTERN_COLUMN] = pa.DictionaryArray.from_arrays(
            pa.array(batch.pattern.astype(np.int32), mask=not_fraud), names).cast(pa.string())
        columns[contracts.FRAUD_INSTANCE_COLUMN] = pa.array(batch.instance, type=pa.int64(), mask=batch.instance < 0)
        variants = pa.array(batch.variant_names, type=pa.string())
        columns[contracts.FRAUD_VARIANT_COLUMN] = pa.DictionaryArray.from_arrays(
            pa.array(batch.variant.astype(np.int32), mask=batch.variant < 0), variants).cast(pa.string())
    return pa.table(columns)


def labels_table(batch: TransactionBatch) -> pa.Table:
    """The labels of a batch as an Arrow table with label.avsc's columns."""
    rows = batch.labeled
    times = batch.event_time[rows]
    names = pa.array(batch.pattern_names, type=pa.string())
    return pa.table({
        "transaction_id": _fixed_strings(batch.transaction_id[rows]),
        "pattern": pa.DictionaryArray.from_arrays(pa.array(batch.pattern[rows].astype(np.int32)), names).cast(pa.string()),
        "sender_account": _fixed_strings(batch.sender[rows]),
        "event_time": pa.array(times, type=pa.int64()).cast(TIMESTAMP),
        "labeled_at": pa.array(times + batch.label_delay_ms, type=pa.int64()).cast(TIMESTAMP),
    })


@dataclass
class FileSummary:
    """What a --to-file run wrote."""

    transactions_path: Path
    labels_path: Path
    transactions: int = 0
    labels: int = 0


def write_files(batches: Iterable[TransactionBatch], path: str | Path, *, schema_version: int = 1) -> FileSummary:
    """Write every batch to `path` (Parquet or Avro by extension) and the labels beside it."""
    target = Path(path)
    summary = FileSummary(target, labels_path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".avro":
            _write_avro(batches, summary, schema_version)
        elif target.suffix in (".parquet", ".pq"):
            _write_parquet(batches, summary, schema_version)
        else:
            raise ProducerError(f"--to-file {target}: unknown format {target.suffix!r}; use .parquet or .avro")
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise ProducerError(f"cannot write {target}: {exc}") from exc
    return summary


def _write_parquet(batches: Iterable[TransactionBatch], summary: FileSummary, schema_version: int) -> None:
    tx_writer: pq.ParquetWriter | None = None
    label_writer: pq.ParquetWriter | None = None
    try:
        for batch in batches:
            table = transactions_table(batch, schema_version=schema_version)
            labels = labels_table(batch)
            tx_writer = tx_writer or pq.ParquetWriter(summary.transactions_path, table.schema)
            label_writer = label_writer or pq.ParquetWriter(summary.labels_path, labels.schema)
            tx_writer.write_table(table)
            label_writer.write_table(labels)
            summary.transactions += table.num_rows
            summary.labels += labels.num_rows
    finally:
        for writer in (tx_writer, label_writer):
            if writer is not None:
                writer.close()


def _write_avro(batches: Iterable[TransactionBatch], summary: FileSummary, schema_version: int) -> None:
    tx_schema = parse_schema(contracts.transaction_schema_str(schema_version))
    label_schema = parse_schema(contracts.label_schema_str())
    with open(summary.transactions_path, "wb") as tx_out, open(summary.labels_path, "wb") as label_out:
        tx_avro = fastavro.write.Writer(tx_out, tx_schema, codec="deflate")
        label_avro = fastavro.write.Writer(label_out, label_schema, codec="deflate")
        for batch in batches:
            records = batch.records(schema_version)
            labels = batch.labels()
            for record in records:
                tx_avro.write(record)
            for label in labels:
                label_avro.write(label)
            summary.transactions += len(records)
            summary.labels += len(labels)
        tx_avro.flush()
        label_avro.flush()

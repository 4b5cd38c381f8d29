"""Training input: a generated labelled dataset, the producer's Parquet, or the store.

- generate_dataset writes a deterministic labelled dataset with the producer's generator
  (whole 1-minute windows, so no pattern instance is cut short at the end);
- read_transactions reads producer Parquet, or a file written by hand, with its fraud `pattern`
  (or the labels file beside it), checked as `fraudpipe evaluate` checks it;
- extract_store_transactions (`fraudpipe train --from-store`) reads the raw transactions
  and labels the sink wrote. The Store port's scan_transactions/scan_labels yield chunks of
  row dicts; each chunk becomes an Arrow table at once (columns typed from
  cassandra/init.cql), so Python never holds more than one chunk as dicts, and Spark
  receives the whole set through one Arrow-backed createDataFrame with an explicit schema:
  event_time (epoch ms) as TimestampType and the label's fraud `pattern` joined on (null =
  not fraud), the shape read_transactions gives.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from fraudpipe.config import Config
from fraudpipe.contracts import LABELS_TABLE, TRANSACTIONS_TABLE
from fraudpipe.errors import ModelError
from fraudpipe.store.base import SCAN_MAX_MS, SCAN_MIN_MS, Store
from fraudpipe.store.cql import table_specs
from producer.files import labels_path

SCAN_CHUNK = 50_000  # rows per store read: a few tens of MB as dicts, gone once converted to Arrow
PATTERN_COLUMN = "pattern"  # the label column training joins onto transactions (labels table, init.cql)

# init.cql types -> (Arrow type of the stored value, Spark SQL type name). Timestamps are stored
# as epoch ms and cast to timestamp[ms, UTC] after the chunk is built.
_TYPES = {
    "text": (pa.string(), "string"),
    "date": (pa.string(), "string"),
    "timestamp": (pa.int64(), "timestamp"),
    "bigint": (pa.int64(), "bigint"),
    "int": (pa.int32(), "int"),
    "double": (pa.float64(), "double"),
    "boolean": (pa.bool_(), "boolean"),
}
_TIMESTAMP = pa.timestamp("ms", tz="UTC")

# The dataset a default run generates starts here (simulated clock), so that the same
# seed and size always give the same data and therefore comparable model versions.
DEFAULT_START_MS = 1_795_000_000_000

Progress = Callable[[str], None]


def generated_dataset_path(config: Config, transactions: int) -> Path:
    """Where the generated dataset of this seed, size and producer config lives ("whole": no burst cut).

    The name carries a digest of the producer settings, so a changed traffic model (or another
    config file with the same seed) never reuses a dataset generated from another one.
    """
    digest = hashlib.sha256(repr(config.producer).encode()).hexdigest()[:10]
    return config.path(config.model.dataset_dir) / f"generated-seed{config.producer.seed}-{transactions}-{digest}-whole.parquet"


def transfer_dataset(config: Config, *, transactions: int | None = None, seed: int | None = None,
                     progress: Progress) -> Path:
    """The shifted dataset of model.transfer_config (generated unless there), for metrics.transfer.

    Its producer section is the shifted one (its own seed unless `seed` is given); the file
    name carries a digest of that section, so editing the shifted configuration makes a new one.
    """
    from fraudpipe.config import load_config

    source = config.path(config.model.transfer_config)
    shifted = load_config(source, environ={})  # FRAUDPIPE_* overrides are the main config's
    if seed is not None:
        shifted = replace(shifted, producer=replace(shifted.producer, seed=seed))
    size = transactions or config.model.transfer_transactions
    digest = hashlib.sha256(repr(shifted.producer).encode()).hexdigest()[:10]
    path = config.path(config.model.dataset_dir) / f"transfer-{source.stem}-{digest}-{size}-whole.parquet"
    return generate_dataset(shifted, path, transactions=size, progress=progress)


def generate_dataset(config: Config, path: Path, *, transactions: int, progress: Progress) -> Path:
    """Write a labelled dataset with the producer's generator (file mode) unless already there.

    At least `transactions`: generation runs on to the end of the last event-time minute,
    because a cut window would hold a cut pattern instance (say one transfer of an account
    takeover), a labelled window that looks like any other and drags a fraud centroid there.
    """
    from producer.files import write_files
    from producer.generator import TransactionGenerator

    if path.exists():
        progress(f"reusing generated dataset {path}")
        return path
    progress(f"generating {transactions:,} labelled transactions (seed {config.producer.seed}) -> {path}")
    generator = TransactionGenerator(config.producer, start_ms=DEFAULT_START_MS, clock="simulated")
    partial = path.with_name(f".partial-{path.name}")
    summary = write_files(generator.batches(transactions, whole_minutes=True), partial)
    summary.labels_path.replace(labels_path(path))
    partial.replace(path)  # the name appears only once the file is complete
    progress(f"generated {summary.transactions:,} transactions (to the end of the minute), {summary.labels:,} labelled")
    return path


def read_transactions(spark: Any, path: Path, *, require_labels: bool) -> Any:
    """The transactions of a Parquet file (`produce --to-file` or written by hand) with `pattern` (null = not fraud).

    The file is checked and normalised as `fraudpipe evaluate` checks it (labelled_input), so
    train and evaluate accept the same files and refuse the same ones with the same DatasetError.
    Labels: the pattern column, else the labels file beside it; without either, every row is
    unlabelled, or the file is refused when `require_labels`.
    """
    from spark_apps.training.labelled_input import read_labelled, to_spark

    return to_spark(spark, read_labelled(path, require_labels=require_labels))


def parse_time(value: str | None) -> int | None:
    """--since/--until: epoch milliseconds, or an ISO-8601 time (UTC unless it names a zone)."""
    if value is None:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ModelError(f"not a time: {value!r} (use epoch milliseconds or ISO-8601, e.g. 2026-11-21T12:00:00Z)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp() * 1000)


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of one store table's rows as scanned (timestamps still int64 epoch ms)."""
    return pa.schema([(name, _TYPES[cql][0]) for name, cql in table_specs()[table].columns])


def spark_schema(table: str, *, extra: tuple[tuple[str, str], ...] = ()) -> Any:
    """The Spark StructType of a table's columns (timestamps as TimestampType) plus `extra` (name, type)."""
    from pyspark.sql.types import StructType

    fields = [(name, _TYPES[cql][1]) for name, cql in table_specs()[table].columns] + list(extra)
    return StructType.fromDDL(", ".join(f"`{name}` {kind}" for name, kind in fields))


def chunk_table(rows: list[dict[str, Any]], table: str) -> pa.Table:
    """One scanned chunk of `table` as an Arrow table, epoch-ms timestamps cast to timestamp[ms, UTC]."""
    arrow = pa.Table.from_pylist(rows, schema=arrow_schema(table))
    for name, cql in table_specs()[table].columns:
        if cql == "timestamp":
            i = arrow.schema.get_field_index(name)
            arrow = arrow.set_column(i, name, arrow.column(i).cast(_TIMESTAMP))
    return arrow


def extract_store_transactions(
    spark: Any,
    store: Store,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    chunk_size: int = SCAN_CHUNK,
    progress: Callable[[str], None],
) -> Any:
    """Transactions with since_ms <= event_time < until_ms from the store, with their label's `pattern`."""
    since = SCAN_MIN_MS if since_ms is None else since_ms
    until = SCAN_MAX_MS if until_ms is None else until_ms
    tables: list[pa.Table] = []
    rows = 0
    for chunk in store.scan_transactions(since_ms=since, until_ms=until, chunk_size=chunk_size):
        tables.append(chunk_table(chunk, TRANSACTIONS_TABLE))
        rows += len(chunk)
        progress(f"read {rows:,} transactions from the store")
    if not rows:
        window = "" if since_ms is None and until_ms is None else f" with {since_ms} <= event_time < {until_ms} (ms)"
        raise ModelError(f"no transactions in the store{window} to train on")
    key = table_specs()[LABELS_TABLE].partition_key[0]  # transaction_id, the label's natural key
    patterns: dict[str, str] = {}
    for chunk in store.scan_labels(since_ms=since, until_ms=until, chunk_size=chunk_size):
        patterns.update((row[key], row[PATTERN_COLUMN]) for row in chunk)
    progress(f"read {len(patterns):,} labels from the store")
    pdf = pa.concat_tables(tables).to_pandas()
    pdf[PATTERN_COLUMN] = pdf[key].map(patterns)
    pattern_type = dict(table_specs()[LABELS_TABLE].columns)[PATTERN_COLUMN]
    return spark.createDataFrame(
        pdf, schema=spark_schema(TRANSACTIONS_TABLE, extra=((PATTERN_COLUMN, _TYPES[pattern_type][1]),))
    )

"""A transactions file for `fraudpipe evaluate` and `train --input`: checked, then normalised, before Spark.

The file is the `produce --to-file` layout or one written by hand with just REQUIRED_COLUMNS
plus the label (docs/detection.md). Evaluation and training read it through this one module, so a
file that one accepts the other accepts too. It is read with pyarrow and checked column by column
first, so a malformed file is refused with a DatasetError that names the problem instead of
failing somewhere inside a Spark job; the checked table is cast to the types the shared
window features read (event_time timestamp[ms, UTC], amount_minor int64, strings).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudpipe.contracts import FRAUD_INSTANCE_COLUMN, FRAUD_VARIANT_COLUMN, PATTERN_COLUMN
from fraudpipe.errors import DatasetError
from producer.files import labels_path

_TIMESTAMP = pa.timestamp("ms", tz="UTC")


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_string(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_integer(t)


# column -> (what it must be, check, the type it is cast to)
_Check = tuple[str, Callable[[pa.DataType], bool], pa.DataType]
REQUIRED_COLUMNS: dict[str, _Check] = {
    "event_time": ("a timestamp or integer epoch milliseconds", _is_time, _TIMESTAMP),
    "sender_account": ("a string", _is_string, pa.string()),
    "receiver_account": ("a string", _is_string, pa.string()),
    "amount_minor": ("an integer (minor units, e.g. cents)", pa.types.is_integer, pa.int64()),
    "transaction_type": ("a string", _is_string, pa.string()),
    "status": ("a string", _is_string, pa.string()),
    "channel": ("a string", _is_string, pa.string()),
}
LABEL_COLUMNS: dict[str, _Check] = {
    PATTERN_COLUMN: ("a string (fraud family, null = normal)", lambda t: _is_string(t) or pa.types.is_null(t), pa.string()),
}
OPTIONAL_COLUMNS: dict[str, _Check] = {
    # whole floats too: pandas turns an integer column with nulls into float64 (NaN = normal)
    FRAUD_INSTANCE_COLUMN: ("an integer (fraud instance id, null = normal)",
                            lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t), pa.int64()),
    FRAUD_VARIANT_COLUMN: ("a string", lambda t: _is_string(t) or pa.types.is_null(t), pa.string()),
    # the model's population profile formats money in it (explanations.currency_of)
    "currency": ("a string (ISO 4217 code)", lambda t: _is_string(t) or pa.types.is_null(t), pa.string()),
}
NOT_NULL = ("event_time", "sender_account", "amount_minor")
# The Spark schema of the normalised table (window_features' input plus the labels).
SPARK_TYPES = {"event_time": "timestamp", "amount_minor": "bigint", FRAUD_INSTANCE_COLUMN: "bigint"}


def read_labelled(path: Path, *, require_labels: bool = True) -> pa.Table:
    """The checked, normalised table of `path`: REQUIRED_COLUMNS, pattern, and the optional ones present.

    Labels come from the `pattern` column or the labels file beside `path`. Without either, the
    file is refused, unless `require_labels` is false (training may fit unlabelled traffic): then
    every row is unlabelled.
    """
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    table = _read(path, "transactions")
    if PATTERN_COLUMN not in table.column_names:
        if require_labels or labels_path(path).exists():
            table = _join_labels(path, table)
        else:
            table = table.append_column(PATTERN_COLUMN, pa.nulls(table.num_rows, pa.string()))
    missing = [name for name in (*REQUIRED_COLUMNS, *LABEL_COLUMNS) if name not in table.column_names]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; a labelled file needs "
                           f"{', '.join((*REQUIRED_COLUMNS, *LABEL_COLUMNS))} (docs/detection.md)")
    if table.num_rows == 0:
        raise DatasetError(f"{path}: no rows")
    checks = {**REQUIRED_COLUMNS, **LABEL_COLUMNS,
              **{k: v for k, v in OPTIONAL_COLUMNS.items() if k in table.column_names}}
    wrong = [f"{name} is {table.schema.field(name).type}, expected {what}"
             for name, (what, ok, _cast) in checks.items() if not ok(table.schema.field(name).type)]
    if wrong:
        raise DatasetError(f"{path}: wrong column type(s): {'; '.join(wrong)}")
    nulls = [f"{name} ({table.column(name).null_count:,} rows)" for name in NOT_NULL if table.column(name).null_count]
    if nulls:
        raise DatasetError(f"{path}: null values in {', '.join(nulls)}")
    if FRAUD_INSTANCE_COLUMN in checks and pa.types.is_floating(table.schema.field(FRAUD_INSTANCE_COLUMN).type):
        ids = table.column(FRAUD_INSTANCE_COLUMN)
        ids = pc.if_else(pc.is_nan(ids), None, ids)  # NaN is how pandas writes a missing id
        if pc.all(pc.equal(pc.floor(ids), ids)).as_py() is False:
            raise DatasetError(f"{path}: {FRAUD_INSTANCE_COLUMN} has values that are not whole numbers")
        table = table.set_column(table.schema.get_field_index(FRAUD_INSTANCE_COLUMN), FRAUD_INSTANCE_COLUMN, ids)
    return pa.table({name: _cast(table.column(name), target) for name, (_what, _ok, target) in checks.items()})


def _read(path: Path, what: str) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable Parquet {what} file: {exc}") from exc


def _join_labels(path: Path, table: pa.Table) -> pa.Table:
    """The `pattern` of the labels file beside `path` (produce --to-file), joined on transaction_id."""
    beside = labels_path(path)
    if not beside.exists():
        raise DatasetError(f"{path}: no `{PATTERN_COLUMN}` column and no labels file {beside.name} beside it: "
                           "evaluation needs labels (null pattern = normal)")
    labels = _read(beside, "labels")
    for name, table_of in (("transaction_id", table), ("transaction_id", labels), (PATTERN_COLUMN, labels)):
        if name not in table_of.column_names:
            raise DatasetError(f"{path}: joining the labels of {beside.name} needs a {name} column")
    return table.join(labels.select(["transaction_id", PATTERN_COLUMN]), "transaction_id", join_type="left outer")


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if target == _TIMESTAMP and pa.types.is_integer(column.type):
        column = column.cast(pa.int64())
    elif target == _TIMESTAMP and column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    # sub-millisecond digits are dropped (safe=False), as the producer's ms timestamps have none
    return column.cast(target, safe=False)


def to_spark(spark: Any, table: pa.Table) -> Any:
    """The normalised table as a Spark DataFrame with an explicit schema.

    The Arrow table goes to Spark as it is: through pandas, 1.1M rows took 1.2-3.0 s to hand
    over instead of 0.16-0.18 s, the same windows either way.
    """
    from pyspark.sql.types import StructType

    ddl = ", ".join(f"`{name}` {SPARK_TYPES.get(name, 'string')}" for name in table.column_names)
    return spark.createDataFrame(table, schema=StructType.fromDDL(ddl))

"""Labelled windows with their sender context, and the time split.

The shared Spark window features (spark_apps.features) plus the labels are collected to
pandas once; spark_apps.history.SenderHistory then adds the context features in minute
order, exactly as the stream does per micro-batch. Training, the transfer evaluation and
`fraudpipe evaluate` all get their windows from here, so they see the same numbers.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from fraudpipe.contracts import FRAUD_INSTANCE_COLUMN, FRAUD_VARIANT_COLUMN, PATTERN_COLUMN
from fraudpipe.errors import ModelError
from spark_apps.features import window_features
from spark_apps.history import HistoryParams, SenderHistory, receiver_arrays

# Per window: the labelled fraud instances it holds (when the input has fraud_instance).
INSTANCES_COLUMN = "fraud_instances"
RECEIVERS_COLUMN = "receiver_hashes"

Progress = Callable[[str], None]


def transform_windows(transactions: Any) -> Any:
    """Window features plus labels: fraud_tx (labelled transactions), their pattern, and
    fraud_instances / fraud_variant when the input carries them."""
    from pyspark.sql import functions as F

    labelled = F.col(PATTERN_COLUMN).isNotNull()
    extra = [F.sum(labelled.cast("long")).alias("fraud_tx"), F.max(F.col(PATTERN_COLUMN)).alias(PATTERN_COLUMN)]
    if FRAUD_INSTANCE_COLUMN in transactions.columns:
        extra.append(F.collect_set(F.col(FRAUD_INSTANCE_COLUMN)).alias(INSTANCES_COLUMN))
    if FRAUD_VARIANT_COLUMN in transactions.columns:
        extra.append(F.max(F.col(FRAUD_VARIANT_COLUMN)).alias(FRAUD_VARIANT_COLUMN))
    # A sender's minute holds ~1.7 transactions, so a map-side partial aggregation saves no
    # shuffle; hashing the raw rows by sender first makes the aggregation run after that one
    # exchange (sender_account is part of the grouping key) and spreads it evenly over the
    # cores. Measured on 1M transactions, local[2]: windows + collect 11 s instead of 21-23 s.
    return window_features(transactions.repartition(F.col("sender_account")), extra_aggregations=extra)


def epoch_ms(series: pd.Series) -> np.ndarray:
    """A column of timestamps (naive = UTC, any unit) or epoch ms as int64 epoch ms."""
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def collect_windows(windows: Any, *, progress: Progress, params: HistoryParams | None = None) -> pd.DataFrame:
    """The Spark windows as pandas in (window_start, sender_account) order, with context.

    window_start/window_end become epoch ms (int64), what SenderHistory and spark_apps.bursts
    read; the receiver hashes are consumed by the history and dropped.
    """
    progress("building 1-minute sender windows")
    pdf = windows.toPandas()
    if pdf.empty:
        raise ModelError("no transactions: the input holds no windows")
    for name in ("window_start", "window_end"):
        pdf[name] = epoch_ms(pdf[name])
    pdf = pdf.sort_values(["window_start", "sender_account"], kind="stable", ignore_index=True)
    progress(f"adding sender context to {len(pdf):,} windows")
    return add_context(pdf, params)


def add_context(windows: pd.DataFrame, params: HistoryParams | None = None) -> pd.DataFrame:
    """`windows` (epoch-ms window_start, receiver_hashes) plus history.CONTEXT_FEATURES and pair_start."""
    flat, offsets = receiver_arrays(windows[RECEIVERS_COLUMN])
    context = SenderHistory(params).advance(windows, flat, offsets)
    return pd.concat([windows.drop(columns=[RECEIVERS_COLUMN]), context], axis=1)


def time_split(window_start: pd.Series | np.ndarray, train_fraction: float, *,
               end_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks: the earlier `train_fraction` of the minutes, and the later ones up to `end_ms`.

    By minutes, not windows: every window of a minute falls on the same side, and the test
    side is the later traffic, as a model meets it after it was trained. The cut depends on
    the minutes alone; `end_ms` (a window start) only ends the test range.
    """
    starts = np.asarray(window_start, dtype=np.int64)
    minutes = np.unique(starts)
    if len(minutes) < 2:
        raise ModelError(f"a time split needs at least two minutes of data, got {len(minutes)}")
    cut = minutes[min(max(int(round(len(minutes) * train_fraction)), 1), len(minutes) - 1)]
    test = starts >= cut
    if end_ms is not None:
        test &= starts <= end_ms
    return starts < cut, test


def warmup_mask(window_start: pd.Series | np.ndarray, is_train: np.ndarray, minutes: float) -> np.ndarray:
    """The train windows of the history warm-up: the first `minutes` of the data, at most half the train minutes.

    In those minutes every sender is new to the history (no baseline, every receiver new,
    idle for the cap), unlike anything the stream sees once it has run a while; fitted on,
    they put ordinary businesses where mules are (measured: docs/detection.md).
    """
    starts = np.asarray(window_start, dtype=np.int64)
    train = np.asarray(is_train, dtype=bool)
    if minutes <= 0 or not train.any():
        return np.zeros(len(starts), dtype=bool)
    train_minutes = np.unique(starts[train])
    first = int(train_minutes[0])
    end = min(first + int(minutes * 60_000), int(train_minutes[len(train_minutes) // 2]))
    return train & (starts < end)


def last_labelled_minute(windows: pd.DataFrame) -> int | None:
    """The start of the last window holding labelled fraud (None without labels).

    The test range of a time split ends there: a generated file runs on after its last burst
    (whole_minutes: pending bursts finish, no new one starts), and trailing minutes without a
    single label would be counted as fraud-free traffic; with real labels, the newest minutes
    are the ones whose labels have not arrived yet.
    """
    fraud = windows["fraud_tx"].to_numpy() > 0
    return int(windows["window_start"].to_numpy(dtype=np.int64)[fraud].max()) if fraud.any() else None

"""The one definition of the per-sender, 1-minute window features.

Training and the streaming job both call `window_features`, so a model is always scored
on exactly the features it was fitted on. Every output column is a plain aggregate over
(sender_account, 1-minute tumbling window), or the ratio of two of them: no countDistinct
and no post-aggregation joins, so the same function runs on a static DataFrame and on a
streaming one (the caller applies the watermark before calling it).
"""
from __future__ import annotations

from typing import Final, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fraudpipe.contracts import FAILED_STATUSES, REMOTE_CHANNELS, TRANSFER_TYPES, enum_symbols

WINDOW_DURATION: Final = "1 minute"
WINDOW_MS: Final = 60_000

# Card-testing fraud probes a card with tiny charges; 5.00 in minor units is far below
# the typical purchase, so "how many tiny charges" separates it from busy normal senders.
SMALL_AMOUNT_MINOR: Final = 500

KEY_COLUMNS: Final = ("sender_account", "window_start", "window_end")

# The transaction fields window_features reads: all the streaming source has to decode.
INPUT_COLUMNS: Final = (
    "event_time", "sender_account", "receiver_account", "amount_minor", "transaction_type", "status", "channel",
)

# Ordered: the model's feature vector follows this order, and so does the metadata.
FEATURE_NAMES: Final = (
    "tx_count",
    "total_amount_minor",
    "failed_count",
    "distinct_receivers",
    "max_amount_minor",
    "small_amount_count",
    "avg_amount_minor",
    "failed_ratio",
    "distinct_types",
    "transfer_count",
    "remote_amount_minor",
)

# What a window carries beside its features for the per-sender history (spark_apps.history):
# first and last event time (epoch ms, long) place a burst against the minute boundary, and
# the receivers as 32-bit hashes (the low 32 bits of xxhash64, as int) tell known payees from
# strangers. Hashes instead of the account strings keep the streaming state small; a
# collision inside one sender's minute (odds ~n^2/2^33) only undercounts distinct receivers.
FIRST_EVENT_MS: Final = "first_event_ms"
LAST_EVENT_MS: Final = "last_event_ms"
RECEIVER_HASHES: Final = "receiver_hashes"
CONTEXT_INPUT_COLUMNS: Final = (FIRST_EVENT_MS, LAST_EVENT_MS, RECEIVER_HASHES)

OUTPUT_COLUMNS: Final = KEY_COLUMNS + FEATURE_NAMES + CONTEXT_INPUT_COLUMNS

# Means computed after the aggregation from sums it holds anyway: an avg() keeps two more
# fields per open window in the streaming state; dropping both avg()s cut the job's CPU per
# transaction by ~7% (benchmarks/stream ladder). Equal to avg(): the sums are exact longs.
RATIO_FEATURES: Final = {"avg_amount_minor": ("total_amount_minor", "tx_count"),
                         "failed_ratio": ("failed_count", "tx_count")}

# Features the alerts tables have their own columns for; the rest travel in `features` JSON.
TABLE_FEATURES: Final = ("tx_count", "total_amount_minor", "failed_count", "distinct_receivers", "max_amount_minor")

# Integer-valued features (the others are means and ratios).
INTEGER_FEATURES: Final = tuple(n for n in FEATURE_NAMES if n not in ("avg_amount_minor", "failed_ratio"))


def receiver_hash(column: Column) -> Column:
    """The low 32 bits of xxhash64(column) as a signed int; null stays null.

    Bit arithmetic instead of cast("int"): under ANSI mode (Spark 4's default) a long
    outside the int range fails the cast instead of wrapping.
    """
    low = (F.xxhash64(column).bitwiseAND(F.lit(0xFFFFFFFF)) + F.lit(1 << 31)).bitwiseAND(F.lit(0xFFFFFFFF))
    return F.when(column.isNotNull(), (low - F.lit(1 << 31)).cast("int"))


def feature_aggregations() -> list[Column]:
    """The aggregate expressions of FEATURE_NAMES except RATIO_FEATURES, then the context inputs.

    distinct_receivers is not among them: it is size(receiver_hashes), taken after the aggregation.
    """
    failed = F.col("status").isin(sorted(FAILED_STATUSES)).cast("long")
    small = (F.col("amount_minor") < F.lit(SMALL_AMOUNT_MINOR)).cast("long")
    remote_amount = F.when(F.col("channel").isin(sorted(REMOTE_CHANNELS)), F.col("amount_minor")).otherwise(F.lit(0))
    return [
        F.count(F.lit(1)).alias("tx_count"),
        F.sum(F.col("amount_minor")).cast("long").alias("total_amount_minor"),
        F.sum(failed).alias("failed_count"),
        F.max(F.col("amount_minor")).cast("long").alias("max_amount_minor"),
        F.sum(small).alias("small_amount_count"),
        # A busy genuine sender mixes purchases, transfers and withdrawals in a minute; a
        # scripted burst repeats one or two types, so the mix separates the two at equal volume.
        _distinct_types().alias("distinct_types"),
        F.sum(F.col("transaction_type").isin(sorted(TRANSFER_TYPES)).cast("long")).alias("transfer_count"),
        # What separates a two-transfer account takeover from an honest minute with one or
        # two big payments is mostly where the money went out: a takeover is all remote.
        F.sum(remote_amount).alias("remote_amount_minor"),
        F.min(F.col("event_time")).alias(FIRST_EVENT_MS),
        F.max(F.col("event_time")).alias(LAST_EVENT_MS),
        # collect_set (not countDistinct: streaming aggregations reject it) of 4-byte hashes,
        # not of the account strings: the set is the largest part of an open window's state.
        F.collect_set(receiver_hash(F.col("receiver_account"))).alias(RECEIVER_HASHES),
    ]


def _distinct_types() -> Column:
    """Exact count of distinct transaction types: one bit per enum symbol, OR-ed, then counted.

    transaction_type is the schema's enum, so this equals size(collect_set(...)) while the
    aggregation buffer is one long instead of a serialized set (the stream keeps it per open
    window in the state store). Nulls (DLQ carriers) set no bit, as collect_set skips them.
    Measured in benchmarks/stream: see the README's stream section.
    """
    symbols = F.array(*[F.lit(s) for s in enum_symbols("transaction_type")])
    position = F.array_position(symbols, F.col("transaction_type"))
    # bit 0 stands for a value outside the enum (not expected; counted, not dropped)
    bit = F.when(F.col("transaction_type").isNotNull(), F.pow(F.lit(2), position).cast("long"))
    return F.coalesce(F.bit_count(F.bit_or(bit)), F.lit(0)).cast("long")


def window_features(transactions: DataFrame, *, extra_aggregations: Sequence[Column] = ()) -> DataFrame:
    """Per sender and 1-minute event-time window: OUTPUT_COLUMNS (KEY_COLUMNS + FEATURE_NAMES + context inputs).

    `transactions` needs INPUT_COLUMNS: sender_account, receiver_account, status,
    transaction_type and channel (strings), amount_minor (long) and event_time (timestamp).
    `extra_aggregations` are appended after the features (training uses it to carry window
    labels along without a second shuffle).
    """
    grouped = transactions.groupBy(
        F.col("sender_account"), F.window(F.col("event_time"), WINDOW_DURATION).alias("window")
    )
    aggregated = grouped.agg(*feature_aggregations(), *extra_aggregations)
    extra_names = [c for c in aggregated.columns
                   if c not in ("sender_account", "window", *FEATURE_NAMES, *CONTEXT_INPUT_COLUMNS)]
    return aggregated.select(
        F.col("sender_account"),
        F.col("window.start").alias("window_start"),
        F.col("window.end").alias("window_end"),
        *[_feature(name) for name in FEATURE_NAMES],
        F.unix_millis(F.col(FIRST_EVENT_MS)).alias(FIRST_EVENT_MS),
        F.unix_millis(F.col(LAST_EVENT_MS)).alias(LAST_EVENT_MS),
        F.col(RECEIVER_HASHES),
        *[F.col(name) for name in extra_names],
    )


def _feature(name: str) -> Column:
    if name == "distinct_receivers":
        return F.size(F.col(RECEIVER_HASHES)).cast("long").alias(name)
    return _ratio(name) if name in RATIO_FEATURES else F.col(name)


def _ratio(name: str) -> Column:
    numerator, denominator = RATIO_FEATURES[name]  # tx_count >= 1 in every window
    return (F.col(numerator).cast("double") / F.col(denominator)).alias(name)

"""The one window-feature definition: values on a hand-made batch, and parity between a
static DataFrame (training) and a watermarked streaming query (the stream job)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.features import FEATURE_NAMES, OUTPUT_COLUMNS, window_features

pytestmark = pytest.mark.spark

T0 = dt.datetime(2026, 11, 21, 10, 0, 0)

SCHEMA = T.StructType(
    [
        T.StructField("transaction_id", T.StringType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("sender_account", T.StringType()),
        T.StructField("receiver_account", T.StringType()),
        T.StructField("amount_minor", T.LongType()),
        T.StructField("status", T.StringType()),
        T.StructField("transaction_type", T.StringType()),
        T.StructField("channel", T.StringType()),
    ]
)


def rows() -> list[tuple]:
    def at(seconds: float) -> dt.datetime:
        return T0 + dt.timedelta(seconds=seconds)

    return [
        # alice, minute 0: 3 tx, 2 receivers, 3 types, one declined (a remote transfer), one tiny
        ("t1", at(1), "alice", "bob", 2500, "APPROVED", "PURCHASE", "POS"),
        ("t2", at(20), "alice", "bob", 100, "DECLINED", "TRANSFER", "ONLINE"),
        ("t3", at(59.999), "alice", "carol", 10000, "APPROVED", "WITHDRAWAL", "ATM"),
        # alice, minute 1 (the boundary belongs to the next window)
        ("t4", at(60), "alice", "dave", 700, "FAILED", "TRANSFER", "MOBILE"),
        # mallory, minute 0: card testing, 4 tiny charges, 3 failures, 4 receivers
        ("t5", at(5), "mallory", "m1", 100, "DECLINED", "PURCHASE", "ONLINE"),
        ("t6", at(6), "mallory", "m2", 101, "FAILED", "PURCHASE", "ONLINE"),
        ("t7", at(7), "mallory", "m3", 99, "DECLINED", "PURCHASE", "MOBILE"),
        ("t8", at(8), "mallory", "m4", 150, "APPROVED", "PURCHASE", "ONLINE"),
    ]


def as_dicts(df) -> dict[tuple, dict]:
    return {(r["sender_account"], r["window_start"]): r.asDict() for r in df.collect()}


def test_features_of_a_hand_made_batch(spark) -> None:
    out = window_features(spark.createDataFrame(rows(), SCHEMA))
    assert tuple(out.columns) == OUTPUT_COLUMNS
    got = as_dicts(out)
    assert set(got) == {("alice", T0), ("alice", T0 + dt.timedelta(minutes=1)), ("mallory", T0)}
    alice = got[("alice", T0)]
    assert alice["window_end"] == T0 + dt.timedelta(minutes=1)
    assert [alice[n] for n in FEATURE_NAMES] == [3, 12600, 1, 2, 10000, 1, pytest.approx(4200.0), pytest.approx(1 / 3), 3, 1, 100]
    mallory = got[("mallory", T0)]
    assert [mallory[n] for n in FEATURE_NAMES] == [4, 450, 3, 4, 150, 4, pytest.approx(112.5), pytest.approx(0.75), 1, 0, 450]
    later = got[("alice", T0 + dt.timedelta(minutes=1))]
    assert (later["tx_count"], later["failed_count"], later["small_amount_count"], later["transfer_count"]) == (1, 1, 0, 1)
    assert later["remote_amount_minor"] == 700


def test_streaming_query_computes_the_same_features(spark, tmp_path: Path) -> None:
    data = rows()
    source = tmp_path / "source"
    # two files read one per micro-batch, so windows are merged across batches from state
    for i, part in enumerate((data[0::2], data[1::2])):
        spark.createDataFrame(part, SCHEMA).coalesce(1).write.parquet(str(source / f"part={i}"))
    static = as_dicts(window_features(spark.createDataFrame(data, SCHEMA)))

    latest: dict[tuple, dict] = {}

    def collect(batch, batch_id: int) -> None:
        latest.update(as_dicts(batch))  # update mode: the newest row of a window wins

    stream = (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .option("recursiveFileLookup", "true")
        .parquet(str(source))
        .withWatermark("event_time", "30 seconds")
    )
    query = (
        window_features(stream)
        .writeStream.outputMode("update")
        .foreachBatch(collect)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination(120)
    finally:
        query.stop()
    assert query.lastProgress is not None and query.exception() is None
    assert latest == static


def test_context_inputs_event_time_bounds_and_receiver_hashes(spark) -> None:
    data = rows() + [("t9", T0 + dt.timedelta(seconds=30), "nobody-paid", None, 5, "APPROVED", "OTHER", "POS")]
    got = as_dicts(window_features(spark.createDataFrame(data, SCHEMA)))
    alice = got[("alice", T0)]
    t0_ms = int(T0.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert (alice["first_event_ms"], alice["last_event_ms"]) == (t0_ms + 1_000, t0_ms + 59_999)
    # the low 32 bits of Spark's xxhash64, as a signed int, one per distinct receiver
    [full] = spark.range(1).select(*[F.xxhash64(F.lit(name)) for name in ("bob", "carol")]).collect()
    expected = {((h & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 for h in full}
    assert set(alice["receiver_hashes"]) == expected and alice["distinct_receivers"] == 2
    assert len(got[("mallory", T0)]["receiver_hashes"]) == 4
    # a null receiver adds no hash (as collect_set of the strings skipped it)
    nobody = got[("nobody-paid", T0)]
    assert nobody["receiver_hashes"] == [] and nobody["distinct_receivers"] == 0


def test_extra_aggregations_ride_along(spark) -> None:
    out = window_features(
        spark.createDataFrame(rows(), SCHEMA),
        extra_aggregations=[F.max(F.col("transaction_id")).alias("last_id")],
    )
    assert tuple(out.columns) == OUTPUT_COLUMNS + ("last_id",)
    assert as_dicts(out)[("mallory", T0)]["last_id"] == "t8"

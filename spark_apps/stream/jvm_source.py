"""Spark's own Kafka source (spark-sql-kafka-0-10) with Confluent Avro decoded on the JVM (spark.kafka_source: jvm).

Rows leave this module exactly as the Python source's do (spark_apps/stream/kafka_source.py):
the reader schema's projected columns plus `record_kind`, with late and undecodable
records turned into carrier rows, so the windows, scoring and metrics downstream are the
same code for both sources. What differs is where the work happens:

- Kafka: Spark's KafkaSource plans offset ranges (Admin listOffsets) and reads them; the
  offsets live in the checkpoint as for any Spark query.
- Decoding: the 5-byte Confluent frame is split with SQL byte functions and the body goes
  through spark-avro's from_avro, one per writer schema id known when the query was
  planned, each resolved to the reader schema (option avroSchema). PERMISSIVE mode turns a
  corrupt body into a null record: a DLQ row.
- A writer schema id the plan does not know stops the query with UnknownWriterSchema; the
  supervisor (spark_apps/stream/jvm_supervisor.py) looks the id up in the registry and re-plans,
  and Spark replays the failed batch from the checkpoint: a v1 -> v2 change mid-stream
  costs one restart and loses nothing.
- Late records: the batch's watermark comes from Spark's offsets log (the newest entry is
  the batch being run, and a replay runs the same entry), read per micro-batch by a
  one-row static side joined to the stream.
- The DLQ: the positions of undecodable rows are collected with observe(); after the
  batch, the foreachBatch wrapper fetches those records and produces them to the DLQ
  topic with the Python source's headers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Mapping

from fraudpipe import contracts
from fraudpipe.config import Config, SparkConfig
from fraudpipe.errors import SerializationError, StreamError
from spark_apps.stream import decode as sd

SPARK_KAFKA: Final = "org.apache.spark:spark-sql-kafka-0-10_2.13"
SPARK_AVRO: Final = "org.apache.spark:spark-avro_2.13"
UNKNOWN_ID_MARKER: Final = "fraudpipe: writer schema id not planned: "
DLQ_OBSERVATION: Final = "fraudpipe_dead_letters"
REASON_NOT_FRAMED: Final = "not a Confluent Avro frame (magic byte 0 and a 4-byte schema id)"
REASON_NOT_TRANSACTION: Final = "schema id {id} is not a transaction schema the reader schema can read"
REASON_CORRUPT: Final = "corrupt Avro body for schema id {id}"


def packages(pyspark_version: str | None = None) -> list[str]:
    """Maven coordinates of the two jars at exactly the installed pyspark version."""
    if pyspark_version is None:
        import pyspark

        pyspark_version = pyspark.__version__
    return [f"{SPARK_KAFKA}:{pyspark_version}", f"{SPARK_AVRO}:{pyspark_version}"]


def _artifact(jar: Path) -> str:
    """'kafka-clients' of 'kafka-clients-3.9.2.jar'."""
    stem = jar.name.removesuffix(".jar")
    parts = stem.split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts)


def _shipped_artifacts() -> set[str]:
    import pyspark

    return {_artifact(j) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def jar_files(directory: Path) -> list[Path]:
    """The jars of `directory` that Spark does not ship itself (pyspark/jars has its own hadoop, scala ...)."""
    import pyspark

    if not directory.is_dir():
        raise StreamError(f"spark.kafka_jars_dir {directory} is not a directory (realstack/ fetches the jars)")
    shipped = _shipped_artifacts()
    jars = sorted(j for j in directory.glob("*.jar") if _artifact(j) not in shipped)
    for coordinate in packages(pyspark.__version__):
        artifact, version = coordinate.split(":")[1:]
        if not any(j.name == f"{artifact}-{version}.jar" for j in jars):
            raise StreamError(f"spark.kafka_jars_dir {directory} has no {artifact}-{version}.jar "
                              f"(the jar must match pyspark {version})")
    return jars


def session_options(config: SparkConfig, resolve: Any = None) -> dict[str, str]:
    """Spark conf that puts the Kafka source and spark-avro on the classpath (nothing for the Python source)."""
    if config.kafka_source != "jvm":
        return {}
    if config.kafka_jars_dir:
        directory = Path(resolve(config.kafka_jars_dir) if resolve else config.kafka_jars_dir)
        return {"spark.jars": ",".join(str(j) for j in jar_files(directory))}
    return {"spark.jars.packages": ",".join(packages())}


# --- writer schemas ------------------------------------------------------------------------
@dataclass(frozen=True)
class WriterSchemas:
    """What the plan decodes: writer schema JSON by id, and ids known not to be transactions."""

    decodable: Mapping[int, str]
    undecodable: frozenset[int] = field(default_factory=frozenset)

    def known(self) -> set[int]:
        return set(self.decodable) | set(self.undecodable)


def _readable(writer: str, reader_version: int) -> bool:
    from fraudpipe.registry.compatibility import reader_writer_problems

    return not reader_writer_problems(json.dumps(contracts.transaction_schema(reader_version)), writer)


def plan_writer_schemas(registry_url: str, reader_version: int, *, topic: str = contracts.TRANSACTIONS_TOPIC,
                        previous: WriterSchemas | None = None, new_ids: tuple[int, ...] = ()) -> WriterSchemas:
    """Every version of the topic's value subject, plus `new_ids` looked up one by one.

    Writer schemas come self-contained (references resolved), as from_avro needs them.
    """
    from fraudpipe.registry_client import RegistrySchemas

    registry = RegistrySchemas(registry_url, unavailable=StreamError)
    decodable = dict(previous.decodable) if previous else {}
    undecodable = set(previous.undecodable) if previous else set()
    try:
        for schema_id, writer in registry.subject_versions(contracts.value_subject(topic)):
            if _readable(writer, reader_version):
                decodable[schema_id] = writer
        for schema_id in new_ids:
            if schema_id in decodable:
                continue
            try:
                writer = registry.text(schema_id)
            except SerializationError:  # unknown id, or a schema that cannot be resolved: its records are DLQ rows
                undecodable.add(schema_id)
                continue
            if _readable(writer, reader_version):
                decodable[schema_id] = writer
            else:
                undecodable.add(schema_id)
    finally:
        registry.close()
    return WriterSchemas(decodable, frozenset(undecodable - set(decodable)))


# --- the batch watermark -----------------------------------------------------------------
def newest_batch_watermark(checkpoint: str) -> int:
    """batchWatermarkMs of the newest entry of Spark's offsets log: the batch being run (0 if none)."""
    offsets = Path(checkpoint) / "offsets"
    try:
        batches = sorted((int(p.name) for p in offsets.iterdir() if p.name.isdigit()), reverse=True)
    except FileNotFoundError:
        return 0
    for batch in batches[:2]:  # a file being written has no watermark line yet
        lines = (offsets / str(batch)).read_text().splitlines()
        if len(lines) >= 2:
            try:
                return int(json.loads(lines[1]).get("batchWatermarkMs", 0))
            except json.JSONDecodeError:
                continue
    return 0


def watermark_side(spark: Any, checkpoint: str) -> Any:
    """A one-row DataFrame holding the running batch's watermark, recomputed every micro-batch."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import udf

    read = udf(lambda path: newest_batch_watermark(path), "long").asNondeterministic()
    return spark.range(1).select(read(F.lit(checkpoint)).alias("_batch_watermark_ms"))


# --- extract -----------------------------------------------------------------------------
def extract_transactions(spark: Any, config: Config, *, topic: str, checkpoint: str,
                         schemas: WriterSchemas) -> Any:
    """The topic as the Python source's rows (projected columns + record_kind), decoded on the JVM."""
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    from spark_apps.features import INPUT_COLUMNS

    spark_config = config.spark
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
              .option("subscribe", topic)
              .option("startingOffsets", "earliest")
              .option("failOnDataLoss", "true"))
    if spark_config.max_records_per_trigger > 0:
        reader = reader.option("maxOffsetsPerTrigger", str(spark_config.max_records_per_trigger))
    raw = reader.load()

    value = F.col("value")
    # a null value (a tombstone) is no frame either
    framed = F.coalesce((F.length(value) >= 5) & (F.substring(value, 1, 1) == F.unhex(F.lit("00"))), F.lit(False))
    schema_id = F.when(framed, F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("long"))
    known = sorted(schemas.known())
    planned = F.when(framed & ~schema_id.isin(known) if known else framed,
                     F.raise_error(F.concat(F.lit(UNKNOWN_ID_MARKER), schema_id.cast("string")))
                     ).otherwise(schema_id)
    body = F.expr("substring(value, 6)")
    reader_json = json.dumps(contracts.transaction_schema(spark_config.reader_schema_version))
    options = {"avroSchema": reader_json, "mode": "PERMISSIVE"}
    record = None
    for schema_id_value, writer in sorted(schemas.decodable.items()):
        decoded = from_avro(body, writer, options)
        record = (F.when(planned == schema_id_value, decoded) if record is None
                  else record.when(planned == schema_id_value, decoded))
    if record is None:  # no writer schema registered yet: every framed record stops the query and re-plans
        record = F.lit(None).cast(_reader_struct(spark_config.reader_schema_version))
    decoded_df = raw.select("partition", "offset", planned.alias("_schema_id"), framed.alias("_framed"),
                            record.alias("_record"))
    reason = (F.when(~F.col("_framed"), F.lit(REASON_NOT_FRAMED))
              .when(F.col("_schema_id").isin(sorted(schemas.undecodable) or [-1]),
                    F.format_string(REASON_NOT_TRANSACTION.replace("{id}", "%d"), F.col("_schema_id")))
              .when(corrupt(spark_config.reader_schema_version), F.format_string(REASON_CORRUPT.replace("{id}", "%d"),
                                                                                  F.col("_schema_id"))))
    with_reason = decoded_df.withColumn("_dlq_reason", reason).observe(
        DLQ_OBSERVATION,
        F.collect_list(F.when(F.col("_dlq_reason").isNotNull(),
                              F.struct("partition", "offset", "_dlq_reason"))).alias("records"))
    with_watermark = with_reason.crossJoin(F.broadcast(watermark_side(spark, checkpoint)))
    return carriers(with_watermark, spark_config.reader_schema_version, INPUT_COLUMNS)


def corrupt(reader_version: int) -> Any:
    """A record from_avro could not decode. PERMISSIVE mode yields a record whose fields are all
    null for a corrupt body (not a null record), so a required field being null is the sign."""
    from functools import reduce

    from pyspark.sql import functions as F

    required = [f["name"] for f in contracts.transaction_schema(reader_version)["fields"]
                if not (isinstance(f["type"], list) and "null" in f["type"])]
    return reduce(lambda a, b: a | b, [F.col(f"_record.{name}").isNull() for name in required],
                  F.col("_record").isNull())


def _reader_struct(reader_version: int) -> str:
    """The reader schema as the Spark struct type from_avro yields for it."""
    fields = [part.split(" ", 1) for part in sd.spark_ddl(reader_version).split(", ")]
    return "struct<" + ",".join(f"{name}:{kind}" for name, kind in fields if name != sd.KIND_COLUMN) + ">"


def carriers(frame: Any, reader_version: int, columns: tuple[str, ...]) -> Any:
    """Decoded rows -> the source's rows: late and DLQ records become carriers, as stream/decode.py defines them."""
    from pyspark.sql import functions as F

    wm = F.col("_batch_watermark_ms")
    event = F.col("_record.event_time")
    event_ms = F.unix_millis(event)
    window_end = (F.floor(event_ms / F.lit(sd.WINDOW_MS)) + 1) * F.lit(sd.WINDOW_MS)
    dlq = F.col("_dlq_reason").isNotNull()
    late = ~dlq & (wm > 0) & (window_end <= wm)
    kind = F.when(dlq, F.lit(sd.KIND_DLQ)).when(late, F.lit(sd.KIND_LATE)).otherwise(F.lit(sd.KIND_TRANSACTION))
    carrier_time = F.timestamp_millis(F.greatest(wm, F.lit(0)) + 1)
    out = []
    for f in sd.output_schema(reader_version, columns):
        if f.name == sd.KIND_COLUMN:
            out.append(kind.cast("tinyint").alias(f.name))
        elif f.name == "event_time":
            out.append(F.when(dlq | late, carrier_time).otherwise(event).alias(f.name))
        elif f.name == "sender_account":
            out.append(F.when(dlq | late, F.lit(None).cast("string")).otherwise(F.col("_record.sender_account"))
                       .alias(f.name))
        else:
            out.append(F.col(f"_record.{f.name}").alias(f.name))
    return frame.select(*out)


def observed_dead_letters(query: Any) -> list[tuple[int, int, str]]:
    """(partition, offset, reason) of the undecodable records of the micro-batch `query` has just run.

    The metrics live on the stream's IncrementalExecution: the DataFrame foreachBatch gets
    is a LogicalRDD over that execution's RDD, so running it fills them, but its own
    queryExecution has none.
    """
    metrics = query._jsq.streamingQuery().lastExecution().observedMetrics()
    if not metrics.contains(DLQ_OBSERVATION):
        return []
    records = metrics.apply(DLQ_OBSERVATION).getList(0)
    return [(int(records.get(i).getInt(0)), int(records.get(i).getLong(1)), str(records.get(i).getString(2)))
            for i in range(records.size())]


# --- the image's jars ----------------------------------------------------------------------
def fetch_jars(directory: Path) -> list[Path]:
    """Resolve packages() with Spark's own Ivy (from Maven Central) into `directory`: what jar_files keeps.

    Run once at image build (docker/app.Dockerfile), so a container downloads nothing at run time.
    """
    import shutil
    import tempfile

    from pyspark.sql import SparkSession

    with tempfile.TemporaryDirectory() as ivy:
        session = (SparkSession.builder.master("local[1]").appName("fraudpipe-fetch-jars")
                   .config("spark.jars.packages", ",".join(packages()))
                   .config("spark.jars.ivy", ivy).config("spark.ui.enabled", "false").getOrCreate())
        session.stop()
        directory.mkdir(parents=True, exist_ok=True)
        shipped = _shipped_artifacts()
        for jar in (Path(ivy) / "jars").glob("*.jar"):  # Ivy names them <organisation>_<artifact>-<version>.jar
            target = directory / jar.name.split("_", 1)[-1]
            if _artifact(target) not in shipped:  # only what pyspark/jars lacks: `--jars DIR/*.jar` takes them all
                shutil.copy2(jar, target)
    return jar_files(directory)


if __name__ == "__main__":  # python -m spark_apps.stream.jvm_source DIR
    import sys

    for jar in fetch_jars(Path(sys.argv[1])):
        print(jar)

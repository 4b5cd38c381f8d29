"""The streaming detection job: Kafka -> 1-minute sender windows -> KMeans scoring -> alerts and metrics.

extract_* reads the transactions topic through the jar-free Python Kafka source, or Spark's
own (spark.kafka_source: jvm, spark_apps/stream/jvm_source.py);
transform_* bounds state with the watermark and builds the shared window features with
a stateful streaming aggregation (append mode: a window is emitted once, when the
watermark closes it); load_* scores each micro-batch's closed windows with the newest
published model (re-read every batch: hot reload without a restart) and upserts alerts
and per-(minute, batch) metrics, so a replayed batch overwrites instead of doubling.

Run as `fraudpipe stream` or `spark-submit spark_apps/stream/job.py`.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Any

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import click

from fraudpipe import contracts
from fraudpipe.config import Config, SparkConfig, load_config
from fraudpipe.errors import ModelError, StreamError
from spark_apps.stream import decode as sd

log = logging.getLogger("fraudpipe.stream")

QUERY_NAME = contracts.STREAM_QUERY_NAME


# --- extract ---------------------------------------------------------------------------
def extract_transactions(spark: Any, config: Config, *, topic: str = contracts.TRANSACTIONS_TOPIC,
                         checkpoint: str | None = None) -> Any:
    """The transactions topic as a streaming DataFrame (decoded rows plus carrier rows).

    With spark.kafka_source=jvm the decoder is planned for the writer schemas registered now
    (start_query supervises the query so that a later one re-plans it).
    """
    from spark_apps.features import INPUT_COLUMNS
    from spark_apps.stream.kafka_source import SOURCE_NAME, KafkaTransactionsSource

    if config.spark.kafka_source == "jvm":
        from spark_apps.stream import jvm_source

        schemas = jvm_source.plan_writer_schemas(config.schema_registry.url, config.spark.reader_schema_version,
                                                 topic=topic)
        return jvm_source.extract_transactions(spark, config, topic=topic, schemas=schemas,
                                               checkpoint=checkpoint or str(config.path(config.spark.checkpoint_dir)))

    spark.dataSource.register(KafkaTransactionsSource)
    return (
        spark.readStream.format(SOURCE_NAME)
        .option("bootstrap_servers", config.kafka.bootstrap_servers)
        .option("topic", topic)
        .option("registry_url", config.schema_registry.url)
        .option("dlq_topic", contracts.STREAM_DLQ_TOPIC)
        .option("reader_schema_version", str(config.spark.reader_schema_version))
        .option("max_records_per_trigger", str(config.spark.max_records_per_trigger))
        # Spark prunes no columns of a Python source: decode only what the features read
        .option("columns", ",".join(INPUT_COLUMNS))
        # the source reads each batch's watermark from the offsets log to mark late records
        .option("checkpoint_location", checkpoint or str(config.path(config.spark.checkpoint_dir)))
        .load()
    )


# --- transform -------------------------------------------------------------------------
def transform_carriers(transactions: Any) -> Any:
    """Give carrier rows the amount that tells DLQ (1) from late (0) once aggregated.

    Carriers have no sender, so they form their own group per window; summing this
    amount over a carrier group yields its DLQ count, tx_count minus that its late count.
    """
    from pyspark.sql import functions as F

    kind = F.col(sd.KIND_COLUMN)
    amount = (F.when(kind == F.lit(sd.KIND_TRANSACTION), F.col("amount_minor"))
              .when(kind == F.lit(sd.KIND_DLQ), F.lit(1)).otherwise(F.lit(0)).cast("long"))
    return transactions.withColumn("amount_minor", amount)


def transform_watermarked(transactions: Any, *, watermark_seconds: int) -> Any:
    """Carrier amounts set, and the event-time watermark that bounds the window state."""
    return transform_carriers(transactions).withWatermark("event_time", f"{watermark_seconds} seconds")


def transform_windows(transactions: Any, *, watermark_seconds: int) -> Any:
    """Watermarked, stateful 1-minute tumbling windows per sender with the shared features."""
    from spark_apps.features import window_features

    return window_features(transform_watermarked(transactions, watermark_seconds=watermark_seconds))


# --- load ------------------------------------------------------------------------------
class BatchWriter:
    """foreachBatch: add history context to closed windows, score them with the latest model,
    upsert alerts and metrics, then record the batch's history beside the checkpoint."""

    def __init__(self, config: Config, *, checkpoint: str | None = None) -> None:
        self.config = config
        self.model_dir = config.path(config.model.dir)
        self._store: Any = None
        self.last_model_version: str | None = None
        self.timings: list[dict[str, float]] = []  # per-batch profile, read by the benchmark
        self.checkpoint = checkpoint or str(config.path(config.spark.checkpoint_dir))
        self._history: Any = None
        self._history_batch: int | None = None  # the batch id the in-memory history is as of

    def history(self, batch_id: int) -> Any:
        """The sender history as of batch_id - 1: kept in memory between batches, rebuilt from
        its files on the first batch after a start and whenever a batch runs again."""
        if self._history is None or self._history_batch != batch_id - 1:
            self._history = self.history_store().restore(batch_id)
        self._history_batch = None  # until this batch is recorded: a failure mid-way forces a rebuild
        return self._history

    def history_store(self) -> Any:
        from spark_apps.stream.history_store import HistoryStore, history_dir

        return HistoryStore(history_dir(self.checkpoint), snapshot_every=self.config.spark.history_snapshot_batches)

    def store(self) -> Any:
        if self._store is None:
            from fraudpipe.store import open_store

            self._store = open_store(self.config.store)
        return self._store

    def record_progress(self, batch_id: int) -> None:
        """The batch ran, whether or not it closed a window: the pipeline page's "last batch"."""
        self.store().record_stream_progress({"query": QUERY_NAME, "batch_id": int(batch_id),
                                             "updated_at": int(time.time() * 1000)})

    def model(self) -> Any:
        from spark_apps.model_registry import load_latest

        model = load_latest(self.model_dir)
        if model is None:
            raise ModelError(f"no published model under {self.model_dir}; run `fraudpipe train` first")
        if model.version != self.last_model_version:
            log.warning("scoring with model version %s", model.version)
            self.last_model_version = model.version
        return model

    @staticmethod
    def extended_alerts(store: Any, extensions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alert rows earlier batches wrote, moved on by this batch's extensions (outputs.alert_rows)."""
        from spark_apps.stream.outputs import extend_alerts

        written = {}
        for extension in extensions:
            sender, start = extension["sender_account"], int(extension["window_start"])
            for row in store.alerts_for_sender(sender=sender, since_ms=start, until_ms=start + 1, limit=1):
                written[(sender, start)] = row
        rows, missing = extend_alerts(written, extensions)
        for extension in missing:  # only a store emptied under a running stream gets here
            log.warning("alert of %s at %s goes on, but the store has no row of it: not extended",
                        extension["sender_account"], extension["window_start"])
        return rows

    def __call__(self, batch: Any, batch_id: int) -> None:
        from spark_apps.stream.context import BatchWindows
        from spark_apps.stream.outputs import build_outputs

        started = time.perf_counter()
        # closed windows only (small next to the input); Arrow keeps the receiver lists flat
        table = batch.toArrow()
        collected = time.perf_counter()
        if table.num_rows == 0:
            if self._history_batch == batch_id - 1:
                self._history_batch = batch_id  # nothing changed
            self.record_progress(batch_id)
            return
        windows = BatchWindows.from_arrow(table)
        history = self.history(batch_id)
        model = self.model()
        outputs = build_outputs(windows, model, batch_id=batch_id, now_ms=int(time.time() * 1000), history=history)
        scored = time.perf_counter()
        store = self.store()
        store.upsert_alerts(outputs.alerts + self.extended_alerts(store, outputs.alert_extensions))
        store.upsert_metrics(outputs.metrics)
        sunk = time.perf_counter()
        # after the sink: a crash before this line reruns the batch from the history of batch_id - 1
        self.history_store().commit(batch_id, history, outputs.history_slots, evict_before=outputs.evict_before)
        self._history_batch = batch_id
        self.record_progress(batch_id)
        self.timings.append({"batch_id": batch_id, "windows": table.num_rows, "collect_s": collected - started,
                             "score_s": scored - collected, "sink_s": sunk - scored,
                             "history_s": time.perf_counter() - sunk})


def load_alerts(windows: Any, config: Config, *, checkpoint: str | None = None, writer: BatchWriter | None = None,
                trigger_seconds: float | None = None) -> Any:
    """Start the query: append mode, foreachBatch into the store, checkpointed."""
    writer = writer or BatchWriter(config, checkpoint=checkpoint)
    if checkpoint is not None:
        writer.checkpoint = checkpoint  # its history lives beside this query's checkpoint
    interval = config.spark.trigger_seconds if trigger_seconds is None else trigger_seconds
    stream = (
        windows.writeStream.queryName(QUERY_NAME)
        .outputMode("append")
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint or str(config.path(config.spark.checkpoint_dir)))
    )
    if interval > 0:
        stream = stream.trigger(processingTime=f"{interval} seconds")
    return stream.start()


def start_query(spark: Any, config: Config, *, topic: str = contracts.TRANSACTIONS_TOPIC,
                checkpoint: str | None = None, writer: BatchWriter | None = None,
                trigger_seconds: float | None = None) -> Any:
    """extract -> transform -> load, returning the running StreamingQuery."""
    checkpoint = checkpoint or str(config.path(config.spark.checkpoint_dir))
    if config.spark.kafka_source == "jvm":
        return start_jvm_query(spark, config, topic=topic, checkpoint=checkpoint, writer=writer,
                               trigger_seconds=trigger_seconds)
    transactions = extract_transactions(spark, config, topic=topic, checkpoint=checkpoint)
    windows = transform_windows(transactions, watermark_seconds=config.spark.watermark_seconds)
    return load_alerts(windows, config, checkpoint=checkpoint, writer=writer, trigger_seconds=trigger_seconds)


def start_jvm_query(spark: Any, config: Config, *, topic: str, checkpoint: str, writer: BatchWriter | None = None,
                    trigger_seconds: float | None = None) -> Any:
    """The same query on Spark's Kafka source: supervised (re-planned on a new writer schema id), with the DLQ."""
    from spark_apps.stream import jvm_source
    from spark_apps.stream.jvm_supervisor import DeadLetterForwarder, SupervisedQuery

    forwarder = DeadLetterForwarder(writer or BatchWriter(config), bootstrap_servers=config.kafka.bootstrap_servers,
                                    topic=topic, dlq_topic=contracts.STREAM_DLQ_TOPIC)
    registry, reader_version = config.schema_registry.url, config.spark.reader_schema_version

    def start(schemas: jvm_source.WriterSchemas) -> Any:
        transactions = jvm_source.extract_transactions(spark, config, topic=topic, checkpoint=checkpoint, schemas=schemas)
        windows = transform_windows(transactions, watermark_seconds=config.spark.watermark_seconds)
        forwarder.query = None
        query = load_alerts(windows, config, checkpoint=checkpoint, writer=forwarder, trigger_seconds=trigger_seconds)
        forwarder.query = query
        return query

    def replan(schemas: jvm_source.WriterSchemas, new_id: int) -> jvm_source.WriterSchemas:
        return jvm_source.plan_writer_schemas(registry, reader_version, topic=topic, previous=schemas,
                                              new_ids=(new_id,))

    return SupervisedQuery(start, replan, jvm_source.plan_writer_schemas(registry, reader_version, topic=topic))


def run(config: Config, *, topic: str = contracts.TRANSACTIONS_TOPIC, checkpoint: str | None = None) -> None:
    """Run the job until it is stopped or fails (fails with a StreamError naming the cause)."""
    from spark_apps.model_registry import load_latest
    from spark_apps.session import build_session

    model_dir = config.path(config.model.dir)
    if load_latest(model_dir) is None:
        raise ModelError(f"no published model under {model_dir}; run `fraudpipe train` first")
    spark = build_session(stream_spark_config(config.spark), app_name=QUERY_NAME,
                          extra_java_options=config.spark.stream_java_options, kafka_jars=True)
    query = start_query(spark, config, topic=topic, checkpoint=checkpoint)
    log.warning("stream %s running (checkpoint %s)", QUERY_NAME, checkpoint or config.spark.checkpoint_dir)
    try:
        query.awaitTermination()
    except Exception as exc:  # StreamingQueryException: surface it as ours, with the cause
        raise StreamError(f"streaming query {QUERY_NAME} failed: {exc}") from exc
    finally:
        spark.stop()


@click.command(name="stream")
@click.option("--topic", default=contracts.TRANSACTIONS_TOPIC, show_default=True, help="Topic to read.")
@click.option("--checkpoint", default=None, help="Checkpoint directory (default: spark.checkpoint_dir).")
@click.option("--config", "config_file", default=None, help="Config file (default: config.yml).")
def stream_command(topic: str, checkpoint: str | None, config_file: str | None) -> None:
    """Run the Spark Structured Streaming fraud detection job."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    config = load_config(config_file)
    run(config, topic=topic, checkpoint=checkpoint)


def stream_spark_config(spark: SparkConfig) -> SparkConfig:
    """The Spark settings of the streaming driver: the shared ones with the stream's own heap limit."""
    return replace(spark, driver_memory=spark.stream_driver_memory)


def with_store_path(config: Config, sqlite_path: str) -> Config:
    """A copy of `config` writing to another SQLite file (tests and benchmarks)."""
    return replace(config, store=replace(config.store, sqlite_path=sqlite_path))


if __name__ == "__main__":  # spark-submit spark_apps/stream/job.py [--topic ...]
    from fraudpipe.cli import main as cli_main

    sys.exit(cli_main(["stream", *sys.argv[1:]]))

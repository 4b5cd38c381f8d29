"""Stream job benchmark: sustained tx/s on local[2], a stage profile, and freshness at several input rates.

    .venv/bin/python -m benchmarks.stream [--count 1000000] [--rates 2000,10000,30000] [--seconds 720]
                                          [--sources python,jvm] [--jars DIR]

Starts its own broker and Schema Registry on free loopback ports and a tiny model.
1. Throughput: `--count` transactions pre-published (simulated clock), then the real job
   (Kafka source -> watermarked windows -> scoring -> SQLite) drains them; tx/s counts
   input rows over the summed batch durations. The profile splits the time: Kafka fetch
   and Avro decode + Arrow build measured alone in this process, Spark's own duration
   breakdown per batch, the foreachBatch collect / score / sink timings, and a ladder:
   the job cut after the source, after bare stateful windows (a count only), after the
   features, each drained on its own, with CPU microseconds per transaction for each. The
   ladder bounds what any tuning can reach: cores * 1e6 / (us per tx) tx/s at best.
2. Freshness: the real producer (`fraudpipe produce`, realtime clock: event time = wall
   time) sends at each rate while the job runs. A window *closes* when the watermark
   passes its end: when the first record with event time >= window end + watermark delay
   reached Kafka (its CreateTime; the job cannot know earlier). Its freshness is when its
   minute's metrics row was first written minus that moment. All sender windows of a minute
   close together, so each closed minute is one sample; the first (producer start, cold
   query) is reported apart. Also printed: the lag from wall-clock window end + watermark,
   which adds the producer's own lag behind real time.
CPU: the 2 cores are shared, so every rate is also given per CPU-second of the Spark job
(JVM + Python workers + this driver process, from /proc), next to the load average.
Sources: every run is done for each spark.kafka_source in --sources (the jar-free Python
source and Spark's JVM Kafka source with spark-avro) on the same records, and the ladders
are printed side by side. Freshness percentiles need >= 10 closed minutes per rate: the
default --seconds 720 gives 11 after the first.
Target: >= 100,000 tx/s with p95 freshness <= 2 s.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudpipe import contracts
from fraudpipe.broker import EmbeddedBroker, ensure_topics, free_port
from fraudpipe.config import load_config
from fraudpipe.registry.server import RegistryServer
from fraudpipe.store import open_store

TARGET_RATE, TARGET_P95_S = 100_000, 2.0
MIN_CLOSED_MINUTES = 10  # freshness percentiles need at least this many closed minutes per rate
STALL_S = 15.0
SOURCES = ("python", "jvm")


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        ticks[int(entry)] = int(fields[11]) + int(fields[12])  # utime, stime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def spark_cpu_seconds(spark) -> float:
    """CPU seconds used so far by the Spark JVM (with its Python workers) and this driver process."""
    me = os.times()
    jvm = spark.sparkContext._gateway.proc.pid  # spark-submit's java, parent of the Python workers
    return _tree_cpu_seconds(jvm) + me.user + me.system


def configure(base, broker, registry, work: Path, *, watermark: int, max_records: int, trigger: float,
              source: str = "python"):
    from workloads.stream import publish_model, tiny_model

    publish_model(work / "models", tiny_model())
    return dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, bootstrap_servers=broker.bootstrap_servers),
        schema_registry=dataclasses.replace(base.schema_registry, url=registry.url),
        store=dataclasses.replace(base.store, backend="sqlite", sqlite_path=str(work / "store.db")),
        model=dataclasses.replace(base.model, dir=str(work / "models")),
        spark=dataclasses.replace(base.spark, checkpoint_dir=str(work / "ck"), watermark_seconds=watermark,
                                  max_records_per_trigger=max_records, trigger_seconds=trigger, kafka_source=source),
    )


def decode_profile(config, topic: str, limit: int = 100_000) -> dict[str, float]:
    """Fetch alone, then decode + Arrow alone, on the first `limit` records of partition 0."""
    from confluent_kafka import Consumer, TopicPartition

    from spark_apps.stream import decode as sd
    from spark_apps.stream.kafka_source import consumer_config

    consumer = Consumer(consumer_config(config.kafka.bootstrap_servers))
    consumer.assign([TopicPartition(topic, 0, 0)])
    records, started = [], time.perf_counter()
    while len(records) < limit:
        batch = consumer.consume(20_000, timeout=1.0)
        if not batch:
            break
        records += [(m.key(), m.value(), m.offset()) for m in batch if m.error() is None]
    fetch_s = time.perf_counter() - started
    consumer.close()
    decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(config.schema_registry.url)))
    started = time.perf_counter()
    for i in range(0, len(records), 20_000):
        decoder.decode(records[i:i + 20_000], watermark_ms=0)
    decode_s = time.perf_counter() - started
    return {"records": len(records), "fetch_per_s": len(records) / fetch_s, "decode_arrow_per_s": len(records) / decode_s}


# The job cut short at each step, to see what every step costs per transaction.
LADDER = ("source", "windows", "features")


def ladder_step(spark, config, topic: str, count: int, step: str) -> dict[str, float]:
    """tx/s and CPU microseconds per transaction of the pipeline up to `step`, drained by count().

    source: Kafka fetch, decode, Arrow into the JVM. windows: + watermark and a stateful
    1-minute window aggregation holding a count only (the floor any windowed job pays).
    features: + the real window features. The whole job (scoring, sink) is the main run.
    """
    from pyspark.sql import functions as F

    from spark_apps.features import WINDOW_DURATION
    from spark_apps.stream.job import extract_transactions, transform_watermarked, transform_windows

    checkpoint = f"{config.spark.checkpoint_dir}-{step}"
    frame = extract_transactions(spark, config, topic=topic, checkpoint=checkpoint)
    if step == "windows":
        frame = (transform_watermarked(frame, watermark_seconds=config.spark.watermark_seconds)
                 .groupBy("sender_account", F.window("event_time", WINDOW_DURATION)).count())
    elif step == "features":
        frame = transform_windows(frame, watermark_seconds=config.spark.watermark_seconds)
    writer = frame.writeStream.foreachBatch(lambda batch, _: batch.count()).option("checkpointLocation", checkpoint)
    run = drain(spark, (writer if step == "source" else writer.outputMode("append")).start(), count)
    return {"rate": run["rate"], "us_per_tx": run["warm_us_per_tx"]}


def drain(spark, query, count: int) -> dict:
    """Run `query` until it has read `count` rows; rates and CPU exclude its first batch.

    The first batch of a query pays Python worker start-up and code generation, so CPU is
    also sampled when it completes (polled every 0.1 s) and the warm figure starts there.
    """
    cpu_started, wall_started = spark_cpu_seconds(spark), time.perf_counter()
    progress, seen, warm = [], 0, None
    last_change = time.monotonic()
    try:
        while seen < count and query.isActive:
            time.sleep(0.1)
            progress = list(query.recentProgress)
            now_seen = sum(p["numInputRows"] for p in progress)
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            if warm is None and any(p["numInputRows"] for p in progress):
                warm = (spark_cpu_seconds(spark), seen)
            # Spark's Kafka source plans from ListOffsets, which the embedded broker answers with
            # the last record batch's base offset + 1: the tail of each partition's last batch
            # stays unseen. A drain that stops growing is done (rates count what was read).
            if seen and time.monotonic() - last_change > STALL_S:
                break
        assert query.exception() is None, query.exception()
    finally:
        query.stop()
    cpu_ended, wall_s = spark_cpu_seconds(spark), time.perf_counter() - wall_started
    cpu_s = cpu_ended - cpu_started
    warm_cpu, warm_seen = warm or (cpu_started, 0)
    warm_us = (cpu_ended - warm_cpu) / max(seen - warm_seen, 1) * 1e6
    batches = [p for p in progress if p["numInputRows"] > 0][1:]
    rows = sum(p["numInputRows"] for p in batches)
    seconds = sum(p["durationMs"]["triggerExecution"] for p in batches) / 1000
    return {"progress": progress, "batches": batches, "rows": rows, "seconds": seconds, "seen": seen,
            "rate": rows / seconds if seconds else 0.0, "cpu_s": cpu_s, "wall_s": wall_s, "warm_us_per_tx": warm_us}


def throughput(spark, config, topic: str, count: int, publish_s: float) -> dict:
    from spark_apps.stream.job import BatchWriter, start_query

    profile = decode_profile(config, topic) if config.spark.kafka_source == "python" else {}
    profile["ladder"] = {step: ladder_step(spark, config, topic, count, step) for step in LADDER}
    writer = BatchWriter(config)
    run = drain(spark, start_query(spark, config, topic=topic, writer=writer, trigger_seconds=0), count)
    batches = run["batches"]
    stages: dict[str, float] = {}
    for p in batches:
        for name, ms in p["durationMs"].items():
            stages[name] = stages.get(name, 0.0) + ms / 1000
    sink = {k: sum(t[k] for t in writer.timings) for k in ("collect_s", "score_s", "sink_s", "history_s")}
    state = [p["stateOperators"][0] for p in batches if p.get("stateOperators")]
    return {"rows": run["rows"], "seconds": run["seconds"], "rate": run["rate"], "publish_s": publish_s,
            "stages": stages, "sink": sink, "profile": profile, "batches": len(batches),
            "all_rows": run["seen"], "cpu_s": run["cpu_s"], "wall_s": run["wall_s"],
            "warm_us_per_tx": run["warm_us_per_tx"],
            "state_update_s": sum(s.get("allUpdatesTimeMs", 0) for s in state) / 1000,
            "state_rows_updated": sum(s["numRowsUpdated"] for s in state),
            "state_commit_s": sum(s.get("commitTimeMs", 0) for s in state) / 1000}


def freshness(spark, config, topic: str, rate: int, seconds: float) -> dict:
    from spark_apps.stream.job import start_query

    env = {**os.environ, "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": config.kafka.bootstrap_servers,
           "FRAUDPIPE_SCHEMA_REGISTRY__URL": config.schema_registry.url}
    query = start_query(spark, config, topic=topic)
    cpu_started = spark_cpu_seconds(spark)
    producer = subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "produce", "--rate", str(rate), "--duration",
                                 str(seconds), "--topic", topic, "--labels-topic", topic + "-labels", "--clock",
                                 "realtime", "--create-topics", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    started = time.time()
    try:
        producer.wait(seconds + 120)
        produced_s = time.time() - started
        time.sleep(config.spark.watermark_seconds + 5)
        assert query.exception() is None, query.exception()
    finally:
        query.stop()
    cpu_s = spark_cpu_seconds(spark) - cpu_started
    watermark_ms = config.spark.watermark_seconds * 1000
    with open_store(config.store) as store:
        rows = store.metric_rows(since_ms=int(started * 1000) - 120_000, until_ms=int(time.time() * 1000))
    # freshness of each closed minute: first write of its row after the watermark could close it
    first_write: dict[int, int] = {}
    for row in rows:
        if row["windows"]:
            first_write[row["minute"]] = min(first_write.get(row["minute"], 1 << 62), row["updated_at"])
    ordered = sorted(first_write.items())
    closes = watermark_passes(config, topic, [m + 60_000 + watermark_ms for m, _ in ordered])
    lags = np.array([(w - c) / 1000 for (_, w), c in zip(ordered[1:], closes[1:])])
    wall_lags = np.array([(w - (m + 60_000 + watermark_ms)) / 1000 for m, w in ordered[1:]])
    first_lag = (ordered[0][1] - closes[0]) / 1000 if ordered else float("nan")
    sent = sum(r["transactions"] for r in rows)
    # the first closed minute holds the producer's start and the new query's first batches: reported apart
    return {"rate": rate, "minutes": len(lags), "first_minute_s": first_lag, "tx_in_closed_windows": sent,
            "produced_s": produced_s,
            "wall_p50": float(np.percentile(wall_lags, 50)) if len(wall_lags) else float("nan"),
            "wall_p95": float(np.percentile(wall_lags, 95)) if len(wall_lags) else float("nan"),
            "cpu_s": cpu_s, "load": os.getloadavg()[0],
            "p50": float(np.percentile(lags, 50)) if len(lags) else float("nan"),
            "p95": float(np.percentile(lags, 95)) if len(lags) else float("nan")}


def watermark_passes(config, topic: str, thresholds: list[int]) -> list[int]:
    """For each event-time threshold, when the first record at or past it reached Kafka (its CreateTime, ms).

    That is the earliest moment the job could see the watermark pass a window end (threshold =
    window end + watermark delay), so freshness measured from it excludes producer lag.
    """
    from confluent_kafka import Consumer, TopicPartition

    from spark_apps.stream import decode as sd
    from spark_apps.stream.kafka_source import EOF_ERROR, consumer_config

    decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(config.schema_registry.url)))
    consumer = Consumer(consumer_config(config.kafka.bootstrap_servers))
    events, stamps = [], []
    try:
        for partition in range(config.kafka.partitions):
            consumer.assign([TopicPartition(topic, partition, 0)])
            while True:
                messages = consumer.consume(50_000, timeout=2.0)
                good = [m for m in messages if m.error() is None]
                if good:
                    batch = decoder.decode_values([m.value() for m in good], watermark_ms=0,
                                                  origin=lambda i, g=good: (g[i].key(), g[i].offset())).batch
                    kinds = batch.column(sd.KIND_COLUMN).to_numpy()
                    micros = batch.column("event_time").cast("int64").to_numpy()
                    created = np.array([m.timestamp()[1] for m in good], dtype=np.int64)
                    keep = kinds == sd.KIND_TRANSACTION
                    events.append(micros[keep] // 1000)
                    stamps.append(created[keep])
                if not messages or any(m.error() is not None and m.error().code() == EOF_ERROR for m in messages):
                    break
    finally:
        consumer.close()
    event_ms, created_ms = np.concatenate(events), np.concatenate(stamps)
    order = np.argsort(event_ms)
    event_ms, created_ms = event_ms[order], created_ms[order]
    first_created = np.minimum.accumulate(created_ms[::-1])[::-1]  # min CreateTime of records at or past each
    out = []
    for threshold in thresholds:
        i = int(np.searchsorted(event_ms, threshold))
        out.append(int(first_created[i]) if i < len(event_ms) else 1 << 62)
    return out


def kafka_jars(option: str, base) -> str:
    """The jar directory for the JVM source: --jars, else spark.kafka_jars_dir, else the real-stack cache."""
    if option or base.spark.kafka_jars_dir:
        return option or base.spark.kafka_jars_dir
    try:
        from fraudpipe.realstack import jars

        jars.fetch()
        return str(jars.LIB_DIR / "spark-kafka")
    except Exception:  # noqa: BLE001 - no bench here: spark.jars.packages from Maven Central
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="throughput run size; 0 skips it")
    parser.add_argument("--rates", default="2000,10000,30000")
    parser.add_argument("--seconds", type=float, default=720.0,
                        help=f"producer run per rate; >= 660 gives {MIN_CLOSED_MINUTES}+ closed minutes after the first")
    parser.add_argument("--watermark", type=int, default=10)
    parser.add_argument("--max-records", type=int, default=200_000, help="admission limit per micro-batch")
    parser.add_argument("--sources", default=",".join(SOURCES), help="spark.kafka_source values to run, side by side")
    parser.add_argument("--jars", default="", help="jar directory for the jvm source (default: the real-stack cache)")
    args = parser.parse_args()
    from benchmarks.stream.report import print_ladders, print_throughput
    from spark_apps.session import build_session
    from spark_apps.stream.job import stream_spark_config
    from workloads.stream import publish_transactions

    sources = [s for s in args.sources.split(",") if s]
    unknown = set(sources) - set(SOURCES)
    if unknown:
        parser.error(f"--sources: unknown {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    base = load_config()
    if "jvm" in sources:
        base = dataclasses.replace(base, spark=dataclasses.replace(base.spark, kafka_source="jvm",
                                                                   kafka_jars_dir=kafka_jars(args.jars, base)))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(free_port()) as broker, \
            RegistryServer(free_port(), Path(tmp) / "registry") as registry:
        work = Path(tmp)
        ensure_topics(broker.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1})
        spark = build_session(stream_spark_config(base.spark), app_name="bench-stream",
                              extra_java_options=base.spark.stream_java_options, kafka_jars="jvm" in sources)
        print(f"load average {os.getloadavg()[0]:.2f} at start on {os.cpu_count()} cores; sources {', '.join(sources)}")
        if args.count > 0:  # --count 0: freshness only
            ensure_topics(broker.bootstrap_servers, {"bench-tp": base.kafka.partitions})
            started = time.perf_counter()
            publish_transactions(configure(base, broker, registry, work / "publish", watermark=args.watermark,
                                           max_records=args.max_records, trigger=0), "bench-tp", count=args.count)
            publish_s = time.perf_counter() - started
            results = {}
            for source in sources:  # the same records, each source its own checkpoints
                config = configure(base, broker, registry, work / f"tp-{source}", watermark=args.watermark,
                                   max_records=args.max_records, trigger=0, source=source)
                results[source] = throughput(spark, config, "bench-tp", args.count, publish_s)
                print_throughput(source, results[source], base.spark.master, target_rate=TARGET_RATE)
            print_ladders(results, LADDER)
        for rate in [int(r) for r in args.rates.split(",") if r]:
            for source in sources:
                topic = f"bench-fresh-{rate}-{source}"
                ensure_topics(broker.bootstrap_servers, {topic: base.kafka.partitions})
                cfg = configure(base, broker, registry, work / topic, watermark=args.watermark, max_records=200_000,
                                trigger=0.5, source=source)
                fresh = freshness(spark, cfg, topic, rate, args.seconds)
                few = (f" (fewer than {MIN_CLOSED_MINUTES} closed minutes: percentiles need --seconds >= 660)"
                       if fresh["minutes"] < MIN_CLOSED_MINUTES else "")
                print(f"[{source}] freshness at {rate:,} tx/s: {fresh['minutes']} closed minutes after the first{few}, "
                      f"p50 {fresh['p50']:.2f} s, p95 {fresh['p95']:.2f} s (target p95 <= {TARGET_P95_S} s); "
                      f"first minute {fresh['first_minute_s']:.2f} s; "
                      f"from wall-clock window end + watermark (includes producer lag): p50 {fresh['wall_p50']:.2f} s, "
                      f"p95 {fresh['wall_p95']:.2f} s; "
                      f"{fresh['tx_in_closed_windows']:,} tx in closed windows, produced in {fresh['produced_s']:.0f} s; "
                      f"Spark {fresh['cpu_s']:.0f} CPU-s = {fresh['cpu_s'] / fresh['produced_s']:.2f} cores; "
                      f"load average {fresh['load']:.1f}")
        spark.stop()


if __name__ == "__main__":
    main()

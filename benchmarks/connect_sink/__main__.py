"""Connect sink throughput: rows/s of one JDBC-SQLite sink task, Avro on the embedded broker -> SQLite.

    .venv/bin/python -m benchmarks.connect_sink [--count 200000] [--batch-size 5000] [--profile]

Starts its own Tansu broker and Schema Registry on free loopback ports, produces
`--count` v1 transactions, then runs one sink task (the worker's own SinkTask with the
shipped connectors/sqlite-sink.json) into a fresh SQLite store. The rate counts records
between the first and the last offset commit, so the consumer-group join is left out;
every commit follows a durable write. It also prints rows per CPU-second of this
process, which stays meaningful when other work shares the cores. Target: >= 30,000 rows/s.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import requests
from confluent_kafka import Producer

from benchmarks.profiling import print_profile, profiled
from fraudpipe import contracts
from fraudpipe.avro import encode
from fraudpipe.broker import EmbeddedBroker, ensure_topics, free_port
from fraudpipe.connect.jdbc_sqlite import JdbcSinkConnector
from fraudpipe.connect.plugin import effective_config
from fraudpipe.connect.task import FAILED, SinkTask, TaskSettings
from fraudpipe.registry.server import RegistryServer
from fraudpipe.store.sqlite import SqliteStore

TARGET = 30_000
TOPIC = "bench-transactions"


def produce(bootstrap: str, schema_id: int, count: int) -> None:
    schema = contracts.transaction_schema(1)
    start = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 500000, "acks": "all"})
    types, statuses = contracts.enum_symbols("transaction_type"), contracts.enum_symbols("status")
    for i in range(count):
        record = {"transaction_id": f"bench-{i:09d}", "event_time": start + dt.timedelta(milliseconds=i * 3),
                  "sender_account": f"acct-{i % 20000:05d}", "receiver_account": f"acct-{(i * 7919) % 20000:05d}",
                  "amount_minor": 100 + i % 100000, "currency": "USD", "transaction_type": types[i % len(types)],
                  "status": statuses[i % len(statuses)], "channel": "ONLINE"}
        while True:
            try:
                producer.produce(TOPIC, key=record["sender_account"], value=encode(schema_id, schema, record))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("producer could not deliver every record")


def run_task(bootstrap: str, registry_url: str, db: Path, count: int, batch_size: int) -> tuple[float, float, int]:
    document = json.loads((contracts.CONNECTORS_DIR / "sqlite-sink.json").read_text())
    config = effective_config({**document["config"], "name": "bench", "topics": TOPIC,
                               "connection.url": f"jdbc:sqlite:{db}",
                               "value.converter.schema.registry.url": registry_url}, {})
    values = JdbcSinkConnector.validate(config).values
    commits: list[tuple[float, float, int]] = []
    done = threading.Event()
    latest: dict[tuple[str, int], int] = {}
    failure: list[str] = []

    def on_offsets(offsets: dict[tuple[str, int], int]) -> None:
        latest.update(offsets)
        total = sum(latest.values())
        commits.append((time.perf_counter(), time.process_time(), total))
        if total >= count:
            done.set()

    def on_status(_task: int, state: str, trace: str | None) -> None:
        if state == FAILED:
            failure.append(trace or "")
            done.set()

    task = SinkTask(connector="bench", task_id=0, plugin=JdbcSinkConnector, values=values, config=config,
                    settings=TaskSettings(bootstrap_servers=bootstrap, batch_size=batch_size),
                    on_status=on_status, on_offsets=on_offsets)
    task.start()
    done.wait(timeout=600)
    task.stop()
    task.join(timeout=60)
    if failure:
        raise SystemExit(f"sink task failed:\n{failure[0]}")
    if len(commits) < 2:
        raise SystemExit(f"too few commits to time ({len(commits)}); raise --count")
    (t0, c0, n0), (t1, c1, n1) = commits[0], commits[-1]
    return (n1 - n0) / (t1 - t0), (n1 - n0) / max(c1 - c0, 1e-9), len(commits)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connect_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000, help="records per write and commit (connect.batch_size)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(free_port()) as broker, \
            RegistryServer(free_port(), Path(tmp) / "registry") as registry:
        ensure_topics(broker.bootstrap_servers, {TOPIC: 2})
        response = requests.post(f"{registry.url}/subjects/{contracts.value_subject(TOPIC)}/versions",
                                 json={"schema": contracts.transaction_schema_str(1)}, timeout=10)
        schema_id = response.json()["id"]
        started = time.perf_counter()
        produce(broker.bootstrap_servers, schema_id, args.count)
        print(f"produced {args.count:,} transactions in {time.perf_counter() - started:.1f}s")
        db = Path(tmp) / "bench.db"
        SqliteStore(db).close()
        profiler = cProfile.Profile() if args.profile else None
        with profiled(profiler):
            rate, cpu_rate, commits = run_task(broker.bootstrap_servers, registry.url, db, args.count, args.batch_size)
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        print(f"sink task: {rows:,} rows in the table ({args.count:,} produced), {commits} durable commits")
        print(f"rows/s (one task, SQLite, commit after each durable batch): {rate:,.0f}")
        print(f"rows per CPU-second of the worker process (all its threads; robust to a busy machine): {cpu_rate:,.0f}")
        print(f"ratio to the {TARGET:,} rows/s target: {rate / TARGET:.2f}x")
        print_profile(profiler, sort="cumulative", limit=25)


if __name__ == "__main__":
    main()

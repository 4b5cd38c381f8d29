"""Producer throughput: generate, + serialize, + produce into the embedded broker, at --rate 0.

    python -m benchmarks.producer [--count 1000000] [--cores 1] [--profile]

Starts its own Tansu broker and Schema Registry on free loopback ports, pins this process
(and so librdkafka's threads) to `--cores` CPUs, and prints transactions per second for each
stage plus the ratio to the 100,000 tx/s target. `--profile` adds a cProfile of the full run.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from benchmarks.profiling import print_profile, profiled
from fraudpipe.broker import EmbeddedBroker, ensure_topics, free_port
from fraudpipe.config import load_config
from fraudpipe.registry.server import RegistryServer
from producer.encoding import BatchEncoder, keys
from producer.generator import TransactionGenerator
from producer.publisher import Publisher
from producer.runner import run

TARGET = 100_000
START = 1_700_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.producer", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=1, help="CPUs this process may use (0 = no pinning)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    config = load_config()
    producer = dataclasses.replace(config.producer, clock="simulated", rate=0.0)

    def generator() -> TransactionGenerator:
        return TransactionGenerator(producer, seed=1, start_ms=START)

    def clocks() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def rates(since: tuple[float, float]) -> tuple[float, float]:
        """(wall-clock rate, rate per CPU-second of this process, Kafka client threads included)."""
        wall, cpu = clocks()
        return args.count / (wall - since[0]), args.count / max(cpu - since[1], 1e-9)

    t = clocks()
    for _batch in generator().batches(args.count):
        pass
    generate = rates(t)

    encoder = BatchEncoder(1)
    t = clocks()
    for batch in generator().batches(args.count):
        encoder.frames(batch)
        keys(batch)
    encode = rates(t)

    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedBroker(free_port(), log_path=Path(tmp) / "broker.log") as broker, \
            RegistryServer(free_port(), Path(tmp) / "registry", log_path=Path(tmp) / "registry.log") as registry:
        topic, labels = f"bench-{os.getpid()}", f"bench-labels-{os.getpid()}"
        ensure_topics(broker.bootstrap_servers, {topic: 2, labels: 2})
        kafka = dataclasses.replace(config.kafka, bootstrap_servers=broker.bootstrap_servers)
        publisher = Publisher(kafka, producer, registry_url=registry.url, topic=topic, labels_topic=labels)
        profiler = cProfile.Profile() if args.profile else None
        t = clocks()
        with profiled(profiler):
            stats = run(publisher, generator(), rate=0, count=args.count)  # includes the final flush
        produced = rates(t)

    print(f"producer benchmark: {args.count:,} transactions, {args.cores or 'all'} core(s), embedded broker")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall rates suffer when the machine is shared;")
    print("  per-CPU-second rates count only this process's own CPU time (Kafka client threads included)")
    print(f"  {'stage':<32}{'wall tx/s':>12}{'tx/CPU-s':>12}")
    for name, (wall, cpu) in (("generate", generate), ("generate + serialize", encode),
                              ("generate + serialize + produce", produced)):
        print(f"  {name:<32}{wall:>12,.0f}{cpu:>12,.0f}")
    wall, cpu = produced
    print(f"  target {TARGET:,} tx/s: wall {wall / TARGET:.2f}x, per CPU-second {cpu / TARGET:.2f}x")
    print(f"  labels sent {stats.labels_sent:,}, delivery errors {stats.errors:,}")
    print_profile(profiler, sort="tottime", limit=12)


if __name__ == "__main__":
    main()

"""Memory of the embedded stack: summed RSS of the `fraudpipe up` process tree over a run.

    python -m benchmarks.memory [--minutes 10] [--interval 30] [--rate 200]
    python -m benchmarks.memory --pid <pid of a running `fraudpipe up`> [--minutes 10]

Without --pid it starts `fraudpipe up` on free loopback ports with its own run directory
(the default config otherwise), samples the summed RSS of every process under it every
`--interval` seconds, prints each sample with a per-component breakdown and the load
average, reports the maximum, and stops the run with SIGINT (Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from fraudpipe.broker import free_port
from fraudpipe.config import STACK_SERVICES, port_overrides
from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.process import command_line, descendants, process_table

MB = 1_000_000


def classify(cmdline: str) -> str:
    """Which part of the stack a process is, from its command line."""
    words = cmdline.split()
    if not words:
        return "other"
    if words[0].endswith("java") or "org.apache.spark.deploy.SparkSubmit" in words:
        return "spark jvm"
    if any(w.startswith("pyspark.") for w in words):
        return "pyspark workers"
    if "tansu" in cmdline:
        return "broker"
    if "fraudpipe.cli" in words and words.index("fraudpipe.cli") + 1 < len(words):
        return words[words.index("fraudpipe.cli") + 1]  # broker, registry, connect, produce, stream, dashboard, up
    return "other"


def sample(root: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """(summed RSS of `root` and its descendants, {part: (RSS, process count)})."""
    table = process_table()
    tree = [pid for pid in (root, *descendants(root, table)) if pid in table]
    parts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pid in tree:
        part = parts[classify(command_line(pid))]
        part[0] += table[pid][1]
        part[1] += 1
    return sum(table[pid][1] for pid in tree), {k: (v[0], v[1]) for k, v in parts.items()}


def _start(rate: float, run_dir: Path) -> subprocess.Popen[bytes]:
    ports = {name: free_port() for name in STACK_SERVICES}
    env = {**os.environ, **port_overrides(ports), "FRAUDPIPE_STACK__RUN_DIR": str(run_dir)}
    log = open(run_dir.parent / "up.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "up", "--rate", f"{rate:g}"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to sample (after the start)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=200.0, help="producer rate of the run this tool starts")
    parser.add_argument("--pid", type=int, default=None, help="sample a running `fraudpipe up` instead of starting one")
    args = parser.parse_args()

    up = None
    root = args.pid
    if root is None:
        workdir = Path(tempfile.mkdtemp(prefix="fraudpipe-memory-"))
        (workdir / "run").mkdir()
        up = _start(args.rate, workdir / "run")
        root = up.pid
        print(f"started fraudpipe up (pid {root}); log {workdir / 'up.log'}")
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    try:
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(min(args.interval, max(0.0, args.minutes * 60 - (time.monotonic() - started))))
            if up is not None and up.poll() is not None:
                sys.exit(f"fraudpipe up exited with code {up.returncode}")
            total, parts = sample(root)
            elapsed = time.monotonic() - started
            samples.append((elapsed, total))
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            breakdown = ", ".join(f"{name} {rss / MB:.0f} MB ({n})" for name, (rss, n) in
                                  sorted(parts.items(), key=lambda kv: -kv[1][0]))
            print(f"{elapsed / 60:5.1f} min  RSS {total / MB:7.0f} MB  load {load}  | {breakdown}", flush=True)
    finally:
        if up is not None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
    if samples:
        at, peak = max(samples, key=lambda s: s[1])
        last_at, last = samples[-1]
        print(f"max RSS {peak / MB:.0f} MB ({peak / 2**30:.2f} GiB) at {at / 60:.1f} min; "
              f"last {last / MB:.0f} MB at {last_at / 60:.1f} min; {len(samples)} samples; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

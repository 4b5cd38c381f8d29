"""Printing the stream benchmark's results: one source's throughput run, and every source's ladder side by side."""
from __future__ import annotations

import os


def print_throughput(source: str, result: dict, master: str, *, target_rate: int) -> None:
    print(f"[{source}] throughput: {result['rows']:,} tx in {result['batches']} batches, {result['seconds']:.1f} s "
          f"-> {result['rate']:,.0f} tx/s on {master} (target {target_rate:,}); "
          f"ratio {result['rate'] / target_rate:.2f}")
    print(f"  whole run incl. first batch: {result['all_rows']:,} tx, {result['wall_s']:.1f} s wall, "
          f"{result['cpu_s']:.1f} CPU-s -> {result['all_rows'] / result['cpu_s']:,.0f} tx per CPU-second; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; published in {result['publish_s']:.0f} s")
    p = result["profile"]
    if "fetch_per_s" in p:
        print(f"  alone in one process: kafka fetch {p['fetch_per_s']:,.0f} rec/s, "
              f"avro decode + arrow {p['decode_arrow_per_s']:,.0f} rec/s")
    job_us = result["warm_us_per_tx"]
    steps = [*((step, v["us_per_tx"], v["rate"]) for step, v in p["ladder"].items()), ("whole job", job_us, result["rate"])]
    print("  CPU per transaction after each query's first batch, job cut after each step (tx/s of that cut): "
          + ", ".join(f"{step} {us:.1f} us ({rate:,.0f} tx/s)" for step, us, rate in steps))
    cores = os.cpu_count() or 1
    print(f"  -> ceiling with {cores} cores fully busy: {cores * 1e6 / job_us:,.0f} tx/s for the whole job, "
          f"{cores * 1e6 / p['ladder']['windows']['us_per_tx']:,.0f} tx/s for bare stateful windows")
    print("  spark durations (s): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(result["stages"].items())))
    print(f"  foreachBatch (s): collect {result['sink']['collect_s']:.1f}, score {result['sink']['score_s']:.1f}, "
          f"sink {result['sink']['sink_s']:.1f}; state rows written {result['state_rows_updated']:,}, "
          f"state updates {result['state_update_s']:.1f} s, state commit {result['state_commit_s']:.1f} s")


def print_ladders(results: dict[str, dict], ladder: tuple[str, ...]) -> None:
    """The CPU-per-transaction ladder of every source side by side."""
    steps = [*ladder, "whole job"]
    print("CPU us per transaction (warm)  " + "  ".join(f"{step:>10}" for step in steps))
    for source, result in results.items():
        values = [result["profile"]["ladder"][step]["us_per_tx"] for step in ladder] + [result["warm_us_per_tx"]]
        print(f"  {source:<28}" + "  ".join(f"{v:>10.1f}" for v in values))

"""Benchmark `fraudpipe train`: wall time for N labelled transactions on local[2] (target <= 30 s for 1M).

    .venv/bin/python -m benchmarks.train [--transactions 1000000]

Prints the time of each stage (dataset generation, Spark start, training + evaluation +
publish) and the rate, the training job's own steps (from its progress lines), the load
average, and the model's window-level numbers. Works in a temporary directory; nothing
under .fraudpipe/ is touched.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from fraudpipe.config import Config, ModelConfig, load_config
from spark_apps.training.job import run_training, training_session
from spark_apps.training.data import generate_dataset

TARGET_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    base = load_config()
    with tempfile.TemporaryDirectory(prefix="fraudpipe-bench-train-") as tmp:
        root = Path(tmp)
        model = ModelConfig(**{**base.model.__dict__, "dir": str(root / "models"), "dataset_dir": str(root / "data")})
        config = Config(**{**base.__dict__, "model": model})
        quiet = lambda message: None  # noqa: E731 - the benchmark prints its own lines
        steps: list[tuple[float, str]] = []
        record = lambda message: steps.append((time.perf_counter(), message))  # noqa: E731

        t0 = time.perf_counter()
        dataset = generate_dataset(config, root / "data" / "bench.parquet", transactions=args.transactions, progress=quiet)
        t1 = time.perf_counter()
        spark = training_session(config)
        t2 = time.perf_counter()
        run, _ = run_training(config, input_path=dataset, record=False, progress=record, spark=spark)
        t3 = time.perf_counter()
        load = os.getloadavg()
        spark.stop()

    train_s = t3 - t2
    window = run.report["window"]
    generated = run.metadata.data_range["transactions"]  # whole minutes: at least --transactions
    print(f"transactions            {generated:,}  (master {config.spark.master}, "
          f"k {model.k} + tail {model.tail_k} + fraud {model.fraud_k})")
    print(f"generate dataset        {t1 - t0:7.1f} s")
    print(f"start Spark             {t2 - t1:7.1f} s")
    print(f"train+evaluate+publish  {train_s:7.1f} s   {generated / train_s:,.0f} transactions/s")
    print(f"total wall time         {t3 - t0:7.1f} s   target {TARGET_SECONDS:.0f} s for 1M -> "
          f"ratio {train_s / TARGET_SECONDS:.2f} (train stage), {(t3 - t0) / TARGET_SECONDS:.2f} (total)")
    print("  steps of train+evaluate+publish (each runs until the next starts):")
    for (start, message), (end, _next) in zip(steps, steps[1:] + [(t3, "")]):
        print(f"  {end - start:7.1f} s  {message[:70]}")
    print(f"load average            {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, {os.cpu_count()} cores)")
    print(f"window-level            P {window['precision']:.4f}  R {window['recall']:.4f}  F1 {window['f1']:.4f}  "
          f"silhouette {run.report['silhouette']}")
    recall = ", ".join(f"{name} {p['window_recall']:.3f}" for name, p in run.report["per_pattern"].items())
    print(f"window recall           {recall}")


if __name__ == "__main__":
    main()

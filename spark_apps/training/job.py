"""Train the KMeans fraud model on labelled window features, evaluate it, publish a version.

    fraudpipe train                                   # generate a labelled dataset of model.train_transactions
    fraudpipe train --input data/tx.parquet           # the producer's --to-file output
    fraudpipe train --from-store [--since T] [--until T]  # the transactions and labels in the store
    spark-submit spark_apps/training/job.py --input data/tx.parquet

training.data reads (or generates) transactions with their fraud pattern when labelled,
training.windows builds the shared window features plus labels and the senders' context,
training.run splits by time, fits (training.fitting: log1p -> VectorAssembler ->
StandardScaler -> KMeans, normal, tail and fraud centroids), sets the score threshold on the
train minutes and evaluates on the later ones and on a shifted transfer dataset
(training.assessment), and load_version writes the version and publishes it.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import click

from fraudpipe.config import Config, load_config
from fraudpipe.errors import ModelError
from spark_apps.model_registry import SPARK_MODEL_DIR, ModelRegistry
from spark_apps.scoring import transform
from spark_apps.training.assessment import format_summary
from spark_apps.training.data import (
    Progress, generate_dataset, generated_dataset_path, read_transactions, transfer_dataset,
)
from spark_apps.training.evaluation import format_report, plot_clusters, report_json
from spark_apps.training.run import TrainingRun, train

REPORT_FILE = "report.json"
PLOT_FILE = "clusters.png"


def console_progress() -> Progress:
    """Progress lines with the seconds elapsed since training started."""
    start = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return say


# --- load ------------------------------------------------------------------------
def load_version(run: TrainingRun, registry: ModelRegistry, *, store: Any = None, progress: Progress, plot_points: int = 20_000) -> Path:
    """Write the Spark model, report and plot into a staging dir and publish it as a version."""
    staging = registry.begin()
    try:
        # The plot is Python (matplotlib) and the model save is JVM work (Parquet writers on a
        # cold JVM): drawn in a thread, the plot costs the run nothing (1.2-1.5 s before).
        with ThreadPoolExecutor(max_workers=1) as pool:
            plotted = pool.submit(_plot, run, staging / PLOT_FILE, plot_points) if len(run.test_windows) else None
            progress("saving the Spark model" + (" and plotting clusters" if plotted else ""))
            run.pipeline_model.write().save(str(staging / SPARK_MODEL_DIR))
            if plotted is not None:
                run.report["plot_axes"] = list(plotted.result())
        (staging / REPORT_FILE).write_text(report_json(run.report))
        return registry.publish(staging, run.metadata, store=store)
    except BaseException:
        registry.discard(staging)
        raise


def _plot(run: TrainingRun, path: Path, plot_points: int) -> tuple[str, str]:
    """The held-out windows in the two most informative scaled features; returns those two."""
    test, metadata = run.test_windows, run.metadata
    scaled = transform(test[list(metadata.feature_names)].to_numpy(dtype=float), metadata)
    return plot_clusters(
        str(path), scaled, test["cluster"].to_numpy(dtype=int), test["fraud_tx"].to_numpy() > 0,
        feature_names=metadata.feature_names, fraud_clusters=metadata.fraud_clusters, k=len(metadata.centroids),
        max_points=plot_points,
    )


# --- command ---------------------------------------------------------------------
@click.command("train")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="config.yml to use")
@click.option("--input", "input_path", type=click.Path(exists=True), help="producer --to-file Parquet (default: generate)")
@click.option("--from-store", is_flag=True, help="train on the raw transactions and labels already in the store")
@click.option("--since", help="with --from-store: first event time (epoch ms or ISO-8601, UTC by default)")
@click.option("--until", help="with --from-store: end of the event times, exclusive (epoch ms or ISO-8601)")
@click.option("--transactions", type=int, help="size of the generated dataset (default model.train_transactions)")
@click.option("--transfer-input", type=click.Path(exists=True, dir_okay=False),
              help="labelled Parquet of shifted traffic: also evaluate the model on its later minutes (metrics.transfer)")
@click.option("--no-transfer", is_flag=True, help="generated data: skip the shifted transfer dataset (model.transfer_config)")
@click.option("--no-store", is_flag=True, help="do not record the version in the store's models table")
def train_command(
    config_file: str | None, input_path: str | None, from_store: bool, since: str | None, until: str | None,
    transactions: int | None, transfer_input: str | None, no_transfer: bool, no_store: bool,
) -> None:
    """Train the KMeans model on labelled windows, evaluate it and publish a new version."""
    from spark_apps.training.data import parse_time

    if from_store and input_path:
        raise click.UsageError("--from-store and --input are two different inputs: give one")
    if (since or until) and not from_store:
        raise click.UsageError("--since/--until select a time range of the store: add --from-store")
    try:
        since_ms, until_ms = parse_time(since), parse_time(until)
    except ModelError as exc:
        raise click.BadParameter(str(exc)) from exc
    config = load_config(config_file)
    progress = console_progress()
    run_training(config, input_path=Path(input_path) if input_path else None, from_store=from_store,
                 since_ms=since_ms, until_ms=until_ms, transactions=transactions, record=not no_store,
                 transfer_path=Path(transfer_input) if transfer_input else None, transfer=not no_transfer,
                 progress=progress)


def training_session(config: Config) -> Any:
    """The SparkSession of a training run: the driver flags plus `spark.train_java_options`.

    A training driver lives for half a minute on a cold JVM, and on 2 cores the JIT compiler
    was more than half of its CPU, most of it C2 compiling large inlined methods. Smaller
    inlining limits cut that compile time from 39-44 s to 19-26 s and the 1M run's median
    from 32.8 s to 26.7 s (README: training). The stream keeps the JVM defaults: it runs for
    hours on compiled code.
    """
    from spark_apps.session import build_session

    return build_session(config.spark, app_name="fraudpipe-train", extra_java_options=config.spark.train_java_options)


def run_training(
    config: Config, *, input_path: Path | None = None, from_store: bool = False,
    since_ms: int | None = None, until_ms: int | None = None, transactions: int | None = None,
    record: bool = True, progress: Progress, spark: Any = None, transfer_path: Path | None = None,
    transfer: bool = True,
) -> tuple[TrainingRun, Path]:
    """The whole job: data, features, fit, evaluation, publish; returns the run and its directory.

    Input: `input_path` (producer Parquet), else the store's transactions and labels with
    since_ms <= event_time < until_ms when `from_store`, else a generated dataset. Transfer:
    `transfer_path`, else with generated data (and `transfer`) a dataset generated from
    model.transfer_config; none for --input/--from-store without transfer_path.
    """
    from fraudpipe.store import open_store
    from spark_apps.training.data import extract_store_transactions

    model_config = config.model
    if input_path is None and not from_store:
        size = transactions or model_config.train_transactions
        input_path = generate_dataset(config, generated_dataset_path(config, size), transactions=size, progress=progress)
        if transfer_path is None and transfer and model_config.transfer_config:
            transfer_path = transfer_dataset(config, progress=progress)
    store = None
    if record or from_store:
        store = open_store(config.store)
        store.ensure_schema()
    try:
        progress("starting Spark")
        spark = spark or training_session(config)
        if from_store:
            transactions_df = extract_store_transactions(
                spark, store, since_ms=since_ms, until_ms=until_ms, progress=progress
            )
        else:
            progress(f"reading transactions from {input_path}")
            transactions_df = read_transactions(spark, input_path, require_labels=False)
        transfer_df = None
        if transfer_path is not None:
            progress(f"reading transfer transactions from {transfer_path}")
            transfer_df = read_transactions(spark, transfer_path, require_labels=True)
        run = train(spark, transactions_df, model_config, progress=progress, transfer=transfer_df)
        directory = load_version(run, ModelRegistry(config.path(model_config.dir)), store=store if record else None,
                                 progress=progress, plot_points=model_config.plot_points)
    finally:
        if store is not None:
            store.close()
    click.echo(format_report(run.report, fraud_clusters=run.metadata.fraud_clusters))
    click.echo(format_summary("in-distribution (later minutes)", run.report))
    if run.transfer_report is not None:
        click.echo(format_summary(f"transfer ({transfer_path.name}, later minutes)", run.transfer_report))
    progress(f"published model version {run.metadata.version} at {directory}")
    return run, directory


if __name__ == "__main__":
    train_command()

"""Train the KMeans fraud model on labelled window features, evaluate it, publish a version.

    fraudpipe train                                   # generate a labelled dataset of model.train_transactions
    fraudpipe train --input data/tx.parquet           # the producer's --to-file output
    fraudpipe train --from-store [--since T] [--until T]  # the transactions and labels in the store
    spark-submit spark_apps/training/job.py --input data/tx.parquet

training.data reads (or generates) transactions with their fraud pattern when labelled,
transform_windows builds the shared window features plus labels, training.fitting fits log1p
-> VectorAssembler -> StandardScaler -> KMeans (normal, tail and fraud centroids), train
sets the score threshold and evaluates, and load_version writes the version and publishes it.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import click
import numpy as np
import pandas as pd

from fraudpipe.config import Config, ModelConfig, load_config
from fraudpipe.errors import ModelError
from spark_apps.features import window_features
from spark_apps.training.evaluation import (
    ClusterChoice,
    choose_fraud_clusters,
    choose_score_threshold,
    evaluate_windows,
    format_report,
    labelled_fraud_clusters,
    plot_clusters,
    report_json,
    silhouette,
)
from spark_apps.training.fitting import SAMPLE_COLUMN, fit_models
from spark_apps.model_registry import SPARK_MODEL_DIR, ModelRegistry, new_version
from spark_apps.scoring import ModelMetadata, score_matrix, transform
from spark_apps.training.data import Progress, extract_transactions, generate_dataset, generated_dataset_path

REPORT_FILE = "report.json"
PLOT_FILE = "clusters.png"
# Per-window uniform number (hashed from the window's key) that picks the split; the fit
# sample's is fitting.SAMPLE_COLUMN.
SPLIT_COLUMN = "__split_u"


def console_progress() -> Progress:
    """Progress lines with the seconds elapsed since training started."""
    start = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return say


# --- transform -------------------------------------------------------------------
def transform_windows(transactions: Any) -> Any:
    """Window features plus labels: fraud_tx (labelled transactions) and their pattern."""
    from pyspark.sql import functions as F

    labelled = F.col("pattern").isNotNull()
    # A sender's minute holds ~1.7 transactions, so a map-side partial aggregation saves no
    # shuffle; hashing the raw rows by sender first makes the aggregation run after that one
    # exchange (sender_account is part of the grouping key) and spreads it evenly over the
    # cores. Measured on 1M transactions, local[2]: windows + collect 11 s instead of 21-23 s.
    return window_features(
        transactions.repartition(F.col("sender_account")),
        extra_aggregations=[
            F.sum(labelled.cast("long")).alias("fraud_tx"),
            F.max(F.col("pattern")).alias("pattern"),
        ],
    )


@dataclass
class TrainingRun:
    """Everything one run produced, before it is published."""

    pipeline_model: Any
    metadata: ModelMetadata
    report: dict[str, Any]
    test_windows: pd.DataFrame
    choice: ClusterChoice


def _uniform(seed: int) -> Any:
    """A uniform number in [0, 1) per window, hashed from its natural key and `seed`.

    The split and the fit sample then depend on the windows alone, not on the order or the
    partitioning in which Spark returns them, so the same data always trains the same model.
    """
    from pyspark.sql import functions as F

    hashed = F.xxhash64(F.col("sender_account"), F.col("window_start"), F.lit(seed))
    return F.pmod(hashed, F.lit(1 << 53)).cast("double") / float(1 << 53)


def extract_windows(transactions: Any, config: ModelConfig, *, progress: Progress) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled windows as pandas (one Spark pass) and the train/held-out split.

    A minute of one sender is a few hundred bytes: even 1M transactions give well under a
    million windows, so everything after the shared feature code runs on numpy, and the
    KMeans fits get their rows back through Arrow (cheaper than caching the windows in
    Spark, measured). Rows are sorted by (window_start, sender_account) so that the samples
    drawn later (the plot's) do not depend on Spark's partitioning either.
    """
    progress("building 1-minute sender windows")
    windows = (
        transform_windows(transactions)
        .withColumn(SPLIT_COLUMN, _uniform(config.seed))
        .withColumn(SAMPLE_COLUMN, _uniform(config.seed + 1))
        .toPandas()
    )
    if windows.empty:
        raise ModelError("no transactions to train on")
    windows = windows.sort_values(["window_start", "sender_account"], kind="stable", ignore_index=True)
    return windows, windows[SPLIT_COLUMN].to_numpy() < config.train_fraction


def train(spark: Any, transactions: Any, config: ModelConfig, *, progress: Progress, version: str | None = None) -> TrainingRun:
    """Fit on a random train split of the windows, set the fraud score threshold, evaluate on the rest."""
    windows_pdf, is_train = extract_windows(transactions, config, progress=progress)
    fitted = fit_models(spark, windows_pdf, is_train, config, progress=progress)
    windows_pdf = windows_pdf.drop(columns=[SPLIT_COLUMN, SAMPLE_COLUMN])
    centroids = fitted.centroids
    draft = ModelMetadata(
        version=version or new_version(),
        trained_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        feature_names=fitted.features,
        log_features=fitted.log_features,
        scaler_mean=fitted.scaler_mean,
        scaler_std=fitted.scaler_std,
        centroids=centroids,
        fraud_clusters=fitted.fraud_clusters,
        outlier_distance=config.outlier_distance or None,
    )
    fraud = windows_pdf["fraud_tx"].to_numpy() > 0
    labelled = bool(fraud.any())
    features = windows_pdf[list(fitted.features)].to_numpy(dtype=float)
    progress("choosing the fraud score threshold" if labelled else "choosing fraud clusters from centroids")
    train_scores = score_matrix(features[is_train], draft)
    evidence = choose_fraud_clusters(train_scores["cluster"], centroids, fraud[is_train] if labelled else None)
    if labelled:
        fraud_clusters = labelled_fraud_clusters(draft.fraud_clusters, evidence.fraud_share)
        if fraud_clusters != draft.fraud_clusters:  # the score is relative to the fraud clusters
            train_scores = score_matrix(features[is_train], replace(draft, fraud_clusters=fraud_clusters))
        threshold, train_f1 = choose_score_threshold(train_scores["score"], fraud[is_train])
        choice = ClusterChoice(fraud_clusters, "labels", evidence.fraud_share, evidence.sizes, evidence.centroid_distance)
    else:
        threshold, train_f1, choice = None, None, evidence
    metadata = ModelMetadata(
        **{**draft.__dict__, "fraud_clusters": choice.fraud_clusters, "score_threshold": threshold,
           "cluster_fraud_share": choice.fraud_share, "cluster_sizes": choice.sizes}
    )
    progress("evaluating on the held-out split")
    test_pdf = windows_pdf[~is_train].reset_index(drop=True)
    scored = score_matrix(features[~is_train], metadata)
    test_pdf["is_fraud"], test_pdf["score"], test_pdf["cluster"] = scored["is_fraud"], scored["score"], scored["cluster"]
    report = evaluate_windows(test_pdf, k=len(centroids), silhouette=silhouette(scored["scaled"], scored["cluster"]))
    report["fraud_cluster_choice"] = choice.method
    report["silhouette_of"] = "all held-out windows, squared Euclidean"
    times = windows_pdf["window_start"]
    data_range = {
        "first_window": str(times.min()), "last_window": str(times.max()),
        "transactions": int(windows_pdf["tx_count"].sum()), "windows": int(len(windows_pdf)),
        "train_windows": int(is_train.sum()), "test_windows": int((~is_train).sum()),
        "labelled": labelled,
    }
    # centroids are ordered normal (k), tail (tail_k), fraud (fraud_k): the counts say where each group starts
    params = {"k": len(fitted.normal), "tail_k": len(fitted.tail), "fraud_k": len(fitted.fraud), "seed": config.seed,
              "max_iter": config.max_iter, "fit_sample": config.fit_sample, "tail_share": config.tail_share,
              "tail_windows": fitted.tail_windows, "train_fraction": config.train_fraction,
              "log_features": list(metadata.log_features), "outlier_distance": metadata.outlier_distance,
              "score_threshold": threshold, "train_f1": train_f1, "fraud_cluster_choice": choice.method,
              "centroid_distance": list(choice.centroid_distance)}
    metrics = {key: report[key] for key in ("silhouette", "window", "transaction", "per_pattern")}
    metadata = ModelMetadata(**{**metadata.__dict__, "params": params, "metrics": metrics, "data_range": data_range})
    return TrainingRun(fitted.pipeline_model, metadata, report, test_pdf, choice)


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
@click.option("--no-store", is_flag=True, help="do not record the version in the store's models table")
def train_command(
    config_file: str | None, input_path: str | None, from_store: bool, since: str | None, until: str | None,
    transactions: int | None, no_store: bool,
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
    record: bool = True, progress: Progress, spark: Any = None,
) -> tuple[TrainingRun, Path]:
    """The whole job: data, features, fit, evaluation, publish; returns the run and its directory.

    Input: `input_path` (producer Parquet), else the store's transactions and labels with
    since_ms <= event_time < until_ms when `from_store`, else a generated dataset.
    """
    from fraudpipe.store import open_store
    from spark_apps.training.data import extract_store_transactions

    model_config = config.model
    if input_path is None and not from_store:
        size = transactions or model_config.train_transactions
        input_path = generate_dataset(config, generated_dataset_path(config, size), transactions=size, progress=progress)
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
            transactions_df = extract_transactions(spark, input_path)
        run = train(spark, transactions_df, model_config, progress=progress)
        directory = load_version(run, ModelRegistry(config.path(model_config.dir)), store=store if record else None,
                                 progress=progress, plot_points=model_config.plot_points)
    finally:
        if store is not None:
            store.close()
    click.echo(format_report(run.report, fraud_clusters=run.metadata.fraud_clusters))
    progress(f"published model version {run.metadata.version} at {directory}")
    return run, directory


if __name__ == "__main__":
    train_command()

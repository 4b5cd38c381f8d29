"""Train the KMeans fraud model on labelled window features, evaluate it, publish a version.

    fraudpipe train                                   # generate a labelled dataset of model.train_transactions
    fraudpipe train --input data/tx.parquet           # the producer's --to-file output
    fraudpipe train --from-store [--since T] [--until T]  # the transactions and labels in the store
    spark-submit spark_apps/kmeans_model_training.py --input data/tx.parquet

extract_* read transactions (with their fraud pattern when labelled), transform_windows
builds the shared window features plus labels, fit_pipeline fits log1p -> VectorAssembler
-> StandardScaler -> KMeans, and load_version writes the version and publishes it.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click
import numpy as np
import pandas as pd

from fraudpipe.config import Config, ModelConfig, load_config
from fraudpipe.errors import ModelError
from spark_apps.features import FEATURE_NAMES, window_features
from spark_apps.model_evaluation import (
    ClusterChoice,
    choose_fraud_clusters,
    choose_score_threshold,
    evaluate_windows,
    format_report,
    plot_clusters,
    report_json,
    sample_silhouette,
)
from spark_apps.model_registry import SPARK_MODEL_DIR, ModelRegistry, new_version
from spark_apps.scoring import ModelMetadata, score_matrix, transform

# The dataset a default run generates starts here (simulated clock), so that the same
# seed and size always give the same data and therefore comparable model versions.
DEFAULT_START_MS = 1_795_000_000_000
MODEL_INPUT_SUFFIX = "__in"
REPORT_FILE = "report.json"
PLOT_FILE = "clusters.png"
# Per-window uniform numbers (hashed from the window's key) that pick the split and the fit sample.
SPLIT_COLUMN = "__split_u"
SAMPLE_COLUMN = "__sample_u"

Progress = Callable[[str], None]


def console_progress() -> Progress:
    """Progress lines with the seconds elapsed since training started."""
    start = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.1f}s] {message}", err=True)

    return say


# --- extract ---------------------------------------------------------------------
def generate_dataset(config: Config, path: Path, *, transactions: int, progress: Progress) -> Path:
    """Write a labelled dataset with the producer's generator (file mode) unless already there."""
    from producer.files import write_files
    from producer.generator import TransactionGenerator

    if path.exists():
        progress(f"reusing generated dataset {path}")
        return path
    progress(f"generating {transactions:,} labelled transactions (seed {config.producer.seed}) -> {path}")
    generator = TransactionGenerator(config.producer, start_ms=DEFAULT_START_MS, clock="simulated")
    partial = path.with_name(f".partial-{path.name}")
    summary = write_files(generator.batches(transactions), partial)
    summary.labels_path.replace(_labels_file(path))
    partial.replace(path)  # the name appears only once the file is complete
    progress(f"generated {summary.transactions:,} transactions, {summary.labels:,} labelled")
    return path


def _labels_file(path: Path) -> Path:
    return path.with_name(f"{path.stem}.labels{path.suffix}")


def extract_transactions(spark: Any, path: Path) -> Any:
    """Transactions with a `pattern` column (null = not fraud) from the producer's Parquet.

    Files without a pattern column (Avro-like exports) get it from the labels file beside them.
    """
    from pyspark.sql import functions as F

    try:
        transactions = spark.read.parquet(str(path))
    except Exception as exc:  # Spark raises AnalysisException and friends, all untyped in py4j
        raise ModelError(f"cannot read training transactions {path}: {exc}") from exc
    if "pattern" in transactions.columns:
        return transactions
    labels_path = _labels_file(path)
    if not labels_path.exists():
        return transactions.withColumn("pattern", F.lit(None).cast("string"))
    labels = spark.read.parquet(str(labels_path)).select("transaction_id", "pattern")
    return transactions.join(F.broadcast(labels), "transaction_id", "left")


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


def log_features(config: ModelConfig) -> tuple[str, ...]:
    """Features fed through log1p: counts and amounts are heavy-tailed, ratios are not."""
    return tuple(name for name in FEATURE_NAMES if name in config.log_features)


def build_pipeline(config: ModelConfig) -> Any:
    """The Spark ML pipeline: log1p (SQL) -> VectorAssembler -> StandardScaler -> KMeans."""
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler

    logged = set(log_features(config))
    inputs = [
        (f"log1p(greatest(CAST({n} AS DOUBLE), 0D))" if n in logged else f"CAST({n} AS DOUBLE)")
        + f" AS {n}{MODEL_INPUT_SUFFIX}"
        for n in FEATURE_NAMES
    ]
    return Pipeline(
        stages=[
            SQLTransformer(statement=f"SELECT *, {', '.join(inputs)} FROM __THIS__"),
            VectorAssembler(inputCols=[n + MODEL_INPUT_SUFFIX for n in FEATURE_NAMES], outputCol="raw_features"),
            StandardScaler(inputCol="raw_features", outputCol="features", withMean=True, withStd=True),
            KMeans(k=config.k, seed=config.seed, maxIter=config.max_iter, featuresCol="features", predictionCol="cluster"),
        ]
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
    drawn later (silhouette, plot) do not depend on Spark's partitioning either.
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


def fit_models(spark: Any, windows: pd.DataFrame, is_train: np.ndarray, config: ModelConfig, *, progress: Progress) -> tuple[Any, list[tuple[float, ...]], list[tuple[float, ...]]]:
    """The Spark pipeline fitted on normal train windows, plus KMeans centroids of the fraud windows.

    Two fits rather than one: with labelled fraud at ~0.1 % of windows, one KMeans spends its
    centroids on the normal mass and mixes fraud into busy-normal clusters; fitted apart,
    normal and fraud each get centroids of their own and a window is scored by which it is
    nearer to. The normal fit uses a uniform sample (about model.fit_sample windows): the
    centroids of hundreds of thousands of look-alike quiet minutes do not move with more.

    log1p -> VectorAssembler -> StandardScaler are fitted once, on the normal sample, and
    serve both KMeans fits (each blockifies and caches its scaled vectors); the PipelineModel
    is assembled from the fitted stages, the same model Pipeline.fit returns.
    """
    from pyspark.ml import Pipeline, PipelineModel

    fraud = windows["fraud_tx"].to_numpy() > 0
    share = min(1.0, config.fit_sample / max(int((is_train & ~fraud).sum()), 1))
    normal_rows = np.flatnonzero(is_train & ~fraud & (windows[SAMPLE_COLUMN].to_numpy() < share))
    if len(normal_rows) < config.k:
        raise ModelError(f"only {len(normal_rows)} normal train windows for k={config.k}")
    progress(f"{len(windows):,} windows; fitting KMeans k={config.k} on {len(normal_rows):,} normal train windows")
    features = list(FEATURE_NAMES)
    *prepare, kmeans = build_pipeline(config).getStages()
    normal_df = spark.createDataFrame(windows.iloc[normal_rows][features])
    prepared = Pipeline(stages=prepare).fit(normal_df)
    normal_model = kmeans.fit(prepared.transform(normal_df))
    pipeline_model = PipelineModel(stages=[*prepared.stages, normal_model])
    normal = [tuple(float(v) for v in c) for c in normal_model.clusterCenters()]
    fraud_rows = np.flatnonzero(is_train & fraud)
    if not len(fraud_rows):
        return pipeline_model, normal, []
    k = min(config.fraud_k, len(fraud_rows))
    progress(f"fitting KMeans k={k} on {len(fraud_rows):,} labelled fraud train windows")
    scaled = prepared.transform(spark.createDataFrame(windows.iloc[fraud_rows][features]))
    fraud_model = kmeans.copy({kmeans.k: k}).fit(scaled)
    return pipeline_model, normal, [tuple(float(v) for v in c) for c in fraud_model.clusterCenters()]


def train(spark: Any, transactions: Any, config: ModelConfig, *, progress: Progress, version: str | None = None) -> TrainingRun:
    """Fit on a random train split of the windows, set the fraud score threshold, evaluate on the rest."""
    windows_pdf, is_train = extract_windows(transactions, config, progress=progress)
    pipeline_model, normal, fraud_centroids = fit_models(spark, windows_pdf, is_train, config, progress=progress)
    windows_pdf = windows_pdf.drop(columns=[SPLIT_COLUMN, SAMPLE_COLUMN])
    scaler = pipeline_model.stages[2]
    centroids = tuple(normal) + tuple(fraud_centroids)
    draft = ModelMetadata(
        version=version or new_version(),
        trained_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        feature_names=FEATURE_NAMES,
        log_features=log_features(config),
        scaler_mean=tuple(float(v) for v in scaler.mean.toArray()),
        scaler_std=tuple(float(v) for v in scaler.std.toArray()),
        centroids=centroids,
        fraud_clusters=tuple(range(len(normal), len(centroids))),
        outlier_distance=config.outlier_distance or None,
    )
    fraud = windows_pdf["fraud_tx"].to_numpy() > 0
    labelled = bool(fraud.any())
    features = windows_pdf[list(FEATURE_NAMES)].to_numpy(dtype=float)
    progress("choosing the fraud score threshold" if labelled else "choosing fraud clusters from centroids")
    train_scores = score_matrix(features[is_train], draft)
    evidence = choose_fraud_clusters(train_scores["cluster"], centroids, fraud[is_train] if labelled else None)
    if labelled:
        threshold, train_f1 = choose_score_threshold(train_scores["score"], fraud[is_train])
        choice = ClusterChoice(draft.fraud_clusters, "labels", evidence.fraud_share, evidence.sizes, evidence.centroid_distance)
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
    silhouette = sample_silhouette(scored["scaled"], scored["cluster"], seed=config.seed)
    report = evaluate_windows(test_pdf, k=len(centroids), silhouette=silhouette)
    report["fraud_cluster_choice"] = choice.method
    report["silhouette_sample"] = "up to 5,000 held-out windows"
    times = windows_pdf["window_start"]
    data_range = {
        "first_window": str(times.min()), "last_window": str(times.max()),
        "transactions": int(windows_pdf["tx_count"].sum()), "windows": int(len(windows_pdf)),
        "train_windows": int(is_train.sum()), "test_windows": int((~is_train).sum()),
        "labelled": labelled,
    }
    params = {"k": config.k, "fraud_k": len(fraud_centroids), "seed": config.seed, "max_iter": config.max_iter,
              "fit_sample": config.fit_sample, "train_fraction": config.train_fraction,
              "log_features": list(metadata.log_features), "outlier_distance": metadata.outlier_distance,
              "score_threshold": threshold, "train_f1": train_f1, "fraud_cluster_choice": choice.method,
              "centroid_distance": list(choice.centroid_distance)}
    metrics = {key: report[key] for key in ("silhouette", "window", "transaction", "per_pattern")}
    metadata = ModelMetadata(**{**metadata.__dict__, "params": params, "metrics": metrics, "data_range": data_range})
    return TrainingRun(pipeline_model, metadata, report, test_pdf, choice)


# --- load ------------------------------------------------------------------------
def load_version(run: TrainingRun, registry: ModelRegistry, *, store: Any = None, progress: Progress, plot_points: int = 20_000) -> Path:
    """Write the Spark model, report and plot into a staging dir and publish it as a version."""
    staging = registry.begin()
    try:
        run.pipeline_model.write().save(str(staging / SPARK_MODEL_DIR))
        (staging / REPORT_FILE).write_text(report_json(run.report))
        test = run.test_windows
        if len(test):
            progress("plotting clusters")
            metadata = run.metadata
            scaled = transform(test[list(metadata.feature_names)].to_numpy(dtype=float), metadata)
            axes = plot_clusters(
                str(staging / PLOT_FILE), scaled, test["cluster"].to_numpy(dtype=int),
                test["fraud_tx"].to_numpy() > 0, feature_names=metadata.feature_names,
                fraud_clusters=metadata.fraud_clusters, k=len(metadata.centroids), max_points=plot_points,
            )
            run.report["plot_axes"] = list(axes)
            (staging / REPORT_FILE).write_text(report_json(run.report))
        return registry.publish(staging, run.metadata, store=store)
    except BaseException:
        registry.discard(staging)
        raise


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
    from spark_apps.training_data import parse_time

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
    from spark_apps.session import build_session
    from spark_apps.training_data import extract_store_transactions

    model_config = config.model
    if input_path is None and not from_store:
        size = transactions or model_config.train_transactions
        input_path = generate_dataset(
            config, config.path(model_config.dataset_dir) / f"generated-seed{config.producer.seed}-{size}.parquet",
            transactions=size, progress=progress,
        )
    store = None
    if record or from_store:
        store = open_store(config.store)
        store.ensure_schema()
    try:
        progress("starting Spark")
        spark = spark or build_session(config.spark, app_name="fraudpipe-train")
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

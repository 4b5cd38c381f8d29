"""Train the KMeans fraud model on labelled window features, evaluate it, publish a version.

    fraudpipe train                                   # generate a labelled dataset of model.train_transactions
    fraudpipe train --input data/tx.parquet           # the producer's --to-file output
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
    return window_features(
        transactions,
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


def extract_windows(transactions: Any, config: ModelConfig, *, progress: Progress) -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled windows as pandas (one Spark pass) and a seeded train/held-out split.

    A minute of one sender is a few hundred bytes: even 1M transactions give well under a
    million windows, so everything after the shared feature code runs on numpy.
    """
    progress("building 1-minute sender windows")
    windows = transform_windows(transactions).toPandas()
    if windows.empty:
        raise ModelError("no transactions to train on")
    is_train = np.random.default_rng(config.seed).random(len(windows)) < config.train_fraction
    return windows, is_train


def fit_models(spark: Any, windows: pd.DataFrame, is_train: np.ndarray, config: ModelConfig, *, progress: Progress) -> tuple[Any, list[tuple[float, ...]], list[tuple[float, ...]]]:
    """The Spark pipeline fitted on normal train windows, plus KMeans centroids of the fraud windows.

    Two fits rather than one: with labelled fraud at ~0.1 % of windows, one KMeans spends its
    centroids on the normal mass and mixes fraud into busy-normal clusters; fitted apart,
    normal and fraud each get centroids of their own and a window is scored by which it is
    nearer to. The normal fit uses a uniform sample (model.fit_sample): the centroids of
    hundreds of thousands of look-alike quiet minutes do not move with more of them.
    """
    from pyspark.ml.clustering import KMeans

    fraud = windows["fraud_tx"].to_numpy() > 0
    rng = np.random.default_rng(config.seed)
    normal_rows = np.flatnonzero(is_train & ~fraud)
    if len(normal_rows) > config.fit_sample:
        normal_rows = np.sort(rng.choice(normal_rows, config.fit_sample, replace=False))
    if len(normal_rows) < config.k:
        raise ModelError(f"only {len(normal_rows)} normal train windows for k={config.k}")
    progress(f"{len(windows):,} windows; fitting KMeans k={config.k} on {len(normal_rows):,} normal train windows")
    features = list(FEATURE_NAMES)
    pipeline_model = build_pipeline(config).fit(spark.createDataFrame(windows.iloc[normal_rows][features]))
    normal = [tuple(float(v) for v in c) for c in pipeline_model.stages[-1].clusterCenters()]
    fraud_rows = np.flatnonzero(is_train & fraud)
    if not len(fraud_rows):
        return pipeline_model, normal, []
    k = min(config.fraud_k, len(fraud_rows))
    progress(f"fitting KMeans k={k} on {len(fraud_rows):,} labelled fraud train windows")
    scaled = pipeline_model.transform(spark.createDataFrame(windows.iloc[fraud_rows][features])).select("features")
    fraud_model = KMeans(k=k, seed=config.seed, maxIter=config.max_iter, featuresCol="features").fit(scaled)
    return pipeline_model, normal, [tuple(float(v) for v in c) for c in fraud_model.clusterCenters()]


def train(spark: Any, transactions: Any, config: ModelConfig, *, progress: Progress, version: str | None = None) -> TrainingRun:
    """Fit on a random train split of the windows, set the fraud score threshold, evaluate on the rest."""
    windows_pdf, is_train = extract_windows(transactions, config, progress=progress)
    pipeline_model, normal, fraud_centroids = fit_models(spark, windows_pdf, is_train, config, progress=progress)
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
@click.option("--transactions", type=int, help="size of the generated dataset (default model.train_transactions)")
@click.option("--no-store", is_flag=True, help="do not record the version in the store's models table")
def train_command(config_file: str | None, input_path: str | None, transactions: int | None, no_store: bool) -> None:
    """Train the KMeans model on labelled windows, evaluate it and publish a new version."""
    config = load_config(config_file)
    progress = console_progress()
    run_training(config, input_path=Path(input_path) if input_path else None,
                 transactions=transactions, record=not no_store, progress=progress)


def run_training(
    config: Config, *, input_path: Path | None = None, transactions: int | None = None,
    record: bool = True, progress: Progress, spark: Any = None,
) -> tuple[TrainingRun, Path]:
    """The whole job: data, features, fit, evaluation, publish; returns the run and its directory."""
    from spark_apps.session import build_session

    model_config = config.model
    if input_path is None:
        size = transactions or model_config.train_transactions
        input_path = generate_dataset(
            config, config.path(model_config.dataset_dir) / f"generated-seed{config.producer.seed}-{size}.parquet",
            transactions=size, progress=progress,
        )
    progress("starting Spark")
    spark = spark or build_session(config.spark, app_name="fraudpipe-train")
    run = train(spark, extract_transactions(spark, input_path), model_config, progress=progress)
    store = None
    if record:
        from fraudpipe.store import open_store

        store = open_store(config.store)
        store.ensure_schema()
    try:
        directory = load_version(run, ModelRegistry(config.path(model_config.dir)), store=store,
                                 progress=progress, plot_points=model_config.plot_points)
    finally:
        if store is not None:
            store.close()
    click.echo(format_report(run.report, fraud_clusters=run.metadata.fraud_clusters))
    progress(f"published model version {run.metadata.version} at {directory}")
    return run, directory


if __name__ == "__main__":
    train_command()

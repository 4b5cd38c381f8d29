"""One training run: windows with context, the time split, the fit, the threshold, the evaluations.

- The split is by time: the model is fitted on the earlier `model.train_fraction` of the
  minutes and evaluated on the later ones (windows.time_split).
- The first `model.history_warmup_minutes` only build the sender history (windows.warmup_mask):
  their windows are neither fitted on nor used for the threshold.
- Fragments (spark_apps.bursts.fragments: the earlier part of a burst that a later window
  holds more of: the cut half of a pair, the first minutes of a run) take no part in the
  fraud fit nor in the threshold: a fraud centroid fitted on a one-transaction fragment
  lands among ordinary windows.
- The fraud clusters and the score threshold are chosen on the train side only, the
  threshold for what an alert covers (bursts.burst_scores).
- Evaluation counts a window as predicted when it is flagged or covered by an alert
  (assessment.assess), in-distribution on the later minutes of the training data and, when
  a transfer dataset is given, on the later minutes of that (metrics.transfer).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from fraudpipe.config import ModelConfig
from spark_apps.bursts import burst_scores, fragments
from spark_apps.explanations import with_population_profile
from spark_apps.model_registry import new_version
from spark_apps.scoring import ModelMetadata, cluster_spreads, nearest, score_matrix, transform
from spark_apps.training.assessment import assess, summary
from spark_apps.training.evaluation import (
    ClusterChoice, choose_fraud_clusters, choose_score_threshold, labelled_fraud_clusters,
)
from spark_apps.training.fitting import SAMPLE_COLUMN, fit_models
from spark_apps.training.windows import (
    collect_windows, last_labelled_minute, time_split, transform_windows, warmup_mask,
)

Progress = Callable[[str], None]
# The old top-level keys of metadata.metrics (the in-distribution evaluation), kept for readers of them.
LEGACY_METRICS = ("silhouette", "window", "transaction", "per_pattern")


@dataclass
class TrainingRun:
    """Everything one run produced, before it is published."""

    pipeline_model: Any
    metadata: ModelMetadata
    report: dict[str, Any]
    test_windows: pd.DataFrame
    choice: ClusterChoice
    transfer_report: dict[str, Any] | None = None


def _uniform(seed: int) -> Any:
    """A uniform number in [0, 1) per window, hashed from its natural key and `seed`.

    The fit sample then depends on the windows alone, not on the order or the partitioning
    in which Spark returns them, so the same data always trains the same model.
    """
    from pyspark.sql import functions as F

    hashed = F.xxhash64(F.col("sender_account"), F.col("window_start"), F.lit(seed))
    return F.pmod(hashed, F.lit(1 << 53)).cast("double") / float(1 << 53)


def labelled_windows(transactions: Any, *, progress: Progress, sample_seed: int | None = None) -> pd.DataFrame:
    """The labelled windows of `transactions` with context (one Spark pass, then numpy)."""
    windows = transform_windows(transactions)
    if sample_seed is not None:
        windows = windows.withColumn(SAMPLE_COLUMN, _uniform(sample_seed))
    return collect_windows(windows, progress=progress)


def train(spark: Any, transactions: Any, config: ModelConfig, *, progress: Progress, version: str | None = None,
          transfer: Any = None) -> TrainingRun:
    """Fit on the earlier minutes, set the threshold there, evaluate on the later minutes (and on `transfer`)."""
    windows = labelled_windows(transactions, progress=progress, sample_seed=config.seed + 1)
    is_train, is_test = time_split(windows["window_start"], config.train_fraction, end_ms=last_labelled_minute(windows))
    fraud = windows["fraud_tx"].to_numpy() > 0
    labelled = bool(fraud.any())
    warmup = warmup_mask(windows["window_start"], is_train, config.history_warmup_minutes)
    fit_rows = fit_windows(windows, is_train & ~warmup)
    fragment = is_train & ~warmup & ~fit_rows
    fitted = fit_models(spark, windows, fit_rows, config, progress=progress)
    centroids = fitted.centroids
    draft = ModelMetadata(
        version=version or new_version(),
        trained_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        feature_names=fitted.features, log_features=fitted.log_features,
        scaler_mean=fitted.scaler_mean, scaler_std=fitted.scaler_std,
        centroids=centroids, fraud_clusters=fitted.fraud_clusters, outlier_distance=config.outlier_distance or None,
    )
    features = windows[list(fitted.features)].to_numpy(dtype=float)[fit_rows]
    # the clusters as weighted diagonal Gaussians (scoring.score_matrix): each centroid's spread
    # and share over the train windows it is nearest to
    scaled = transform(features, draft)
    spread, weight = cluster_spreads(scaled, nearest(scaled, np.asarray(centroids))[0], len(centroids))
    draft = replace(draft, cluster_spread=tuple(tuple(float(v) for v in row) for row in spread),
                    cluster_weight=tuple(float(v) for v in weight))
    progress("choosing the fraud score threshold on the train minutes" if labelled else "choosing fraud clusters from centroids")
    train_scores = score_matrix(features, draft)
    evidence = choose_fraud_clusters(train_scores["cluster"], centroids, fraud[fit_rows] if labelled else None)
    if labelled:
        fraud_clusters = labelled_fraud_clusters(draft.fraud_clusters, evidence.fraud_share)
        if fraud_clusters != draft.fraud_clusters:  # the score is relative to the fraud clusters
            train_scores = score_matrix(features, replace(draft, fraud_clusters=fraud_clusters))
        # chosen for what an alert covers (a flagged minute carries its pair and the rest of its run)
        threshold, train_f1 = choose_score_threshold(burst_scores(windows[fit_rows], train_scores["score"]),
                                                     fraud[fit_rows])
        choice = ClusterChoice(fraud_clusters, "labels", evidence.fraud_share, evidence.sizes, evidence.centroid_distance)
    else:
        threshold, train_f1, choice = None, None, evidence
    metadata = replace(draft, fraud_clusters=choice.fraud_clusters, score_threshold=threshold,
                       cluster_fraud_share=choice.fraud_share, cluster_sizes=choice.sizes)
    progress("evaluating on the later minutes")
    report, test_pdf = assess(windows[is_test].drop(columns=[SAMPLE_COLUMN]), metadata)
    report["fraud_cluster_choice"] = choice.method
    report["silhouette_of"] = "all test windows (the later minutes), squared Euclidean"
    report["split"] = "time"
    transfer_report = None
    if transfer is not None:
        progress("evaluating on the transfer dataset (its later minutes)")
        transfer_report = evaluate_later_minutes(transfer, metadata, config.train_fraction, progress=progress)
        report["transfer"] = transfer_report
    starts = windows["window_start"]
    data_range = {
        "first_window": _iso(starts.min()), "last_window": _iso(starts.max()),
        "first_test_window": _iso(test_pdf["window_start"].min()) if len(test_pdf) else None,
        "transactions": int(windows["tx_count"].sum()), "windows": int(len(windows)),
        "train_windows": int(is_train.sum()), "test_windows": int(is_test.sum()),
        "last_test_window": _iso(test_pdf["window_start"].max()) if len(test_pdf) else None,
        "fragments_left_out": int(fragment.sum()), "warmup_windows_left_out": int(warmup.sum()), "labelled": labelled,
    }
    # centroids are ordered normal (k), tail (tail_k), fraud (fraud_k): the counts say where each group starts
    params = {"k": len(fitted.normal), "tail_k": len(fitted.tail), "fraud_k": len(fitted.fraud), "seed": config.seed,
              "max_iter": config.max_iter, "fit_sample": config.fit_sample, "tail_share": config.tail_share,
              "tail_windows": fitted.tail_windows, "train_fraction": config.train_fraction, "split": "time",
              "history_warmup_minutes": config.history_warmup_minutes,
              "log_features": list(metadata.log_features), "outlier_distance": metadata.outlier_distance,
              "score_threshold": threshold, "train_f1": train_f1, "fraud_cluster_choice": choice.method,
              "centroid_distance": list(choice.centroid_distance)}
    metrics: dict[str, Any] = {key: report[key] for key in LEGACY_METRICS}
    metrics["in_distribution"] = summary(report)
    if transfer_report is not None:
        metrics["transfer"] = summary(transfer_report)
    metadata = replace(metadata, params=params, metrics=metrics, data_range=data_range)
    # what the alerts' reasons compare against: the normal train windows (all of them when unlabelled)
    metadata = with_population_profile(metadata, windows, is_train & ~warmup & ~fraud, transactions=transactions)
    return TrainingRun(fitted.pipeline_model, metadata, report, test_pdf, choice, transfer_report)


def fit_windows(windows: pd.DataFrame, is_train: np.ndarray) -> np.ndarray:
    """The windows the fit and the threshold see: the train minutes without fragments.

    Fragments are found among the train windows alone: whether a burst goes on after the
    split is a label of the test side, which training must not read.
    """
    fit = np.asarray(is_train, dtype=bool).copy()
    rows = np.flatnonzero(fit)
    if (windows["fraud_tx"].to_numpy()[rows] > 0).any():
        fit[rows] = ~fragments(windows.iloc[rows])
    return fit


def evaluate_later_minutes(transactions: Any, model: ModelMetadata, train_fraction: float, *,
                           progress: Progress) -> dict[str, Any]:
    """`model` on the later (1 - train_fraction) of the minutes of `transactions` (history from all of them)."""
    windows = labelled_windows(transactions, progress=progress)
    _earlier, later = time_split(windows["window_start"], train_fraction, end_ms=last_labelled_minute(windows))
    report, _scored = assess(windows[later], model, with_silhouette=False)
    report["split"] = "time: later minutes (to the last labelled one)"
    return report


def _iso(ms: Any) -> str:
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.timezone.utc).isoformat(timespec="seconds")

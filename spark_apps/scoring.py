"""Scoring of window features from a model's metadata alone: numpy and pandas, no Spark.

The training job exports everything needed here (feature order, log transform, scaler
mean/std, centroids in scaled space, which clusters are fraud, an optional distance
threshold), so the streaming job, the tests and the dashboard score a window exactly as
the Spark pipeline would, without loading a Spark model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Mapping

import numpy as np

if TYPE_CHECKING:  # pandas is imported where windows are scored: `fraudpipe up` only checks metadata
    import pandas as pd

from fraudpipe.errors import ModelError
from spark_apps.explanations import explain_rows

METADATA_FILE = "metadata.json"
# A model without score_threshold flags a window nearer a fraud centroid than every normal one.
DEFAULT_THRESHOLD = 0.5
SCORE_COLUMNS = ("is_fraud", "score", "cluster", "explanation", "model_version")


@dataclass(frozen=True)
class ModelMetadata:
    """What a trained model version is, and everything needed to score with it."""

    version: str
    trained_at: str
    feature_names: tuple[str, ...]
    log_features: tuple[str, ...]
    scaler_mean: tuple[float, ...]
    scaler_std: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]
    fraud_clusters: tuple[int, ...]
    # A window farther than this (scaled space) from every normal centroid is flagged too:
    # its score is raised to at least the threshold (score_matrix), so it is flagged by its score.
    outlier_distance: float | None = None
    # A window is fraud when its score (relative closeness to the fraud centroids) is at or
    # above this, chosen on labelled train windows; None = DEFAULT_THRESHOLD.
    score_threshold: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    data_range: Mapping[str, Any] = field(default_factory=dict)
    cluster_fraud_share: tuple[float | None, ...] = ()
    cluster_sizes: tuple[int, ...] = ()
    # Quantiles of each feature over the normal training windows and the amounts' currency
    # (spark_apps.explanations.population_profile); {} for models trained before it existed.
    population_profile: Mapping[str, Any] = field(default_factory=dict)
    # Per cluster, the spread (std per feature, scaled space) and the share of the train
    # windows it holds. When present, a window is scored by how much likelier it is under
    # the fraud clusters than under the normal ones (see score_matrix); older models
    # without them keep the distance ratio.
    cluster_spread: tuple[tuple[float, ...], ...] = ()
    cluster_weight: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.feature_names)
        if len(self.scaler_mean) != n or len(self.scaler_std) != n:
            raise ModelError(f"model {self.version}: scaler stats do not match {n} features")
        if not self.centroids or any(len(c) != n for c in self.centroids):
            raise ModelError(f"model {self.version}: centroids must each have {n} values")
        bad = [c for c in self.fraud_clusters if not 0 <= c < len(self.centroids)]
        if bad:
            raise ModelError(f"model {self.version}: fraud cluster(s) {bad} out of range 0..{len(self.centroids) - 1}")
        if self.cluster_spread and (len(self.cluster_spread) != len(self.centroids)
                                    or len(self.cluster_weight) != len(self.centroids)
                                    or any(len(c) != n or min(c) <= 0 for c in self.cluster_spread)):
            raise ModelError(f"model {self.version}: cluster spreads/weights must be positive, one per centroid and feature")
        unknown = set(self.log_features) - set(self.feature_names)
        if unknown:
            raise ModelError(f"model {self.version}: log features {sorted(unknown)} are not features")

    @property
    def threshold(self) -> float:
        """The score at or above which a window is flagged: is_fraud == (score >= threshold), always."""
        return DEFAULT_THRESHOLD if self.score_threshold is None else self.score_threshold

    @property
    def normal_clusters(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.centroids)) if i not in self.fraud_clusters)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        try:
            return cls(
                version=str(data["version"]),
                trained_at=str(data["trained_at"]),
                feature_names=tuple(data["feature_names"]),
                log_features=tuple(data.get("log_features", ())),
                scaler_mean=tuple(float(v) for v in data["scaler_mean"]),
                scaler_std=tuple(float(v) for v in data["scaler_std"]),
                centroids=tuple(tuple(float(v) for v in c) for c in data["centroids"]),
                fraud_clusters=tuple(int(c) for c in data["fraud_clusters"]),
                outlier_distance=None if data.get("outlier_distance") is None else float(data["outlier_distance"]),
                score_threshold=None if data.get("score_threshold") is None else float(data["score_threshold"]),
                params=dict(data.get("params", {})),
                metrics=dict(data.get("metrics", {})),
                data_range=dict(data.get("data_range", {})),
                cluster_fraud_share=tuple(data.get("cluster_fraud_share", ())),
                cluster_sizes=tuple(int(v) for v in data.get("cluster_sizes", ())),
                population_profile=dict(data.get("population_profile") or {}),
                cluster_spread=tuple(tuple(float(v) for v in c) for c in data.get("cluster_spread", ())),
                cluster_weight=tuple(float(v) for v in data.get("cluster_weight", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model metadata is incomplete or malformed: {exc!r}") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_metadata(path: str | Path) -> ModelMetadata:
    """Read a metadata.json file, or the metadata.json inside a version directory."""
    file = Path(path)
    if file.is_dir():
        file = file / METADATA_FILE
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model metadata {file}: {exc}") from exc
    return ModelMetadata.from_dict(data)


def transform(features: np.ndarray, model: ModelMetadata) -> np.ndarray:
    """Raw features (rows x FEATURE_NAMES order) -> the scaled space the centroids live in."""
    x = np.asarray(features, dtype=float).copy()
    x = np.nan_to_num(x, nan=0.0)
    for name in model.log_features:
        i = model.feature_names.index(name)
        x[:, i] = np.log1p(np.clip(x[:, i], 0.0, None))
    std = np.asarray(model.scaler_std, dtype=float)
    # Spark's StandardScaler maps a zero-variance feature to 0.0; do the same.
    safe = np.where(std > 0, std, 1.0)
    scaled = (x - np.asarray(model.scaler_mean)) / safe
    scaled[:, std <= 0] = 0.0
    return scaled


def untransform(scaled: np.ndarray, model: ModelMetadata) -> np.ndarray:
    """Scaled values back to the features' own units (inverse of transform)."""
    x = np.asarray(scaled, dtype=float) * np.asarray(model.scaler_std) + np.asarray(model.scaler_mean)
    x = np.atleast_2d(x).copy()
    for name in model.log_features:
        i = model.feature_names.index(name)
        x[:, i] = np.expm1(x[:, i])
    return x


# Rows per block of distances: a (rows x centroids) block stays in the CPU cache instead of
# several (windows x centroids) temporaries. Measured, 60k windows: 192 centroids 223 -> 31 ms,
# 48 centroids 47 -> 25 ms (blocks of 1024-8192 rows: 31-40 ms); 475k windows x 192: 4.1 -> 0.25 s.
ROW_BLOCK = 1024


def nearest(scaled: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the index of the nearest of `centroids` and the squared Euclidean distance to it."""
    centroids = np.asarray(centroids, dtype=float)
    n = len(scaled)
    index = np.empty(n, dtype=np.int64)
    d2 = np.empty(n, dtype=float)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centroid, so it is added
    # to the minimum only.
    minus_2ct = -2.0 * centroids.T
    c_sq = (centroids * centroids).sum(axis=1)
    for start in range(0, n, ROW_BLOCK):
        block = scaled[start:start + ROW_BLOCK] @ minus_2ct
        block += c_sq
        i = block.argmin(axis=1)
        index[start:start + len(i)] = i
        d2[start:start + len(i)] = block[np.arange(len(i)), i]
    d2 += (scaled * scaled).sum(axis=1)
    np.maximum(d2, 0.0, out=d2)
    return index, d2


class Gaussians:
    """The clusters as weighted diagonal Gaussians: log(weight x density) of rows, block by block
    (per row and cluster, the constant of the density dropped).

    sum_j ((x_j - c_j) / s_j)^2 is expanded into two matrix products, so a block of rows
    costs two small GEMMs instead of a (rows x clusters x features) temporary.
    """

    def __init__(self, model: ModelMetadata) -> None:
        centroids = np.asarray(model.centroids, dtype=float)
        spread = np.asarray(model.cluster_spread, dtype=float)
        inverse_var = 1.0 / np.square(spread)
        self.quadratic = (-0.5 * inverse_var).T
        self.linear = (centroids * inverse_var).T
        self.constant = (-0.5 * (centroids * centroids * inverse_var).sum(axis=1) - np.log(spread).sum(axis=1)
                         + np.log(np.maximum(np.asarray(model.cluster_weight, dtype=float), 1e-300)))

    def block(self, x: np.ndarray) -> np.ndarray:
        out = (x * x) @ self.quadratic
        out += x @ self.linear
        out += self.constant
        return out


def _gaussian_scores(scaled: np.ndarray, model: ModelMetadata, normal: np.ndarray,
                     fraud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log-likelihood ratio fraud : normal, likeliest cluster, likeliest normal, likeliest fraud) per row.

    Block by block, so the (rows x clusters) matrix never exists whole: scoring a training
    set (350k windows x 176 clusters) stays in cache instead of streaming ~0.5 GB through it.
    """
    gaussians = Gaussians(model)
    n = len(scaled)
    llr = np.empty(n)
    cluster, nearest_normal, nearest_fraud = (np.empty(n, dtype=np.int64) for _ in range(3))
    for start in range(0, n, ROW_BLOCK):
        ll = gaussians.block(scaled[start:start + ROW_BLOCK])
        rows = slice(start, start + len(ll))
        of_normal, of_fraud = ll[:, normal], ll[:, fraud]
        llr[rows] = _logsumexp(of_fraud) - _logsumexp(of_normal)
        cluster[rows] = ll.argmax(axis=1)
        nearest_normal[rows] = normal[of_normal.argmax(axis=1)]
        nearest_fraud[rows] = fraud[of_fraud.argmax(axis=1)]
    return llr, cluster, nearest_normal, nearest_fraud


def _logsumexp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))


def score_matrix(features: np.ndarray, model: ModelMetadata) -> dict[str, np.ndarray]:
    """Cluster, is_fraud, score and the nearest normal and fraud centroids for raw feature rows.

    With cluster spreads (models from issue 15 on): score = P(fraud clusters | x) with the
    clusters as diagonal Gaussians weighted by their share of the train windows, i.e. the
    logistic of the log-likelihood ratio; "cluster" is the likeliest one, nearest_normal and
    nearest_fraud the likeliest of each kind. Without them: score = d_normal / (d_normal +
    d_fraud), the relative closeness to fraud. A window farther than outlier_distance from
    every normal centroid scores at least the threshold, rising toward 1 with the distance.
    Either way a window is fraud exactly when score >= model.threshold (0.5 when the model
    has none), so no alert ever carries a score below its model's threshold.
    """
    scaled = transform(features, model)
    centroids = np.asarray(model.centroids, dtype=float)
    normal = np.asarray(model.normal_clusters or tuple(range(len(centroids))))
    fraud = np.asarray(model.fraud_clusters, dtype=np.int64)
    i, d2_normal = nearest(scaled, centroids[normal])
    nearest_normal = normal[i]
    d_normal = np.sqrt(d2_normal)
    if model.cluster_spread and len(fraud):
        llr, cluster, nearest_normal, nearest_fraud = _gaussian_scores(scaled, model, normal, fraud)
        score = 0.5 * (1.0 + np.tanh(0.5 * np.clip(llr, -700, 700)))  # logistic, without overflow
    elif len(fraud):
        i, d2_fraud = nearest(scaled, centroids[fraud])
        nearest_fraud = fraud[i]
        # the nearest of all centroids, the lower index on a tie (as one argmin over all would pick)
        fraud_nearer = (d2_fraud < d2_normal) | ((d2_fraud == d2_normal) & (nearest_fraud < nearest_normal))
        cluster = np.where(fraud_nearer, nearest_fraud, nearest_normal)
        d_fraud = np.sqrt(d2_fraud)
        denominator = d_normal + d_fraud
        score = np.where(denominator > 0, d_normal / np.where(denominator > 0, denominator, 1.0), 0.0)
    else:
        cluster = nearest_normal
        nearest_fraud = np.full(len(scaled), -1, dtype=np.int64)
        score = np.zeros(len(scaled))
    threshold = model.threshold
    if model.outlier_distance:
        # threshold at outlier_distance, toward 1 far out: flagged by the score itself, as every alert is
        beyond = d_normal > model.outlier_distance
        outlier = threshold + (1.0 - threshold) * (1.0 - model.outlier_distance / np.where(beyond, d_normal, 1.0))
        score = np.where(beyond, np.maximum(score, outlier), score)
    is_fraud = score >= threshold if len(fraud) or model.outlier_distance else np.zeros(len(scaled), bool)
    return {
        "scaled": scaled,
        "cluster": cluster,
        "is_fraud": is_fraud,
        "score": score,
        "distance": d_normal,
        "nearest_normal": nearest_normal,
        "nearest_fraud": nearest_fraud,
    }


# The narrowest spread (scaled units) a cluster gets in any feature. Clusters of quiet minutes
# are nearly constant in some features; a floor of 0.05 let one unusual value drive a normal
# window's likelihood to nothing. Session 7, scratch harness, 3 KMeans seeds, window F1
# in-distribution / shifted: 0.05 -> 0.908 / 0.909, 0.15 -> 0.918 / 0.901, 0.3 -> 0.920 / 0.913,
# 0.5 -> 0.883 / 0.891.
SPREAD_FLOOR: Final = 0.3


def cluster_spreads(scaled: np.ndarray, clusters: np.ndarray, k: int, *,
                    floor: float = SPREAD_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: std per feature of its member rows (at least `floor`; a cluster of fewer
    than 3 rows gets half the overall std) and its share of the rows (each at least one row).
    """
    scaled = np.asarray(scaled, dtype=float)
    clusters = np.asarray(clusters, dtype=np.int64)
    overall = np.maximum(scaled.std(axis=0) * 0.5, floor) if len(scaled) else np.full(scaled.shape[1], 1.0)
    spread = np.tile(overall, (k, 1))
    counts = np.bincount(clusters, minlength=k).astype(float)
    for c in np.flatnonzero(counts >= 3):
        spread[c] = np.maximum(scaled[clusters == c].std(axis=0), floor)
    weight = np.maximum(counts, 1.0)
    return spread, weight / weight.sum()


def score_windows(pdf: "pd.DataFrame", model: ModelMetadata) -> "pd.DataFrame":
    """A copy of `pdf` (one row per window, FEATURE_NAMES columns) with SCORE_COLUMNS added."""
    import pandas as pd

    missing = [name for name in model.feature_names if name not in pdf.columns]
    if missing:
        raise ModelError(f"model {model.version}: windows lack feature column(s) {missing}")
    out = pdf.copy()
    if out.empty:
        for name, dtype in zip(SCORE_COLUMNS, (bool, float, "int32", object, object)):
            out[name] = pd.Series(dtype=dtype)
        return out
    raw = out[list(model.feature_names)].to_numpy(dtype=float)
    result = score_matrix(raw, model)
    out["is_fraud"] = result["is_fraud"].astype(bool)
    out["score"] = result["score"].astype(float)
    out["cluster"] = result["cluster"].astype("int32")
    out["explanation"] = explain_rows(out, result, range(len(out)), model)
    out["model_version"] = model.version
    return out

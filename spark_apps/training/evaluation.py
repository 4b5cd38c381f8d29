"""Choosing the fraud clusters and evaluating a model: numpy and pandas only, no Spark.

Windows arrive as a pandas frame with the columns of `spark_apps.features` plus, when the
data is labelled, `fraud_tx` (labelled transactions in the window) and `pattern` (the
fraud pattern of those transactions, None for normal windows). A window is fraud when it
holds at least one labelled transaction; a transaction is predicted fraud when its window
is flagged, so transaction-level numbers are window numbers weighted by transaction counts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

# Without labels a cluster is called fraud when it is rare and far from the normal mass.
UNLABELLED_MAX_SHARE = 0.01
UNLABELLED_MIN_DISTANCE = 3.0
# With labels, a cluster fitted on normal windows whose train windows are mostly labelled
# fraud is a fraud cluster too: a tail centroid can settle among account takeovers.
MOSTLY_FRAUD_SHARE = 0.5


@dataclass(frozen=True)
class ClusterChoice:
    """Which clusters are fraud, and the evidence the choice was made from."""

    fraud_clusters: tuple[int, ...]
    method: str  # "labels" or "centroids"
    fraud_share: tuple[float | None, ...]  # labelled fraud share of each cluster's windows
    sizes: tuple[int, ...]
    centroid_distance: tuple[float, ...]  # distance of each centroid from the dominant cluster's


def choose_fraud_clusters(
    clusters: np.ndarray, centroids: Sequence[Sequence[float]], labels: np.ndarray | None = None
) -> ClusterChoice:
    """Pick the fraud clusters from labelled shares when labels exist, else from the centroids.

    With labels, clusters are ranked by their labelled fraud share and the prefix of that
    ranking with the best window-level F1 on these windows is chosen: cluster indexes carry
    no meaning, only what the clusters contain does.
    """
    k = len(centroids)
    clusters = np.asarray(clusters, dtype=int)
    sizes = np.bincount(clusters, minlength=k)
    points = np.asarray(centroids, dtype=float)
    dominant = int(sizes.argmax())
    distance = np.sqrt(((points - points[dominant]) ** 2).sum(axis=1))
    if labels is None or not np.asarray(labels).any():
        share_of_windows = sizes / max(int(sizes.sum()), 1)
        chosen = [
            c for c in range(k)
            if share_of_windows[c] < UNLABELLED_MAX_SHARE and distance[c] > UNLABELLED_MIN_DISTANCE
        ]
        return ClusterChoice(tuple(sorted(chosen)), "centroids", tuple([None] * k), _ints(sizes), _floats(distance))
    labels = np.asarray(labels, dtype=bool)
    fraud = np.bincount(clusters, weights=labels.astype(float), minlength=k)
    share = np.divide(fraud, sizes, out=np.zeros(k), where=sizes > 0)
    order = sorted((c for c in range(k) if fraud[c] > 0), key=lambda c: (-share[c], c))
    total_fraud = fraud.sum()
    best: tuple[float, int] = (0.0, 0)
    tp = flagged = 0.0
    for n, c in enumerate(order, start=1):
        tp += fraud[c]
        flagged += sizes[c]
        f1 = 2 * tp / (flagged + total_fraud)
        if f1 > best[0]:
            best = (f1, n)
    chosen = sorted(order[: best[1]])
    return ClusterChoice(
        tuple(chosen),
        "labels",
        tuple(round(float(s), 6) if sizes[c] else None for c, s in enumerate(share)),
        _ints(sizes),
        _floats(distance),
    )


def labelled_fraud_clusters(fitted_on_fraud: Sequence[int], fraud_share: Sequence[float | None]) -> tuple[int, ...]:
    """The clusters fitted on labelled fraud, plus every other whose train windows are mostly fraud."""
    mostly = (c for c, share in enumerate(fraud_share) if share is not None and share > MOSTLY_FRAUD_SHARE)
    return tuple(sorted({*fitted_on_fraud, *mostly}))


def _ints(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in values)


def binary_metrics(tp: float, fp: float, fn: float, tn: float) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion matrix; an empty denominator gives 0.0."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "confusion": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
    }


def evaluate_windows(windows: pd.DataFrame, *, k: int, silhouette: float | None = None) -> dict[str, Any]:
    """The evaluation report of scored, labelled windows (is_fraud = prediction)."""
    predicted = windows["is_fraud"].to_numpy(dtype=bool)
    fraud_tx = windows["fraud_tx"].to_numpy(dtype=float)
    tx = windows["tx_count"].to_numpy(dtype=float)
    actual = fraud_tx > 0
    normal_tx = tx - fraud_tx
    window = binary_metrics(
        float((predicted & actual).sum()),
        float((predicted & ~actual).sum()),
        float((~predicted & actual).sum()),
        float((~predicted & ~actual).sum()),
    )
    transaction = binary_metrics(
        fraud_tx[predicted].sum(), normal_tx[predicted].sum(), fraud_tx[~predicted].sum(), normal_tx[~predicted].sum()
    )
    patterns: dict[str, Any] = {}
    pattern = windows["pattern"].fillna("").to_numpy(dtype=object)
    for name in sorted(set(pattern[actual]) - {""}):
        mine = actual & (pattern == name)
        patterns[name] = {
            "windows": int(mine.sum()),
            "window_recall": round(float(predicted[mine].mean()), 6),
            "transactions": int(fraud_tx[mine].sum()),
            "transaction_recall": round(float(fraud_tx[mine & predicted].sum() / fraud_tx[mine].sum()), 6),
        }
    clusters = windows["cluster"].to_numpy(dtype=int)
    sizes = np.bincount(clusters, minlength=k)
    fraud_per_cluster = np.bincount(clusters, weights=actual.astype(float), minlength=k)
    return {
        "windows": int(len(windows)),
        "transactions": int(tx.sum()),
        "fraud_windows": int(actual.sum()),
        "fraud_transactions": int(fraud_tx.sum()),
        "silhouette": None if silhouette is None else round(float(silhouette), 6),
        "window": window,
        "transaction": transaction,
        "per_pattern": patterns,
        "cluster_sizes": _ints(sizes),
        "cluster_fraud_windows": _ints(fraud_per_cluster),
    }


def format_report(report: dict[str, Any], *, fraud_clusters: Sequence[int] = ()) -> str:
    """The evaluation report as text for a terminal."""
    lines = [
        f"held-out windows {report['windows']:,} ({report['fraud_windows']:,} fraud), "
        f"transactions {report['transactions']:,} ({report['fraud_transactions']:,} fraud)",
        f"silhouette          {report['silhouette']}",
    ]
    for level in ("window", "transaction"):
        m = report[level]
        c = m["confusion"]
        lines.append(
            f"{level:<12} precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}   "
            f"TP {c['tp']:,}  FP {c['fp']:,}  FN {c['fn']:,}  TN {c['tn']:,}"
        )
    lines.append("per pattern         windows  window recall   transactions  tx recall")
    for name, p in report["per_pattern"].items():
        lines.append(
            f"  {name:<18}{p['windows']:>7,}  {p['window_recall']:>13.4f}   {p['transactions']:>12,}  {p['transaction_recall']:>9.4f}"
        )
    # A model has a couple of hundred clusters: list those that hold fraud or flag it, sum up the rest.
    lines.append("cluster  windows  fraud windows")
    rest = [0, 0]
    for c, (size, fraud) in enumerate(zip(report["cluster_sizes"], report["cluster_fraud_windows"])):
        if fraud or c in fraud_clusters:
            mark = "  <- fraud" if c in fraud_clusters else ""
            lines.append(f"  {c:>5}  {size:>7,}  {fraud:>13,}{mark}")
        else:
            rest = [rest[0] + 1, rest[1] + size]
    lines.append(f"  and {rest[0]} normal clusters of {rest[1]:,} windows without fraud")
    return "\n".join(lines)


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def informative_features(scaled: np.ndarray, clusters: np.ndarray, k: int) -> tuple[int, int]:
    """Indexes of the two features whose between-cluster variance explains the most."""
    total = scaled.var(axis=0)
    means = np.zeros((k, scaled.shape[1]))
    counts = np.bincount(clusters, minlength=k).astype(float)
    for c in range(k):
        if counts[c]:
            means[c] = scaled[clusters == c].mean(axis=0)
    overall = scaled.mean(axis=0)
    between = (counts[:, None] * (means - overall) ** 2).sum(axis=0) / max(counts.sum(), 1.0)
    ratio = np.divide(between, total, out=np.zeros_like(between), where=total > 0)
    first, second = np.argsort(-ratio, kind="stable")[:2]
    return int(first), int(second)


def plot_clusters(
    path: str,
    scaled: np.ndarray,
    clusters: np.ndarray,
    actual: np.ndarray,
    *,
    feature_names: Sequence[str],
    fraud_clusters: Sequence[int],
    k: int,
    max_points: int = 20_000,
    seed: int = 0,
) -> tuple[str, str]:
    """Write a PNG scatter of the two most informative scaled features; returns their names."""
    import matplotlib

    matplotlib.use("Agg")  # files only: training runs headless
    import matplotlib.pyplot as plt

    x, y = informative_features(scaled, clusters, k)
    rng = np.random.default_rng(seed)
    # keep every fraud window, sample the (huge) normal mass so the file stays small
    keep = actual | np.isin(clusters, fraud_clusters)
    rest = np.flatnonzero(~keep)
    if len(rest) > max_points:
        rest = rng.choice(rest, max_points, replace=False)
    index = np.concatenate([rest, np.flatnonzero(keep)])
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    # A model has a couple of hundred clusters: one legend entry each would bury the plot, so
    # the normal ones share a palette without red and one entry, the fraud ones are red.
    cmap = plt.get_cmap("viridis", 20)
    flagged = np.isin(clusters[index], fraud_clusters)
    normal = index[~flagged]
    ax.scatter(scaled[normal, x], scaled[normal, y], s=6, c=cmap(clusters[normal] % 20), alpha=0.5,
               label=f"windows of the {k - len(fraud_clusters)} normal clusters")
    mine = index[flagged]
    ax.scatter(scaled[mine, x], scaled[mine, y], s=10, color="tab:red", alpha=0.8,
               label=f"windows of the {len(fraud_clusters)} fraud clusters")
    fraud = index[actual[index]]
    ax.scatter(scaled[fraud, x], scaled[fraud, y], s=28, facecolors="none", edgecolors="black", linewidths=0.7, label="labelled fraud")
    ax.set_xlabel(f"{feature_names[x]} (scaled)")
    ax.set_ylabel(f"{feature_names[y]} (scaled)")
    ax.set_title("KMeans clusters of 1-minute sender windows (held-out split)")
    ax.legend(fontsize=8, markerscale=2, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return feature_names[x], feature_names[y]


def choose_score_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The score cut with the best F1 on labelled windows, and that F1.

    The cut is set halfway between the lowest score kept and the next one below, so a
    window scored like a flagged training window is flagged too.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return 0.5, 0.0
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    tp = np.cumsum(labels[order])
    flagged = np.arange(1, len(ranked) + 1)
    # only cut between distinct scores: equal scores are flagged together
    last_of_run = np.append(ranked[1:] < ranked[:-1], True)
    f1 = np.where(last_of_run, 2 * tp / (flagged + labels.sum()), -1.0)
    best = int(f1.argmax())
    below = ranked[best + 1] if best + 1 < len(ranked) else ranked[best] - 1e-6
    return float((ranked[best] + below) / 2), float(f1[best])


def silhouette(scaled: np.ndarray, clusters: np.ndarray, *, block: int = 4096) -> float | None:
    """Mean silhouette of all points, squared Euclidean like Spark's ClusteringEvaluator.

    Exact and linear in the points: the mean squared distance from x to the members of C is
    |x|^2 - 2 x.mean(C) + mean(|y|^2 over C), so only cluster means are needed, never the
    (points x points) matrix (which limited the old version to a 5,000-point sample).
    """
    x = np.asarray(scaled, dtype=float)
    labels, c = np.unique(np.asarray(clusters, dtype=int), return_inverse=True)
    if len(labels) < 2:
        return None
    counts = np.bincount(c).astype(float)
    sq = (x * x).sum(axis=1)
    means = np.zeros((len(labels), x.shape[1]))
    np.add.at(means, c, x)
    means /= counts[:, None]
    mean_sq = np.bincount(c, weights=sq) / counts
    total = 0.0
    for start in range(0, len(x), block):
        rows = slice(start, start + block)
        own_c = c[rows]
        n = len(own_c)
        # mean squared distance of each point to each cluster (its own includes itself at 0)
        mean_to = sq[rows, None] - 2.0 * x[rows] @ means.T + mean_sq[None, :]
        np.maximum(mean_to, 0.0, out=mean_to)
        own = counts[own_c]
        a = np.where(own > 1, mean_to[np.arange(n), own_c] * own / np.maximum(own - 1, 1), 0.0)
        mean_to[np.arange(n), own_c] = np.inf
        b = mean_to.min(axis=1)
        total += float(np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0).sum())
    return total / len(x)

"""The Model page's read model: what a person needs to know about a model version, from its registry row.

A row's `metadata` is the training job's ModelMetadata JSON and `metrics` its evaluation
report(s). Both are decoded here into display-ready parts: the evaluation sections as
tables, the cluster groups with their sizes, and the centroids in the order the groups
come. Nothing here imports Spark: the few lines of inverse scaling are repeated, not shared.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from fraudpipe.store.base import Store
from dashboard.data import parse_json_text

# Keys of a report that are shown as tables of their own, not among the section's other figures.
TABLE_KEYS = ("window", "transaction", "per_pattern")
# The training data's description (ModelMetadata.data_range, stored with sorted keys), in reading order.
DATA_RANGE_ORDER = ("first_window", "last_window", "transactions", "windows", "train_windows", "test_windows", "labelled")
# The per-pattern figures of a report, in reading order.
PATTERN_COLUMNS = ("windows", "window_recall", "transactions", "transaction_recall")
# A report's own name when the metrics hold it at the top level (models before named sections).
TOP_LEVEL_SECTION = "held-out split"
# The groups the training job fits, in the order their centroids are stored (params k, tail_k, fraud_k).
GROUP_PARAMS = (("normal", "k"), ("tail", "tail_k"), ("fraud", "fraud_k"))


def is_report(value: Any) -> bool:
    """An evaluation report: window and/or transaction figures, each with precision and recall."""
    return isinstance(value, Mapping) and any(
        isinstance(value.get(level), Mapping) and "precision" in value[level] for level in ("window", "transaction")
    )


def evaluation_section(name: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """One report as tables: P/R/F1 per level, a 2x2 confusion matrix per level, recall per pattern."""
    levels = []
    for level in ("window", "transaction"):
        figures = report.get(level)
        if isinstance(figures, Mapping):
            confusion = figures.get("confusion") if isinstance(figures.get("confusion"), Mapping) else {}
            levels.append({
                "level": level,
                "precision": figures.get("precision"),
                "recall": figures.get("recall"),
                "f1": figures.get("f1"),
                "confusion": {key: confusion.get(key) for key in ("tp", "fp", "fn", "tn")} if confusion else None,
            })
    patterns = report.get("per_pattern") if isinstance(report.get("per_pattern"), Mapping) else {}
    pattern_rows = [{"pattern": name_, **values} for name_, values in patterns.items() if isinstance(values, Mapping)]
    # the report's JSON keys come sorted; windows before transactions reads better, other keys after
    found = {key for row in pattern_rows for key in row if key != "pattern"}
    columns = [key for key in PATTERN_COLUMNS if key in found] + sorted(found - set(PATTERN_COLUMNS))
    return {
        "name": name,
        "levels": levels,
        "patterns": pattern_rows,
        "pattern_columns": columns,
        "other": {key: value for key, value in report.items() if key not in TABLE_KEYS},
    }


def evaluation_sections(metrics: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every evaluation report in `metrics` (top level and named sections such as in_distribution,
    transfer), and the figures that belong to none of them."""
    sections = []
    rest: dict[str, Any] = {}
    if is_report(metrics):
        sections.append(evaluation_section(TOP_LEVEL_SECTION, {k: v for k, v in metrics.items() if not is_report(v)}))
    for key, value in metrics.items():
        if is_report(value):
            sections.append(evaluation_section(key.replace("_", " "), value))
        elif not is_report(metrics):
            rest[key] = value
    return sections, rest


def cluster_groups(metadata: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """The centroid groups with their index ranges and sizes (train windows nearest to them).

    Models with params k, tail_k and fraud_k store their centroids in that order; older ones
    have only fraud_clusters, and are shown as normal and fraud.
    """
    params = metadata.get("params") if isinstance(metadata.get("params"), Mapping) else {}
    fraud = {int(c) for c in metadata.get("fraud_clusters") or []}
    sizes = list(metadata.get("cluster_sizes") or [])
    counts = [params.get(key) for _, key in GROUP_PARAMS]
    if all(isinstance(c, int) and c >= 0 for c in counts) and sum(counts) == count:
        spans, start = [], 0
        for (name, _), n in zip(GROUP_PARAMS, counts):
            spans.append((name, list(range(start, start + n))))
            start += n
    else:
        spans = [("normal", [c for c in range(count) if c not in fraud]), ("fraud", sorted(c for c in fraud if c < count))]
    groups = []
    for name, members in spans:
        if not members:
            continue
        known = [sizes[c] for c in members if c < len(sizes) and isinstance(sizes[c], (int, float))]
        groups.append({
            "name": name,
            "first": members[0],
            "clusters": len(members),
            "members": members,
            "indexes": index_ranges(members),
            "windows": int(sum(known)) if known else None,
            "flagging": sum(c in fraud for c in members),
        })
    return groups


def index_ranges(members: list[int]) -> str:
    """Centroid indexes as runs: [0, 1, 2, 5] -> "#0–2, #5"."""
    runs: list[list[int]] = []
    for c in members:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ", ".join(f"#{a}" if a == b else f"#{a}–{b}" for a, b in runs)


def typical_windows(metadata: Mapping[str, Any], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each group's centre (centroids weighted by their sizes) back in the features' own units.

    The centroids live in the scaled space (log1p of log_features, then standardised); this
    undoes both, as spark_apps.scoring.untransform does, so a reader sees counts and amounts.
    """
    centroids = metadata.get("centroids") or []
    names = list(metadata.get("feature_names") or [])
    mean, std = metadata.get("scaler_mean") or [], metadata.get("scaler_std") or []
    if not centroids or len(mean) != len(names) or len(std) != len(names):
        return []
    logs = set(metadata.get("log_features") or [])
    sizes = list(metadata.get("cluster_sizes") or [])
    rows = []
    for group in groups:
        weights = [float(sizes[c]) if c < len(sizes) and sizes[c] else 0.0 for c in group["members"]]
        if not sum(weights):
            weights = [1.0] * len(group["members"])
        values = {}
        for i, name in enumerate(names):
            scaled = sum(w * centroids[c][i] for w, c in zip(weights, group["members"])) / sum(weights)
            value = scaled * std[i] + mean[i]
            values[name] = math.expm1(value) if name in logs else value
        rows.append({"group": group["name"], "values": values})
    return rows


def reading_order(values: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """`values` with the keys of `order` first, in that order, then the others as they come."""
    if not isinstance(values, Mapping):
        return {"value": values}
    return {**{key: values[key] for key in order if key in values}, **{k: v for k, v in values.items() if k not in order}}


def model_view(row: dict[str, Any]) -> dict[str, Any]:
    """A model registry row decoded for display (see the module docstring)."""
    metrics = parse_json_text(row.get("metrics")) or {}
    metadata = parse_json_text(row.get("metadata")) or {}
    if not isinstance(metadata, dict):
        metadata = {"raw": metadata}
    if not isinstance(metrics, dict):
        metrics = {"raw": metrics}
    centroids = [list(c) for c in metadata.get("centroids") or []]
    groups = cluster_groups(metadata, len(centroids))
    sections, other = evaluation_sections(metrics)
    params = metadata.get("params") or {}
    return {
        "name": row.get("name"),
        "version": row.get("version"),
        "trained_at": row.get("trained_at"),
        "path": row.get("path"),
        "data_range": reading_order(metadata.get("data_range") or {}, DATA_RANGE_ORDER),
        "metrics": metrics,
        "evaluations": sections,
        "other_metrics": other,
        "feature_names": list(metadata.get("feature_names") or []),
        "log_features": list(metadata.get("log_features") or []),
        "centroids": centroids,
        "fraud_clusters": list(metadata.get("fraud_clusters") or []),
        "cluster_sizes": list(metadata.get("cluster_sizes") or []),
        "groups": [{k: v for k, v in g.items() if k != "members"} for g in groups],
        "typical": typical_windows(metadata, groups),
        "score_threshold": metadata.get("score_threshold", params.get("score_threshold")),
        "params": params,
    }


def models_view(store: Store, *, limit: int) -> dict[str, Any]:
    models = [model_view(row) for row in store.models(limit=limit)]
    return {"current": models[0]["version"] if models else None, "models": models}

"""Scoring labelled windows with a model and the report: the one evaluation of training,
transfer and `fraudpipe evaluate`.

A window is predicted fraud when it is flagged (scoring.score_matrix, the stream's scoring)
or covered by an alert (spark_apps.bursts.predicted): the alert of a burst covers the
earlier half of a flagged pair and the rest of the sender's run. Pure numpy and pandas.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from fraudpipe.contracts import FRAUD_VARIANT_COLUMN, PATTERN_COLUMN
from spark_apps.bursts import predicted
from spark_apps.scoring import ModelMetadata, score_matrix
from spark_apps.training.evaluation import evaluate_windows, silhouette
from spark_apps.training.windows import INSTANCES_COLUMN

# The keys of a report that metadata.metrics keeps per evaluation (in_distribution, transfer).
SUMMARY_KEYS = ("windows", "transactions", "fraud_windows", "fraud_transactions", "flagged_windows", "covered_windows",
                "window", "transaction", "per_pattern", "bursts")


def assess(windows: pd.DataFrame, model: ModelMetadata, *, with_silhouette: bool = True) -> tuple[dict[str, Any], pd.DataFrame]:
    """The report of `model` on labelled windows with context, and the windows scored.

    The scored copy has flagged (the model's own decision), is_fraud (= predicted: flagged or
    covered), score and cluster.
    """
    out = windows.reset_index(drop=True).copy()
    scored = score_matrix(out[list(model.feature_names)].to_numpy(dtype=float), model)
    out["flagged"] = scored["is_fraud"].astype(bool)
    out["is_fraud"] = predicted(out, out["flagged"].to_numpy())
    out["score"], out["cluster"] = scored["score"], scored["cluster"]
    quality = silhouette(scored["scaled"], scored["cluster"]) if with_silhouette and len(out) else None
    report = evaluate_windows(out, k=len(model.centroids), silhouette=quality)
    report["flagged_windows"] = int(out["flagged"].sum())
    report["covered_windows"] = int((out["is_fraud"] & ~out["flagged"]).sum())
    report["model_version"] = model.version
    if INSTANCES_COLUMN in out.columns:
        report["bursts"] = burst_recall(out)
    return report, out


def burst_recall(windows: pd.DataFrame) -> dict[str, Any]:
    """Fraud instances (bursts) with at least one predicted window, overall, per family and per variant.

    An instance counts when one of `windows` holds it; its family and variant are those of
    its windows (a window holding two instances of one sender gives both its own).
    """
    fraud = windows[windows["fraud_tx"].to_numpy() > 0]
    variant = fraud[FRAUD_VARIANT_COLUMN] if FRAUD_VARIANT_COLUMN in fraud.columns else fraud[PATTERN_COLUMN]
    rows = pd.DataFrame({
        "instance": fraud[INSTANCES_COLUMN].to_numpy(), "caught": fraud["is_fraud"].to_numpy(dtype=bool),
        "family": fraud[PATTERN_COLUMN].to_numpy(), "variant": variant.to_numpy(),
    }).explode("instance").dropna(subset=["instance"])
    per = rows.groupby("instance", sort=True).agg(caught=("caught", "any"), family=("family", "first"),
                                                  variant=("variant", "first"))

    def recall(group: pd.DataFrame) -> dict[str, Any]:
        n, caught = len(group), int(group["caught"].sum())
        return {"instances": n, "caught": caught, "recall": round(caught / n, 6) if n else 0.0}

    return {
        **recall(per),
        "per_family": {str(k): recall(g) for k, g in per.groupby("family", sort=True)},
        "per_variant": {str(k): recall(g) for k, g in per.groupby("variant", sort=True)},
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The part of a report metadata.metrics keeps for one evaluation."""
    return {key: report[key] for key in SUMMARY_KEYS if key in report}


def format_summary(name: str, report: dict[str, Any]) -> str:
    """Window and transaction P/R/F1, per-family and burst recall, in a few lines."""
    lines = [f"{name}: {report['windows']:,} windows ({report['fraud_windows']:,} fraud), "
             f"{report['flagged_windows']:,} flagged + {report['covered_windows']:,} covered by an alert"]
    for level in ("window", "transaction"):
        m = report[level]
        c = m["confusion"]
        lines.append(f"  {level:<12} P {m['precision']:.4f}  R {m['recall']:.4f}  F1 {m['f1']:.4f}   "
                     f"TP {c['tp']:,}  FP {c['fp']:,}  FN {c['fn']:,}  TN {c['tn']:,}")
    for family, p in report["per_pattern"].items():
        burst = report.get("bursts", {}).get("per_family", {}).get(family)
        extra = f"  bursts {burst['caught']}/{burst['instances']}" if burst else ""
        lines.append(f"  {family:<18} window recall {p['window_recall']:.4f}  tx recall {p['transaction_recall']:.4f}{extra}")
    if "bursts" in report:
        b = report["bursts"]
        lines.append(f"  bursts caught {b['caught']:,} of {b['instances']:,} (recall {b['recall']:.4f})")
    return "\n".join(lines)

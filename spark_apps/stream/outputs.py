"""From the closed windows of one micro-batch to alert and metric rows: pure pandas, no Spark.

Input is what the streaming aggregation emits (window_features columns), split by
spark_apps.stream.context into sender windows and carriers. Rows without a sender are
carriers of late and undecodable records (see spark_apps/stream/decode.py): their amount
column holds how many of them were undecodable, the rest were late. Sender windows get
their history context and are chained into one alert per sender and burst (context.py).
Every output row is keyed so that writing it twice changes nothing: alerts by
(sender_account, alert start), metrics by (minute, batch_id), one count per window.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudpipe.store.base import METRIC_COUNTERS
from spark_apps.features import FEATURE_NAMES
from spark_apps.explanations import explain_rows
from spark_apps.history import CONTEXT_FEATURES, SenderHistory
from spark_apps.stream.context import (
    ALERT_COLUMNS, ALERT_SOURCE, ALERT_START, ALERT_WRITE, BatchWindows, add_context, chain_alerts,
)
from spark_apps.scoring import ModelMetadata, score_matrix, score_windows

# Features with their own column in the alerts tables (cassandra/init.cql); all of them
# also travel in the `features` JSON.
ALERT_FEATURE_COLUMNS = ("tx_count", "total_amount_minor", "failed_count", "distinct_receivers", "max_amount_minor")


@dataclass
class BatchOutputs:
    """What one micro-batch writes."""

    alerts: list[dict[str, Any]]
    alert_extensions: list[dict[str, Any]]  # alerts only extended by this batch: apply with extend_alerts
    metrics: list[dict[str, Any]]
    history_slots: np.ndarray  # senders whose history this batch changed (the history store's delta)
    evict_before: int | None  # the newest window start idle senders were evicted from, if any


def _ms(series: pd.Series) -> np.ndarray:
    """Timestamps (tz-aware or naive UTC) as integer epoch milliseconds."""
    stamps = pd.to_datetime(series, utc=True)
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ms]").astype(np.int64)


def build_outputs(batch: BatchWindows, model: ModelMetadata, *, batch_id: int, now_ms: int,
                  history: SenderHistory) -> BatchOutputs:
    """Score the batch's closed windows with `model` and their history context (advancing `history`);
    alert rows per sender and burst, metric rows per minute."""
    real, prior = add_context(history, batch)
    scored = chain_alerts(history, score_all(real, model), prior)
    alerts, extensions = alert_rows(scored, now_ms=now_ms)
    metrics = metric_rows(scored, batch.carriers, batch_id=batch_id, now_ms=now_ms)
    return BatchOutputs(alerts, extensions, metrics, prior.slots, prior.newest_start)


def score_all(windows: pd.DataFrame, model: ModelMetadata) -> pd.DataFrame:
    """score_windows' columns for every window, with the (per-row, slow) explanation built for flagged ones only.

    Most windows are normal; explaining each cost more than the rest of a batch's scoring.
    The flagged rows' values are exactly what score_windows gives (a test checks it).
    """
    if windows.empty:
        return score_windows(windows, model)
    raw = windows[list(model.feature_names)].to_numpy(dtype=float)
    result = score_matrix(raw, model)
    out = windows.copy()
    out["is_fraud"] = result["is_fraud"].astype(bool)
    out["score"] = result["score"].astype(float)
    out["cluster"] = result["cluster"].astype("int32")
    flagged = np.flatnonzero(out["is_fraud"].to_numpy())
    explanations = np.full(len(out), None, dtype=object)
    explanations[flagged] = explain_rows(out, result, flagged, model)
    out["explanation"] = explanations
    out["model_version"] = model.version
    return out


def alert_rows(scored: pd.DataFrame, *, now_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, extensions): one row per alert (sender and burst) the batch opened or extended.

    Rows have the columns of cassandra/init.cql: window_start is the alert's start,
    window_end the end of its newest window; the count and amount columns are the alert's
    totals (distinct_receivers summed per minute); `features`, score, cluster, explanation
    and latency those of its newest flagged window. An alert whose batch holds no flagged
    window of it (its run went on past the flagged minutes) is an *extension*: the key, the
    new window_end and totals only, applied to the row an earlier batch wrote (`extend_alerts`).
    """
    writes = scored[scored[ALERT_WRITE]] if len(scored) else scored
    if writes.empty:
        return [], []
    starts, ends = writes[ALERT_START].to_numpy(dtype=np.int64), _ms(writes["window_end"])
    sources = writes[ALERT_SOURCE].to_numpy(dtype=np.int64)
    # the newest flagged window of each written alert (only these rows, not the batch's every window)
    flagged = scored.iloc[sources[sources >= 0]]
    flagged_ends = iter(_ms(flagged["window_end"]))
    flagged_records = iter(flagged.to_dict("records"))
    context = [name for name in CONTEXT_FEATURES if name in scored.columns]
    rows, extensions = [], []
    for i, record in enumerate(writes.to_dict("records")):
        totals = {
            "window_start": int(starts[i]),
            "window_end": int(ends[i]),
            "sender_account": record["sender_account"],
            **{name: int(record[ALERT_COLUMNS[name]]) for name in ALERT_FEATURE_COLUMNS},
        }
        if sources[i] < 0:
            extensions.append(totals)
            continue
        source, source_end = next(flagged_records), next(flagged_ends)
        features = {name: _plain(source[name]) for name in (*FEATURE_NAMES, *context)}
        rows.append({
            **totals,
            "features": json.dumps(features, sort_keys=True),
            "score": float(source["score"]),
            "cluster": int(source["cluster"]),
            "model_version": str(source["model_version"]),
            "explanation": source["explanation"],
            "created_at": now_ms,
            # freshness in event time: how long after its flagged window ended the alert was written
            "latency_ms": max(now_ms - int(source_end), 0),
        })
    return rows, extensions


def extend_alerts(written: dict[tuple[str, int], dict[str, Any]],
                  extensions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, missing): each written row (by (sender_account, window_start)) with its extension's
    window_end and totals, and the extensions whose row is not in `written`. Totals are the
    alert's, not increments: applying an extension twice (a replayed batch) gives the same row."""
    rows, missing = [], []
    for extension in extensions:
        row = written.get((extension["sender_account"], int(extension["window_start"])))
        if row is None:
            missing.append(extension)
        else:
            rows.append({**row, **extension})
    return rows, missing


def metric_rows(scored: pd.DataFrame, carriers: pd.DataFrame, *, batch_id: int, now_ms: int) -> list[dict[str, Any]]:
    """Per-minute counters of this batch (minute = window start), keyed by (minute, batch_id)."""
    minutes: dict[int, dict[str, Any]] = {}

    def row(minute: int) -> dict[str, Any]:
        return minutes.setdefault(minute, {"minute": minute, "batch_id": int(batch_id),
                                           **{c: 0 for c in METRIC_COUNTERS}, "latency_ms_max": 0,
                                           "updated_at": now_ms})

    if len(scored):
        frame = pd.DataFrame({
            "minute": _ms(scored["window_start"]),
            "end": _ms(scored["window_end"]),
            "tx": scored["tx_count"].astype(np.int64).to_numpy(),
            "amount": scored["total_amount_minor"].astype(np.int64).to_numpy(),
            "failed": scored["failed_count"].astype(np.int64).to_numpy(),
            "flag": scored["is_fraud"].astype(bool).to_numpy(),
        })
        frame["latency"] = np.where(frame["flag"], np.maximum(now_ms - frame["end"], 0), 0)
        for minute, group in frame.groupby("minute", sort=True):
            target = row(int(minute))
            flag = group["flag"]
            target["transactions"] += int(group["tx"].sum())
            target["windows"] += len(group)
            target["flagged_windows"] += int(flag.sum())
            target["flagged_transactions"] += int(group["tx"][flag].sum())
            target["amount_flagged_minor"] += int(group["amount"][flag].sum())
            target["amount_normal_minor"] += int(group["amount"][~flag].sum())
            target["failed_transactions"] += int(group["failed"].sum())
            target["latency_ms_sum"] += int(group["latency"].sum())
            target["latency_ms_max"] = max(target["latency_ms_max"], int(group["latency"].max()))
    if len(carriers):
        for minute, count, dlq in zip(_ms(carriers["window_start"]), carriers["tx_count"], carriers["total_amount_minor"]):
            target = row(int(minute))
            dlq = int(0 if pd.isna(dlq) else dlq)
            target["dlq_records"] += dlq
            target["late_records"] += int(count) - dlq
    return [minutes[m] for m in sorted(minutes)]


def _plain(value: Any) -> Any:
    number = float(value)
    return int(number) if number.is_integer() else round(number, 6)

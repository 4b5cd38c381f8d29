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
from spark_apps.stream.context import ALERT_COLUMNS, ALERT_START, ALERT_WRITE, BatchWindows, add_context, chain_alerts
from spark_apps.scoring import ModelMetadata, score_matrix, score_windows

# Features with their own column in the alerts tables (cassandra/init.cql); all of them
# also travel in the `features` JSON.
ALERT_FEATURE_COLUMNS = ("tx_count", "total_amount_minor", "failed_count", "distinct_receivers", "max_amount_minor")


@dataclass
class BatchOutputs:
    """What one micro-batch writes."""

    alerts: list[dict[str, Any]]
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
    alerts = alert_rows(scored, now_ms=now_ms)
    metrics = metric_rows(scored, batch.carriers, batch_id=batch_id, now_ms=now_ms)
    return BatchOutputs(alerts, metrics, prior.slots, prior.newest_start)


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


def alert_rows(scored: pd.DataFrame, *, now_ms: int) -> list[dict[str, Any]]:
    """One row per alert (sender and burst) the batch opened or extended, columns as in cassandra/init.cql.

    window_start is the alert's start, window_end the end of its newest window; the count
    and amount columns are the alert's totals (distinct_receivers summed per minute), the
    `features` JSON, score and explanation those of its newest flagged window.
    """
    flagged = scored[scored[ALERT_WRITE]] if len(scored) else scored
    if flagged.empty:
        return []
    starts, ends = flagged[ALERT_START].to_numpy(dtype=np.int64), _ms(flagged["window_end"])
    context = [name for name in CONTEXT_FEATURES if name in flagged.columns]
    rows = []
    for i, record in enumerate(flagged.to_dict("records")):
        features = {name: _plain(record[name]) for name in (*FEATURE_NAMES, *context)}
        rows.append({
            "window_start": int(starts[i]),
            "window_end": int(ends[i]),
            "sender_account": record["sender_account"],
            **{name: int(record[ALERT_COLUMNS[name]]) for name in ALERT_FEATURE_COLUMNS},
            "features": json.dumps(features, sort_keys=True),
            "score": float(record["score"]),
            "cluster": int(record["cluster"]),
            "model_version": str(record["model_version"]),
            "explanation": record["explanation"],
            "created_at": now_ms,
            # freshness in event time: how long after the window ended its alert was written
            "latency_ms": max(now_ms - int(ends[i]), 0),
        })
    return rows


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

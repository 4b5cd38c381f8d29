"""The dashboard's read models: JSON-ready payloads built from Store reads only.

Each function answers one page (overview, alerts, sender, models) with bounded,
partition-key reads through the Store port; pages and the JSON API share them, so the
HTML and the API can never disagree.
"""
from __future__ import annotations

import json
from typing import Any

from fraudpipe.contracts import FAILED_STATUSES
from fraudpipe.errors import DashboardError
from fraudpipe.store.base import METRIC_COUNTERS, Store
from dashboard.params import MINUTE_MS, TimeRange, encode_cursor

SENDER_ROWS = 500  # alerts and transactions shown on one sender's page
# The overview's series has at most this many points: a chart shows no more, and a day of
# minutes (1,440 points, ~375 kB of JSON) cost more to encode and send than to read.
MAX_SERIES_POINTS = 360
BUCKET_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


def ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


def parse_json_text(text: Any) -> Any:
    """Features/explanation/metrics columns are JSON text; a malformed value is shown, not fatal."""
    if not isinstance(text, str) or not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- overview -----------------------------------------------------------------
def bucket_minutes_for(window: TimeRange) -> int:
    """The smallest bucket (in minutes) that keeps the series of `window` within MAX_SERIES_POINTS."""
    span_minutes = -(-(window.until_ms - window.since_ms) // MINUTE_MS)
    return next((b for b in BUCKET_MINUTES if -(-span_minutes // b) <= MAX_SERIES_POINTS), BUCKET_MINUTES[-1])


def overview(store: Store, window: TimeRange) -> dict[str, Any]:
    """Totals over `window` and a series of at most MAX_SERIES_POINTS buckets, with the derived shares and latencies.

    Every figure is exact: buckets are sums of whole minutes, totals sums of every minute.
    """
    bucket_minutes = bucket_minutes_for(window)
    # the buckets are summed by the store (in SQL on SQLite): a day is 288 rows, not 1,440
    buckets = store.metrics_by_minute(since_ms=window.since_ms, until_ms=window.until_ms, bucket_minutes=bucket_minutes)
    totals = {counter: sum(row[counter] for row in buckets) for counter in METRIC_COUNTERS}
    latency_max = max((row["latency_ms_max"] for row in buckets), default=0)
    minutes_with_data = sum(row["minutes"] for row in buckets)
    series = [
        {
            "minute": row["minute"],
            "transactions": row["transactions"],
            "alerts": row["flagged_windows"],
            "windows": row["windows"],
            "flagged_transactions": row["flagged_transactions"],
            "amount_normal_minor": row["amount_normal_minor"],
            "amount_flagged_minor": row["amount_flagged_minor"],
            "failed_transactions": row["failed_transactions"],
            "late_records": row["late_records"],
            "dlq_records": row["dlq_records"],
            "latency_ms_avg": ratio(row["latency_ms_sum"], row["flagged_windows"]),
            "latency_ms_max": row["latency_ms_max"],
        }
        for row in buckets
    ]
    active_minutes = max(minutes_with_data, 1)
    return {
        "range": window.as_dict(),
        "totals": totals,
        "summary": {
            "transactions_per_minute": totals["transactions"] / active_minutes,
            "alerts_per_minute": totals["flagged_windows"] / active_minutes,
            "flagged_share": ratio(totals["flagged_transactions"], totals["transactions"]),
            "failed_share": ratio(totals["failed_transactions"], totals["transactions"]),
            "latency_ms_avg": ratio(totals["latency_ms_sum"], totals["flagged_windows"]),
            "latency_ms_max": latency_max,
            "late_records": totals["late_records"],
            "dlq_records": totals["dlq_records"],
            "minutes_with_data": minutes_with_data,
        },
        "bucket_minutes": bucket_minutes,
        "series": series,
    }


# --- alerts -------------------------------------------------------------------
def alert_view(row: dict[str, Any]) -> dict[str, Any]:
    """An alert row for display: JSON columns decoded, the day bucket dropped."""
    view = {key: value for key, value in row.items() if key != "day"}
    view["features"] = parse_json_text(row.get("features"))
    view["explanation"] = parse_json_text(row.get("explanation"))
    return view


def alerts_page(
    store: Store,
    window: TimeRange,
    *,
    page_size: int,
    sender: str | None = None,
    min_score: float | None = None,
    after: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """One page of alerts, newest first, and the cursor of the next page (None on the last)."""
    fetch = page_size + 1  # one extra row tells whether another page exists
    if sender is None:
        rows = store.latest_alerts(
            since_ms=window.since_ms, until_ms=window.until_ms, limit=fetch, min_score=min_score, after=after
        )
    else:
        # one partition: window_start is unique per sender, so it alone is the keyset
        until = window.until_ms if after is None else min(window.until_ms, after[0])
        rows = []
        while len(rows) < fetch and until > window.since_ms:
            batch = store.alerts_for_sender(sender=sender, since_ms=window.since_ms, until_ms=until, limit=fetch * 4)
            rows += [r for r in batch if min_score is None or (r.get("score") or 0) >= min_score]
            if len(batch) < fetch * 4:
                break
            until = batch[-1]["window_start"]
        rows = rows[:fetch]
    more = len(rows) > page_size
    rows = rows[:page_size]
    cursor = encode_cursor(rows[-1]["window_start"], rows[-1]["sender_account"]) if more and rows else None
    return {
        "range": window.as_dict(),
        "filters": {"sender": sender, "min_score": min_score},
        "alerts": [alert_view(r) for r in rows],
        "next_cursor": cursor,
    }


MODEL_ROWS = 100  # model versions searched for an alert's own (newest first)


def alert_detail(store: Store, sender: str, window_start: int) -> dict[str, Any]:
    """One alert with its reasons, its features, and the threshold and currency of the model version that flagged it."""
    rows = store.alerts_for_sender(sender=sender, since_ms=window_start, until_ms=window_start + 1, limit=1)
    if not rows:
        raise DashboardError(f"no alert for sender {sender} in the window starting at {window_start} (epoch ms)",
                             http_status=404)
    alert = alert_view(rows[0])
    model = next((row for row in store.models(limit=MODEL_ROWS) if row.get("version") == alert.get("model_version")), None)
    metadata = parse_json_text(model.get("metadata")) if model else None
    metadata = metadata if isinstance(metadata, dict) else {}
    profile = metadata.get("population_profile") or {}
    features = alert.get("features") if isinstance(alert.get("features"), dict) else {}
    return {
        "alert": alert,
        "model": {
            "version": alert.get("model_version"),
            "known": model is not None,
            # None: the model flags a window nearer a fraud centroid than every normal one (score >= 0.5)
            "score_threshold": metadata.get("score_threshold"),
            "currency": profile.get("currency"),
            "profiled_windows": profile.get("windows"),
        },
        # money (minor units) shown in the model's currency, ratios as percent
        "features": [{"name": name.removesuffix("_minor"), "value": value,
                      "unit": "money" if name.endswith("_minor") else "share" if name.endswith("_ratio") else "number"}
                     for name, value in features.items()],
    }


# --- sender -------------------------------------------------------------------
def sender_view(store: Store, sender: str, window: TimeRange) -> dict[str, Any]:
    """One sender's flagged windows, raw transactions, and per-minute windows built from them."""
    alerts = store.alerts_for_sender(sender=sender, since_ms=window.since_ms, until_ms=window.until_ms, limit=SENDER_ROWS)
    transactions = store.transactions_for_sender(
        sender=sender, since_ms=window.since_ms, until_ms=window.until_ms, limit=SENDER_ROWS
    )
    flagged = {a["window_start"]: a for a in alerts}
    windows: dict[int, dict[str, Any]] = {}
    for tx in transactions:
        start = tx["event_time"] - tx["event_time"] % MINUTE_MS
        w = windows.setdefault(
            start, {"window_start": start, "tx_count": 0, "total_amount_minor": 0, "failed_count": 0, "receivers": set()}
        )
        w["tx_count"] += 1
        w["total_amount_minor"] += tx.get("amount_minor") or 0
        w["failed_count"] += tx.get("status") in FAILED_STATUSES
        w["receivers"].add(tx.get("receiver_account"))
    for start in flagged:
        windows.setdefault(start, {"window_start": start, "tx_count": 0, "total_amount_minor": 0, "failed_count": 0, "receivers": set()})
    window_rows = []
    for start in sorted(windows):
        w = windows[start]
        alert = flagged.get(start)
        window_rows.append(
            {
                "window_start": start,
                "tx_count": w["tx_count"],
                "total_amount_minor": w["total_amount_minor"],
                "failed_count": w["failed_count"],
                "distinct_receivers": len(w["receivers"] - {None}),
                "flagged": alert is not None,
                "score": alert.get("score") if alert else None,
            }
        )
    return {
        "sender": sender,
        "range": window.as_dict(),
        "alerts": [alert_view(a) for a in alerts],
        "transactions": transactions,
        "windows": window_rows,
        "truncated": len(transactions) >= SENDER_ROWS,
    }


# --- models -------------------------------------------------------------------
def model_view(row: dict[str, Any]) -> dict[str, Any]:
    """A model registry row with its metrics and metadata decoded and the centroids lifted out."""
    metrics = parse_json_text(row.get("metrics")) or {}
    metadata = parse_json_text(row.get("metadata")) or {}
    if not isinstance(metadata, dict):
        metadata = {"raw": metadata}
    if not isinstance(metrics, dict):
        metrics = {"raw": metrics}
    return {
        "name": row.get("name"),
        "version": row.get("version"),
        "trained_at": row.get("trained_at"),
        "path": row.get("path"),
        "metrics": metrics,
        "feature_names": list(metadata.get("feature_names") or []),
        "centroids": [list(c) for c in metadata.get("centroids") or []],
        "fraud_clusters": list(metadata.get("fraud_clusters") or []),
        "cluster_sizes": list(metadata.get("cluster_sizes") or []),
        "params": metadata.get("params") or {},
    }


def models_view(store: Store, *, limit: int) -> dict[str, Any]:
    models = [model_view(row) for row in store.models(limit=limit)]
    return {"current": models[0]["version"] if models else None, "models": models}

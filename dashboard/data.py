"""The dashboard's read models: JSON-ready payloads built from Store reads only.

Each function answers one page (alerts, sender; overview and model have modules of their own) with bounded,
partition-key reads through the Store port; pages and the JSON API share them, so the
HTML and the API can never disagree.
"""
from __future__ import annotations

import json
from typing import Any

from fraudpipe.contracts import FAILED_STATUSES
from fraudpipe.errors import DashboardError
from fraudpipe.store.base import Store
from dashboard.params import MINUTE_MS, TimeRange, encode_cursor

SENDER_ROWS = 500  # alerts and transactions shown on one sender's page


def parse_json_text(text: Any) -> Any:
    """Features/explanation/metrics columns are JSON text; a malformed value is shown, not fatal."""
    if not isinstance(text, str) or not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


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

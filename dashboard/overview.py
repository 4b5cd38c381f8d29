"""The Overview's read model: totals, a bounded series, and a rate that edge minutes cannot pull down.

Metrics arrive per event-time minute once the stream's watermark closes the minute, so every
minute in the store is closed; but the minutes at the edges of a run are not full. Before
the producer's first minute come almost-empty minutes of records sent late (event times
30-120 s in the past), the first and the last minute of a run hold only the seconds the
producer ran in them. Averaging them in showed 8,370 transactions / min for a producer at
12,000. The rate here is over *full minutes*: the minutes with data, less the leading and
trailing edge minutes that hold under half of a typical minute (see edge_trim).
"""
from __future__ import annotations

import statistics
from typing import Any, Sequence

from fraudpipe.store.base import METRIC_COUNTERS, Store
from dashboard.params import MINUTE_MS, TimeRange

# The overview's series has at most this many points: a chart shows no more, and a day of
# minutes (1,440 points, ~375 kB of JSON) cost more to encode and send than to read.
MAX_SERIES_POINTS = 360
BUCKET_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
# At most this many minutes at each end of the data count as edge minutes: late records
# reach 2 minutes back before a run's first minute, which is partial itself.
EDGE_MINUTES = 5
# An edge minute is partial when it holds less than this share of the typical (median) edge minute.
PARTIAL_SHARE = 0.5


def ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


def bucket_minutes_for(window: TimeRange) -> int:
    """The smallest bucket (in minutes) that keeps the series of `window` within MAX_SERIES_POINTS."""
    span_minutes = -(-(window.until_ms - window.since_ms) // MINUTE_MS)
    return next((b for b in BUCKET_MINUTES if -(-span_minutes // b) <= MAX_SERIES_POINTS), BUCKET_MINUTES[-1])


def edge_trim(minutes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The partial minutes at the two ends of per-minute rows (oldest first): those to leave out of a rate.

    Only the first and last EDGE_MINUTES minutes with data are candidates, and a minute is
    left out only while every minute between it and its end is left out too: a dip in the
    middle of a run is real traffic, not an edge. The typical minute is the median of the
    candidates; the median minute itself is never left out, so a rate always keeps a minute.
    """
    if not minutes:
        return []
    first, last = minutes[0]["minute"], minutes[-1]["minute"]
    head = [m for m in minutes if m["minute"] < first + EDGE_MINUTES * MINUTE_MS]
    tail = [m for m in minutes if m["minute"] > last - EDGE_MINUTES * MINUTE_MS]
    edges = {m["minute"]: m for m in head + tail}
    typical = statistics.median(m["transactions"] for m in edges.values())
    floor = PARTIAL_SHARE * typical
    trimmed: dict[int, dict[str, Any]] = {}
    for side in (head, list(reversed(tail))):
        for row in side:
            if row["transactions"] >= floor:
                break
            trimmed[row["minute"]] = row
    return [trimmed[m] for m in sorted(trimmed)]


def edge_minutes(store: Store, window: TimeRange, buckets: Sequence[dict[str, Any]], bucket_minutes: int) -> list[dict[str, Any]]:
    """Per-minute rows of the data's first and last EDGE_MINUTES minutes (and a bucket's worth of slack).

    Long ranges are read in buckets (a week of minutes cost 5x the bucketed read); only the
    edges need minutes, so only they are read per minute.
    """
    if bucket_minutes == 1 or not buckets:
        return list(buckets)
    reach = (bucket_minutes + EDGE_MINUTES) * MINUTE_MS
    start, end = buckets[0]["minute"], buckets[-1]["minute"] + bucket_minutes * MINUTE_MS
    spans = [(start, end)] if end - start <= 2 * reach else [(start, start + reach), (end - reach, end)]
    rows: list[dict[str, Any]] = []
    for since, until in spans:
        rows += store.metrics_by_minute(
            since_ms=max(since, window.since_ms), until_ms=min(until, window.until_ms), bucket_minutes=1
        )
    return rows


def overview(store: Store, window: TimeRange, *, now_ms: int, currency: str) -> dict[str, Any]:
    """Totals over `window`, a series of at most MAX_SERIES_POINTS buckets, and the derived figures.

    Totals are exact sums of every minute. The rates are over full minutes (module docstring);
    `data_since`/`data_until` are the start of the first and the end of the last minute with
    data, never later than `now_ms` (the query's `until` reaches a minute past now).
    Amounts are minor units of `currency`, the producer's (config producer.traffic.currency).
    """
    bucket_minutes = bucket_minutes_for(window)
    # the buckets are summed by the store (in SQL on SQLite): a day is 288 rows, not 1,440
    buckets = store.metrics_by_minute(since_ms=window.since_ms, until_ms=window.until_ms, bucket_minutes=bucket_minutes)
    totals = {counter: sum(row[counter] for row in buckets) for counter in METRIC_COUNTERS}
    latency_max = max((row["latency_ms_max"] for row in buckets), default=0)
    minutes_with_data = sum(row["minutes"] for row in buckets)
    edges = edge_minutes(store, window, buckets, bucket_minutes)
    partial = edge_trim(edges)
    full_minutes = minutes_with_data - len(partial)
    full = {c: totals[c] - sum(row[c] for row in partial) for c in ("transactions", "flagged_windows")}
    data_since = edges[0]["minute"] if edges else None
    data_until = min(edges[-1]["minute"] + MINUTE_MS, window.until_ms, now_ms) if edges else None
    return {
        "range": window.as_dict(),
        "currency": currency,
        "totals": totals,
        "summary": {
            "transactions_per_minute": full["transactions"] / full_minutes if full_minutes else None,
            "alerts_per_minute": full["flagged_windows"] / full_minutes if full_minutes else None,
            "flagged_share": ratio(totals["flagged_transactions"], totals["transactions"]),
            "failed_share": ratio(totals["failed_transactions"], totals["transactions"]),
            "latency_ms_avg": ratio(totals["latency_ms_sum"], totals["flagged_windows"]),
            "latency_ms_max": latency_max if totals["flagged_windows"] else None,  # no alert, no freshness
            "late_records": totals["late_records"],
            "dlq_records": totals["dlq_records"],
            "minutes_with_data": minutes_with_data,
            "full_minutes": full_minutes,
            "data_since": data_since,
            "data_until": data_until,
        },
        "bucket_minutes": bucket_minutes,
        "series": [series_point(row) for row in buckets],
    }


def series_point(row: dict[str, Any]) -> dict[str, Any]:
    return {
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

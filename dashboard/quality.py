"""Live detection quality: precision, recall and F1 of alerts against the labels seen so far.

Labels arrive late (like chargebacks), so quality is measured over what has arrived:
the newest N labels. A labelled transaction belongs to the window
(sender_account, event_time floored to the minute); that window is *detected* when an
alert exists for the same sender and window_start.

- recall (per pattern and overall): detected labelled windows / labelled windows.
- precision (overall): alerts whose window holds a label / alerts in the time span the
  labels cover (an alert outside every labelled window is a false positive, as far as
  the labels known so far tell).
- precision per pattern: alerts matching the pattern / (those + false positives), the
  precision the detector would have if that pattern were the only fraud.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from fraudpipe.store.base import MAX_LIMIT, Store
from dashboard.params import MINUTE_MS

Window = tuple[str, int]  # (sender_account, window_start)


def window_of(label: Mapping[str, Any]) -> Window:
    event_time = int(label["event_time"])
    return str(label["sender_account"]), event_time - event_time % MINUTE_MS


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def score_quality(
    labels: Iterable[Mapping[str, Any]], detected: set[Window], alerts_in_span: Iterable[Window]
) -> dict[str, Any]:
    """Pure computation of the quality payload from labels, detected windows and span alerts."""
    windows_by_pattern: dict[str, set[Window]] = defaultdict(set)
    label_count: dict[str, int] = defaultdict(int)
    for label in labels:
        pattern = str(label.get("pattern") or "unknown")
        windows_by_pattern[pattern].add(window_of(label))
        label_count[pattern] += 1
    labelled = set().union(*windows_by_pattern.values()) if windows_by_pattern else set()
    span_alerts = set(alerts_in_span)
    true_alerts = span_alerts & labelled
    false_positives = len(span_alerts - labelled)

    patterns = []
    for pattern in sorted(windows_by_pattern):
        windows = windows_by_pattern[pattern]
        hits = len(windows & detected)
        matching_alerts = len(span_alerts & windows)
        precision = _ratio(matching_alerts, matching_alerts + false_positives)
        recall = _ratio(hits, len(windows))
        patterns.append(
            {
                "pattern": pattern,
                "labels": label_count[pattern],
                "windows": len(windows),
                "detected": hits,
                "missed": len(windows) - hits,
                "precision": precision,
                "recall": recall,
                "f1": f1(precision, recall),
            }
        )
    precision = _ratio(len(true_alerts), len(span_alerts))
    recall = _ratio(len(labelled & detected), len(labelled))
    return {
        "overall": {
            "labels": sum(label_count.values()),
            "windows": len(labelled),
            "detected": len(labelled & detected),
            "alerts": len(span_alerts),
            "true_positives": len(true_alerts),
            "false_positives": false_positives,
            "precision": precision,
            "recall": recall,
            "f1": f1(precision, recall),
        },
        "patterns": patterns,
    }


def quality(store: Store, *, label_limit: int) -> dict[str, Any]:
    """Quality over the newest `label_limit` labels, read through bounded partition-key queries."""
    labels = store.recent_labels(limit=label_limit)
    if not labels:
        result = score_quality([], set(), [])
        return {**result, "span": None, "labels_considered": 0, "alerts_truncated": False}
    windows = {window_of(label) for label in labels}
    since = min(start for _, start in windows)
    until = max(start for _, start in windows) + MINUTE_MS
    span = store.alert_windows(since_ms=since, until_ms=until, limit=MAX_LIMIT)  # keys only: no JSON columns
    detected = set(span) & windows
    if len(span) >= MAX_LIMIT:
        # The read stopped at the limit, newest first: it holds every alert that starts after its
        # oldest window_start. Older labelled windows are looked up by primary key.
        oldest = span[-1][1]
        detected |= store.alerted_windows(windows=[w for w in windows if w[1] <= oldest])
    result = score_quality(labels, detected, span)
    return {
        **result,
        "span": {"since": since, "until": until},
        "labels_considered": len(labels),
        # precision is then measured over the newest MAX_LIMIT alerts of the span only
        "alerts_truncated": len(span) >= MAX_LIMIT,
    }

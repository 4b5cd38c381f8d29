"""The quality arithmetic, on hand-made labels and alerts."""
from __future__ import annotations

import pytest

from dashboard.quality import f1, score_quality, window_of

M = 60_000


def label(sender: str, t: int, pattern: str) -> dict:
    return {"sender_account": sender, "event_time": t, "pattern": pattern}


def test_window_is_sender_and_event_minute():
    assert window_of(label("a", 5 * M + 59_999, "p")) == ("a", 5 * M)


def test_f1_edges():
    assert f1(None, 1.0) is None and f1(0.0, 0.0) == 0.0 and f1(1.0, 0.5) == pytest.approx(2 / 3)


def test_precision_recall_per_pattern():
    labels = [label("a", 1 * M + 1, "burst"), label("a", 1 * M + 2, "burst"), label("b", 2 * M, "burst"), label("c", 3 * M, "mule")]
    detected = {("a", 1 * M), ("c", 3 * M)}
    alerts = [("a", 1 * M), ("c", 3 * M), ("z", 2 * M), ("y", 2 * M)]  # two false positives
    result = score_quality(labels, detected, alerts)
    overall = result["overall"]
    assert (overall["labels"], overall["windows"], overall["detected"], overall["false_positives"]) == (4, 3, 2, 2)
    assert overall["precision"] == pytest.approx(0.5) and overall["recall"] == pytest.approx(2 / 3)
    burst, mule = result["patterns"]
    assert (burst["pattern"], burst["labels"], burst["windows"], burst["detected"], burst["missed"]) == ("burst", 2 + 1, 2, 1, 1)
    assert burst["precision"] == pytest.approx(1 / 3) and burst["recall"] == pytest.approx(0.5)
    assert mule["precision"] == pytest.approx(1 / 3) and mule["recall"] == 1.0


def test_no_labels_means_unknown_not_zero():
    result = score_quality([], set(), [("a", 0)])
    assert result["overall"]["precision"] == 0.0 and result["overall"]["recall"] is None and result["patterns"] == []


def test_detection_is_the_same_when_the_span_holds_more_alerts_than_one_read(tmp_path):
    """Past MAX_LIMIT alerts in the labels' span, detection falls back to point reads of the labelled windows."""
    from dashboard.quality import quality
    from fraudpipe.store.base import MAX_LIMIT
    from fraudpipe.store.sqlite import SqliteStore
    from tests.fixtures.dashboard import alert

    store = SqliteStore(tmp_path / "q.db")
    t0 = 1_795_000_000_000 - 1_795_000_000_000 % M
    store.upsert_labels([{"transaction_id": "a", "pattern": "p", "sender_account": "old", "event_time": t0 + 5, "labeled_at": t0},
                         {"transaction_id": "b", "pattern": "p", "sender_account": "new", "event_time": t0 + 9 * M, "labeled_at": t0}])
    store.upsert_alerts([alert("old", t0, score=2.0)])
    small = quality(store, label_limit=100)
    assert small["overall"]["detected"] == 1 and not small["alerts_truncated"]
    # many newer alerts push the old one out of the single span read
    store.upsert_alerts([alert(f"noise-{i}", t0 + (1 + i % 8) * M, score=1.0) for i in range(MAX_LIMIT + 5)])
    big = quality(store, label_limit=100)
    assert big["alerts_truncated"] and big["overall"]["detected"] == 1 and big["overall"]["recall"] == 0.5
    store.close()

"""What an alert covers: its sender's run (consecutive minutes) before and after the flagged minute,
and the earlier half of a flagged pair; the threshold's burst scores agree with it for every cut."""
from __future__ import annotations

import numpy as np
import pandas as pd

from spark_apps.bursts import burst_scores, continued, covered_back, covered_by_next, predicted
from spark_apps.history import MINUTE_MS, PAIR_START, RUN_START

T0 = 1_795_000_020_000 // MINUTE_MS * MINUTE_MS


def windows(rows: list[tuple[str, int, int, int]]) -> pd.DataFrame:
    """(sender, minute, minute its pair starts, minute its run started as the history counts it), in a
    shuffled row order: nothing may rely on sorting."""
    frame = pd.DataFrame({
        "sender_account": [r[0] for r in rows],
        "window_start": [T0 + r[1] * MINUTE_MS for r in rows],
        PAIR_START: [T0 + r[2] * MINUTE_MS for r in rows],
        RUN_START: [T0 + r[3] * MINUTE_MS for r in rows],
    })
    return frame


RUNS = windows([
    ("A", 3, 3, 0),  # A: minutes 0-3 one run, then 5-6 another
    ("A", 0, 0, 0),
    ("A", 1, 0, 0),  # paired with minute 0 (a burst cut by the boundary)
    ("A", 2, 2, 0),
    ("A", 5, 5, 5),
    ("A", 6, 6, 5),
    ("B", 1, 1, 1),
    ("B", 2, 1, 1),
])
# C: consecutive minutes 0-3, but the history started a new run at minute 2 (a run that reached
# run_max_windows starts afresh); minute 2 is paired with minute 1.
LONG = windows([("C", 0, 0, 0), ("C", 1, 1, 0), ("C", 2, 1, 2), ("C", 3, 3, 2)])


def test_a_flagged_minute_puts_the_rest_of_its_run_under_the_alert_not_the_next_run() -> None:
    flagged = np.array([False, False, True, False, False, False, False, False])  # A's minute 1
    assert continued(RUNS, flagged).tolist() == [True, False, True, True, False, False, False, False]
    # minute 0 is the earlier half of the flagged pair, and the start of its run
    assert covered_by_next(RUNS, flagged).tolist() == [False, True, False, False, False, False, False, False]
    assert covered_back(RUNS, flagged).tolist() == [False, True, True, False, False, False, False, False]
    assert predicted(RUNS, flagged).tolist() == [True, True, True, True, False, False, False, False]


def test_an_alert_reaches_back_to_the_start_of_its_run_not_into_the_run_before() -> None:
    flagged = np.array([True, False, False, False, False, False, False, False])  # A's minute 3
    assert covered_back(RUNS, flagged).tolist() == [True, True, True, True, False, False, False, False]
    assert predicted(RUNS, flagged).tolist() == [True, True, True, True, False, False, False, False]
    flagged = np.array([False, False, False, False, False, True, False, False])  # A's minute 6
    assert predicted(RUNS, flagged).tolist() == [False, False, False, False, True, True, False, False]


def test_a_restarted_run_is_reached_back_only_through_the_pair() -> None:
    assert predicted(LONG, np.array([False, False, False, True])).tolist() == [False, False, True, True]
    # minute 2's pair holds minute 1; minute 0 belongs to the run before
    assert predicted(LONG, np.array([False, False, True, False])).tolist() == [False, True, True, True]


def test_a_run_ends_at_a_quiet_minute_and_never_crosses_senders() -> None:
    flagged = np.array([False, False, False, False, True, False, False, False])  # A's minute 5
    assert predicted(RUNS, flagged).tolist() == [False, False, False, False, True, True, False, False]
    flagged = np.array([False, False, False, False, False, False, True, False])  # B's minute 1
    assert predicted(RUNS, flagged).tolist() == [False, False, False, False, False, False, True, True]


def test_burst_scores_cross_a_threshold_exactly_where_predicted_does() -> None:
    rng = np.random.default_rng(3)
    for frame in (RUNS, LONG):
        for _ in range(20):
            scores = rng.random(len(frame))
            burst = burst_scores(frame, scores)
            for threshold in np.append(scores, [0.0, 1.0]):
                assert (burst >= threshold).tolist() == predicted(frame, scores >= threshold).tolist()


def test_nothing_to_cover_in_no_windows() -> None:
    empty = RUNS.iloc[:0]
    assert predicted(empty, np.zeros(0, bool)).tolist() == [] and burst_scores(empty, np.zeros(0)).tolist() == []

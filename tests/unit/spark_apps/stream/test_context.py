"""One alert per sender and burst: run and pair coverage, continuation across minutes and batches, totals."""
from __future__ import annotations

import numpy as np
import pandas as pd

from spark_apps.features import RECEIVER_HASHES
from spark_apps.history import ALERT_START, MINUTE_MS, UNSEEN, HistoryParams, SenderHistory
from spark_apps.stream.context import ALERT_SOURCE, ALERT_WRITE, BatchWindows, add_context, chain_alerts
from tests.unit.spark_apps.test_history import T0, window


def batch(rows: list[dict]) -> BatchWindows:
    frame = pd.DataFrame([{**{k: v for k, v in r.items() if k != "receivers"}, RECEIVER_HASHES: list(r["receivers"])}
                          for r in rows])
    return BatchWindows.from_pandas(frame)


def run(history: SenderHistory, rows: list[dict], flagged: list[bool]) -> pd.DataFrame:
    real, prior = add_context(history, batch(rows))
    return chain_alerts(history, real.assign(is_fraud=flagged), prior)


def written(out: pd.DataFrame) -> list[tuple[str, int, int]]:
    rows = out[out[ALERT_WRITE]]
    return sorted(zip(rows["sender_account"], (rows[ALERT_START] - T0) // MINUTE_MS, rows["alert_tx"].astype(int)))


def test_a_flagged_pair_covers_the_minute_before_with_the_pairs_totals() -> None:
    out = run(SenderHistory(), [window("A", 0, tx=2, first_s=55, last_s=59), window("A", 1, tx=5, first_s=0, last_s=9)],
              [False, True])
    assert written(out) == [("A", 0, 7)]


def test_an_alert_reaches_back_to_the_start_of_its_run_with_the_runs_totals() -> None:
    history = SenderHistory()
    # minutes 0 and 1 are not a pair (an hour-long gap would not be either: 50 s here), nor flagged
    run(history, [window("A", 0, tx=2, amount=200, failed=1, receivers=(1, 2), first_s=0, last_s=5)], [False])
    run(history, [window("A", 1, tx=3, amount=900, receivers=(3,), first_s=55, last_s=58)], [False])
    out = run(history, [window("A", 2, tx=4, amount=400, receivers=(4,), first_s=0, last_s=9)], [True])
    assert written(out) == [("A", 0, 9)]  # the alert starts with its run, and counts all of it
    row = out[out[ALERT_WRITE]].iloc[0]
    assert (row["alert_amount"], row["alert_failed"], row["alert_receivers"], row["alert_max"]) == (1500, 1, 4, 900)


def test_a_run_started_afresh_at_the_cap_is_reached_back_through_the_pair() -> None:
    history = SenderHistory(HistoryParams(run_max_windows=2))
    rows = [window("A", m, tx=m + 1, first_s=50 if m == 1 else 1, last_s=58) for m in (0, 1, 2)]
    out = run(history, rows, [False, False, True])
    assert written(out) == [("A", 1, 5)]  # minute 2 starts a new run; its pair holds minute 1


def test_a_burst_over_three_minutes_in_three_batches_is_one_alert_key() -> None:
    history = SenderHistory()
    keys = []
    for minute, tx in ((0, 4), (1, 6), (2, 3)):
        out = run(history, [window("A", minute, tx=tx, first_s=1, last_s=58)], [True])
        keys += written(out)
    # one key (A, minute 0); the row grows as the burst goes on
    assert keys == [("A", 0, 4), ("A", 0, 10), ("A", 0, 13)]
    # a quiet minute ends the run, and with it the alert
    out = run(history, [window("A", 4, tx=1)], [False])
    assert history.alert_start[history.slots(["A"])[0]] == UNSEEN and not out[ALERT_WRITE].any()


def test_an_alert_goes_on_over_the_rest_of_its_run_flagged_or_not() -> None:
    history = SenderHistory()
    first = run(history, [window("A", 0, tx=9)], [True])
    # the next two minutes score below the threshold but are the same burst: one alert, extended
    tail = run(history, [window("A", 1, tx=2), window("A", 2, tx=3)], [False, False])
    assert written(first) + written(tail) == [("A", 0, 9), ("A", 0, 14)]
    assert tail["is_fraud"].tolist() == [True, True] and tail["flagged"].tolist() == [False, False]
    # no flagged window of the alert in this batch: the written row says so
    assert tail[tail[ALERT_WRITE]][ALERT_SOURCE].tolist() == [-1]
    after_gap = run(history, [window("A", 4, tx=2)], [False])
    assert not after_gap["is_fraud"].any() and not after_gap[ALERT_WRITE].any()


def test_the_alert_row_takes_its_newest_flagged_window_not_its_newest_window() -> None:
    rows = [window("A", m, tx=tx, first_s=1, last_s=58) for m, tx in ((0, 4), (1, 6), (2, 1))]
    out = run(SenderHistory(), rows + [window("B", 0, tx=1)], [False, True, False, False])
    assert written(out) == [("A", 0, 11)]  # the flagged pair starts at minute 0; minute 2 goes on
    write = out[out[ALERT_WRITE]].iloc[0]
    assert (write["window_start"] - T0) // MINUTE_MS == 2  # the row's window_end follows minute 2
    source = out.iloc[int(write[ALERT_SOURCE])]
    assert source["sender_account"] == "A" and (source["window_start"] - T0) // MINUTE_MS == 1
    assert out["is_fraud"].tolist() == [False, True, True, False]


def test_the_same_burst_in_one_batch_writes_one_row_with_the_same_totals() -> None:
    rows = [window("A", m, tx=tx, first_s=1, last_s=58) for m, tx in ((0, 4), (1, 6), (2, 3))]
    out = run(SenderHistory(), rows + [window("B", 1, tx=9)], [True, True, True, True])
    assert written(out) == [("A", 0, 13), ("B", 1, 9)]
    a_end = out[out[ALERT_WRITE] & (out["sender_account"] == "A")]["window_start"]
    assert list((a_end - T0) // MINUTE_MS) == [2]  # the row's newest window: window_end follows it


def test_a_quiet_minute_between_two_flagged_ones_makes_two_alerts() -> None:
    history = SenderHistory()
    first = run(history, [window("A", 0, tx=5)], [True])
    second = run(history, [window("A", 2, tx=6)], [True])
    assert written(first) + written(second) == [("A", 0, 5), ("A", 2, 6)]


def test_alert_maximum_and_receivers_accumulate_per_minute() -> None:
    history = SenderHistory()
    run(history, [window("A", 0, amount=700, receivers=(1, 2), last_s=59)], [True])
    out = run(history, [window("A", 1, amount=300, receivers=(3,), first_s=0)], [True])
    row = out[out[ALERT_WRITE]].iloc[0]
    assert (row["alert_amount"], row["alert_max"], row["alert_receivers"]) == (1000, 700, 3)
    assert np.isfinite(row["pair_tx_count"])

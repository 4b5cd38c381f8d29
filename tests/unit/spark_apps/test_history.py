"""SenderHistory: pairs across a minute boundary, receiver novelty, baselines and runs, idle time, order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spark_apps.history import (
    CONTEXT_FEATURES, KNOWN_RECEIVERS, MINUTE_MS, PAIR_GAP_MS, PAIR_START, RUN_START, RUN_TOTALS, HistoryParams,
    SenderHistory, receiver_arrays,
)

T0 = 1_795_000_000_000 - 1_795_000_000_000 % MINUTE_MS


def window(sender: str, minute: int, *, tx: int = 1, amount: int = 1000, receivers=(1,), first_s: float = 10, last_s: float = 20,
           failed: int = 0, small: int = 0, transfers: int = 0, remote: int = 0) -> dict:
    start = T0 + minute * MINUTE_MS
    return {"sender_account": sender, "window_start": start, "tx_count": tx, "total_amount_minor": amount,
            "failed_count": failed, "small_amount_count": small, "transfer_count": transfers,
            "remote_amount_minor": remote, "distinct_receivers": len(receivers), "max_amount_minor": amount,
            "first_event_ms": start + int(first_s * 1000), "last_event_ms": start + int(last_s * 1000),
            "receivers": list(receivers)}


def advance(history: SenderHistory, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    flat, offsets = receiver_arrays(frame.pop("receivers"))
    return pd.concat([frame, history.advance(frame, flat, offsets)], axis=1)


def test_a_burst_cut_by_the_minute_boundary_is_whole_in_the_later_pair() -> None:
    out = advance(SenderHistory(), [
        window("A", 0, tx=3, amount=300, receivers=(1, 2, 3), first_s=50, last_s=59),
        window("A", 1, tx=4, amount=400, receivers=(4, 5, 6, 7), first_s=1, last_s=12),
    ])
    later = out.iloc[1]
    assert later["pair_tx_count"] == 7 and later["pair_total_amount_minor"] == 700
    assert later["pair_distinct_receivers"] == 7 and later["new_receivers"] == 7
    assert later[PAIR_START] == T0
    assert out.iloc[0][PAIR_START] == T0 and out.iloc[0]["pair_tx_count"] == 3


def test_a_transaction_long_after_a_busy_minute_is_not_paired() -> None:
    out = advance(SenderHistory(), [
        window("A", 0, tx=20, first_s=0, last_s=10),
        window("A", 1, tx=1, first_s=10 + PAIR_GAP_MS / 1000 + 1, last_s=59),
    ])
    assert out.iloc[1]["pair_tx_count"] == 1 and out.iloc[1][PAIR_START] == T0 + MINUTE_MS


def test_known_receivers_are_not_new_and_the_ring_is_bounded() -> None:
    history = SenderHistory()
    advance(history, [window("A", 0, receivers=tuple(range(1, KNOWN_RECEIVERS + 5)))])
    out = advance(history, [window("A", 5, receivers=(1, 2, 3, KNOWN_RECEIVERS + 4, 999))])
    # the ring kept the newest KNOWN_RECEIVERS: 1..4 fell out, the last one stayed, 999 is new
    assert out.iloc[0]["new_receivers"] == 4
    assert history.known_count.max() == KNOWN_RECEIVERS


def test_baseline_is_the_senders_typical_window_before_the_pair() -> None:
    history = SenderHistory(HistoryParams(half_life_minutes=1e9))
    advance(history, [window("B", m, tx=2, amount=200) for m in (0, 2, 4)])
    out = advance(history, [window("B", 10, tx=9, amount=9000)])
    row = out.iloc[0]
    assert row["typical_tx"] == pytest.approx(2.0)
    assert row["typical_amount_minor"] == pytest.approx(200.0)
    assert row["history_windows"] == pytest.approx(3.0)
    assert row["idle_minutes"] == pytest.approx(6.0)


def test_a_run_of_consecutive_minutes_is_not_its_own_baseline() -> None:
    # a mule structuring over four minutes: each minute is judged against the sender's
    # quiet past, not against the burst's own earlier minutes
    history = SenderHistory(HistoryParams(half_life_minutes=1e9))
    advance(history, [window("M", m, tx=1, amount=100) for m in (0, 3)])
    run = pd.concat([advance(history, [window("M", m, tx=6, amount=6000, first_s=40, last_s=50)]) for m in range(10, 14)])
    assert run["typical_tx"].tolist() == pytest.approx([1.0] * 4)
    assert run["typical_amount_minor"].tolist() == pytest.approx([100.0] * 4)
    assert run["history_windows"].tolist() == pytest.approx([2.0] * 4)
    # what the baseline leaves out is there as a whole: the run so far, this minute included
    assert run["run_tx"].tolist() == pytest.approx([6, 12, 18, 24])
    assert run["run_amount_minor"].tolist() == pytest.approx([6000, 12000, 18000, 24000])
    # once the run has ended (a quiet minute), it joins the baseline
    after = advance(history, [window("M", 20, tx=1, amount=100)]).iloc[0]
    assert after["history_windows"] == pytest.approx(6.0)
    assert (after["run_tx"], after["run_amount_minor"]) == (1, 100)
    assert after["typical_tx"] == pytest.approx((1 + 1 + 4 * 6) / 6)


def test_a_run_longer_than_the_cap_joins_the_baseline() -> None:
    # a business paying every minute: after run_max_windows minutes its rhythm is its baseline
    params = HistoryParams(half_life_minutes=1e9, run_max_windows=3)
    out = advance(SenderHistory(params), [window("B", m, tx=5, amount=500) for m in range(8)])
    assert out["history_windows"].tolist() == pytest.approx([0, 0, 0, 3, 3, 3, 6, 6])
    assert out["typical_tx"].iloc[3:].tolist() == pytest.approx([5.0] * 5)
    assert out["run_tx"].tolist() == pytest.approx([5, 10, 15, 5, 10, 15, 5, 10])


def test_the_run_start_and_totals_follow_the_run_and_start_afresh_at_the_cap() -> None:
    # what an alert raised in the run reaches back to (spark_apps.bursts, stream.context)
    params = HistoryParams(run_max_windows=3)
    rows = [window("R", m, tx=2, amount=100 * (m + 1), failed=1, receivers=(m, m + 10)) for m in (0, 1, 2, 3, 4, 6)]
    out = advance(SenderHistory(params), rows)
    assert ((out[RUN_START] - T0) // MINUTE_MS).tolist() == [0, 0, 0, 3, 3, 6]
    assert out["run_failed_count"].tolist() == [1, 2, 3, 1, 2, 1]
    assert out["run_distinct_receivers"].tolist() == [2, 4, 6, 2, 4, 2]  # summed per minute, as an alert's
    assert out["run_max_amount_minor"].tolist() == [100, 200, 300, 400, 500, 700]
    assert out["run_tx"].tolist() == [2, 4, 6, 2, 4, 2]


def test_a_sender_never_seen_is_idle_for_the_cap_and_has_no_baseline() -> None:
    params = HistoryParams(max_idle_minutes=1440.0)
    out = advance(SenderHistory(params), [window("C", 0)])
    assert out.iloc[0]["idle_minutes"] == 1440.0 and out.iloc[0]["history_windows"] == 0.0


def test_the_pair_baseline_leaves_out_the_earlier_half() -> None:
    history = SenderHistory(HistoryParams(half_life_minutes=1e9))
    advance(history, [window("D", 0, tx=1, amount=100, last_s=30)])
    out = advance(history, [window("D", 5, tx=30, amount=30, first_s=40, last_s=59),
                            window("D", 6, tx=10, amount=10, first_s=0, last_s=5)])
    later = out.iloc[1]
    assert later["typical_tx"] == pytest.approx(1.0)  # the burst's own first half is not its baseline
    assert later["idle_minutes"] == pytest.approx(5.0)  # from the window before the pair to the pair's start


def test_chunks_in_any_batching_give_the_same_features() -> None:
    rng = np.random.default_rng(3)
    rows = [window(f"S{rng.integers(0, 6)}", int(m), tx=int(rng.integers(1, 9)), amount=int(rng.integers(1, 10**6)),
                   receivers=tuple(int(r) for r in rng.choice(40, int(rng.integers(1, 5)), replace=False)),
                   first_s=float(rng.uniform(0, 30)), last_s=float(rng.uniform(30, 59.9)))
            for m in range(30) for _ in range(3)]
    frame = pd.DataFrame(rows).drop_duplicates(["sender_account", "window_start"]).reset_index(drop=True)
    whole = advance(SenderHistory(), frame.to_dict("records"))
    history = SenderHistory()
    minutes = frame["window_start"].to_numpy()
    parts = [advance(history, frame[(minutes >= T0 + a * MINUTE_MS) & (minutes < T0 + b * MINUTE_MS)].to_dict("records"))
             for a, b in ((0, 7), (7, 8), (8, 30))]
    columns = [*CONTEXT_FEATURES, *RUN_TOTALS, PAIR_START, RUN_START]
    pd.testing.assert_frame_equal(pd.concat(parts).reset_index(drop=True)[columns], whole[columns])


def test_state_from_before_the_run_numbers_loads_with_no_ongoing_run() -> None:
    history = SenderHistory(HistoryParams(half_life_minutes=1e9))
    advance(history, [window("R", m, tx=2, amount=200) for m in (0, 1, 2)])
    old = history.export(history.live_slots())
    old = old.drop_columns([name for name in old.column_names if name.startswith("run_")])
    restored = SenderHistory(HistoryParams(half_life_minutes=1e9))
    restored.load(old)
    row = advance(restored, [window("R", 9, tx=1, amount=100)]).iloc[0]
    # the three windows were an ongoing run, which the old state did not record: the baseline
    # is what it held (none), and the sender is known (idle since minute 2)
    assert row["history_windows"] == 0.0 and row["idle_minutes"] == pytest.approx(7.0)

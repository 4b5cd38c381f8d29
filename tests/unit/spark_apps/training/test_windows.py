"""The time split and the windows the fit sees (pure numpy/pandas: no Spark)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudpipe.errors import ModelError
from spark_apps.history import MINUTE_MS, PAIR_START, RUN_START
from spark_apps.training.run import fit_windows
from spark_apps.training.windows import epoch_ms, last_labelled_minute, time_split, warmup_mask

T0 = 1_795_000_020_000 - 1_795_000_020_000 % MINUTE_MS


def test_the_split_is_by_minutes_earlier_ones_train() -> None:
    # ten minutes, a varying number of windows in each, in no particular order
    rng = np.random.default_rng(1)
    minutes = rng.permutation(np.repeat(np.arange(10), rng.integers(1, 50, 10)))
    starts = T0 + minutes * MINUTE_MS
    is_train, is_test = time_split(starts, 0.8)
    # every window of the first 8 minutes trains, every window of the last 2 is tested
    assert (is_train == (minutes < 8)).all() and (is_test == ~is_train).all()
    assert starts[is_train].max() < starts[is_test].min()
    # a minute is never split, whatever the fraction
    for fraction in (0.05, 0.33, 0.5, 0.95):
        train, test = time_split(starts, fraction)
        assert train.any() and test.any()
        assert all(len(set(train[minutes == m])) == 1 for m in range(10))


def test_the_test_range_ends_at_the_last_labelled_minute_without_moving_the_cut() -> None:
    minutes = np.arange(20)
    windows = pd.DataFrame({"window_start": T0 + minutes * MINUTE_MS, "fraud_tx": np.where(minutes == 17, 2, 0)})
    end = last_labelled_minute(windows)
    assert end == T0 + 17 * MINUTE_MS
    is_train, is_test = time_split(windows["window_start"], 0.5, end_ms=end)
    assert minutes[is_train].tolist() == list(range(10))  # the cut comes from the minutes alone
    assert minutes[is_test].tolist() == list(range(10, 18))  # minutes 18, 19: on neither side
    assert last_labelled_minute(windows.assign(fraud_tx=0)) is None


def test_a_split_needs_two_minutes() -> None:
    with pytest.raises(ModelError, match="at least two minutes"):
        time_split(np.full(5, T0), 0.8)


def test_window_starts_become_epoch_ms_from_any_timestamp_unit() -> None:
    stamps = pd.Series(pd.to_datetime([T0, T0 + MINUTE_MS], unit="ms"))
    assert epoch_ms(stamps).tolist() == [T0, T0 + MINUTE_MS]
    assert epoch_ms(stamps.dt.tz_localize("UTC").astype("datetime64[us, UTC]")).tolist() == [T0, T0 + MINUTE_MS]
    assert epoch_ms(pd.Series([T0], dtype="int64")).tolist() == [T0]


def _windows(rows: list[tuple[str, int, int, int, int]]) -> pd.DataFrame:
    """(sender, minute, labelled tx, minute the pair starts, minute the run started) -> windows with
    what bursts.fragments reads."""
    return pd.DataFrame({
        "sender_account": [r[0] for r in rows],
        "window_start": [T0 + r[1] * MINUTE_MS for r in rows],
        "fraud_tx": [r[2] for r in rows],
        PAIR_START: [T0 + r[3] * MINUTE_MS for r in rows],
        RUN_START: [T0 + r[4] * MINUTE_MS for r in rows],
    })


def test_fragments_and_later_minutes_are_left_out_of_the_fit() -> None:
    windows = _windows([
        ("A", 0, 1, 0, 0),  # fragment: the burst goes on in A's minute 1, whose pair holds 1 + 5
        ("A", 1, 5, 0, 0),
        ("B", 0, 4, 0, 0),  # a whole burst in one minute
        ("C", 0, 0, 0, 0),  # normal
        ("D", 1, 2, 1, 1),  # a burst in minute 1 (tested side below)
        ("E", 2, 1, 2, 2),  # fragment in the tested minutes
        ("E", 3, 3, 2, 2),
        ("F", 1, 1, 1, 1),  # cut by the split: that it goes on is a test-side label, so it is not a fragment here
        ("F", 2, 3, 1, 1),
        ("G", 0, 1, 0, 0),  # fragment: not a pair, but its run goes on with a labelled minute
        ("G", 1, 2, 1, 0),
        ("H", 0, 2, 0, 0),  # the run goes on unlabelled: the burst ended here
        ("H", 1, 0, 1, 0),
    ])
    is_train = windows["window_start"].to_numpy() < T0 + 2 * MINUTE_MS
    fit = fit_windows(windows, is_train)
    assert fit.tolist() == [False, True, True, True, True, False, False, True, False, False, True, True, True]
    # without labels nothing is a fragment: the fit sees the train minutes
    unlabelled = windows.assign(fraud_tx=0)
    assert fit_windows(unlabelled, is_train).tolist() == is_train.tolist()


def test_the_warmup_leaves_out_the_first_minutes_of_the_train_side_only() -> None:
    starts = np.repeat(T0 + np.arange(100) * MINUTE_MS, 3)
    is_train, _is_test = time_split(starts, 0.8)
    warm = warmup_mask(starts, is_train, 30)
    assert warm.sum() == 30 * 3 and (starts[warm] < T0 + 30 * MINUTE_MS).all() and not (warm & ~is_train).any()
    assert not warmup_mask(starts, is_train, 0).any()
    # never more than half of the train minutes: a short dataset still has windows to fit on
    assert warmup_mask(starts, is_train, 600).sum() == 40 * 3

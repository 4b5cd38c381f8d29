"""Bursts that cross a minute boundary: which windows a flagged pair covers, and fragments.

A window is scored together with the sender's previous minute when the two form a pair
(`spark_apps.history`): the alert of a flagged pair covers both minutes, so the earlier
fragment of a cut burst is covered by the alert that caught the burst. Evaluation counts
a window as predicted fraud when it is flagged or covered; training leaves fragments out
of the fit, because a fraud centroid fitted on a one-transaction fragment lands among
ordinary windows (issue 15). Pure pandas and numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from spark_apps.history import MINUTE_MS, PAIR_START


def _keys(windows: pd.DataFrame, starts: np.ndarray) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([windows["sender_account"].to_numpy(), starts])


def _starts(windows: pd.DataFrame) -> np.ndarray:
    return _ms(windows["window_start"])


def _ms(series: pd.Series) -> np.ndarray:
    if np.issubdtype(series.dtype, np.integer):
        return series.to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(series, utc=True)
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ms]").astype(np.int64)


def paired(windows: pd.DataFrame) -> np.ndarray:
    """Rows scored together with the sender's previous minute."""
    return windows[PAIR_START].to_numpy(dtype=np.int64) < _starts(windows)


def covered_by_next(windows: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Rows whose minute is the earlier half of a flagged pair (the same sender's next window)."""
    starts = _starts(windows)
    by_pair = np.asarray(flagged, dtype=bool) & paired(windows)
    earlier = _keys(windows[by_pair], starts[by_pair] - MINUTE_MS)
    return _keys(windows, starts).isin(earlier)


def predicted(windows: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """What evaluation counts as predicted fraud: flagged, or covered by a flagged pair."""
    flagged = np.asarray(flagged, dtype=bool)
    return flagged | covered_by_next(windows, flagged)


def fragments(windows: pd.DataFrame) -> np.ndarray:
    """Labelled windows whose burst the next window's pair holds more of: the cut earlier part.

    Needs `fraud_tx` (labelled transactions per window). The next window's pair holds this
    window's labelled transactions plus its own, so "more" means the burst went on past
    the boundary.
    """
    starts = _starts(windows)
    fraud = windows["fraud_tx"].to_numpy(dtype=np.int64)
    is_paired = paired(windows)
    by_key = pd.Series(fraud, index=_keys(windows, starts))
    previous = by_key.reindex(_keys(windows, starts - MINUTE_MS)).fillna(0).to_numpy(dtype=np.int64)
    pair_fraud = fraud + np.where(is_paired, previous, 0)
    # the next window of the same sender: is it paired with this one, and how much fraud does its pair hold?
    following = _keys(windows, starts + MINUTE_MS)
    next_pair = pd.Series(np.where(is_paired, pair_fraud, -1), index=by_key.index).reindex(following)
    next_pair = next_pair.fillna(-1).to_numpy(dtype=np.int64)
    return (fraud > 0) & (next_pair > pair_fraud)

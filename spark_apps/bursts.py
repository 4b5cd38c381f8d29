"""Bursts over several minutes: which windows an alert covers, and fragments.

An alert covers a sender's burst, not one minute of it:

- a window is scored together with the sender's previous minute when the two form a pair
  (`spark_apps.history`): the alert of a flagged pair covers both minutes, so the earlier
  fragment of a cut burst is covered by the alert that caught the burst;
- a flagged window's alert reaches back to the start of the sender's ongoing run as the
  history counts it (`RUN_START`): the first minutes of a slow burst, ordinary on their own,
  are part of the alert that recognised the burst later (session 8, 5 seeds: in-distribution
  window F1 0.949 -> 0.961, transfer 0.874 -> 0.880; docs/detection.md);
- once a window is flagged, the alert goes on while the sender stays active minute after
  minute (its run of consecutive minutes, however long): the later minutes of a burst that was
  already caught are part of its alert even when, on their own, they score below the
  threshold (the tail of a slow velocity spike, the last purchase of a spree).

Evaluation counts a window as predicted fraud when it is flagged or covered; the stream's
alert rows (spark_apps.stream.context.chain_alerts) span the same windows. Training leaves
fragments out of the fit, because a fraud centroid fitted on a one-transaction fragment
lands among ordinary windows (issue 15), and chooses its threshold on what an alert covers
(`burst_scores`). Pure pandas and numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from spark_apps.history import MINUTE_MS, PAIR_START, RUN_START


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


def _runs(windows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(order, run id per ordered row): rows sorted by (sender, start), a run = the sender's consecutive minutes."""
    starts = _starts(windows)
    senders = windows["sender_account"].to_numpy()
    order = np.lexsort((starts, senders))
    starts, senders = starts[order], senders[order]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = (senders[1:] != senders[:-1]) | (starts[1:] - starts[:-1] != MINUTE_MS)
    return order, np.cumsum(new_run)


def _cummax_along(values: np.ndarray, order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per row, the largest of `values` so far along `order`, within its group (`group`: an id per ordered row)."""
    out = np.empty(len(order), dtype=np.float64)
    out[order] = pd.Series(np.asarray(values, dtype=np.float64)[order]).groupby(group, sort=False).cummax().to_numpy()
    return out


def _running_max_in_runs(windows: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Per row, the largest of `values` over its run so far (its own minute and the run's earlier ones)."""
    return _cummax_along(values, *_runs(windows))


def _latest_in_run_from_here(windows: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Per row, the largest of `values` over its own minute and the later minutes of its sender's
    ongoing run as the history counts it (same RUN_START): what an alert raised later in the
    run reaches back to."""
    senders = windows["sender_account"].to_numpy()
    run_starts = windows[RUN_START].to_numpy(dtype=np.int64)
    order = np.lexsort((-_starts(windows), run_starts, senders))  # within a run, newest first
    senders, run_starts = senders[order], run_starts[order]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = (senders[1:] != senders[:-1]) | (run_starts[1:] != run_starts[:-1])
    return _cummax_along(values, order, np.cumsum(new_run))


def covered_back(windows: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Rows of a run whose later minute is flagged: the alert starts where the run started."""
    if not len(windows):
        return np.zeros(0, dtype=bool)
    return _latest_in_run_from_here(windows, np.asarray(flagged, dtype=bool)) > 0


def continued(windows: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Rows whose run (the sender's consecutive minutes) had a flagged minute at or before them."""
    if not len(windows):
        return np.zeros(0, dtype=bool)
    return _running_max_in_runs(windows, np.asarray(flagged, dtype=bool)) > 0


def predicted(windows: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """What evaluation counts as predicted fraud: flagged, or covered by an alert: the earlier half of a
    flagged pair, an earlier minute of a flagged window's run, or a later minute of a flagged run."""
    flagged = np.asarray(flagged, dtype=bool)
    return flagged | covered_by_next(windows, flagged) | covered_back(windows, flagged) | continued(windows, flagged)


def burst_scores(windows: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
    """Per row, the score whose crossing puts it under an alert: predicted(windows, scores >= t)
    equals burst_scores(windows, scores) >= t for every threshold t.

    The larger of the best score of its run so far and the score of the next window when
    that one's pair holds this minute. Choosing the threshold on these chooses it for what
    the alerts cover, not for single minutes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores.copy()
    starts = _starts(windows)
    by_pair = paired(windows)
    next_pair = pd.Series(np.where(by_pair, scores, -np.inf), index=_keys(windows, starts))
    # the next window's score when its pair starts at this row's minute
    following = next_pair.reindex(_keys(windows, starts + MINUTE_MS)).fillna(-np.inf).to_numpy()
    return np.maximum(np.maximum(_running_max_in_runs(windows, scores), following),
                      _latest_in_run_from_here(windows, scores))


def fragments(windows: pd.DataFrame) -> np.ndarray:
    """Labelled windows that are an earlier part of a burst a later window holds more of.

    - the cut earlier half of a pair: the next window's pair holds this window's labelled
      transactions plus its own, so "more" means the burst went on past the boundary;
    - an earlier minute of a run (same RUN_START) with a later labelled minute: that minute's
      run features hold this one's transactions and more, and the alert it raises reaches
      back here (`covered_back`). Fitted on, these first minutes of slow bursts (two or three
      small purchases) pulled fraud centroids toward ordinary minutes (session 8, 5 seeds:
      transfer window F1 0.880 -> 0.907, in-distribution 0.961 -> 0.960; docs/detection.md).

    Needs `fraud_tx` (labelled transactions per window), PAIR_START and RUN_START.
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
    # the newest labelled minute of the run from this one on: later than this one?
    newest_labelled = _latest_in_run_from_here(windows, np.where(fraud > 0, starts, np.iinfo(np.int64).min))
    return (fraud > 0) & ((next_pair > pair_fraud) | (newest_labelled > starts))

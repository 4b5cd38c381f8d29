"""The sender history inside a micro-batch: closed windows -> context features -> one alert per burst.

Pure numpy, pandas and pyarrow, no Spark. A batch's closed windows arrive as an Arrow table
(DataFrame.toArrow: the receiver_hashes lists stay flat buffers, no per-row objects). The
real (non-carrier) windows go through SenderHistory.advance, which appends the context
features (spark_apps.history.CONTEXT_FEATURES) the model may use. After scoring,
`chain_alerts` turns flagged windows into alerts, one per sender and burst:

- a flagged window's alert covers the burst so far: it starts where the sender's run of
  consecutive minutes started (RUN_START, as the history counts runs), or at its pair's
  start when that is earlier (a run that reached run_max_windows starts afresh), with the
  totals of that stretch;
- once open, the alert goes on while the sender stays active minute after minute (its run,
  spark_apps.bursts.continued), flagged or not: same key (sender, alert start), window_end
  moved on, totals added up. The open alert's start and totals are part of the history
  state, so a burst that crosses a batch boundary, a restart or a replay is still one alert
  row, upserted under one key;
- the alert's score, explanation and features are those of its newest flagged window
  (ALERT_SOURCE): an alert never carries a score below its model's threshold. When a batch
  only extends an alert (no flagged window of it in the batch), the row keeps them and only
  its end and totals move on (outputs.alert_rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from spark_apps.features import RECEIVER_HASHES
from spark_apps.history import (
    ALERT_START, ALERT_TOTALS, MINUTE_MS, PAIR_START, RUN_START, RUN_TOTALS, UNSEEN, SenderHistory, receiver_arrays,
)

# The alerts tables' own columns (cassandra/init.cql) and the running alert totals they show.
ALERT_COLUMNS: Final = dict(zip(
    ("tx_count", "total_amount_minor", "failed_count", "distinct_receivers", "max_amount_minor"), ALERT_TOTALS))
# A new alert starts with the totals of the burst so far: its run's, or its pair's when the pair reaches
# further back (same order as ALERT_COLUMNS).
_PAIR_TOTALS: Final = ("pair_tx_count", "pair_total_amount_minor", "pair_failed_count", "pair_distinct_receivers",
                       "pair_max_amount_minor")
_RUN_TOTALS: Final = ("run_tx", "run_amount_minor") + RUN_TOTALS
ALERT_WRITE: Final = "alert_write"  # the newest window of its alert in this batch: the row to upsert
# On a write row: the batch row (position in `scored`) of its alert's newest flagged window, -1 when the
# batch holds none (the batch only extends an alert opened earlier).
ALERT_SOURCE: Final = "alert_source"


@dataclass
class BatchWindows:
    """A micro-batch's closed windows: sender windows, carrier rows, and the senders' receivers.

    The receivers of real row i are receivers[offsets[i]:offsets[i + 1]] (32-bit hashes).
    """

    real: pd.DataFrame
    carriers: pd.DataFrame
    receivers: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_arrow(cls, table: "pa.Table") -> "BatchWindows":  # noqa: F821 - pyarrow imported lazily
        import pyarrow as pa
        import pyarrow.compute as pc

        is_real = pc.is_valid(table.column("sender_account"))
        real = table.filter(is_real)
        lists = real.column(RECEIVER_HASHES).combine_chunks() if real.num_rows else pa.array([], pa.list_(pa.int32()))
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        receivers = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        carriers = table.filter(pc.invert(is_real)).drop_columns([RECEIVER_HASHES])
        return cls(real.drop_columns([RECEIVER_HASHES]).to_pandas(), carriers.to_pandas(), receivers, offsets)

    @classmethod
    def from_pandas(cls, windows: pd.DataFrame) -> "BatchWindows":
        """From a pandas batch whose receiver_hashes column holds lists (tests, small batches)."""
        is_carrier = windows["sender_account"].isna()
        real = windows[~is_carrier].reset_index(drop=True)
        receivers, offsets = receiver_arrays(real[RECEIVER_HASHES])
        return cls(real.drop(columns=[RECEIVER_HASHES]), windows[is_carrier].drop(columns=[RECEIVER_HASHES]),
                   receivers, offsets)


@dataclass
class Prior:
    """Per real window, in batch row order: its sender's slot and alert state before the batch."""

    slots: np.ndarray
    starts: np.ndarray  # window start, epoch ms
    last_start: np.ndarray  # the sender's last window start before this batch (UNSEEN: none)
    alert_start: np.ndarray  # its open alert's start (UNSEEN: its last window was not flagged)
    alert_totals: np.ndarray  # rows x ALERT_TOTALS

    @property
    def newest_start(self) -> int | None:
        return int(self.starts.max()) if len(self.starts) else None


def epoch_ms(series: pd.Series) -> np.ndarray:
    """Timestamps (tz-aware or naive UTC) or integer epoch ms as int64 epoch milliseconds."""
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):  # what toArrow().to_pandas() gives: no parsing
        per_ms = {"s": 1 / 1000, "ms": 1, "us": 1000, "ns": 1_000_000}[series.dt.unit]
        raw = series.astype("int64").to_numpy()
        return raw * 1000 if per_ms < 1 else raw // int(per_ms)
    stamps = pd.to_datetime(series, utc=True)
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ms]").astype(np.int64)


def add_context(history: SenderHistory, batch: BatchWindows) -> tuple[pd.DataFrame, Prior]:
    """The real windows with CONTEXT_FEATURES and pair_start (ms), the history advanced past them.

    Senders idle for longer than max_idle_minutes before the batch's newest window are
    evicted first (event time: a replay evicts the same ones).
    """
    real = batch.real.reset_index(drop=True)
    starts = epoch_ms(real["window_start"])
    if len(real):
        history.evict_idle(int(starts.max()))
    slots = history.slots(real["sender_account"].to_numpy())
    prior = Prior(slots, starts, history.last_start[slots].copy(), history.alert_start[slots].copy(),
                  np.column_stack([history.floats[name][slots] for name in ALERT_TOTALS]))
    frame = real.assign(window_start=starts)
    context = history.advance(frame, batch.receivers, batch.offsets, slots=slots)
    return pd.concat([real, context], axis=1), prior


def chain_alerts(history: SenderHistory, scored: pd.DataFrame, prior: Prior) -> pd.DataFrame:
    """`scored` (is_fraud per window, rows as in `prior`) with ALERT_START, ALERT_TOTALS, ALERT_WRITE and
    ALERT_SOURCE; `flagged` = the model's own decision, `is_fraud` = under an alert (flagged or continuing one).

    Updates the open alert of every sender in the batch. Vectorised: windows sorted by
    (sender, start); an alert opens at a flagged window and goes on over the sender's next
    consecutive minutes; totals are sums over it.
    """
    n = len(scored)
    out = scored.copy()
    out["flagged"] = scored["is_fraud"].to_numpy(dtype=bool)
    if n == 0:
        for name in (ALERT_START, *ALERT_TOTALS):
            out[name] = pd.Series(dtype="int64" if name == ALERT_START else "float64")
        out[ALERT_WRITE] = pd.Series(dtype=bool)
        out[ALERT_SOURCE] = pd.Series(dtype="int64")
        return out
    order = np.lexsort((prior.starts, prior.slots))
    slots, starts = prior.slots[order], prior.starts[order]
    flagged = out["flagged"].to_numpy()[order]
    same_sender = np.zeros(n, dtype=bool)
    same_sender[1:] = slots[1:] == slots[:-1]
    next_minute = np.zeros(n, dtype=bool)  # the sender's previous window in this batch is the minute before
    next_minute[1:] = same_sender[1:] & (starts[1:] - starts[:-1] == MINUTE_MS)
    carried = (~same_sender & (prior.last_start[order] == starts - MINUTE_MS)
               & (prior.alert_start[order] != UNSEEN))  # continues an alert from an earlier batch
    # under an alert: a flagged minute, or any later minute of the same run (carried in at its start)
    sender_run = np.cumsum(~next_minute)
    in_alert = pd.Series((flagged | carried).astype(np.int8)).groupby(sender_run, sort=False).cummax().to_numpy() > 0
    follows = np.zeros(n, dtype=bool)  # goes on with the alert of the minute before (so is under it too)
    follows[1:] = next_minute[1:] & in_alert[:-1]
    head = in_alert & ~follows

    own = scored[list(ALERT_COLUMNS)].to_numpy(dtype=np.float64)[order]
    pair_start = scored[PAIR_START].to_numpy(dtype=np.int64)[order]
    run_start = scored[RUN_START].to_numpy(dtype=np.int64)[order]
    by_pair = (pair_start < run_start)[:, None]
    burst = np.where(by_pair, scored[list(_PAIR_TOTALS)].to_numpy(dtype=np.float64)[order],
                     scored[list(_RUN_TOTALS)].to_numpy(dtype=np.float64)[order])
    before = prior.alert_totals[order]
    continued = before + own
    continued[:, -1] = np.maximum(before[:, -1], own[:, -1])
    base = np.where((head & carried)[:, None], continued, np.where(head[:, None], burst, own))
    head_start = np.where(carried, prior.alert_start[order], np.minimum(pair_start, run_start))

    totals = np.zeros_like(base)
    alert_start = np.full(n, UNSEEN, dtype=np.int64)
    source = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(in_alert)
    if len(rows):
        run = np.cumsum(head)[rows]
        # the newest flagged window of the alert so far (sorted position), then as a row of `scored`
        newest = pd.Series(np.where(flagged[rows], rows, -1)).groupby(run, sort=False).cummax().to_numpy()
        source[rows] = np.where(newest >= 0, order[np.maximum(newest, 0)], -1)
        frame = pd.DataFrame(base[rows], columns=list(ALERT_TOTALS))
        grouped = frame.groupby(run, sort=False)
        totals[rows, :-1] = grouped[list(ALERT_TOTALS[:-1])].cumsum().to_numpy()
        totals[rows, -1] = grouped[ALERT_TOTALS[-1]].cummax().to_numpy()
        start_of_run = np.zeros(run.max() + 1, dtype=np.int64)
        start_of_run[np.cumsum(head)[head]] = head_start[head]
        alert_start[rows] = start_of_run[run]
    write = in_alert.copy()
    write[:-1] &= ~follows[1:]  # a later window of the same alert in this batch writes the row

    # the open alert of each sender after the batch: its last window's
    last = np.ones(n, dtype=bool)
    last[:-1] = slots[:-1] != slots[1:]
    history.alert_start[slots[last]] = alert_start[last]
    for j, name in enumerate(ALERT_TOTALS):
        history.floats[name][slots[last]] = totals[last, j]

    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    out[ALERT_START] = alert_start[back]
    for j, name in enumerate(ALERT_TOTALS):
        out[name] = totals[back, j]
    out[ALERT_WRITE] = write[back]
    out[ALERT_SOURCE] = source[back]
    out["is_fraud"] = in_alert[back]
    return out

"""Per-sender context of a 1-minute window: the sender's previous minute and its history.

One definition for training and the stream. Both hand the closed 1-minute windows of
`spark_apps.features` to `SenderHistory.advance`, minute by minute in event-time order,
and get back the context features below; the stream does it per micro-batch, training
once over the whole dataset, with the same code and therefore the same numbers.

Why each feature exists (issue 15, measured on traffic the model was not tuned on):

- pair_* : the window plus the same sender's previous minute when that minute is the one
  just before. A burst that crosses a minute boundary is whole in the later window's pair,
  so it is scored as one burst instead of two ordinary-looking fragments.
- new_receivers: receivers of the pair not seen from this sender before (a bounded ring
  of the last KNOWN_RECEIVERS distinct receivers per sender). Businesses pay the same
  suppliers again and again; a taken-over account or a mule pays strangers.
- history_windows, typical_tx, typical_amount_minor: the sender's own baseline, decayed
  sums over its past windows (half-life `half_life_minutes`), without the sender's ongoing
  *run* (consecutive active minutes, up to `run_max_windows` of them). A busy business
  minute is ordinary against its own baseline; the same minute from a consumer account is
  not. The run stays out of the baseline because a burst spread over several minutes would
  otherwise become its own baseline by its third minute: a mule's structuring run then
  looked "typical" and was missed (measured: transfer window F1 0.74 with the run in the
  baseline, 0.92 without, docs/detection.md).
- idle_minutes: minutes since the sender's last window before the pair, capped at
  `max_idle_minutes` (also what a sender never seen gets).
- run_tx, run_amount_minor: the sender's ongoing run so far, this window included: the
  burst the baseline leaves out, as a whole. The last minutes of a slow velocity spike or
  of a card-testing run hold two or three transactions each, ordinary on their own; the
  run they end holds twenty (session 7, 5 seeds, in-distribution / transfer window F1 with
  model.tail_share 0.05: 0.949 / 0.874 with them, 0.939 / 0.865 without; docs/detection.md).

Beside the features, `advance` returns where the window's pair and run start (PAIR_START,
RUN_START) and the run's other totals (RUN_TOTALS): what an alert raised in this window
reaches back to and sums up (spark_apps.bursts, spark_apps.stream.context).

State per sender is a fixed set of numbers plus a small ring of receiver hashes, so its
size is bounded by the number of senders seen within `max_idle_minutes` (older ones are
evicted by `evict_idle`). Receivers arrive as 32-bit hashes (Spark: xxhash64, truncated).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pyarrow only for export/load (the stream's history store)
    import pyarrow as pa

MINUTE_MS: Final = 60_000
KNOWN_RECEIVERS: Final = 16  # ring of distinct receivers remembered per sender
UNSEEN: Final = np.iinfo(np.int64).min

# The window aggregates a pair adds up (in this order), from spark_apps.features.
PAIR_SOURCES: Final = (
    "tx_count", "total_amount_minor", "failed_count", "small_amount_count", "transfer_count",
    "remote_amount_minor", "distinct_receivers",
)
_FAILED, _RECEIVERS = PAIR_SOURCES.index("failed_count"), PAIR_SOURCES.index("distinct_receivers")
PAIR_FEATURES: Final = tuple(f"pair_{name}" for name in PAIR_SOURCES) + ("pair_max_amount_minor",)
HISTORY_FEATURES: Final = ("new_receivers", "history_windows", "typical_tx", "typical_amount_minor", "idle_minutes",
                            "recent_tx", "recent_amount_minor", "run_tx", "run_amount_minor")
CONTEXT_FEATURES: Final = PAIR_FEATURES + HISTORY_FEATURES
# Extra columns `advance` returns beside the features: where the pair starts (the window
# before, when it took part) and where the sender's ongoing run starts, with the run's
# totals, so an alert can cover the whole burst (spark_apps.bursts, stream.context).
PAIR_START: Final = "pair_start"
RUN_START: Final = "run_start"
RUN_TOTALS: Final = ("run_failed_count", "run_distinct_receivers", "run_max_amount_minor")
# The stream's open alert per sender (spark_apps.stream.context): its start, and its totals.
ALERT_START: Final = "alert_start"
ALERT_TOTALS: Final = ("alert_tx", "alert_amount", "alert_failed", "alert_receivers", "alert_max")
# The sender column of an exported state table.
STATE_KEY: Final = "sender_account"
# Two windows of a sender form a pair when the later starts the minute after the earlier
# and its first transaction follows the earlier one's last within this many ms: a burst
# cut by the minute boundary, not an ordinary transaction after an unrelated busy minute.
PAIR_GAP_MS: Final = 30_000


@dataclass(frozen=True)
class HistoryParams:
    """How long the sender history remembers."""

    half_life_minutes: float = 24 * 60.0
    # recent_*: what the sender did in the last few minutes before the pair, so a slow
    # burst spread over several minutes shows in each of its windows
    recent_half_life_minutes: float = 3.0
    max_idle_minutes: float = 30 * 24 * 60.0
    # A run of consecutive active minutes longer than this is the sender's normal rhythm
    # (a business paying every minute), so it joins the baseline; fraud runs measured in
    # the generator's families last at most ~6 minutes.
    run_max_windows: int = 10


class SenderHistory:
    """Columnar per-sender state (numpy arrays indexed by slot) and the context features.

    Not thread-safe; one instance per stream query (or per training run).
    """

    # the run's RUN_TOTALS, in that order
    _RUN_TOTALS_STATE: Final = ("run_failed", "run_receivers", "run_max")
    _FLOAT_STATE: Final = ("ew_windows", "ew_tx", "ew_amount", "run_windows", "run_tx", "run_amount",
                           *_RUN_TOTALS_STATE, "recent_tx", "recent_amount") + tuple(
        f"last_{n}" for n in PAIR_SOURCES) + ("last_max_amount_minor", "last_new_receivers", "last_event_ms") + ALERT_TOTALS
    _INT_STATE: Final = ("last_start", "prev_start", ALERT_START)

    def __init__(self, params: HistoryParams | None = None, *, capacity: int = 1024) -> None:
        self.params = params or HistoryParams()
        self._index: dict[str, int] = {}
        self.accounts: list[str | None] = []  # None: a slot freed by evict_idle, reused by `slots`
        self._free: list[int] = []
        self.last_start = np.full(capacity, UNSEEN, dtype=np.int64)
        self.prev_start = np.full(capacity, UNSEEN, dtype=np.int64)  # the window before the last one
        # The stream's open alert: its start while the sender's last window was flagged (else
        # UNSEEN) and its running totals (ALERT_TOTALS); spark_apps.stream.context keeps them.
        self.alert_start = np.full(capacity, UNSEEN, dtype=np.int64)
        self.floats = {name: np.zeros(capacity, dtype=np.float64) for name in self._FLOAT_STATE}
        self.known = np.zeros((capacity, KNOWN_RECEIVERS), dtype=np.int32)
        self.known_count = np.zeros(capacity, dtype=np.int16)  # filled entries of the ring
        self.known_next = np.zeros(capacity, dtype=np.int16)  # where the next one goes

    # --- slots --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def slots(self, accounts: np.ndarray | list[str]) -> np.ndarray:
        """The slot of each account, new accounts getting fresh (unseen) slots."""
        index = self._index
        # dict.get mapped in C over the batch; only new accounts take the Python loop below
        out = np.fromiter(map(index.get, accounts, repeat(-1, len(accounts))), dtype=np.int64, count=len(accounts))
        for i in np.flatnonzero(out < 0).tolist():
            account = accounts[i]
            slot = index.get(account)
            if slot is None:  # (the same new account may occur twice)
                if self._free:
                    slot = self._free.pop()
                    self.accounts[slot] = account
                else:
                    slot = len(self.accounts)
                    self.accounts.append(account)
                index[account] = slot
            out[i] = slot
        self._grow(len(self.accounts))
        return out

    def _columns(self) -> dict[str, np.ndarray]:
        """Every per-slot state array by name (the ring is one 2-D array)."""
        return {"last_start": self.last_start, "prev_start": self.prev_start, ALERT_START: self.alert_start,
                **self.floats, "known": self.known, "known_count": self.known_count, "known_next": self.known_next}

    def _set_column(self, name: str, values: np.ndarray) -> None:
        if name in self.floats:
            self.floats[name] = values
        else:
            setattr(self, name, values)

    def _grow(self, size: int) -> None:
        capacity = len(self.last_start)
        if size <= capacity:
            return
        new = max(size, capacity * 2)
        for name, values in self._columns().items():
            fill = UNSEEN if name in self._INT_STATE else 0
            extra = np.full((new - capacity, *values.shape[1:]), fill, dtype=values.dtype)
            self._set_column(name, np.concatenate([values, extra]))

    # --- persistence and bounds (spark_apps.stream.history_store) -----------------------
    def live_slots(self) -> np.ndarray:
        """Slots that hold a sender, ascending."""
        return np.fromiter(sorted(self._index.values()), dtype=np.int64, count=len(self._index))

    def export(self, slots: np.ndarray) -> "pa.Table":
        """The state of `slots` as an Arrow table, one row per sender (`load` reads it back exactly)."""
        import pyarrow as pa

        slots = np.asarray(slots, dtype=np.int64)
        columns = {STATE_KEY: pa.array([self.accounts[s] for s in slots], type=pa.string())}
        for name, values in self._columns().items():
            if values.ndim == 2:
                flat = pa.array(values[slots].reshape(-1))
                columns[name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
            else:
                columns[name] = pa.array(values[slots])
        return pa.table(columns)

    def load(self, table: "pa.Table") -> None:
        """Set the state of the senders in `table` (rows from `export`), replacing what they had."""
        if table.num_rows == 0:
            return
        slots = self.slots(table.column(STATE_KEY).to_pylist())
        for name, values in self._columns().items():
            if name not in table.column_names and name in self.floats:
                # state written before this number existed (an older release's checkpoint): it
                # starts at zero, as for a sender that has no ongoing run
                values[slots] = 0.0
                continue
            column = table.column(name).combine_chunks()
            if values.ndim == 2:
                values[slots] = column.flatten().to_numpy(zero_copy_only=False).reshape(len(slots), values.shape[1])
            else:
                values[slots] = column.to_numpy(zero_copy_only=False)

    def evict_idle(self, newest_start: int) -> int:
        """Forget senders whose last window started more than max_idle_minutes before `newest_start`.

        Event time, so replaying the same windows evicts the same senders; a sender that
        comes back later starts as one never seen. Returns how many were evicted.
        """
        live = self.last_start[:len(self.accounts)]
        cutoff = newest_start - self.params.max_idle_minutes * MINUTE_MS
        victims = np.flatnonzero((live != UNSEEN) & (live < cutoff))
        for slot in victims.tolist():
            del self._index[self.accounts[slot]]
            self.accounts[slot] = None
            self._free.append(slot)
        if len(victims):
            for name, values in self._columns().items():
                values[victims] = UNSEEN if name in self._INT_STATE else 0
        return len(victims)

    # --- features -----------------------------------------------------------------------
    def advance(self, windows: pd.DataFrame, receivers: np.ndarray, offsets: np.ndarray, *,
                slots: np.ndarray | None = None) -> pd.DataFrame:
        """Context features of `windows` (row order kept), updating the state as it goes.

        `windows` holds sender_account, window_start (epoch ms, int64) and PAIR_SOURCES plus
        max_amount_minor; the receivers of row i are receivers[offsets[i]:offsets[i + 1]]
        (32-bit hashes, distinct within a window). Windows are applied minute by minute in
        window_start order, so a sender's earlier window always comes first. `slots`: the
        senders' slots when the caller has looked them up already.
        """
        n = len(windows)
        out = np.zeros((n, len(CONTEXT_FEATURES)), dtype=np.float64)
        run_totals = np.zeros((n, len(RUN_TOTALS)), dtype=np.float64)
        pair_start = np.zeros(n, dtype=np.int64)
        run_start = np.zeros(n, dtype=np.int64)
        if n == 0:
            return _frame(out, pair_start, run_start, run_totals, windows.index)
        starts = windows["window_start"].to_numpy(dtype=np.int64)
        slots = self.slots(windows["sender_account"].to_numpy()) if slots is None else slots
        values = windows[list(PAIR_SOURCES) + ["max_amount_minor"]].to_numpy(dtype=np.float64)
        first_last = windows[["first_event_ms", "last_event_ms"]].to_numpy(dtype=np.float64)
        lengths = np.diff(offsets)
        order = np.argsort(starts, kind="stable")
        bounds = np.flatnonzero(np.diff(starts[order])) + 1
        for rows in np.split(order, bounds):
            owners = np.repeat(np.arange(len(rows)), lengths[rows])
            flat = _gather(receivers, offsets, rows, lengths)
            out[rows], pair_start[rows], run_start[rows], run_totals[rows] = self._minute(
                int(starts[rows[0]]), slots[rows], values[rows], first_last[rows], flat, owners)
        return _frame(out, pair_start, run_start, run_totals, windows.index)

    def _minute(self, start: int, slots: np.ndarray, cur: np.ndarray, first_last: np.ndarray, flat: np.ndarray,
                owners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features and state update for the windows of one minute (each sender once)."""
        f = self.floats
        n = len(slots)
        last = self.last_start[slots]
        seen = last != UNSEEN
        adjacent = (last == start - MINUTE_MS) & (first_last[:, 0] - f["last_event_ms"][slots] <= PAIR_GAP_MS)
        # novelty: receivers of this window not in the sender's ring
        ring = self.known[slots[owners]]
        filled = np.arange(KNOWN_RECEIVERS)[None, :] < self.known_count[slots[owners]][:, None]
        is_known = ((ring == flat[:, None]) & filled).any(axis=1)
        new_here = np.bincount(owners, weights=~is_known, minlength=n)

        prev = np.zeros((n, len(PAIR_SOURCES) + 1))
        prev_names = [f"last_{name}" for name in PAIR_SOURCES] + ["last_max_amount_minor"]
        for j, name in enumerate(prev_names):
            prev[:, j] = np.where(adjacent, f[name][slots], 0.0)
        pair = cur[:, :-1] + prev[:, :-1]
        pair_max = np.maximum(cur[:, -1], prev[:, -1])
        pair_new = new_here + np.where(adjacent, f["last_new_receivers"][slots], 0.0)

        # the baseline: the sender's windows before its ongoing run of consecutive minutes.
        # A window right after the last one continues the run (unless the run is already
        # run_max_windows long); any other window ends it, and the ended run joins the baseline.
        continues = (last == start - MINUTE_MS) & (f["run_windows"][slots] < self.params.run_max_windows)
        ended = np.where(continues, 0.0, 1.0)
        kept = 1.0 - ended
        decay = np.where(seen, np.exp2(-np.maximum(start - np.where(seen, last, start), 0) / MINUTE_MS
                                       / self.params.half_life_minutes), 0.0)
        windows_seen = (f["ew_windows"][slots] + ended * f["run_windows"][slots]) * decay
        tx_seen = (f["ew_tx"][slots] + ended * f["run_tx"][slots]) * decay
        amount_seen = (f["ew_amount"][slots] + ended * f["run_amount"][slots]) * decay
        typical_tx = np.divide(tx_seen, windows_seen, out=np.zeros(n), where=windows_seen > 1e-9)
        typical_amount = np.divide(amount_seen, windows_seen, out=np.zeros(n), where=windows_seen > 1e-9)
        pair_start = np.where(adjacent, start - MINUTE_MS, start)
        before_pair = np.where(adjacent, self.prev_start[slots], last)
        idle = np.where(before_pair != UNSEEN, (pair_start - before_pair) / MINUTE_MS, self.params.max_idle_minutes)
        idle = np.minimum(idle, self.params.max_idle_minutes)

        elapsed = np.maximum(start - np.where(seen, last, start), 0) / MINUTE_MS
        fast = np.where(seen, np.exp2(-elapsed / self.params.recent_half_life_minutes), 0.0)
        recent_tx = np.maximum(f["recent_tx"][slots] - np.where(adjacent, prev[:, 0], 0.0), 0.0) * fast
        recent_amount = np.maximum(f["recent_amount"][slots] - np.where(adjacent, prev[:, 1], 0.0), 0.0) * fast
        run_tx = f["run_tx"][slots] * kept + cur[:, 0]
        run_amount = f["run_amount"][slots] * kept + cur[:, 1]
        run_windows = f["run_windows"][slots] * kept + 1.0
        run_start = start - (run_windows.astype(np.int64) - 1) * MINUTE_MS
        # failed, receivers (summed per minute, as an alert adds them up) and the largest amount
        run_totals = np.column_stack([f["run_failed"][slots] * kept + cur[:, _FAILED],
                                      f["run_receivers"][slots] * kept + cur[:, _RECEIVERS],
                                      np.maximum(f["run_max"][slots] * kept, cur[:, -1])])
        features = np.column_stack([pair, pair_max, pair_new, windows_seen, typical_tx, typical_amount, idle,
                                    recent_tx, recent_amount, run_tx, run_amount])

        # update: the baseline as of this minute, the window added to the run, remembered as "last"
        f["ew_windows"][slots] = windows_seen
        f["ew_tx"][slots] = tx_seen
        f["ew_amount"][slots] = amount_seen
        f["run_windows"][slots] = run_windows
        f["run_tx"][slots] = run_tx
        f["run_amount"][slots] = run_amount
        for j, name in enumerate(self._RUN_TOTALS_STATE):
            f[name][slots] = run_totals[:, j]
        f["recent_tx"][slots] = f["recent_tx"][slots] * fast + cur[:, 0]
        f["recent_amount"][slots] = f["recent_amount"][slots] * fast + cur[:, 1]
        for j, name in enumerate(prev_names):
            f[name][slots] = cur[:, j]
        f["last_new_receivers"][slots] = new_here
        f["last_event_ms"][slots] = first_last[:, 1]
        self.prev_start[slots] = last
        self.last_start[slots] = start
        self._remember(slots, flat[~is_known], owners[~is_known])
        return features, pair_start, run_start, run_totals

    def _remember(self, slots: np.ndarray, new: np.ndarray, owners: np.ndarray) -> None:
        """Append each window's new receivers to its sender's ring (the newest KNOWN_RECEIVERS kept)."""
        if not len(new):
            return
        counts = np.bincount(owners, minlength=len(slots))
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(new)) - first[owners]
        keep = rank >= counts[owners] - KNOWN_RECEIVERS  # a window with more than the ring holds keeps its last ones
        owner_slots = slots[owners[keep]]
        position = (self.known_next[owner_slots].astype(np.int64) + (rank[keep] - np.maximum(counts[owners[keep]] - KNOWN_RECEIVERS, 0))) % KNOWN_RECEIVERS
        self.known[owner_slots, position] = new[keep]
        added = np.minimum(counts, KNOWN_RECEIVERS)
        self.known_next[slots] = (self.known_next[slots] + added) % KNOWN_RECEIVERS
        self.known_count[slots] = np.minimum(self.known_count[slots] + added, KNOWN_RECEIVERS)


def _gather(receivers: np.ndarray, offsets: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The receivers of `rows`, concatenated in row order."""
    if not len(rows):
        return np.empty(0, dtype=np.int32)
    take = lengths[rows]
    starts = offsets[:-1][rows]
    index = np.repeat(starts - np.concatenate([[0], np.cumsum(take)[:-1]]), take) + np.arange(int(take.sum()))
    return receivers[index].astype(np.int32, copy=False)


def _frame(values: np.ndarray, pair_start: np.ndarray, run_start: np.ndarray, run_totals: np.ndarray,
           index: pd.Index) -> pd.DataFrame:
    frame = pd.DataFrame(np.column_stack([values, run_totals]), columns=list(CONTEXT_FEATURES + RUN_TOTALS),
                         index=index)
    frame[PAIR_START] = pair_start
    frame[RUN_START] = run_start
    return frame


def receiver_arrays(column: "pd.Series | list") -> tuple[np.ndarray, np.ndarray]:
    """(flat hashes, offsets) from a column of per-window receiver hash lists (Spark: array<int>)."""
    lists = [np.asarray(v if v is not None else (), dtype=np.int32) for v in column]
    lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate(lists) if lists else np.empty(0, dtype=np.int32)
    return flat.astype(np.int32, copy=False), offsets

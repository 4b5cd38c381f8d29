"""The Store port: the writes and reads the pipeline needs, independent of the backend.

Rows are plain mappings keyed by the column names of cassandra/init.cql. Timestamps
are integer epoch milliseconds, `day` buckets are ISO dates ("2026-11-21"). Every
write is an upsert keyed by the table's natural key, so replays are harmless.
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from typing import Any, Iterable, Iterator, Mapping, Sequence

from fraudpipe.contracts import LABELS_TABLE, MODELS_TABLE, STREAM_PROGRESS_TABLE, TRANSACTIONS_TABLE
from fraudpipe.errors import StoreError

Row = Mapping[str, Any]

MODEL_NAME = "kmeans"
MAX_LIMIT = 1000  # no read returns more rows than this, whatever the caller asks
MINUTE_MS = 60_000
# Bulk scans (training input) yield chunks of at most this many rows; only the chunk in hand
# is in memory, however many rows the table holds.
MAX_SCAN_CHUNK = 100_000
# Open bounds of a scan: every event_time fits between them.
SCAN_MIN_MS = -(2**63)
SCAN_MAX_MS = 2**63 - 1

METRIC_COUNTERS = (
    "transactions",
    "windows",
    "flagged_windows",
    "flagged_transactions",
    "amount_normal_minor",
    "amount_flagged_minor",
    "failed_transactions",
    "late_records",
    "dlq_records",
    "latency_ms_sum",
)


def day_of(epoch_ms: int) -> str:
    """The UTC day bucket ("YYYY-MM-DD") an epoch-millisecond timestamp falls in."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc).date().isoformat()


def days_between(since_ms: int, until_ms: int) -> list[str]:
    """Day buckets covering [since_ms, until_ms], newest first."""
    first = dt.date.fromisoformat(day_of(since_ms))
    last = dt.date.fromisoformat(day_of(until_ms))
    count = (last - first).days + 1
    return [(last - dt.timedelta(days=i)).isoformat() for i in range(max(count, 0))]


def bounded(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def sum_metric_rows(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Metric rows summed per minute (counters added, latency_ms_max the maximum), oldest first.

    The definition of a minute's totals: every adapter's metrics_by_minute must equal it.
    """
    minutes: dict[int, dict[str, Any]] = {}
    for row in rows:
        total = minutes.setdefault(row["minute"], {"minute": row["minute"], **{c: 0 for c in METRIC_COUNTERS}, "latency_ms_max": 0})
        for counter in METRIC_COUNTERS:
            total[counter] += row.get(counter) or 0
        total["latency_ms_max"] = max(total["latency_ms_max"], row.get("latency_ms_max") or 0)
    return [minutes[m] for m in sorted(minutes)]


def bucket_minutes_totals(minutes: Iterable[Row], bucket_minutes: int) -> list[dict[str, Any]]:
    """Per-minute totals summed into buckets of `bucket_minutes` aligned to the epoch, oldest first.

    A bucket is keyed by the minute it starts at and counts in `minutes` the minutes with data it holds.
    """
    size = max(1, int(bucket_minutes)) * MINUTE_MS
    buckets: dict[int, dict[str, Any]] = {}
    for row in minutes:
        start = row["minute"] - row["minute"] % size
        bucket = buckets.setdefault(start, {"minute": start, **{c: 0 for c in METRIC_COUNTERS}, "latency_ms_max": 0, "minutes": 0})
        for counter in METRIC_COUNTERS:
            bucket[counter] += row[counter]
        bucket["latency_ms_max"] = max(bucket["latency_ms_max"], row["latency_ms_max"])
        bucket["minutes"] += 1
    return [buckets[start] for start in sorted(buckets)]


def distinct_windows(windows: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The distinct (sender_account, window_start) keys of an alerted_windows() call, checked against MAX_LIMIT."""
    keys = list(dict.fromkeys((str(sender), int(start)) for sender, start in windows))
    if len(keys) > MAX_LIMIT:
        raise StoreError(f"alerted_windows: {len(keys)} windows asked, at most {MAX_LIMIT} per call")
    return keys


def checked_labels(rows: Sequence[Row]) -> Sequence[Row]:
    """Label rows as upsert_labels takes them: labeled_at is required (label.avsc), it orders recent_labels."""
    for row in rows:
        if row.get("labeled_at") is None:
            raise StoreError(f"labels: labeled_at is required, missing for transaction {row.get('transaction_id')!r}")
    return rows


def bounded_chunk(chunk_size: int) -> int:
    return max(1, min(int(chunk_size), MAX_SCAN_CHUNK))


class Store(ABC):
    """Port implemented by SqliteStore and CassandraStore; see open_store()."""

    # --- lifecycle -------------------------------------------------------------
    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables of init.cql if they do not exist."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writes (idempotent upserts) -------------------------------------------
    @abstractmethod
    def upsert_transactions(self, rows: Sequence[Row]) -> None:
        """Raw transactions, keyed by (sender_account, event_time, transaction_id)."""

    @abstractmethod
    def upsert_labels(self, rows: Sequence[Row]) -> None:
        """Fraud labels, keyed by transaction_id."""

    @abstractmethod
    def upsert_alerts(self, rows: Sequence[Row]) -> None:
        """Alerts keyed by (sender_account, window_start); `day` is derived when absent."""

    @abstractmethod
    def upsert_metrics(self, rows: Sequence[Row]) -> None:
        """Metric rows keyed by (minute, batch_id); `day` is derived when absent.

        In the same write, the metrics_by_minute totals of every minute touched are recomputed
        from all of that minute's rows, so they stay exact when a batch is replayed.
        """

    def record_model(self, row: Row) -> None:
        """One model registry row keyed by (name, version)."""
        self._upsert(MODELS_TABLE, [{"name": MODEL_NAME, **row}])

    def record_stream_progress(self, row: Row) -> None:
        """A streaming query's newest batch: {query, batch_id, updated_at}, keyed by query."""
        self._upsert(STREAM_PROGRESS_TABLE, [row])

    def stream_progress(self, query: str) -> dict[str, Any] | None:
        """The row record_stream_progress last wrote for `query`, or None."""
        rows = self._query(f"SELECT * FROM {STREAM_PROGRESS_TABLE} WHERE query = ?", [query])
        return rows[0] if rows else None

    # --- the two primitives each adapter supplies (single-row-key writes and reads above use them;
    # the statements are the subset of SQL that CQL shares) ------------------------------------
    @abstractmethod
    def _upsert(self, table: str, rows: Sequence[Row]) -> None:
        """Write `rows` into `table`, replacing rows with the same primary key."""

    @abstractmethod
    def _query(self, statement: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows of a SELECT with `?` placeholders, as dicts."""

    # --- reads (bounded) -------------------------------------------------------
    @abstractmethod
    def latest_alerts(
        self,
        *,
        since_ms: int,
        until_ms: int,
        limit: int = 100,
        min_score: float | None = None,
        after: tuple[int, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts with since_ms <= window_start < until_ms, newest first (window_start DESC, sender ASC).

        `after` = (window_start, sender_account) of the last alert of the previous page:
        only alerts strictly after it in that order are returned (keyset pagination).
        """

    @abstractmethod
    def alerts_for_sender(self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100) -> list[dict[str, Any]]:
        """One sender's alerts with since_ms <= window_start < until_ms, newest first."""

    @abstractmethod
    def alert_windows(self, *, since_ms: int, until_ms: int, limit: int = MAX_LIMIT) -> list[tuple[str, int]]:
        """(sender_account, window_start) of the alerts with since_ms <= window_start < until_ms, in
        latest_alerts' order (window_start DESC, sender ASC): its keys without the rows' other columns."""

    @abstractmethod
    def alerted_windows(self, *, windows: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which of the given (sender_account, window_start) windows have an alert.

        Point reads by primary key; at most MAX_LIMIT distinct windows per call (StoreError past that).
        """

    @abstractmethod
    def transactions_for_sender(
        self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100
    ) -> list[dict[str, Any]]:
        """One sender's raw transactions with since_ms <= event_time < until_ms, newest first."""

    @abstractmethod
    def labels_for(self, transaction_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Labels of the given transactions (missing ones are simply absent)."""

    @abstractmethod
    def recent_labels(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest `limit` labels, by labeled_at DESC then transaction_id ASC (the quality view's sample)."""

    def scan_transactions(
        self, *, since_ms: int = SCAN_MIN_MS, until_ms: int = SCAN_MAX_MS, chunk_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every raw transaction with since_ms <= event_time < until_ms, in no particular order,
        as lists of at most `chunk_size` rows (capped at MAX_SCAN_CHUNK). For bulk reads (training)."""
        return self._scan(TRANSACTIONS_TABLE, since_ms, until_ms, chunk_size)

    def scan_labels(
        self, *, since_ms: int = SCAN_MIN_MS, until_ms: int = SCAN_MAX_MS, chunk_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every label whose transaction's event_time is in [since_ms, until_ms), chunked as scan_transactions."""
        return self._scan(LABELS_TABLE, since_ms, until_ms, chunk_size)

    @abstractmethod
    def _scan(self, table: str, since_ms: int, until_ms: int, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
        """The adapter's bulk read of `table` by event_time, in chunks."""

    @abstractmethod
    def metric_rows(self, *, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """Raw metric rows (one per minute and batch) with since_ms <= minute < until_ms."""

    @abstractmethod
    def models(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Registered model versions, newest first."""

    # --- derived reads, shared by every adapter --------------------------------
    def metrics_by_minute(self, *, since_ms: int, until_ms: int, bucket_minutes: int = 1) -> list[dict[str, Any]]:
        """Per-minute metrics (batches summed), oldest first; bucket_minutes > 1 sums them further
        into buckets (see bucket_minutes_totals), which is how long ranges stay small.

        Adapters answer from the metrics_by_minute table, which upsert_metrics keeps equal to this.
        """
        return bucket_minutes_totals(sum_metric_rows(self.metric_rows(since_ms=since_ms, until_ms=until_ms)), bucket_minutes)

    def totals(self, *, since_ms: int, until_ms: int) -> dict[str, int]:
        """Sums of every metric counter over a time range."""
        totals = {c: 0 for c in METRIC_COUNTERS}
        for minute in self.metrics_by_minute(since_ms=since_ms, until_ms=until_ms, bucket_minutes=24 * 60):
            for counter in METRIC_COUNTERS:
                totals[counter] += minute[counter]
        return totals

    def latest_model(self) -> dict[str, Any] | None:
        rows = self.models(limit=1)
        return rows[0] if rows else None

"""SqliteStore: the Store port on one machine, tables derived from cassandra/init.cql.

WAL mode lets the dashboard read while the sink and the stream job write; every
write is one executemany of INSERT ... ON CONFLICT DO UPDATE in one transaction.
The primary keys mirror the Cassandra keys (partition key first, then clustering
columns), so the same queries are served by the same indexes.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from fraudpipe.contracts import (
    ALERTS_BY_SENDER_TABLE,
    ALERTS_TABLE,
    LABELS_TABLE,
    METRICS_BY_MINUTE_TABLE,
    METRICS_TABLE,
    MODELS_TABLE,
    TRANSACTIONS_TABLE,
)
from fraudpipe.errors import StoreError
from fraudpipe.sqlitedb import open_sqlite
from fraudpipe.store.base import (
    METRIC_COUNTERS,
    MODEL_NAME,
    Row,
    Store,
    bounded,
    bounded_chunk,
    checked_labels,
    day_of,
    days_between,
)
from fraudpipe.store.base import MAX_LIMIT, MINUTE_MS, distinct_windows
from fraudpipe.store.cql import TableSpec, table_specs

SQLITE_TYPES = {
    "text": "TEXT",
    "date": "TEXT",
    "timestamp": "INTEGER",
    "bigint": "INTEGER",
    "int": "INTEGER",
    "double": "REAL",
    "boolean": "INTEGER",
}

# Secondary indexes for reads that are not by primary key prefix.
EXTRA_INDEXES = (
    # covering (the table's key, transaction_id, is in every index entry): the quality view's
    # newest 1,000 labels come from the index alone, without 1,000 lookups into the table
    f"DROP INDEX IF EXISTS {LABELS_TABLE}_by_labeled_at",
    f"CREATE INDEX IF NOT EXISTS {LABELS_TABLE}_newest ON {LABELS_TABLE} "
    "(labeled_at DESC, pattern, sender_account, event_time)",
)


# A minute's totals recomputed from all its batch rows (the definition of Store.sum_metric_rows).
_MINUTE_COLUMNS = (*METRIC_COUNTERS, "latency_ms_max")
ROLLUP_SQL = (
    f"INSERT OR REPLACE INTO {METRICS_BY_MINUTE_TABLE} (day, minute, {', '.join(_MINUTE_COLUMNS)}) "
    f"SELECT day, minute, {', '.join(f'COALESCE(SUM({c}), 0)' for c in METRIC_COUNTERS)}, COALESCE(MAX(latency_ms_max), 0) "
    f"FROM {METRICS_TABLE} WHERE day = ? AND minute = ? GROUP BY day, minute"
)


def create_table_sql(spec: TableSpec) -> str:
    columns = [f"{name} {SQLITE_TYPES[cql_type]}" for name, cql_type in spec.columns]
    key = ", ".join(f"{c} DESC" if c in spec.descending else c for c in spec.primary_key)
    return f"CREATE TABLE IF NOT EXISTS {spec.name} ({', '.join(columns)}, PRIMARY KEY ({key})) WITHOUT ROWID"


def upsert_sql(spec: TableSpec) -> str:
    names = spec.column_names
    updates = [f"{c} = excluded.{c}" for c in names if c not in spec.primary_key]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    return (
        f"INSERT INTO {spec.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(spec.primary_key)}) {action}"
    )


class SqliteStore(Store):
    """Store on a SQLite file; safe to share between threads (one connection per thread)."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._local = threading.local()
        self._specs = table_specs()
        self._upserts = {name: upsert_sql(spec) for name, spec in self._specs.items()}
        self.ensure_schema()

    # --- lifecycle -------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # NORMAL: a commit lost to a power cut is replayed (offsets and checkpoints come after it)
                conn = open_sqlite(self.path, synchronous="NORMAL", timeout=self._timeout)
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def ensure_schema(self) -> None:
        with self._transaction() as conn:
            had_rollup = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [METRICS_BY_MINUTE_TABLE]
            ).fetchone()
            for spec in self._specs.values():
                conn.execute(create_table_sql(spec))
            for statement in EXTRA_INDEXES:
                conn.execute(statement)
            if not had_rollup:  # a store from before the rollup table: total its existing rows once
                conn.executemany(ROLLUP_SQL, conn.execute(f"SELECT DISTINCT day, minute FROM {METRICS_TABLE}").fetchall())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._connection(), self.path)

    # --- writes ----------------------------------------------------------------
    def _upsert(self, table: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        names = self._specs[table].column_names
        try:
            values = [tuple(row.get(name) for name in names) for row in rows]
        except AttributeError as exc:
            raise StoreError(f"{table}: rows must be mappings of column name to value") from exc
        with self._transaction() as conn:
            conn.executemany(self._upserts[table], values)

    def upsert_transactions(self, rows: Sequence[Row]) -> None:
        self._upsert(TRANSACTIONS_TABLE, rows)

    def upsert_labels(self, rows: Sequence[Row]) -> None:
        self._upsert(LABELS_TABLE, checked_labels(rows))

    def upsert_alerts(self, rows: Sequence[Row]) -> None:
        rows = [{**row, "day": row.get("day") or day_of(row["window_start"])} for row in rows]
        if not rows:
            return
        names_by_table = {t: self._specs[t].column_names for t in (ALERTS_TABLE, ALERTS_BY_SENDER_TABLE)}
        with self._transaction() as conn:  # both tables in one transaction: never one without the other
            for table, names in names_by_table.items():
                conn.executemany(self._upserts[table], [tuple(row.get(n) for n in names) for row in rows])

    def upsert_metrics(self, rows: Sequence[Row]) -> None:
        rows = [{**row, "day": row.get("day") or day_of(row["minute"])} for row in rows]
        if not rows:
            return
        names = self._specs[METRICS_TABLE].column_names
        minutes = sorted({(row["day"], row["minute"]) for row in rows})
        with self._transaction() as conn:  # rows and their minutes' totals commit together
            conn.executemany(self._upserts[METRICS_TABLE], [tuple(row.get(n) for n in names) for row in rows])
            conn.executemany(ROLLUP_SQL, minutes)

    # --- reads -----------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            return [dict(row) for row in self._connection().execute(sql, params)]
        except sqlite3.Error as exc:
            raise StoreError(f"query failed on {self.path}: {exc}", retriable=_is_busy(exc)) from exc

    def _query_tuples(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """As _query, rows as plain tuples: for hot reads of a few columns, where building dicts is the cost."""
        try:
            cursor = self._connection().cursor()
            cursor.row_factory = None
            return cursor.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"query failed on {self.path}: {exc}", retriable=_is_busy(exc)) from exc

    def latest_alerts(
        self,
        *,
        since_ms: int,
        until_ms: int,
        limit: int = 100,
        min_score: float | None = None,
        after: tuple[int, str] | None = None,
    ) -> list[dict[str, Any]]:
        limit = bounded(limit)
        extra = ""
        if after is not None:
            # window_start <= after's keeps the index range tight; the residual OR drops the
            # rows of after's own window that sort before it (sender_account ASC)
            until_ms = min(until_ms, after[0] + 1)
            extra += " AND (window_start < ? OR sender_account > ?)"
        if min_score is not None:
            extra += " AND score >= ?"
        found: list[dict[str, Any]] = []
        # One day bucket at a time, newest first, as Cassandra reads its partitions: within a
        # day the primary key's order (window_start DESC, sender_account) is the result order,
        # so SQLite walks the index and stops at the limit instead of sorting the whole range.
        for day in days_between(since_ms, until_ms) if since_ms < until_ms else []:
            params: list[Any] = [day, since_ms, until_ms]
            if after is not None:
                params += [after[0], after[1]]
            if min_score is not None:
                params.append(min_score)
            found += self._query(
                f"SELECT * FROM {ALERTS_TABLE} WHERE day = ? AND window_start >= ? AND window_start < ?"
                f"{extra} ORDER BY window_start DESC, sender_account LIMIT ?",
                [*params, limit - len(found)],
            )
            if len(found) >= limit:
                break
        return found

    def alerts_for_sender(self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {ALERTS_BY_SENDER_TABLE} WHERE sender_account = ? AND window_start >= ? "
            "AND window_start < ? ORDER BY window_start DESC LIMIT ?",
            [sender, since_ms, until_ms, bounded(limit)],
        )

    def transactions_for_sender(
        self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {TRANSACTIONS_TABLE} WHERE sender_account = ? AND event_time >= ? AND event_time < ? "
            "ORDER BY event_time DESC, transaction_id LIMIT ?",
            [sender, since_ms, until_ms, bounded(limit)],
        )

    def alert_windows(self, *, since_ms: int, until_ms: int, limit: int = MAX_LIMIT) -> list[tuple[str, int]]:
        limit = bounded(limit)
        found: list[tuple[str, int]] = []
        for day in days_between(since_ms, until_ms) if since_ms < until_ms else []:  # as latest_alerts
            found += self._query_tuples(
                f"SELECT sender_account, window_start FROM {ALERTS_TABLE} WHERE day = ? AND window_start >= ? "
                "AND window_start < ? ORDER BY window_start DESC, sender_account LIMIT ?",
                [day, since_ms, until_ms, limit - len(found)],
            )
            if len(found) >= limit:
                break
        return found

    def alerted_windows(self, *, windows: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        keys = distinct_windows(windows)  # <= MAX_LIMIT keys, 2 parameters each: within SQLite's 32,766
        if not keys:
            return set()
        # the keys drive the join (CROSS JOIN keeps that order): one primary-key search per key,
        # where a row-value IN (VALUES ...) would scan the whole table
        return set(self._query_tuples(
            f"WITH asked (sender_account, window_start) AS (VALUES {', '.join(['(?, ?)'] * len(keys))}) "
            f"SELECT a.sender_account, a.window_start FROM asked CROSS JOIN {ALERTS_BY_SENDER_TABLE} AS a "
            "ON a.sender_account = asked.sender_account AND a.window_start = asked.window_start",
            [value for key in keys for value in key],
        ))

    def labels_for(self, transaction_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(dict.fromkeys(transaction_ids))
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            found += self._query(
                f"SELECT * FROM {LABELS_TABLE} WHERE transaction_id IN ({', '.join('?' * len(chunk))})", chunk
            )
        return found

    def recent_labels(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        # Served by the labels_newest index, in labels_by_day's clustering order; SQLite needs
        # no day buckets for it, so labels_by_day and label_days stay empty here.
        return self._query(f"SELECT * FROM {LABELS_TABLE} ORDER BY labeled_at DESC, transaction_id ASC LIMIT ?", [bounded(limit)])

    def _scan(self, table: str, since_ms: int, until_ms: int, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
        """One SELECT over the table read with fetchmany: one consistent snapshot, one chunk in memory.

        The scan has its own read-only connection, so the caller may write through this
        store (same thread) while a scan is open.
        """
        size = bounded_chunk(chunk_size)
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self._timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path} to scan {table}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            cursor = conn.execute(
                f"SELECT * FROM {table} WHERE event_time >= ? AND event_time < ?", [since_ms, until_ms]
            )
            while rows := cursor.fetchmany(size):
                yield [dict(row) for row in rows]
        except sqlite3.Error as exc:
            raise StoreError(f"scan of {table} failed on {self.path}: {exc}", retriable=_is_busy(exc)) from exc
        finally:
            conn.close()

    def metric_rows(self, *, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {METRICS_TABLE} WHERE day BETWEEN ? AND ? AND minute >= ? AND minute < ?",
            [day_of(since_ms), day_of(until_ms), since_ms, until_ms],
        )

    def metrics_by_minute(self, *, since_ms: int, until_ms: int, bucket_minutes: int = 1) -> list[dict[str, Any]]:
        """As the port's, from the per-minute totals (a day is 1,440 rows, not ~43k batch rows at a
        2 s trigger), bucketed in SQL so that only the buckets reach Python."""
        sums = ", ".join(f"SUM({c}) AS {c}" for c in METRIC_COUNTERS)
        rows = self._query(
            f"SELECT minute - minute % ? AS bucket, {sums}, MAX(latency_ms_max) AS latency_ms_max, COUNT(*) AS minutes "
            f"FROM {METRICS_BY_MINUTE_TABLE} WHERE day BETWEEN ? AND ? AND minute >= ? AND minute < ? GROUP BY bucket",
            [max(1, int(bucket_minutes)) * MINUTE_MS, day_of(since_ms), day_of(until_ms), since_ms, until_ms],
        )
        for row in rows:
            row["minute"] = row.pop("bucket")
        return sorted(rows, key=lambda row: row["minute"])

    def models(self, *, limit: int = 50) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {MODELS_TABLE} WHERE name = ? ORDER BY version DESC LIMIT ?", [MODEL_NAME, bounded(limit)]
        )


def _is_busy(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolling back and wrapping sqlite3 errors with the file name."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a write on {self._path}: {exc}", retriable=_is_busy(exc)) from exc
        return self._conn

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
                return
            except sqlite3.Error as commit_error:
                exc = commit_error
        self._conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"write failed on {self._path}: {exc}", retriable=_is_busy(exc)) from exc

"""CassandraStore: the Store port on Cassandra, with prepared statements and concurrent writes.

Tables come from cassandra/init.cql (applied by ensure_schema); every read names a
partition key, walking day buckets newest first where a query spans days.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, Iterator, Sequence

from fraudpipe.config import StoreConfig
from fraudpipe.contracts import (
    ALERTS_BY_SENDER_TABLE,
    ALERTS_TABLE,
    CQL_FILE,
    LABEL_DAYS_PARTITION,
    LABEL_DAYS_TABLE,
    LABELS_BY_DAY_TABLE,
    LABELS_TABLE,
    METRICS_BY_MINUTE_TABLE,
    METRICS_TABLE,
    MODELS_TABLE,
    TRANSACTIONS_TABLE,
)
from fraudpipe.errors import StoreError
from fraudpipe.store.base import (
    MODEL_NAME,
    Row,
    Store,
    bounded,
    bounded_chunk,
    checked_labels,
    day_of,
    days_between,
)
from fraudpipe.store.base import MAX_LIMIT, METRIC_COUNTERS, bucket_minutes_totals, distinct_windows, sum_metric_rows
from fraudpipe.store.cql import table_specs

# More batch rows than this in one minute means a runaway writer, not a stream at any trigger.
MAX_BATCHES_PER_MINUTE = 10_000

# How many day buckets of labels recent_labels may walk (one label_days read lists them).
MAX_LABEL_DAYS = 3660

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _import_driver() -> Any:
    try:
        import cassandra.cluster
        import cassandra.concurrent
        import cassandra.policies
    except ImportError as exc:  # an optional extra: name it
        raise StoreError("the Cassandra store needs cassandra-driver: pip install 'fraudpipe[cassandra]'") from exc
    return cassandra


def to_millis(value: Any) -> Any:
    """Driver datetimes back to epoch milliseconds, dates to ISO strings; other values unchanged."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int((aware - _EPOCH).total_seconds() * 1000)
    if hasattr(value, "date") and type(value).__name__ == "Date":  # cassandra.util.Date
        return value.date().isoformat()
    return value


_TABLE_REFERENCE = re.compile(r"\b(FROM|INSERT INTO) (\w+)\b(?!\.)")


def qualified(cql: str, keyspace: str) -> str:
    """`cql` with its table named as keyspace.table (this module writes unqualified names)."""
    return _TABLE_REFERENCE.sub(lambda m: f"{m[1]} {keyspace}.{m[2]}", cql)


def cql_statements(text: str) -> list[str]:
    """init.cql split into executable statements, comments dropped."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class CassandraStore(Store):
    def __init__(self, config: StoreConfig) -> None:
        driver = _import_driver()
        self._driver = driver
        self._config = config
        try:
            self._cluster = driver.cluster.Cluster(
                list(config.cassandra_contact_points),
                port=config.cassandra_port,
                load_balancing_policy=driver.policies.TokenAwarePolicy(
                    driver.policies.DCAwareRoundRobinPolicy(local_dc=config.cassandra_local_dc)
                ),
                protocol_version=5,
            )
            self._session = self._cluster.connect()
        except Exception as exc:
            raise StoreError(f"cannot connect to Cassandra at {config.cassandra_contact_points}:{config.cassandra_port}: {exc}", retriable=True) from exc
        self._consistency = driver.cluster.ConsistencyLevel.name_to_value[config.consistency.upper()]
        self._specs = table_specs()
        self.ensure_schema()
        # no session keyspace (`USE`): every statement names its table with the keyspace, which
        # Cassandra 5.0 asks of prepared statements (it warns on each prepare otherwise)
        self._prepared: dict[str, Any] = {}

    def ensure_schema(self) -> None:
        text = CQL_FILE.read_text().replace("fraudpipe.", f"{self._config.keyspace}.")
        text = text.replace("KEYSPACE IF NOT EXISTS fraudpipe", f"KEYSPACE IF NOT EXISTS {self._config.keyspace}")
        for statement in cql_statements(text):
            self._session.execute(statement)

    def close(self) -> None:
        self._cluster.shutdown()

    @property
    def prepared_statements(self) -> tuple[str, ...]:
        """Every CQL text this store has prepared so far (all its reads and writes go through _prepare)."""
        return tuple(qualified(cql, self._config.keyspace) for cql in self._prepared)

    def _prepare(self, cql: str) -> Any:
        statement = self._prepared.get(cql)
        if statement is None:
            statement = self._prepared[cql] = self._session.prepare(qualified(cql, self._config.keyspace))
            statement.consistency_level = self._consistency
        return statement

    def _upsert(self, table: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        names = self._specs[table].column_names
        # INSERT is an upsert in Cassandra; unset (None) values would write tombstones, so
        # every row binds every column of the table.
        statement = self._prepare(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})")
        args = [tuple(row.get(n) for n in names) for row in rows]
        results = self._driver.concurrent.execute_concurrent_with_args(
            self._session, statement, args, concurrency=self._config.concurrency, raise_on_first_error=False
        )
        failures = [result for ok, result in results if not ok]
        if failures:
            raise StoreError(f"{len(failures)} of {len(rows)} writes to {table} failed, first: {failures[0]}", retriable=True)

    def _query(self, cql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            rows = self._session.execute(self._prepare(cql), params)
        except Exception as exc:
            raise StoreError(f"query failed: {cql}: {exc}", retriable=True) from exc
        return [{k: to_millis(v) for k, v in row._asdict().items()} for row in rows]

    # --- writes ----------------------------------------------------------------
    def upsert_transactions(self, rows: Sequence[Row]) -> None:
        self._upsert(TRANSACTIONS_TABLE, rows)

    def upsert_labels(self, rows: Sequence[Row]) -> None:
        # by transaction (labels_for), by labeled_at day (recent_labels) and the list of those days,
        # as the sink connector writes them
        rows = checked_labels(rows)
        self._upsert(LABELS_TABLE, rows)
        by_day = [{**row, "day": day_of(row["labeled_at"])} for row in rows]
        self._upsert(LABELS_BY_DAY_TABLE, by_day)
        self._upsert(LABEL_DAYS_TABLE, [{"name": LABEL_DAYS_PARTITION, "day": day} for day in sorted({r["day"] for r in by_day})])

    def upsert_alerts(self, rows: Sequence[Row]) -> None:
        rows = [{**row, "day": row.get("day") or day_of(row["window_start"])} for row in rows]
        self._upsert(ALERTS_TABLE, rows)
        self._upsert(ALERTS_BY_SENDER_TABLE, rows)

    def upsert_metrics(self, rows: Sequence[Row]) -> None:
        rows = [{**row, "day": row.get("day") or day_of(row["minute"])} for row in rows]
        self._upsert(METRICS_TABLE, rows)
        # Then each minute touched is re-totalled from all its rows (one clustering slice of
        # its day partition). Not atomic with the rows as in SQLite: a crash in between fails
        # the batch before its offsets are committed, and the replay re-totals the minutes.
        # One stream job writes metrics, batch after batch, so totals are never raced.
        totals = []
        for day, minute in sorted({(row["day"], row["minute"]) for row in rows}):
            batch_rows = self._query(
                f"SELECT * FROM {METRICS_TABLE} WHERE day = ? AND minute = ? LIMIT ?", [day, minute, MAX_BATCHES_PER_MINUTE + 1]
            )
            if len(batch_rows) > MAX_BATCHES_PER_MINUTE:
                raise StoreError(f"{METRICS_TABLE}: more than {MAX_BATCHES_PER_MINUTE} batch rows in minute {minute}")
            totals += [{**total, "day": day} for total in sum_metric_rows(batch_rows)]
        self._upsert(METRICS_BY_MINUTE_TABLE, totals)

    # --- reads -----------------------------------------------------------------
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
        fetch = limit * (4 if min_score is not None else 1)
        found: list[dict[str, Any]] = []

        def take(cql: str, params: list[Any]) -> bool:
            """Matching rows of one partition slice, page by page (a min_score may filter a whole page
            out: the slice's later rows are still newer than any older day's); True when enough."""
            for page in self._pages(cql, params, fetch_size=fetch):
                found.extend(r for r in page if min_score is None or (r["score"] or 0) >= min_score)
                if len(found) >= limit:
                    return True
            return False

        if after is not None:
            # the rest of after's own window first (a clustering slice on sender_account),
            # then strictly older windows
            if since_ms <= after[0] < until_ms and take(
                f"SELECT * FROM {ALERTS_TABLE} WHERE day = ? AND window_start = ? AND sender_account > ?",
                [day_of(after[0]), after[0], after[1]],
            ):
                return found[:limit]
            until_ms = min(until_ms, after[0])
            if until_ms <= since_ms:
                return found[:limit]
        for day in days_between(since_ms, until_ms):
            if take(f"SELECT * FROM {ALERTS_TABLE} WHERE day = ? AND window_start >= ? AND window_start < ?",
                    [day, since_ms, until_ms]):
                break
        return found[:limit]

    def alerts_for_sender(self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {ALERTS_BY_SENDER_TABLE} WHERE sender_account = ? AND window_start >= ? AND window_start < ? LIMIT ?",
            [sender, since_ms, until_ms, bounded(limit)],
        )

    def alert_windows(self, *, since_ms: int, until_ms: int, limit: int = MAX_LIMIT) -> list[tuple[str, int]]:
        limit = bounded(limit)
        found: list[tuple[str, int]] = []
        for day in days_between(since_ms, until_ms) if since_ms < until_ms else []:  # clustering order is the result order
            rows = self._query(
                f"SELECT sender_account, window_start FROM {ALERTS_TABLE} WHERE day = ? AND window_start >= ? AND window_start < ? LIMIT ?",
                [day, since_ms, until_ms, limit - len(found)],
            )
            found += [(row["sender_account"], row["window_start"]) for row in rows]
            if len(found) >= limit:
                break
        return found

    def alerted_windows(self, *, windows: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        keys = distinct_windows(windows)
        if not keys:
            return set()
        # one primary-key read per window, run concurrently like the writes
        statement = self._prepare(f"SELECT * FROM {ALERTS_BY_SENDER_TABLE} WHERE sender_account = ? AND window_start = ?")
        results = self._driver.concurrent.execute_concurrent_with_args(
            self._session, statement, keys, concurrency=self._config.concurrency, raise_on_first_error=False
        )
        found: set[tuple[str, int]] = set()
        for (sender, start), (ok, result) in zip(keys, results):
            if not ok:
                raise StoreError(f"read of {ALERTS_BY_SENDER_TABLE} ({sender}, {start}) failed: {result}", retriable=True)
            if list(result):
                found.add((sender, start))
        return found

    def transactions_for_sender(
        self, *, sender: str, since_ms: int, until_ms: int, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._query(
            f"SELECT * FROM {TRANSACTIONS_TABLE} WHERE sender_account = ? AND event_time >= ? AND event_time < ? LIMIT ?",
            [sender, since_ms, until_ms, bounded(limit)],
        )

    def labels_for(self, transaction_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for tid in dict.fromkeys(transaction_ids):
            found += self._query(f"SELECT * FROM {LABELS_TABLE} WHERE transaction_id = ?", [tid])
        return found

    def recent_labels(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest labels by labeled_at: the heads of the newest labels_by_day partitions.

        A label rewritten with another labeled_at leaves its older row behind in
        labels_by_day; walking newest first, the first row of each transaction wins.
        """
        limit = bounded(limit)
        days = self._query(f"SELECT day FROM {LABEL_DAYS_TABLE} WHERE name = ? LIMIT ?", [LABEL_DAYS_PARTITION, MAX_LABEL_DAYS])
        found: dict[str, dict[str, Any]] = {}
        for day in (row["day"] for row in days):
            # one partition, read page by page (driver paging) until enough distinct labels
            for page in self._pages(f"SELECT * FROM {LABELS_BY_DAY_TABLE} WHERE day = ?", [day], fetch_size=limit):
                for row in page:
                    row.pop("day")
                    found.setdefault(row["transaction_id"], row)
                if len(found) >= limit:
                    return list(found.values())[:limit]
        return list(found.values())

    def _pages(self, cql: str, params: Sequence[Any], *, fetch_size: int) -> Iterator[list[dict[str, Any]]]:
        """The rows of one query, a driver page (`fetch_size` rows) at a time; stop iterating to stop reading."""
        statement = self._prepare(cql).bind(params)
        statement.fetch_size = fetch_size
        try:
            result = self._session.execute(statement)
            while True:
                yield [{k: to_millis(v) for k, v in row._asdict().items()} for row in result.current_rows]
                if not result.has_more_pages:
                    return
                result.fetch_next_page()
        except Exception as exc:
            raise StoreError(f"query failed: {cql}: {exc}", retriable=True) from exc

    def _scan(self, table: str, since_ms: int, until_ms: int, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
        """A paged full-table scan (the driver fetches `chunk_size` rows a page), time-filtered here.

        Neither table is partitioned by time, so a time range in CQL would make every node
        filter a full scan anyway while hiding the cost; paging bounds memory to one page.
        """
        size = bounded_chunk(chunk_size)
        statement = self._prepare(f"SELECT * FROM {table}").bind(())
        statement.fetch_size = size
        try:
            result = self._session.execute(statement)
            while True:
                page = [{k: to_millis(v) for k, v in row._asdict().items()} for row in result.current_rows]
                rows = [r for r in page if r["event_time"] is not None and since_ms <= r["event_time"] < until_ms]
                if rows:
                    yield rows
                if not result.has_more_pages:
                    return
                result.fetch_next_page()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"scan of {table} failed: {exc}", retriable=True) from exc

    def metric_rows(self, *, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for day in days_between(since_ms, until_ms):
            rows += self._query(
                f"SELECT * FROM {METRICS_TABLE} WHERE day = ? AND minute >= ? AND minute < ?", [day, since_ms, until_ms]
            )
        return rows

    def metrics_by_minute(self, *, since_ms: int, until_ms: int, bucket_minutes: int = 1) -> list[dict[str, Any]]:
        """As the port's, from the per-minute totals upsert_metrics keeps: at most 1,440 rows a day."""
        rows: list[dict[str, Any]] = []
        for day in days_between(since_ms, until_ms):
            rows += self._query(
                f"SELECT * FROM {METRICS_BY_MINUTE_TABLE} WHERE day = ? AND minute >= ? AND minute < ?", [day, since_ms, until_ms]
            )
        columns = ("minute", *METRIC_COUNTERS, "latency_ms_max")
        return bucket_minutes_totals(({c: row[c] or 0 for c in columns} for row in rows), bucket_minutes)

    def models(self, *, limit: int = 50) -> list[dict[str, Any]]:
        return self._query(f"SELECT * FROM {MODELS_TABLE} WHERE name = ? LIMIT ?", [MODEL_NAME, bounded(limit)])

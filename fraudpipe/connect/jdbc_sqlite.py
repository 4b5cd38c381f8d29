"""`io.confluent.connect.jdbc.JdbcSinkConnector` semantics on SQLite (connection.url=jdbc:sqlite:PATH).

Rows are upserted (or inserted / updated) in one transaction per batch. Columns are the
record's fields, narrowed by `fields.whitelist` (alias `fields.include`) and, when the
table exists, by its columns: fields the table lacks are dropped (the real connector
fails instead unless auto.evolve=true; here auto.evolve=true adds them). So a v2
record with an extra field keeps flowing into a v1 table. Timestamps are written as
integer epoch milliseconds, the store's convention.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from fraudpipe.connect.configdef import BOOLEAN, INT, LIST, LONG, NO_DEFAULT, PASSWORD, ConfigKey, Validation
from fraudpipe.connect.plugin import BadRecordError, SinkPlugin, SinkRecord, SinkWriter
from fraudpipe.errors import StoreError
from fraudpipe.sqlitedb import open_sqlite

URL_PREFIX = "jdbc:sqlite:"
KAFKA_PK_FIELDS = ("__connect_topic", "__connect_partition", "__connect_offset")
DEFAULT_KEY_FIELD = "__connect_key"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)


def sqlite_path(url: str) -> str:
    """The file path of a jdbc:sqlite: URL (query parameters dropped; relative to the worker's cwd)."""
    if not url.startswith(URL_PREFIX):
        raise ValueError(f"connection.url must start with {URL_PREFIX} (this worker writes SQLite), got {url!r}")
    path = url[len(URL_PREFIX):].split("?", 1)[0]
    if not path:
        raise ValueError("connection.url names no database file")
    return path


def _check_url(url: Any) -> str | None:
    try:
        sqlite_path(str(url))
    except ValueError as exc:
        return str(exc)
    return None


def sql_value(value: Any) -> Any:
    """A converted Connect value as SQLite stores it: timestamps as epoch ms, structs as JSON text."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bytes:
        return value
    if kind is dt.datetime:
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return (aware - _EPOCH) // _MS
    if kind is bool:
        return int(value)
    if kind is dt.date or kind is dt.time:
        return value.isoformat()
    if kind is decimal.Decimal:
        return str(value)
    if kind is dict or kind is list:
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


_PLAIN = frozenset({str, int, float, bytes, type(None)})


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_SQL_TYPES = {int: "INTEGER", bool: "INTEGER", float: "REAL", bytes: "BLOB", dt.datetime: "INTEGER"}


@dataclass(frozen=True)
class TablePlan:
    """How records of one field layout are written to one table: columns in row order and the SQL."""

    table: str
    fields: tuple[str, ...]  # value fields read from the record, in row order
    extra_pk: tuple[str, ...]  # kafka / record_key columns appended after the fields
    sql: str


class JdbcSqliteWriter(SinkWriter):
    """One SQLite connection per task; plans cached per (table, record field layout)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self.path = Path(sqlite_path(values["connection.url"]))
        self._mode = values["insert.mode"]
        self._pk_mode = values["pk.mode"]
        self._pk_fields = list(values["pk.fields"])
        self._include = set(values["fields.whitelist"] or values["fields.include"])
        self._format = values["table.name.format"]
        self._auto_create, self._auto_evolve = values["auto.create"], values["auto.evolve"]
        self._delete = values["delete.enabled"]
        self._plans: dict[tuple[str, tuple[str, ...]], TablePlan] = {}
        self._columns: dict[str, list[str]] = {}
        self._tables: dict[str, str] = {}
        try:
            self._conn = open_sqlite(self.path, synchronous="NORMAL")  # offsets commit after: a lost write replays
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {values['connection.url']}: {exc}", retriable=True) from exc

    # --- records -> rows ----------------------------------------------------------
    def _pk_columns(self, value: Mapping[str, Any]) -> list[str]:
        if self._pk_mode == "record_value":
            return self._pk_fields or list(value)
        if self._pk_mode == "kafka":
            return self._pk_fields or list(KAFKA_PK_FIELDS)
        if self._pk_mode == "record_key":
            return self._pk_fields or [DEFAULT_KEY_FIELD]
        return []

    def _key_values(self, record: SinkRecord, pk: list[str]) -> tuple[Any, ...]:
        if self._pk_mode == "kafka":
            return (record.topic, record.partition, record.offset)
        if self._pk_mode == "record_key":
            if isinstance(record.key, dict):
                try:
                    return tuple(sql_value(record.key[name]) for name in pk)
                except KeyError as exc:
                    raise BadRecordError(f"record key has no pk field {exc}") from None
            if record.key is None:
                raise BadRecordError("pk.mode=record_key needs a non-null record key")
            return (sql_value(record.key),)
        return ()

    def prepare(self, record: SinkRecord) -> Sequence[tuple[Any, tuple[Any, ...]]]:
        # the hot path of the sink (once per record): keep it to lookups and one comprehension
        table = self._tables.get(record.topic)
        if table is None:
            table = self._tables[record.topic] = self._format.replace("${topic}", record.topic)
        value = record.value
        if type(value) is not dict:
            if value is None and self._delete:
                plan = self._delete_plan(table, record)
                return [(plan, self._key_values(record, list(plan.extra_pk)))]
            if value is None:
                raise BadRecordError(f"{table}: null value (tombstone) and delete.enabled=false")
            raise BadRecordError(f"{table}: a struct value is needed, got {type(value).__name__}")
        plan = self._plans.get((table, tuple(value)))
        if plan is None:
            plan = self._plan(table, record)
        plain = _PLAIN
        try:
            row = tuple([v if type(v) in plain else sql_value(v) for v in map(value.__getitem__, plan.fields)])
        except KeyError as exc:
            raise BadRecordError(f"{table}: record has no field {exc}") from None
        if plan.extra_pk:
            row += self._key_values(record, list(plan.extra_pk))
        return [(plan, row)]

    def _plan(self, table: str, record: SinkRecord) -> TablePlan:
        value: dict[str, Any] = record.value
        pk = self._pk_columns(value)
        if self._pk_mode == "record_value":
            missing = [name for name in pk if name not in value]
            if missing:
                raise BadRecordError(f"{table}: pk.fields {missing} are not fields of the record value")
        fields = [name for name in value if (not self._include or name in self._include or name in pk)]
        extra_pk = [] if self._pk_mode in ("record_value", "none") else pk
        existing = self._table_columns(table)
        if existing is None:
            if not self._auto_create:
                raise StoreError(f"table {table} is missing and auto.create is disabled", retriable=False)
            self._create(table, fields, extra_pk, pk, value, record)
            existing = self._table_columns(table) or []
        missing = [name for name in fields if name not in existing]
        if missing and self._auto_evolve:
            self._evolve(table, missing, value)
        elif missing:
            fields = [name for name in fields if name in existing]  # documented: dropped, not written
        sql = self._write_sql(table, fields, extra_pk, pk)
        plan = self._plans[(table, tuple(value))] = TablePlan(table, tuple(fields), tuple(extra_pk), sql)
        return plan

    def _write_sql(self, table: str, fields: list[str], extra_pk: list[str], pk: list[str]) -> str:
        columns = fields + extra_pk
        if self._mode == "update":
            # SQLite's numbered parameters (?N) let UPDATE take the row in field order
            sets = [f"{quote(c)} = ?{i + 1}" for i, c in enumerate(columns) if c not in pk]
            if not sets:
                raise BadRecordError(f"{table}: insert.mode=update with no non-key fields to update")
            where = " AND ".join(f"{quote(c)} = ?{columns.index(c) + 1}" for c in pk)
            return f"UPDATE {quote(table)} SET {', '.join(sets)} WHERE {where}"
        sql = f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) VALUES ({', '.join('?' * len(columns))})"
        if self._mode == "upsert":
            updates = [f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in pk]
            sql += f" ON CONFLICT ({', '.join(map(quote, pk))}) " + (f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING")
        return sql

    def _delete_plan(self, table: str, record: SinkRecord) -> TablePlan:
        pk = self._pk_fields or [DEFAULT_KEY_FIELD]
        key = (table, ("__delete__",))
        plan = self._plans.get(key)
        if plan is None:
            where = " AND ".join(f"{quote(c)} = ?" for c in pk)
            plan = self._plans[key] = TablePlan(table, (), tuple(pk), f"DELETE FROM {quote(table)} WHERE {where}")
        return plan

    # --- schema ---------------------------------------------------------------------
    def _table_columns(self, table: str) -> list[str] | None:
        if table not in self._columns:
            rows = self._conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
            if not rows:
                return None
            self._columns[table] = [row[1] for row in rows]
        return self._columns[table]

    def _create(self, table: str, fields: list[str], extra_pk: list[str], pk: list[str], value: Mapping[str, Any],
                record: SinkRecord) -> None:
        types = {name: _SQL_TYPES.get(type(value.get(name)), "TEXT") for name in fields}
        types.update({name: "INTEGER" if name in KAFKA_PK_FIELDS[1:] else "TEXT" for name in extra_pk})
        columns = [f"{quote(name)} {types[name]}" for name in fields + extra_pk]
        key = f", PRIMARY KEY ({', '.join(map(quote, pk))})" if pk else ""
        self._execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({', '.join(columns)}{key})", table)
        self._columns.pop(table, None)

    def _evolve(self, table: str, missing: list[str], value: Mapping[str, Any]) -> None:
        for name in missing:
            self._execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {_SQL_TYPES.get(type(value.get(name)), 'TEXT')}", table)
        self._columns.pop(table, None)

    def _execute(self, sql: str, table: str) -> None:
        try:
            self._conn.execute(sql)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {table}: {exc}", retriable=_busy(exc)) from exc

    # --- durable write ----------------------------------------------------------------
    def write(self, rows: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
        if not rows:
            return
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                start = 0
                # consecutive rows of one plan go in one executemany; order is kept across plans
                while start < len(rows):
                    plan = rows[start][0]
                    end = start + 1
                    while end < len(rows) and rows[end][0] is plan:
                        end += 1
                    conn.executemany(plan.sql, [row for _, row in rows[start:end]])
                    start = end
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"write of {len(rows)} rows to {self.path} failed: {exc}", retriable=_busy(exc)) from exc

    def close(self) -> None:
        self._conn.close()


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text or "disk i/o" in text


class JdbcSinkConnector(SinkPlugin):
    """The Confluent JDBC sink's config and semantics, writing SQLite."""

    class_name = "io.confluent.connect.jdbc.JdbcSinkConnector"
    version = "10.7.4-fraudpipe"
    keys = (
        ConfigKey("connection.url", default=NO_DEFAULT, group="Connection", check=_check_url, doc="jdbc:sqlite:PATH"),
        ConfigKey("connection.user", default=None, group="Connection", doc="Accepted; SQLite has no users."),
        ConfigKey("connection.password", PASSWORD, None, group="Connection", doc="Accepted; SQLite has no users."),
        ConfigKey("connection.attempts", INT, 3, group="Connection", minimum=1),
        ConfigKey("connection.backoff.ms", LONG, 10000, group="Connection"),
        ConfigKey("dialect.name", default="", group="Connection", doc="Accepted; always SqliteDatabaseDialect."),
        ConfigKey("insert.mode", default="insert", group="Writes", choices=("insert", "upsert", "update")),
        ConfigKey("batch.size", INT, 3000, group="Writes", minimum=1, doc="Accepted; batches follow connect.batch_size."),
        ConfigKey("delete.enabled", BOOLEAN, False, group="Writes", doc="Null values delete by key (pk.mode=record_key)."),
        ConfigKey("table.name.format", default="${topic}", group="Data Mapping", doc="Table name; ${topic} is replaced."),
        ConfigKey("table.types", LIST, ["TABLE"], group="Data Mapping"),
        ConfigKey("pk.mode", default="none", group="Data Mapping", choices=("none", "kafka", "record_key", "record_value")),
        ConfigKey("pk.fields", LIST, [], group="Data Mapping"),
        ConfigKey("fields.whitelist", LIST, [], group="Data Mapping", doc="Value fields to write; empty = all."),
        ConfigKey("fields.include", LIST, [], group="Data Mapping", doc="Newer name of fields.whitelist."),
        ConfigKey("db.timezone", default="UTC", group="Data Mapping", doc="Timestamps are stored as epoch ms (UTC)."),
        ConfigKey("auto.create", BOOLEAN, False, group="DDL Support"),
        ConfigKey("auto.evolve", BOOLEAN, False, group="DDL Support"),
        ConfigKey("quote.sql.identifiers", default="always", group="DDL Support", choices=("always", "never")),
        ConfigKey("max.retries", INT, 10, group="Retries", minimum=0),
        ConfigKey("retry.backoff.ms", INT, 3000, group="Retries", minimum=0),
        ConfigKey("trim.sensitive.log", BOOLEAN, False),
    )

    @classmethod
    def check(cls, values: Mapping[str, Any], raw: Mapping[str, str], result: Validation) -> None:
        mode, pk_mode, pk_fields = values["insert.mode"], values["pk.mode"], values["pk.fields"]
        if mode in ("upsert", "update") and pk_mode == "none":
            result.add_error("pk.mode", f"insert.mode={mode} needs a primary key: set pk.mode (and pk.fields)")
        if pk_mode == "kafka" and pk_fields and len(pk_fields) != 3:
            result.add_error("pk.fields", "pk.mode=kafka needs exactly 3 pk.fields (topic, partition, offset) or none")
        if values["delete.enabled"] and pk_mode != "record_key":
            result.add_error("delete.enabled", "delete.enabled=true needs pk.mode=record_key")
        if not values["table.name.format"].strip():
            result.add_error("table.name.format", "must not be empty")

    @classmethod
    def open_writer(cls, values: Mapping[str, Any], raw: Mapping[str, str]) -> SinkWriter:
        return JdbcSqliteWriter(values)

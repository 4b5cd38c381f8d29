"""Durable registry state in one SQLite file: schemas by id, subject versions, configs, modes.

Ids come from an AUTOINCREMENT column, so SQLite never hands out an id twice, even
after rows are deleted; schema rows are never deleted, so an id always means the same
text. All access goes through one connection under a lock: writes are rare and small,
and one writer at a time is what makes concurrent registrations of a schema get one id.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fraudpipe.errors import RegistryError

DB_FILE = "registry.db"
GLOBAL = ""  # the settings key of the global scope; URL segments are never empty
COMPATIBILITY = "compatibility"
MODE = "mode"

_DDL = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_type TEXT NOT NULL,
    schema TEXT NOT NULL
);
-- Not unique: an IMPORT may bring the same text under another registry's id.
CREATE INDEX IF NOT EXISTS schemas_by_text ON schemas (schema);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS versions_by_schema ON versions (schema_id);
CREATE TABLE IF NOT EXISTS settings (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);
"""


@dataclass(frozen=True)
class StoredVersion:
    """One row of a subject's history."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


class RegistryStorage:
    """The registry's tables in `<data_dir>/registry.db`."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / DB_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a registered id must survive a power cut
            self._db.executescript(_DDL)
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(f"cannot open registry storage {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, serialized unit of work; nested uses join the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise RegistryError(f"registry storage {self.path}: {exc}") from exc

    # schemas -------------------------------------------------------------------------------
    def schema_id(self, schema: str) -> int | None:
        rows = self._query("SELECT MIN(id) FROM schemas WHERE schema = ?", (schema,))
        return rows[0][0]

    def schema_text(self, schema_id: int) -> str | None:
        rows = self._query("SELECT schema FROM schemas WHERE id = ?", (schema_id,))
        return rows[0][0] if rows else None

    def add_schema(self, schema: str, *, schema_id: int | None = None, schema_type: str = "AVRO") -> int:
        with self.transaction():
            rows = self._query(
                "INSERT INTO schemas (id, schema_type, schema) VALUES (?, ?, ?) RETURNING id",
                (schema_id, schema_type, schema),
            )
        return rows[0][0]

    def schema_in_use(self, schema_id: int) -> bool:
        """True while some version (live or soft-deleted) still holds the schema."""
        return bool(self._query("SELECT 1 FROM versions WHERE schema_id = ? LIMIT 1", (schema_id,)))

    # versions ------------------------------------------------------------------------------
    def versions(self, subject: str, *, deleted: bool = False) -> list[StoredVersion]:
        """A subject's versions, oldest first; soft-deleted ones only when `deleted`."""
        rows = self._query(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ? AND (? OR v.deleted = 0) ORDER BY v.version",
            (subject, deleted),
        )
        return [StoredVersion(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def versions_of_schema(self, schema_id: int, *, deleted: bool = False) -> list[StoredVersion]:
        rows = self._query(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE v.schema_id = ? AND (? OR v.deleted = 0) "
            "ORDER BY v.subject, v.version",
            (schema_id, deleted),
        )
        return [StoredVersion(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def subjects(self, *, deleted: bool = False, deleted_only: bool = False) -> list[str]:
        if deleted_only:
            sql = ("SELECT subject FROM versions GROUP BY subject HAVING MIN(deleted) = 1 ORDER BY subject")
        elif deleted:
            sql = "SELECT DISTINCT subject FROM versions ORDER BY subject"
        else:
            sql = "SELECT DISTINCT subject FROM versions WHERE deleted = 0 ORDER BY subject"
        return [row[0] for row in self._query(sql)]

    def next_version(self, subject: str) -> int:
        rows = self._query("SELECT COALESCE(MAX(version), 0) FROM versions WHERE subject = ?", (subject,))
        return rows[0][0] + 1

    def add_version(self, subject: str, version: int, schema_id: int) -> None:
        with self.transaction():
            self._query(
                "INSERT OR REPLACE INTO versions (subject, version, schema_id, deleted) VALUES (?, ?, ?, 0)",
                (subject, version, schema_id),
            )

    def soft_delete(self, subject: str, versions: list[int]) -> None:
        with self.transaction():
            for version in versions:
                self._query("UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?", (subject, version))

    def purge(self, subject: str, versions: list[int]) -> None:
        with self.transaction():
            for version in versions:
                self._query("DELETE FROM versions WHERE subject = ? AND version = ?", (subject, version))

    # settings (compatibility level, mode) --------------------------------------------------
    def setting(self, kind: str, subject: str = GLOBAL) -> str | None:
        rows = self._query("SELECT value FROM settings WHERE kind = ? AND subject = ?", (kind, subject))
        return rows[0][0] if rows else None

    def set_setting(self, kind: str, value: str, subject: str = GLOBAL) -> None:
        with self.transaction():
            self._query(
                "INSERT INTO settings (kind, subject, value) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, subject) DO UPDATE SET value = excluded.value",
                (kind, subject, value),
            )

    def delete_setting(self, kind: str, subject: str = GLOBAL) -> None:
        with self.transaction():
            self._query("DELETE FROM settings WHERE kind = ? AND subject = ?", (kind, subject))

"""Durable registry state in one SQLite file: schemas by id, their references, subject versions, configs, modes.

Ids come from an AUTOINCREMENT column, so SQLite never hands out an id twice, even
after rows are deleted; schema rows and their references are never deleted, so an id
always means the same text with the same references. The tables come from `migrations`. All access goes through one connection under a lock: writes are rare and small,
and one writer at a time is what makes concurrent registrations of a schema get one id.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fraudpipe.errors import RegistryError
from fraudpipe.registry.migrations import migrate
from fraudpipe.registry.records import Reference, StoredVersion
from fraudpipe.sqlitedb import open_sqlite

DB_FILE = "registry.db"
GLOBAL = ""  # the settings key of the global scope; URL segments are never empty
COMPATIBILITY = "compatibility"
MODE = "mode"

class RegistryStorage:
    """The registry's tables in `<data_dir>/registry.db`."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / DB_FILE
        try:
            self._db = open_sqlite(self.path, synchronous="FULL")  # a registered id must survive a power cut
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(f"cannot open registry storage {self.path}: {exc}") from exc
        try:
            migrate(self._db, self.path)
        except (sqlite3.Error, RegistryError) as exc:
            self._db.close()
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(f"cannot open registry storage {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0
        self._references: dict[int, tuple[Reference, ...]] = {}  # immutable per id, so cached

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
    def schema_id(self, schema: str, references: tuple[Reference, ...] = ()) -> int | None:
        """The lowest id holding this text with exactly these references (in this order)."""
        for (candidate,) in self._query("SELECT id FROM schemas WHERE schema = ? ORDER BY id", (schema,)):
            if self.references(candidate) == references:
                return candidate
        return None

    def schema_text(self, schema_id: int) -> str | None:
        rows = self._query("SELECT schema FROM schemas WHERE id = ?", (schema_id,))
        return rows[0][0] if rows else None

    def add_schema(self, schema: str, *, schema_id: int | None = None, references: tuple[Reference, ...] = (),
                   schema_type: str = "AVRO") -> int:
        with self.transaction():
            rows = self._query(
                "INSERT INTO schemas (id, schema_type, schema) VALUES (?, ?, ?) RETURNING id",
                (schema_id, schema_type, schema),
            )
            for position, reference in enumerate(references):
                self._query(
                    "INSERT INTO schema_references (schema_id, position, name, subject, version) VALUES (?, ?, ?, ?, ?)",
                    (rows[0][0], position, reference.name, reference.subject, reference.version),
                )
        return rows[0][0]

    def references(self, schema_id: int) -> tuple[Reference, ...]:
        """A schema's references in the order they were registered."""
        cached = self._references.get(schema_id)
        if cached is not None:
            return cached
        with self._lock:
            rows = self._query("SELECT name, subject, version FROM schema_references WHERE schema_id = ? "
                               "ORDER BY position", (schema_id,))
            found = tuple(Reference(*row) for row in rows)
            if self._depth == 0:  # inside a transaction the rows may still be rolled back
                self._references[schema_id] = found
        return found

    def referrers(self, subject: str, version: int) -> list[int]:
        """Ids of every schema with a reference to (subject, version), in use or not."""
        rows = self._query("SELECT DISTINCT schema_id FROM schema_references WHERE subject = ? AND version = ? "
                           "ORDER BY schema_id", (subject, version))
        return [row[0] for row in rows]

    def schema_in_use(self, schema_id: int, *, live_only: bool = False) -> bool:
        """True while some version (live, or also soft-deleted unless `live_only`) holds the schema."""
        return bool(self._query("SELECT 1 FROM versions WHERE schema_id = ? AND (? OR deleted = 0) LIMIT 1",
                                (schema_id, not live_only)))

    # versions ------------------------------------------------------------------------------
    def versions(self, subject: str, *, deleted: bool = False) -> list[StoredVersion]:
        """A subject's versions, oldest first; soft-deleted ones only when `deleted`."""
        rows = self._query(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ? AND (? OR v.deleted = 0) ORDER BY v.version",
            (subject, deleted),
        )
        return [self._version(row) for row in rows]

    def versions_of_schema(self, schema_id: int, *, deleted: bool = False) -> list[StoredVersion]:
        rows = self._query(
            "SELECT v.subject, v.version, v.schema_id, s.schema, v.deleted FROM versions v "
            "JOIN schemas s ON s.id = v.schema_id WHERE v.schema_id = ? AND (? OR v.deleted = 0) "
            "ORDER BY v.subject, v.version",
            (schema_id, deleted),
        )
        return [self._version(row) for row in rows]

    def _version(self, row: tuple) -> StoredVersion:
        return StoredVersion(row[0], row[1], row[2], row[3], bool(row[4]), self.references(row[2]))

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

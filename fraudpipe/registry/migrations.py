"""The registry's SQLite tables as numbered migrations, applied in order when a data dir opens.

`PRAGMA user_version` records how many have been applied. A data dir written before there
were migrations has version 0 and already holds the tables of migration 1, which is why
that one says IF NOT EXISTS; every later migration runs exactly once. Add new ones at the
end, never edit an applied one: data dirs in the field have run it already.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from fraudpipe.errors import RegistryError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: schemas by id, subject versions, compatibility and mode settings (the first release).
    (
        """CREATE TABLE IF NOT EXISTS schemas (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schema_type TEXT NOT NULL,
            schema TEXT NOT NULL
        )""",
        # Not unique: an IMPORT may bring the same text under another registry's id, and since
        # migration 2 the same text with other references is another schema.
        "CREATE INDEX IF NOT EXISTS schemas_by_text ON schemas (schema)",
        """CREATE TABLE IF NOT EXISTS versions (
            subject TEXT NOT NULL,
            version INTEGER NOT NULL,
            schema_id INTEGER NOT NULL REFERENCES schemas(id),
            deleted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (subject, version)
        )""",
        "CREATE INDEX IF NOT EXISTS versions_by_schema ON versions (schema_id)",
        """CREATE TABLE IF NOT EXISTS settings (
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (kind, subject)
        )""",
    ),
    # 2: schema references (issue 18). A schema's references are part of its identity and, like
    # the schema row, never change; `position` keeps the order they were given in.
    (
        """CREATE TABLE schema_references (
            schema_id INTEGER NOT NULL REFERENCES schemas(id),
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            subject TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (schema_id, position)
        )""",
        # referencedby and the delete checks look references up by their target.
        "CREATE INDEX schema_references_by_target ON schema_references (subject, version)",
    ),
)
LATEST = len(MIGRATIONS)


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Apply the migrations `db` has not seen yet, each in its own transaction; return the version.

    `db` must be in autocommit mode (isolation_level=None). The version is read again under
    the write lock, so two processes opening one data dir at once apply each migration once.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            current = user_version(db)
            if current > LATEST:
                raise RegistryError(
                    f"registry storage {path} has schema version {current}, newer than the {LATEST} this "
                    "fraudpipe knows: it was written by a newer release; upgrade fraudpipe to open it")
            if current == LATEST:
                db.execute("COMMIT")
                return current
            for statement in MIGRATIONS[current]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {current + 1}")  # transactional: in the file header
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

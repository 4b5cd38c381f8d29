"""open_sqlite: the settings every SQLite file of fraudpipe is opened with, read back from SQLite."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from fraudpipe.sqlitedb import open_sqlite


@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2)])
def test_opens_in_wal_with_the_durability_asked_for(tmp_path: Path, synchronous: str, level: int):
    conn = open_sqlite(tmp_path / "a" / "b" / "x.db", synchronous=synchronous)  # parents are created
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (level,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        assert conn.isolation_level is None  # autocommit: callers BEGIN their own transactions
    finally:
        conn.close()


def test_a_second_connection_sees_committed_rows_and_threads_may_share_one(tmp_path: Path):
    path = tmp_path / "x.db"
    writer = open_sqlite(path, synchronous="FULL")
    reader = open_sqlite(path, synchronous="NORMAL", timeout=1.0)
    try:
        writer.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        done = threading.Thread(target=lambda: writer.execute("INSERT INTO t VALUES (1)"))
        done.start()
        done.join()
        assert reader.execute("SELECT k FROM t").fetchall() == [(1,)]
        assert reader.execute("PRAGMA busy_timeout").fetchone() == (1000,)
    finally:
        writer.close()
        reader.close()


def test_a_file_that_is_not_a_database_raises_sqlite_error(tmp_path: Path):
    path = tmp_path / "x.db"
    path.write_bytes(b"not a database, " * 64)
    with pytest.raises(sqlite3.DatabaseError):
        open_sqlite(path, synchronous="NORMAL")

"""The one way fraudpipe opens a SQLite file: WAL, a busy timeout, autocommit, shared across threads.

The store, the Connect worker's state and JDBC sink, and the registry all keep SQLite files
that other threads or processes read while one writes; they differ only in how much a commit
must survive, which is the `synchronous` they pass.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

BUSY_TIMEOUT_SECONDS = 30.0  # a writer waits this long for another connection's write lock


def open_sqlite(path: str | Path, *, synchronous: Literal["NORMAL", "FULL"],
                timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """Open (creating the parent directory) a WAL-mode connection in autocommit mode.

    `synchronous`: NORMAL is durable across a process crash in WAL mode (data others can
    recompute or replay); FULL also across a power cut (what was acknowledged to a client).
    The connection may be used from any thread; callers serialize their own writes.
    Raises OSError or sqlite3.Error; callers wrap them in their domain's error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn

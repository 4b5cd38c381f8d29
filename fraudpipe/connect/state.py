"""The worker's durable state under --data-dir: connector configs, target states and offsets.

One SQLite file (`worker.db`, WAL): every change is one transaction, so a worker killed
at any point restarts with a consistent view (this is what Kafka Connect keeps in its
config, status and offset topics).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from fraudpipe.errors import ConnectError
from fraudpipe.sqlitedb import open_sqlite

STATE_FILE = "worker.db"
STARTED, PAUSED, STOPPED = "STARTED", "PAUSED", "STOPPED"  # target states, as Connect's TargetState

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS connectors (name TEXT PRIMARY KEY, config TEXT NOT NULL, target TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS offsets (connector TEXT, topic TEXT, partition INTEGER, next_offset INTEGER,"
    " PRIMARY KEY (connector, topic, partition))",
)


class WorkerState:
    """Connector configs, target states and committed offsets, durable in one SQLite file."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / STATE_FILE
        self._lock = threading.Lock()
        try:
            self._conn = open_sqlite(self.path, synchronous="FULL")  # a config or offset acknowledged is on disk
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise ConnectError(f"cannot open worker state {self.path}: {exc}") from exc

    def _run(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise ConnectError(f"worker state {self.path}: {exc}") from exc

    def connectors(self) -> list[tuple[str, dict[str, str], str]]:
        """(name, config, target state) of every stored connector, by name."""
        rows = self._run("SELECT name, config, target FROM connectors ORDER BY name")
        return [(name, json.loads(config), target) for name, config, target in rows]

    def put_connector(self, name: str, config: dict[str, str], target: str) -> None:
        self._run("INSERT INTO connectors (name, config, target) VALUES (?, ?, ?) "
                  "ON CONFLICT (name) DO UPDATE SET config = excluded.config, target = excluded.target",
                  (name, json.dumps(config, sort_keys=True), target))

    def set_target(self, name: str, target: str) -> None:
        self._run("UPDATE connectors SET target = ? WHERE name = ?", (target, name))

    def delete_connector(self, name: str) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("DELETE FROM connectors WHERE name = ?", (name,))
                self._conn.execute("DELETE FROM offsets WHERE connector = ?", (name,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise ConnectError(f"worker state {self.path}: {exc}") from exc

    def save_offsets(self, name: str, offsets: dict[tuple[str, int], int]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT INTO offsets (connector, topic, partition, next_offset) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (connector, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                    [(name, topic, partition, offset) for (topic, partition), offset in offsets.items()],
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise ConnectError(f"worker state {self.path}: {exc}") from exc

    def offsets(self, name: str) -> dict[tuple[str, int], int]:
        rows = self._run("SELECT topic, partition, next_offset FROM offsets WHERE connector = ? ORDER BY topic, partition", (name,))
        return {(topic, partition): offset for topic, partition, offset in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

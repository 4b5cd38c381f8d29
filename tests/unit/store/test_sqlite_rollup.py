"""SqliteStore specifics of the per-minute metrics totals: a store from before the table gets them once."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fraudpipe.contracts import METRICS_BY_MINUTE_TABLE
from fraudpipe.errors import StoreError
from fraudpipe.store.base import Store
from fraudpipe.store.sqlite import SqliteStore

MINUTE = 60_000
T0 = 1_795_000_020_000 - (1_795_000_020_000 % MINUTE)


def test_a_store_without_minute_totals_gets_them_from_its_rows_when_opened(tmp_path: Path):
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        store.upsert_metrics([{"minute": T0 + m * MINUTE, "batch_id": b, "transactions": m + b, "latency_ms_max": b}
                              for m in range(3) for b in range(4)])
    with sqlite3.connect(path) as conn:  # the file as an older fraudpipe left it
        conn.execute(f"DROP TABLE {METRICS_BY_MINUTE_TABLE}")
    with SqliteStore(path) as store:
        minutes = store.metrics_by_minute(since_ms=T0, until_ms=T0 + 10 * MINUTE)
        assert minutes == Store.metrics_by_minute(store, since_ms=T0, until_ms=T0 + 10 * MINUTE)
        assert [m["transactions"] for m in minutes] == [6, 10, 14]
    with SqliteStore(path) as store:  # opened again: totals are not rebuilt or doubled
        assert [m["transactions"] for m in store.metrics_by_minute(since_ms=T0, until_ms=T0 + 10 * MINUTE)] == [6, 10, 14]


def test_rows_and_their_minute_totals_commit_together(tmp_path: Path):
    with SqliteStore(tmp_path / "s.db") as store:
        store.upsert_metrics([{"minute": T0, "batch_id": 1, "transactions": 5}])
        with pytest.raises(StoreError):  # the second row cannot be bound: nothing of this write lands
            store.upsert_metrics([{"minute": T0, "batch_id": 2, "transactions": 7},
                                  {"minute": T0 + MINUTE, "batch_id": 2, "transactions": object()}])
        assert [(r["batch_id"], r["transactions"]) for r in store.metric_rows(since_ms=T0, until_ms=T0 + 2 * MINUTE)] == [(1, 5)]
        assert [m["transactions"] for m in store.metrics_by_minute(since_ms=T0, until_ms=T0 + 2 * MINUTE)] == [5]

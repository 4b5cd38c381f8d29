"""The Store port and open_store(), the one place that picks a backend."""
from __future__ import annotations

from fraudpipe.config import StoreConfig, project_path
from fraudpipe.store.base import Store


def open_store(config: StoreConfig) -> Store:
    """Open the configured store: SqliteStore for backend sqlite, CassandraStore for cassandra."""
    if config.backend == "cassandra":
        from fraudpipe.store.cassandra import CassandraStore

        return CassandraStore(config)
    from fraudpipe.store.sqlite import SqliteStore

    return SqliteStore(project_path(config.sqlite_path))


__all__ = ["Store", "open_store"]

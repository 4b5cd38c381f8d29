"""Per-app state the blueprints share: the typed config, the one Store, the pipeline probe."""
from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app

from fraudpipe.config import Config
from fraudpipe.errors import DashboardError, StoreError
from fraudpipe.store import Store, open_store
from dashboard.pipeline import PipelineProbe

EXTENSION = "fraudpipe"


class DashboardState:
    """Opens the store on first use (a store that is down must not stop the app from starting)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None
        self._lock = threading.Lock()
        self.probe = PipelineProbe(config, self.store)

    def store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    try:
                        self._store = open_store(self.config.store)
                    except StoreError as exc:
                        raise DashboardError(f"the store is unavailable: {exc}", http_status=503) from exc
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def install(app: Flask, config: Config) -> DashboardState:
    state = DashboardState(config)
    app.extensions[EXTENSION] = state
    return state


def state() -> DashboardState:
    return current_app.extensions[EXTENSION]


def config() -> Config:
    return state().config


def store() -> Store:
    return state().store()


def page_defaults() -> dict[str, Any]:
    """Template globals every page needs."""
    settings = config().dashboard
    # amounts are in the producer's currency: the one the pipeline's transactions carry
    return {"refresh_seconds": settings.refresh_seconds, "default_minutes": settings.default_range_minutes,
            "currency": config().producer.traffic.currency}

"""Helpers for the registry's integration tests: fresh subjects, clients, and a private server."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from fraudpipe.broker import free_port
from fraudpipe.registry.server import RegistryServer


@pytest.fixture()
def subject() -> str:
    """A fresh subject name: tests share the session registry, never a subject."""
    return f"test-{uuid.uuid4().hex[:12]}-value"


@pytest.fixture()
def client(registry: RegistryServer) -> SchemaRegistryClient:
    """A new client per test, so no test sees another's client-side cache."""
    return SchemaRegistryClient({"url": registry.url})


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry of its own, for tests that change global config or mode or need a clean slate."""
    base: Path = tmp_path_factory.mktemp("own-registry")
    with RegistryServer(free_port(), base / "data", log_path=base / "registry.log") as running:
        yield running


def expect_error(error_code: int, http_status: int, call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Run a client call that must fail with this Confluent error; return the message."""
    with pytest.raises(SchemaRegistryError) as info:
        call(*args, **kwargs)
    assert (info.value.error_code, info.value.http_status_code) == (error_code, http_status), info.value
    return info.value.error_message

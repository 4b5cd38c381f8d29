"""State survives restarts (clean and killed), ids are never reused, and concurrent registrations agree."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from fraudpipe.broker import free_port
from fraudpipe.registry.server import RegistryServer

pytestmark = pytest.mark.integration


def schema(n: int) -> Schema:
    """Distinct, mutually compatible schemas: each adds an optional field."""
    fields = [{"name": "id", "type": "string"}] + [
        {"name": f"f{i}", "type": ["null", "long"], "default": None} for i in range(n)
    ]
    return Schema(json.dumps({"type": "record", "name": "Event", "fields": fields}), "AVRO")


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(free_port(), tmp_path / "data", log_path=tmp_path / "registry.log") as running:
        yield running


def snapshot(client: SchemaRegistryClient) -> dict[str, Any]:
    """Everything a client can see: subjects, versions (incl. soft-deleted), ids, texts, configs, modes."""
    state: dict[str, Any] = {"global": (client.get_compatibility(), client.get_global_mode())}
    live_subjects = client.get_subjects()
    for subject in client.get_subjects(deleted=True):
        versions = client.get_versions(subject, deleted=True)
        state[subject] = {
            "live": client.get_versions(subject) if subject in live_subjects else [],
            "versions": [(v, (r := client.get_version(subject, v, deleted=True)).schema_id, r.schema.schema_str)
                         for v in versions],
        }
    return state


@pytest.mark.parametrize("stop", ["clean", "killed"])
def test_everything_survives_a_restart_and_ids_are_never_reused(server: RegistryServer, stop: str) -> None:
    client = SchemaRegistryClient({"url": server.url})
    ids = [client.register_schema("orders-value", schema(n)) for n in range(3)]
    ids.append(client.register_schema("refunds-value", schema(0)))  # shared id
    gone = client.register_schema("scratch-value", Schema('"string"', "AVRO"))
    client.delete_subject("scratch-value")
    client.delete_subject("scratch-value", permanent=True)
    client.delete_version("orders-value", 1)
    client.set_compatibility("orders-value", "FULL_TRANSITIVE")
    client.set_compatibility(level="FORWARD")
    client.update_mode("refunds-value", "READONLY")
    before = snapshot(client)

    if stop == "killed":
        server.kill()
        server.start()
    else:
        server.restart()

    after_client = SchemaRegistryClient({"url": server.url})
    assert snapshot(after_client) == before
    assert after_client.get_compatibility("orders-value") == "FULL_TRANSITIVE"
    assert after_client.get_mode("refunds-value") == "READONLY"
    assert after_client.get_schema(ids[1]).schema_str == before["orders-value"]["versions"][1][2]
    assert ids[3] == ids[0] and gone not in ids
    # A new schema gets a new id above every id ever given, including the purged one.
    fresh = after_client.register_schema("orders-value", schema(3))
    assert fresh > max(*ids, gone)
    assert after_client.get_versions("orders-value") == [2, 3, 4]


def test_concurrent_registrations_of_one_schema_get_one_id(server: RegistryServer) -> None:
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def register(index: int) -> None:
        client = SchemaRegistryClient({"url": server.url})  # no shared client-side cache
        barrier.wait()
        try:
            for subject in ("same-value", f"own-{index}-value"):
                results.append((subject, client.register_schema(subject, schema(5))))
        except BaseException as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 2 * threads_n
    assert len({schema_id for _, schema_id in results}) == 1
    client = SchemaRegistryClient({"url": server.url})
    assert client.get_versions("same-value") == [1]
    assert len(client.get_subjects_by_schema_id(results[0][1])) == threads_n + 1

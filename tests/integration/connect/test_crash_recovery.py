"""kill -9 the worker mid-stream, start it again: the connector comes back RUNNING by itself and
the table holds exactly the produced set (offsets were committed only after durable writes)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from fraudpipe import contracts
from fraudpipe.broker import free_port
from fraudpipe.connect.server import ConnectServer
from tests.fixtures.connect import (
    produce_transactions,
    register_schema,
    sqlite_sink_config,
    table_ids,
    transaction,
    wait_for,
    wait_running,
)

pytestmark = pytest.mark.integration
TOTAL = 40_000
CHUNK = 2_000


def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(broker, registry, topic: str, sqlite_db: Path,
                                                                     tmp_path: Path) -> None:
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    records = [transaction(i, run="crash") for i in range(TOTAL)]
    # small batches: many commits, so the kill lands between and inside write+commit cycles
    worker = ConnectServer(free_port(), tmp_path / "state", broker.bootstrap_servers, registry.url,
                           log_path=tmp_path / "connect.log", cwd=tmp_path, env={"FRAUDPIPE_CONNECT__BATCH_SIZE": "500"})
    worker.start()
    try:
        name = "crash-sink"
        config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
        assert requests.put(f"{worker.url}/connectors/{name}/config", json=config, timeout=30).status_code == 201
        wait_running(worker.url, name)

        done = threading.Event()

        def paced_producer() -> None:
            for start in range(0, TOTAL, CHUNK):
                produce_transactions(broker.bootstrap_servers, topic, schema_id, records[start:start + CHUNK])
            done.set()

        producing = threading.Thread(target=paced_producer)
        producing.start()
        wait_for(lambda: len(table_ids(sqlite_db)) >= 3 * CHUNK, timeout=120, what="the sink to be mid-stream")
        worker.kill()
        at_kill = len(table_ids(sqlite_db))
        producing.join(timeout=120)
        assert done.is_set()
        assert 0 < at_kill < TOTAL

        worker.start()  # same data dir, no REST call: the stored connector must come back by itself
        wait_running(worker.url, name, timeout=90)
        wait_for(lambda: len(table_ids(sqlite_db)) >= TOTAL, timeout=180, what="every record after the restart")
        ids = table_ids(sqlite_db)
        assert len(ids) == TOTAL and set(ids) == {r["transaction_id"] for r in records}
        assert requests.get(f"{worker.url}/connectors/{name}/config", timeout=10).json() == {**config, "name": name}
    finally:
        worker.stop()

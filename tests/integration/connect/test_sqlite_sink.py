"""The JDBC-style SQLite sink end to end: Avro records on a topic -> rows in the store's tables."""
from __future__ import annotations

import random
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
import requests

from fraudpipe import contracts
from fraudpipe.avro import encode, frame_header
from fraudpipe.broker import ensure_topics
from fraudpipe.connect.server import ConnectServer
from tests.fixtures.connect import (
    connector_states,
    produce,
    produce_transactions,
    register_schema,
    sqlite_sink_config,
    table_ids,
    transaction,
    wait_for,
    wait_running,
)
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration


def register(url: str, name: str, config: dict[str, str]) -> None:
    response = requests.put(f"{url}/connectors/{name}/config", json=config, timeout=30)
    assert response.status_code == 201, response.text
    wait_running(url, name)


def test_50k_transactions_each_in_the_table_once(connect_worker: ConnectServer, broker, registry, topic: str,
                                                sqlite_db: Path, connector_name: str) -> None:
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    records = [transaction(i, run="big") for i in range(50_000)]
    register(connect_worker.url, connector_name, sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url))
    produce_transactions(broker.bootstrap_servers, topic, schema_id, records)

    wait_for(lambda: len(table_ids(sqlite_db)) >= len(records), timeout=180, what="50k rows")
    ids = table_ids(sqlite_db)
    assert len(ids) == len(records) and set(ids) == {r["transaction_id"] for r in records}
    with sqlite3.connect(sqlite_db) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM transactions WHERE transaction_id = ?", (records[12345]["transaction_id"],)).fetchone())
    expected = {**records[12345], "event_time": int(records[12345]["event_time"].timestamp() * 1000)}
    assert row == expected
    offsets = wait_for(lambda: requests.get(f"{connect_worker.url}/connectors/{connector_name}/offsets", timeout=10).json()["offsets"],
                       what="offsets")
    wait_for(lambda: sum(o["offset"]["kafka_offset"] for o in requests.get(
        f"{connect_worker.url}/connectors/{connector_name}/offsets", timeout=10).json()["offsets"]) == len(records),
        what="committed offsets covering all 50k records")
    assert {o["partition"]["kafka_topic"] for o in offsets} == {topic}
    assert requests.get(f"{connect_worker.url}/connectors/{connector_name}/topics", timeout=10).json() == {
        connector_name: {"topics": [topic]}}
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)


def poison_pills(schema_id: int) -> dict[str, bytes]:
    rng = random.Random(5)
    good = encode(schema_id, contracts.transaction_schema(1), transaction(0, run="poison"))
    return {
        "bad magic byte": b"\x07" + good[1:],
        "unknown schema id": frame_header(987654) + good[5:],
        "random bytes": bytes([0xAB]) + bytes(rng.randrange(256) for _ in range(40)),
        "truncated body": good[:12],
    }


def test_poison_pills_go_to_the_dlq_with_headers_while_good_records_flow(
        connect_worker: ConnectServer, broker, registry, topic: str, sqlite_db: Path, connector_name: str) -> None:
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    register(connect_worker.url, connector_name, config)
    pills = poison_pills(schema_id)
    good = [transaction(i, run="flow") for i in range(1, 2001)]
    schema = contracts.transaction_schema(1)
    values: list[tuple[str | None, bytes | None]] = [(r["sender_account"], encode(schema_id, schema, r)) for r in good[:1000]]
    values += [(f"pill-{kind}", value) for kind, value in pills.items()]
    values += [(r["sender_account"], encode(schema_id, schema, r)) for r in good[1000:]]
    produce(broker.bootstrap_servers, topic, values)

    wait_for(lambda: len(table_ids(sqlite_db)) == len(good), timeout=60, what="good rows")
    dlq = config["errors.deadletterqueue.topic.name"]
    dead = wait_for(lambda: (m := read_to_eof(broker.bootstrap_servers, dlq, partitions=1, timeout=30)) and len(m) >= len(pills) and m,
                    timeout=60, what="dead letters")
    assert len(dead) == len(pills)
    by_key = {m.key().decode(): m for m in dead}
    assert set(by_key) == {f"pill-{kind}" for kind in pills}
    for kind, value in pills.items():
        message = by_key[f"pill-{kind}"]
        headers = {k: v.decode() for k, v in message.headers()}
        assert message.value() == value
        assert headers["__connect.errors.topic"] == topic
        assert headers["__connect.errors.connector.name"] == connector_name
        assert headers["__connect.errors.task.id"] == "0"
        assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
        assert headers["__connect.errors.class.name"] == "io.confluent.connect.avro.AvroConverter"
        assert int(headers["__connect.errors.offset"]) >= 0 and headers["__connect.errors.partition"] in ("0", "1")
        assert headers["__connect.errors.exception.message"] and "Traceback" in headers["__connect.errors.exception.stacktrace"]
    assert by_key["pill-unknown schema id"].headers()
    assert "UnknownSchemaIdError" in dict(by_key["pill-unknown schema id"].headers())["__connect.errors.exception.class.name"].decode()
    assert "magic byte" in dict(by_key["pill-bad magic byte"].headers())["__connect.errors.exception.message"].decode()
    assert connector_states(connect_worker.url, connector_name) == ("RUNNING", ["RUNNING"])
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)


@pytest.mark.parametrize("kind", ["bad magic byte", "unknown schema id", "random bytes"])
def test_a_poison_pill_with_tolerance_none_fails_the_task_with_a_trace(
        connect_worker: ConnectServer, broker, registry, topic: str, sqlite_db: Path, connector_name: str,
        kind: str) -> None:
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url, **{"errors.tolerance": "none"})
    register(connect_worker.url, connector_name, config)
    produce(broker.bootstrap_servers, topic, [("k", poison_pills(schema_id)[kind])])

    def failed() -> dict | None:
        status = requests.get(f"{connect_worker.url}/connectors/{connector_name}/status", timeout=10).json()
        return status if status["tasks"][0]["state"] == "FAILED" else None

    status = wait_for(failed, timeout=60, what="task FAILED")
    assert status["connector"]["state"] == "RUNNING"
    trace = status["tasks"][0]["trace"]
    assert "Tolerance exceeded" in trace and "Traceback" in trace and topic in trace
    task = requests.get(f"{connect_worker.url}/connectors/{connector_name}/tasks/0/status", timeout=10).json()
    assert task["state"] == "FAILED" and task["trace"] == trace
    assert table_ids(sqlite_db) == []
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)


def test_evolved_v2_records_keep_flowing_into_the_v1_table(connect_worker: ConnectServer, broker, registry, topic: str,
                                                           sqlite_db: Path, connector_name: str) -> None:
    subject = contracts.value_subject(topic)
    v1 = register_schema(registry.url, subject, contracts.transaction_schema_str(1))
    v2 = register_schema(registry.url, subject, contracts.transaction_schema_str(2))
    assert v1 != v2
    register(connect_worker.url, connector_name, sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url))
    old = [transaction(i, run="v1") for i in range(100)]
    new = [{**transaction(i, run="v2"), "device_id": f"dev-{i}"} for i in range(100)]
    produce_transactions(broker.bootstrap_servers, topic, v1, old)
    produce_transactions(broker.bootstrap_servers, topic, v2, new, version=2)
    wait_for(lambda: len(table_ids(sqlite_db)) == 200, timeout=60, what="v1 + v2 rows")
    assert set(table_ids(sqlite_db)) == {r["transaction_id"] for r in old + new}
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)


def test_labels_connector_writes_the_labels_table(connect_worker: ConnectServer, broker, registry, topic: str,
                                                  sqlite_db: Path, connector_name: str) -> None:
    from tests.fixtures.connect import connector_file

    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.label_schema_str())
    config = {**connector_file("sqlite-labels-sink.json")["config"], "topics": topic,
              "connection.url": f"jdbc:sqlite:{sqlite_db}", "value.converter.schema.registry.url": registry.url,
              "errors.deadletterqueue.topic.name": f"{topic}-dlq"}
    register(connect_worker.url, connector_name, config)
    labels = [{"transaction_id": f"lab-{i}", "pattern": "card_testing", "sender_account": f"acct-{i}",
               "event_time": transaction(i)["event_time"], "labeled_at": transaction(i + 1)["event_time"]}
              for i in range(50)]
    produce(broker.bootstrap_servers, topic, [(l["transaction_id"], encode(schema_id, contracts.label_schema(), l)) for l in labels])
    wait_for(lambda: len(table_ids(sqlite_db, contracts.LABELS_TABLE)) == 50, timeout=60, what="labels")
    with sqlite3.connect(sqlite_db) as conn:
        pattern, event_time = conn.execute("SELECT pattern, event_time FROM labels WHERE transaction_id = 'lab-7'").fetchone()
    assert pattern == "card_testing" and event_time == int(labels[7]["event_time"].timestamp() * 1000)
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)


def test_a_connector_registered_before_its_topic_exists_writes_its_records(
        connect_worker: ConnectServer, broker, registry, sqlite_db: Path, connector_name: str) -> None:
    """The seed project's order: connectors registered with curl first, the producer (and its topic) later."""
    topic = f"test-late-{uuid.uuid4().hex[:12]}"
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    created = requests.post(f"{connect_worker.url}/connectors", json={"name": connector_name, "config": config},
                            timeout=30)
    assert created.status_code == 201, created.text
    assert [w for w in created.json()["warnings"] if repr(topic) in w and "does not exist" in w], created.json()
    wait_running(connect_worker.url, connector_name)
    status = requests.get(f"{connect_worker.url}/connectors/{connector_name}/status", timeout=10).json()
    assert any(repr(topic) in w for w in status["warnings"]), status
    time.sleep(3)  # the task's consumer has subscribed and found no such topic

    ensure_topics(broker.bootstrap_servers, {topic: 2})
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    records = [transaction(i, run="late") for i in range(5000)]
    produce_transactions(broker.bootstrap_servers, topic, schema_id, records)

    # generous: librdkafka's default metadata refresh (5 min) is what this guards against
    wait_for(lambda: len(table_ids(sqlite_db)) >= len(records), timeout=60, what="5,000 rows of the late topic")
    assert set(table_ids(sqlite_db)) == {r["transaction_id"] for r in records}
    wait_for(lambda: "warnings" not in requests.get(f"{connect_worker.url}/connectors/{connector_name}/status",
                                                    timeout=10).json(), timeout=30, what="the warning to go")
    requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60)

"""The Pipeline page against the real embedded broker, Schema Registry and Connect worker."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from dashboard.app import create_app
from fraudpipe import contracts
from fraudpipe.config import Config, ConnectConfig, DashboardConfig, KafkaConfig, SchemaRegistryConfig, StoreConfig
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.connect import produce_transactions, register_schema, sqlite_sink_config, transaction, wait_for, wait_running
from tests.fixtures.dashboard import MINUTE, metrics_row

pytestmark = pytest.mark.integration


def test_pipeline_shows_subjects_connectors_topics_lag_and_stream(
    broker, registry, connect_worker, topic: str, sqlite_db: Path, connector_name: str, dashboard_store: SqliteStore
):
    subject = contracts.value_subject(topic)
    schema_id = register_schema(registry.url, subject, contracts.transaction_schema_str())
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    created = requests.post(f"{connect_worker.url}/connectors", json={"name": connector_name, "config": config}, timeout=30)
    assert created.status_code == 201, created.text
    wait_running(connect_worker.url, connector_name)
    produce_transactions(broker.bootstrap_servers, topic, schema_id, [transaction(i, run=topic) for i in range(40)])
    now = int(time.time() * 1000)
    dashboard_store.upsert_metrics([{**metrics_row(now - now % MINUTE, 3, transactions=40, flagged=0), "updated_at": now}])

    app = create_app(Config(
        kafka=KafkaConfig(bootstrap_servers=broker.bootstrap_servers),
        schema_registry=SchemaRegistryConfig(url=registry.url),
        connect=ConnectConfig(url=connect_worker.url),
        store=StoreConfig(sqlite_path=str(dashboard_store.path)),
        dashboard=DashboardConfig(probe_timeout_seconds=5.0, probe_cache_seconds=0.0),
    ))
    client = app.test_client()

    def sunk() -> dict | None:
        body = client.get("/api/pipeline").get_json()
        groups = [g for g in body["kafka"]["groups"] for lag in g["lag"] if lag["topic"] == topic]
        return body if groups and body["kafka"]["groups_error"] is None else None

    body = wait_for(sunk, timeout=60, what="the sink's consumer group with committed offsets on the topic")
    assert body["down"] == []
    subjects = {s["subject"]: s for s in body["registry"]["subjects"]}
    assert subjects[subject]["versions"] == [1] and subjects[subject]["latest_id"] == schema_id
    connectors = {c["name"]: c for c in body["connect"]["connectors"]}
    assert connectors[connector_name]["state"] == "RUNNING"
    assert [t["state"] for t in connectors[connector_name]["tasks"]] == ["RUNNING"]
    topics = {t["topic"]: t for t in body["kafka"]["topics"]}
    assert topics[topic]["partitions"] == 2 and topics[topic]["end_offset"] > 0
    assert body["stream"]["status"] == "running" and body["stream"]["last_batch_id"] == 3

    html = client.get("/pipeline").get_data(as_text=True)
    assert "Every component answers." in html and subject in html and connector_name in html and topic in html


def test_a_deleted_connector_s_consumer_group_leaves_the_page(
    broker, registry, connect_worker, topic: str, sqlite_db: Path, connector_name: str, dashboard_store: SqliteStore
):
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str())
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    created = requests.post(f"{connect_worker.url}/connectors", json={"name": connector_name, "config": config}, timeout=30)
    assert created.status_code == 201, created.text
    wait_running(connect_worker.url, connector_name)
    produce_transactions(broker.bootstrap_servers, topic, schema_id, [transaction(i, run=topic) for i in range(20)])
    client = create_app(Config(
        kafka=KafkaConfig(bootstrap_servers=broker.bootstrap_servers),
        schema_registry=SchemaRegistryConfig(url=registry.url),
        connect=ConnectConfig(url=connect_worker.url),
        store=StoreConfig(sqlite_path=str(dashboard_store.path)),
        dashboard=DashboardConfig(probe_timeout_seconds=5.0, probe_cache_seconds=0.0),
    )).test_client()
    group = contracts.connect_group(connector_name)

    def groups() -> list[str]:
        return [g["group"] for g in client.get("/api/pipeline").get_json()["kafka"]["groups"]]

    wait_for(lambda: group in groups(), timeout=60, what=f"{group} on the page")
    assert requests.delete(f"{connect_worker.url}/connectors/{connector_name}", timeout=60).status_code == 204
    wait_for(lambda: group not in groups(), timeout=30, what=f"{group} to leave the page")
    assert group not in client.get("/pipeline").get_data(as_text=True)

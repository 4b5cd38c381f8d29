"""The worker's REST API through HTTP with requests: the whole lifecycle and every error code."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests

from fraudpipe.connect.server import ConnectServer
from tests.fixtures.connect import connector_states, sqlite_sink_config, wait_for, wait_running

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


def test_root_and_plugins(connect_worker: ConnectServer) -> None:
    root = requests.get(connect_worker.url + "/", timeout=10)
    assert root.status_code == 200 and root.json()["version"].startswith("3.")
    plugins = requests.get(connect_worker.url + "/connector-plugins", timeout=10).json()
    assert {p["class"] for p in plugins} == {"io.confluent.connect.jdbc.JdbcSinkConnector",
                                             "com.datastax.oss.kafka.sink.CassandraSinkConnector"}
    assert all(p["type"] == "sink" for p in plugins)


def test_full_lifecycle(connect_worker: ConnectServer, topic: str, sqlite_db: Path, connector_name: str,
                        registry) -> None:
    url, name = connect_worker.url, connector_name
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)

    created = requests.post(f"{url}/connectors", json={"name": name, "config": config}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith(f"/connectors/{name}")
    assert created.json()["name"] == name and created.json()["type"] == "sink"
    assert requests.post(f"{url}/connectors", json={"name": name, "config": config}, timeout=30).status_code == 409

    wait_running(url, name)
    assert name in requests.get(f"{url}/connectors", timeout=10).json()
    expanded = requests.get(f"{url}/connectors?expand=status&expand=INFO", timeout=10).json()
    assert expanded[name]["status"]["connector"]["state"] == "RUNNING"
    assert expanded[name]["info"]["config"]["topics"] == topic

    info = requests.get(f"{url}/connectors/{name}", timeout=10).json()
    assert info["tasks"] == [{"connector": name, "task": 0}]
    assert requests.get(f"{url}/connectors/{name}/config", timeout=10).json() == {**config, "name": name}
    tasks = requests.get(f"{url}/connectors/{name}/tasks", timeout=10).json()
    assert tasks[0]["id"] == {"connector": name, "task": 0} and tasks[0]["config"]["topics"] == topic
    assert requests.get(f"{url}/connectors/{name}/tasks/0/status", timeout=10).json()["state"] == "RUNNING"
    assert requests.get(f"{url}/connectors/{name}/topics", timeout=10).json() == {name: {"topics": []}}
    assert requests.get(f"{url}/connectors/{name}/offsets", timeout=10).json() == {"offsets": []}

    assert requests.put(f"{url}/connectors/{name}/pause", timeout=30).status_code == 202
    assert connector_states(url, name) == ("PAUSED", ["PAUSED"])
    assert requests.put(f"{url}/connectors/{name}/resume", timeout=30).status_code == 202
    wait_running(url, name)

    updated = requests.put(f"{url}/connectors/{name}/config", json={**config, "tasks.max": "2"}, timeout=60)
    assert updated.status_code == 200 and len(updated.json()["tasks"]) == 2
    wait_running(url, name)

    restarted = requests.post(f"{url}/connectors/{name}/restart?includeTasks=TRUE&onlyFailed=False", timeout=60)
    assert restarted.status_code == 202
    assert restarted.json()["connector"]["state"] == "RESTARTING"
    assert {t["state"] for t in restarted.json()["tasks"]} == {"RESTARTING"}
    wait_running(url, name)
    assert requests.post(f"{url}/connectors/{name}/restart", timeout=60).status_code == 204
    only_failed = requests.post(f"{url}/connectors/{name}/restart?includeTasks=true&onlyFailed=true", timeout=60)
    assert only_failed.status_code == 202 and only_failed.json()["connector"]["state"] == "RUNNING"
    assert requests.post(f"{url}/connectors/{name}/tasks/1/restart", timeout=60).status_code == 204
    wait_running(url, name)

    assert requests.put(f"{url}/connectors/{name}/stop", timeout=60).status_code == 202
    stopped = requests.get(f"{url}/connectors/{name}/status", timeout=10).json()
    assert stopped["connector"]["state"] == "STOPPED" and stopped["tasks"] == []
    assert requests.put(f"{url}/connectors/{name}/resume", timeout=60).status_code == 202
    wait_running(url, name)

    assert requests.delete(f"{url}/connectors/{name}", timeout=60).status_code == 204
    assert requests.get(f"{url}/connectors/{name}", timeout=10).status_code == 404
    assert name not in requests.get(f"{url}/connectors", timeout=10).json()


def test_put_config_creates_with_201(connect_worker: ConnectServer, topic: str, sqlite_db: Path,
                                     connector_name: str, registry) -> None:
    url = connect_worker.url
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    created = requests.put(f"{url}/connectors/{connector_name}/config", json=config, timeout=30)
    assert created.status_code == 201 and created.json()["config"]["name"] == connector_name
    assert requests.put(f"{url}/connectors/{connector_name}/config", json=config, timeout=60).status_code == 200
    assert requests.delete(f"{url}/connectors/{connector_name}", timeout=60).status_code == 204


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error_code"] == status and isinstance(body["message"], str) and body["message"]
    return body["message"]


def test_every_error_code(connect_worker: ConnectServer, topic: str, sqlite_db: Path, connector_name: str,
                          registry) -> None:
    url = connect_worker.url
    config = sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url)
    # 404: unknown connector on every per-connector endpoint, unknown task, unknown path, unknown plugin
    for method, path in [("GET", ""), ("GET", "/config"), ("GET", "/status"), ("GET", "/tasks"),
                         ("GET", "/tasks/0/status"), ("GET", "/topics"), ("GET", "/offsets"), ("PUT", "/pause"),
                         ("PUT", "/resume"), ("PUT", "/stop"), ("POST", "/restart"), ("POST", "/tasks/0/restart"),
                         ("DELETE", "")]:
        assert "not found" in _error(requests.request(method, f"{url}/connectors/nope{path}", timeout=10), 404)
    _error(requests.get(f"{url}/no/such/path", timeout=10), 404)
    _error(requests.put(f"{url}/connector-plugins/NoSuchConnector/config/validate", json=config, timeout=10), 404)
    # 405: a known path with a method it does not serve
    _error(requests.delete(f"{url}/connectors", timeout=10), 405)
    _error(requests.post(f"{url}/connectors/{connector_name}/status", timeout=10), 405)
    # 415: a body that is not declared as JSON
    _error(requests.post(f"{url}/connectors", data="name=x", headers={"Content-Type": "application/x-www-form-urlencoded"},
                         timeout=10), 415)
    # 400: malformed JSON, wrong shapes, an invalid config listing every error, bad query booleans
    _error(requests.post(f"{url}/connectors", data="{not json", headers=JSON, timeout=10), 400)
    _error(requests.post(f"{url}/connectors", json=[1, 2], timeout=10), 400)
    _error(requests.post(f"{url}/connectors", json={"config": config}, timeout=10), 400)
    _error(requests.post(f"{url}/connectors", json={"name": "x", "config": {"a": {"nested": 1}}}, timeout=10), 400)
    bad = {**config, "insert.mode": "merge", "tasks.max": "zero", "conection.url": "typo"}
    message = _error(requests.post(f"{url}/connectors", json={"name": connector_name, "config": bad}, timeout=10), 400)
    assert "3 error(s)" in message and "insert.mode" in message and "tasks.max" in message and "conection.url" in message
    _error(requests.put(f"{url}/connectors/{connector_name}/config", json={**config, "name": "other"}, timeout=10), 400)
    _error(requests.post(f"{url}/connectors", json={"name": "a/b", "config": config}, timeout=10), 400)
    # 409: creating what exists
    assert requests.post(f"{url}/connectors", json={"name": connector_name, "config": config}, timeout=30).status_code == 201
    _error(requests.post(f"{url}/connectors", json={"name": connector_name, "config": config}, timeout=10), 409)
    _error(requests.post(f"{url}/connectors/{connector_name}/restart?includeTasks=maybe", timeout=10), 400)
    _error(requests.get(f"{url}/connectors/{connector_name}/tasks/7/status", timeout=10), 404)
    assert requests.delete(f"{url}/connectors/{connector_name}", timeout=60).status_code == 204


def test_validate_reports_bad_and_unknown_keys(connect_worker: ConnectServer, topic: str, sqlite_db: Path,
                                               registry) -> None:
    url = connect_worker.url
    config = {**sqlite_sink_config(topic=topic, db=sqlite_db, registry_url=registry.url), "name": "validated"}
    good = requests.put(f"{url}/connector-plugins/JdbcSinkConnector/config/validate", json=config, timeout=10)
    assert good.status_code == 200 and good.json()["error_count"] == 0
    assert good.json()["name"] == "io.confluent.connect.jdbc.JdbcSinkConnector"

    bad = {**config, "pk.mode": "sometimes", "conection.url": "jdbc:sqlite:x.db"}
    del bad["connection.url"]
    report = requests.put(f"{url}/connector-plugins/io.confluent.connect.jdbc.JdbcSinkConnector/config/validate",
                          json=bad, timeout=10).json()
    errors = {c["value"]["name"]: c["value"]["errors"] for c in report["configs"] if c["value"]["errors"]}
    assert report["error_count"] == 3 and set(errors) == {"pk.mode", "conection.url", "connection.url"}
    assert "none, kafka, record_key, record_value" in errors["pk.mode"][0]
    assert "Unknown configuration key" in errors["conection.url"][0]
    assert "Missing required configuration" in errors["connection.url"][0]
    mismatch = requests.put(f"{url}/connector-plugins/CassandraSinkConnector/config/validate", json=config, timeout=10)
    _error(mismatch, 400)


def test_a_non_retriable_store_error_fails_the_task_and_restart_only_failed_recovers(
        connect_worker: ConnectServer, broker, topic: str, tmp_path: Path, connector_name: str, registry) -> None:
    """The table is missing (auto.create=false): FAILED with the trace; create it, restart failed tasks, rows land."""
    from fraudpipe import contracts
    from fraudpipe.store.sqlite import SqliteStore
    from tests.fixtures.connect import produce_transactions, register_schema, table_ids, transaction

    url, db = connect_worker.url, tmp_path / "late.db"
    schema_id = register_schema(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    config = sqlite_sink_config(topic=topic, db=db, registry_url=registry.url)
    assert requests.put(f"{url}/connectors/{connector_name}/config", json=config, timeout=30).status_code == 201
    produce_transactions(broker.bootstrap_servers, topic, schema_id, [transaction(i, run="late") for i in range(10)])

    def task_failed() -> dict | None:
        status = requests.get(f"{url}/connectors/{connector_name}/status", timeout=10).json()
        return status if status["tasks"] and status["tasks"][0]["state"] == "FAILED" else None

    status = wait_for(task_failed, what="task FAILED on the missing table")
    assert "auto.create is disabled" in status["tasks"][0]["trace"]
    SqliteStore(db).close()  # the operator fixes the cause
    restarted = requests.post(f"{url}/connectors/{connector_name}/restart?includeTasks=true&onlyFailed=TRUE", timeout=60)
    assert restarted.status_code == 202 and restarted.json()["tasks"][0]["state"] == "RESTARTING"
    wait_running(url, connector_name)
    wait_for(lambda: len(table_ids(db)) == 10, what="rows after the restart")
    assert requests.delete(f"{url}/connectors/{connector_name}", timeout=60).status_code == 204

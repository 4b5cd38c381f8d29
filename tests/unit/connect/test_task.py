"""The task runtime's retry rule: retriable store/registry errors back off and retry, others fail."""
from __future__ import annotations

import pytest

from fraudpipe.connect.converters import RegistryUnavailableError
from fraudpipe.connect.jdbc_sqlite import JdbcSinkConnector
from fraudpipe.connect.task import SinkTask, TaskSettings, _Stopping
from fraudpipe.errors import StoreError


def idle_task(tmp_path) -> SinkTask:
    config = {"name": "t", "connector.class": "JdbcSinkConnector", "topics": "x",
              "connection.url": f"jdbc:sqlite:{tmp_path / 'db'}",
              "key.converter": "org.apache.kafka.connect.storage.StringConverter",
              "value.converter": "org.apache.kafka.connect.json.JsonConverter"}
    values = JdbcSinkConnector.validate(config).values
    return SinkTask(connector="t", task_id=0, plugin=JdbcSinkConnector, values=values, config=config,
                    settings=TaskSettings(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=1, retry_backoff_max_ms=4),
                    on_status=lambda *a: None, on_offsets=lambda o: None)


def flaky(failures: list[Exception]):
    calls = []

    def call(argument: object) -> object:
        calls.append(argument)
        if failures:
            raise failures.pop(0)
        return ("done", argument)

    return call, calls


def test_retriable_errors_are_retried_until_success(tmp_path) -> None:
    task = idle_task(tmp_path)
    call, calls = flaky([StoreError("busy", retriable=True), RegistryUnavailableError("down"),
                         StoreError("busy", retriable=True)])
    assert task._retrying(call, "batch") == ("done", "batch")
    assert calls == ["batch"] * 4


def test_non_retriable_errors_go_straight_through(tmp_path) -> None:
    task = idle_task(tmp_path)
    call, calls = flaky([StoreError("no such table", retriable=False)])
    with pytest.raises(StoreError, match="no such table"):
        task._retrying(call, "batch")
    assert calls == ["batch"]


def test_stopping_ends_a_retry_loop(tmp_path) -> None:
    task = idle_task(tmp_path)
    failing, calls = flaky([StoreError("busy", retriable=True)] * 1000)

    def call(argument: object) -> object:
        if len(calls) == 2:
            task.stop()  # asked to stop while the third attempt is failing
        return failing(argument)

    with pytest.raises(_Stopping):
        task._retrying(call, "batch")
    assert calls == ["batch"] * 3  # no attempt after the stop, and the loop did not run to exhaustion

"""The herder: connectors, their target states and tasks, behind the operations the REST API exposes.

Every change is written to WorkerState first, then applied to the running tasks, so a
worker killed at any point comes back (start()) with the same connectors in the same
target states, and their tasks resume from the offsets committed in Kafka.
"""
from __future__ import annotations

import logging
import re
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fraudpipe.connect.converters import AVRO_CONVERTER, REGISTRY_URL_KEY, STRING_CONVERTER
from fraudpipe.connect.plugin import SinkPlugin, effective_config
from fraudpipe.connect.plugins import all_plugins, find_plugin
from fraudpipe.connect.state import PAUSED as TARGET_PAUSED
from fraudpipe.connect.state import STARTED, STOPPED as TARGET_STOPPED
from fraudpipe.connect.state import WorkerState
from fraudpipe.connect.task import FAILED, PAUSED, RESTARTING, RUNNING, STOPPED, UNASSIGNED, SinkTask, TaskSettings
from fraudpipe.connect.topics import TopicWatch
from fraudpipe.errors import ConnectError, ConnectorConfigError

log = logging.getLogger(__name__)
VERSION = "3.5.0"
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass
class _Connector:
    """A connector as the herder holds it: user config, target state, live tasks and their states."""

    name: str
    config: dict[str, str]
    target: str
    plugin: type[SinkPlugin] | None = None
    state: str = UNASSIGNED
    trace: str | None = None
    tasks: dict[int, SinkTask] = field(default_factory=dict)
    task_states: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)


def check_name(name: Any) -> str:
    """A connector name Connect would accept (and that fits in a URL path segment)."""
    if not isinstance(name, str) or not name.strip():
        raise ConnectError("Connector name is null or empty", http_status=400)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConnectError("Connector name is not valid UTF-8 text", http_status=400) from None
    if _BAD_NAME.search(name) or len(name) > 240:
        raise ConnectError("Connector name contains illegal characters (control characters, '/' or '\\') or is too long",
                           http_status=400)
    return name


def normalize_config(config: Any) -> dict[str, str]:
    """A connector config from JSON: an object of scalars, numbers and booleans as strings (as Jackson reads them)."""
    if not isinstance(config, dict):
        raise ConnectError("connector config must be a JSON object of string keys and values", http_status=400)
    normalized: dict[str, str] = {}
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, bool):
            normalized[key] = str(value).lower()
        elif isinstance(value, (str, int, float)):
            normalized[key] = str(value)
        else:
            raise ConnectError(f"config value of {key!r} must be a string, number or boolean", http_status=400)
    return normalized


class Worker:
    """Runs sink connectors; all public methods are thread-safe and raise ConnectError with an HTTP status."""

    def __init__(self, *, data_dir: str | Path, settings: TaskSettings, registry_url: str, worker_id: str) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.defaults = {"key.converter": STRING_CONVERTER, "value.converter": AVRO_CONVERTER,
                         f"value.converter.{REGISTRY_URL_KEY}": registry_url}
        self._state = WorkerState(data_dir)
        self._lock = threading.RLock()
        self._connectors: dict[str, _Connector] = {}
        self._topic_watch = TopicWatch(settings.bootstrap_servers)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Bring back every stored connector in its stored target state."""
        with self._lock:
            for name, config, target in self._state.connectors():
                connector = self._connectors[name] = _Connector(name, config, target)
                self._start_connector(connector)

    def stop(self) -> None:
        with self._lock:
            connectors = list(self._connectors.values())
        for connector in connectors:
            self._stop_tasks(connector)
        self._state.close()

    # --- reads --------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._connectors)

    def _get(self, name: str) -> _Connector:
        connector = self._connectors.get(name)
        if connector is None:
            raise ConnectError(f"Connector {name} not found", http_status=404)
        return connector

    def info(self, name: str) -> dict[str, Any]:
        with self._lock:
            connector = self._get(name)
            return {"name": name, "config": dict(connector.config), "type": "sink",
                    "tasks": [{"connector": name, "task": i} for i in sorted(self._task_ids(connector))]}

    def config(self, name: str) -> dict[str, str]:
        with self._lock:
            return dict(self._get(name).config)

    def _task_ids(self, connector: _Connector) -> list[int]:
        if connector.plugin is None or connector.target == TARGET_STOPPED:
            return []
        return list(range(int(connector.config.get("tasks.max", "1"))))

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            connector = self._get(name)
            state = connector.state
            if state not in (FAILED, RESTARTING):
                state = {TARGET_PAUSED: PAUSED, TARGET_STOPPED: STOPPED}.get(connector.target, RUNNING)
            body: dict[str, Any] = {"name": name, "connector": {"state": state, "worker_id": self.worker_id},
                                    "tasks": [self._task_status(connector, i) for i in self._task_ids(connector)],
                                    "type": "sink"}
            if connector.trace and state == FAILED:
                body["connector"]["trace"] = connector.trace
            topics = self._listed_topics(connector)
        warnings = self._topic_watch.warnings(topics)  # outside the lock: it may ask the broker
        if warnings:
            body["warnings"] = warnings
        return body

    def warnings(self, name: str) -> list[str]:
        """Hints about a connector's config that are not errors: topics that do not exist."""
        with self._lock:
            topics = self._listed_topics(self._get(name))
        return self._topic_watch.warnings(topics)

    @staticmethod
    def _listed_topics(connector: _Connector) -> list[str]:
        """The topics a connector names in `topics` (a regex names none)."""
        return [t.strip() for t in connector.config.get("topics", "").split(",") if t.strip()]

    def _task_status(self, connector: _Connector, task_id: int) -> dict[str, Any]:
        state, trace = connector.task_states.get(task_id, (UNASSIGNED, None))
        if connector.target == TARGET_PAUSED and state == RUNNING:
            state = PAUSED
        status = {"id": task_id, "state": state, "worker_id": self.worker_id}
        if trace and state == FAILED:
            status["trace"] = trace
        return status

    def task_status(self, name: str, task_id: int) -> dict[str, Any]:
        with self._lock:
            connector = self._get(name)
            if task_id not in self._task_ids(connector):
                raise ConnectError(f"Task {name}-{task_id} not found", http_status=404)
            return self._task_status(connector, task_id)

    def tasks(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            connector = self._get(name)
            config = effective_config(connector.config, self.defaults)
            task_class = connector.plugin.class_name.replace("Connector", "Task") if connector.plugin else ""
            return [{"id": {"connector": name, "task": i}, "config": {**config, "task.class": task_class}}
                    for i in self._task_ids(connector)]

    def topics(self, name: str) -> dict[str, Any]:
        with self._lock:
            connector = self._get(name)
            seen = set(connector.topics)
            for task in connector.tasks.values():
                seen |= task.topics_seen
            return {name: {"topics": sorted(seen)}}

    def reset_topics(self, name: str) -> None:
        with self._lock:
            connector = self._get(name)
            connector.topics.clear()
            for task in connector.tasks.values():
                task.topics_seen.clear()

    def offsets(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._get(name)
        return {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": partition},
                             "offset": {"kafka_offset": offset}}
                            for (topic, partition), offset in self._state.offsets(name).items()]}

    # --- validation ---------------------------------------------------------------------
    def validate(self, plugin_name: str, config: Mapping[str, str]) -> dict[str, Any]:
        """Connect's ConfigInfos for a config: every key with its value and errors."""
        plugin = find_plugin(plugin_name)
        if plugin is None:
            raise ConnectError(f"Failed to find any class that implements Connector and which name matches {plugin_name}",
                               http_status=404)
        given = config.get("connector.class")
        if given is not None and find_plugin(given) is not plugin:
            raise ConnectError(f"Included connector type {given} does not match request type {plugin_name}", http_status=400)
        effective = effective_config({"connector.class": plugin.class_name, **config}, self.defaults)
        result = plugin.validate(effective)
        definition = plugin.config_def()
        groups = list(dict.fromkeys(key.group for key in definition.keys.values()))
        return {"name": plugin.class_name, "error_count": result.error_count, "groups": groups,
                "configs": definition.describe(result)}

    def _checked(self, name: str, config: dict[str, str]) -> type[SinkPlugin]:
        class_name = config.get("connector.class")
        if not class_name:
            raise ConnectorConfigError("Connector config is missing connector.class",
                                       errors={"connector.class": ["Missing required configuration"]})
        plugin = find_plugin(class_name)
        if plugin is None:
            known = ", ".join(all_plugins())
            raise ConnectorConfigError(f"Failed to find any class that implements Connector and which name matches "
                                       f"{class_name}; available: {known}", errors={"connector.class": ["not found"]})
        result = plugin.validate(effective_config(config, self.defaults))
        if result.errors:
            lines = "\n".join(result.messages())
            raise ConnectorConfigError(
                f"Connector configuration is invalid and contains the following {result.error_count} error(s):\n{lines}\n"
                f"You can also find the above list of errors at the endpoint "
                f"`/connector-plugins/{plugin.class_name}/config/validate`", errors=result.errors)
        return plugin

    # --- writes -------------------------------------------------------------------------
    def put(self, name: str, config: dict[str, str], *, create_only: bool) -> bool:
        """Create or reconfigure a connector; True when it was created. 409 when create_only and it exists."""
        check_name(name)
        if config.get("name", name) != name:
            raise ConnectError(f"Connector name configuration ({config['name']}) doesn't match connector name in the URL ({name})",
                               http_status=400)
        config = {**config, "name": name}
        self._checked(name, config)
        with self._lock:
            existing = self._connectors.get(name)
            if existing is not None and create_only:
                raise ConnectError(f"Connector {name} already exists", http_status=409)
            target = existing.target if existing is not None else STARTED
            self._state.put_connector(name, config, target)
            if existing is not None:
                self._stop_tasks(existing)
            connector = self._connectors[name] = _Connector(name, config, target)
            self._start_connector(connector)
            return existing is None

    def delete(self, name: str) -> None:
        with self._lock:
            connector = self._get(name)
            del self._connectors[name]
            self._state.delete_connector(name)
        self._stop_tasks(connector)

    def pause(self, name: str) -> None:
        with self._lock:
            connector = self._get(name)
            self._state.set_target(name, TARGET_PAUSED)
            connector.target = TARGET_PAUSED
            if not connector.tasks:
                self._start_connector(connector)  # from STOPPED: tasks come up paused
            for task in connector.tasks.values():
                task.paused.set()

    def resume(self, name: str) -> None:
        with self._lock:
            connector = self._get(name)
            self._state.set_target(name, STARTED)
            connector.target = STARTED
            if not connector.tasks:
                self._start_connector(connector)
            for task in connector.tasks.values():
                task.paused.clear()

    def stop_connector(self, name: str) -> None:
        with self._lock:
            connector = self._get(name)
            self._state.set_target(name, TARGET_STOPPED)
            connector.target = TARGET_STOPPED
        self._stop_tasks(connector)
        with self._lock:
            connector.task_states.clear()

    def restart(self, name: str, *, include_tasks: bool, only_failed: bool) -> dict[str, Any] | None:
        """Restart the connector and/or its tasks (KIP-745); the status with RESTARTING marks, or None for 204."""
        with self._lock:
            connector = self._get(name)
            restart_connector = not only_failed or connector.state == FAILED
            task_ids = [i for i in self._task_ids(connector)
                        if include_tasks and (not only_failed or connector.task_states.get(i, ("",))[0] == FAILED)]
            if not include_tasks and not only_failed:
                self._restart_connector(connector)
                return None
            if restart_connector:
                connector.state = RESTARTING
            for task_id in task_ids:
                connector.task_states[task_id] = (RESTARTING, None)
            snapshot = self.status(name)
            if restart_connector and self._restart_connector(connector):
                return snapshot  # a failed connector came back with all its tasks
            for task_id in task_ids:
                self._restart_task(connector, task_id)
            return snapshot

    def restart_task(self, name: str, task_id: int) -> None:
        with self._lock:
            connector = self._get(name)
            if task_id not in self._task_ids(connector):
                raise ConnectError(f"Task {name}-{task_id} not found", http_status=404)
            self._restart_task(connector, task_id)

    # --- tasks --------------------------------------------------------------------------
    def _restart_connector(self, connector: _Connector) -> bool:
        """Re-check the config; a connector that had failed starts all its tasks again (returns True)."""
        if connector.plugin is None or connector.state == FAILED:
            self._stop_tasks(connector)
            self._start_connector(connector)
            return True
        connector.state, connector.trace = RUNNING, None
        return False

    def _start_connector(self, connector: _Connector) -> None:
        try:
            connector.plugin = self._checked(connector.name, connector.config)
        except ConnectError as exc:
            connector.plugin, connector.state = None, FAILED
            connector.trace = "".join(traceback.format_exception(exc))
            return
        connector.state, connector.trace = RUNNING, None
        if connector.target == TARGET_STOPPED:
            return
        for task_id in self._task_ids(connector):
            self._start_task(connector, task_id)

    def _start_task(self, connector: _Connector, task_id: int) -> None:
        assert connector.plugin is not None
        config = effective_config(connector.config, self.defaults)
        values = connector.plugin.validate(config).values
        name = connector.name

        holder: list[SinkTask] = []

        def on_status(tid: int, state: str, trace: str | None) -> None:
            # no lock: the herder may hold it while joining this very task; a dict store is atomic,
            # and a stopped task's late report must not overwrite its replacement's state
            if self._connectors.get(name) is connector and connector.tasks.get(tid) is holder[0]:
                connector.task_states[tid] = (state, trace)

        def on_offsets(offsets: dict[tuple[str, int], int]) -> None:
            if self._connectors.get(name) is connector:
                self._state.save_offsets(name, offsets)

        task = SinkTask(connector=name, task_id=task_id, plugin=connector.plugin, values=values, config=config,
                        settings=self.settings, on_status=on_status, on_offsets=on_offsets)
        holder.append(task)
        if connector.target == TARGET_PAUSED:
            task.paused.set()
        connector.tasks[task_id] = task
        connector.task_states[task_id] = (UNASSIGNED, None)
        task.start()

    def _restart_task(self, connector: _Connector, task_id: int) -> None:
        old = connector.tasks.pop(task_id, None)
        if old is not None:
            connector.topics |= old.topics_seen
            old.stop()
            old.join(timeout=60)
        self._start_task(connector, task_id)

    def _stop_tasks(self, connector: _Connector) -> None:
        tasks = list(connector.tasks.values())
        connector.tasks.clear()
        for task in tasks:
            connector.topics |= task.topics_seen
            task.stop()
        for task in tasks:
            task.join(timeout=60)

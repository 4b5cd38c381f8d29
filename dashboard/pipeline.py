"""The Pipeline page's probes: registry, Connect, Kafka and the stream job, each bounded.

Every probe answers {"component", "up", "error", ...details} and never raises: when a
component is down the page names it instead of failing. The four probes run in
parallel with short timeouts, and one snapshot is reused for `probe_cache_seconds` so
a page refreshing every few seconds does not hammer the services.
"""
from __future__ import annotations

import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

from fraudpipe import contracts
from fraudpipe.config import Config
from fraudpipe.store.base import Store
from dashboard.params import MINUTE_MS, now_ms

MAX_SUBJECTS = 50
MAX_GROUPS = 20
PROBE_GROUP = "fraudpipe-dashboard-probe"  # never subscribes; only reads watermarks


def _down(component: str, error: object) -> dict[str, Any]:
    return {"component": component, "up": False, "error": str(error)}


def _get_json(session: requests.Session, url: str, timeout: float) -> Any:
    response = session.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def probe_registry(base_url: str, timeout: float) -> dict[str, Any]:
    """Subjects and their versions from a Confluent-compatible Schema Registry."""
    base = base_url.rstrip("/")
    try:
        with requests.Session() as session:
            subjects = _get_json(session, f"{base}/subjects", timeout)
            if not isinstance(subjects, list):
                raise ValueError(f"GET /subjects answered {type(subjects).__name__}, not a list")
            rows = []
            for subject in sorted(subjects)[:MAX_SUBJECTS]:
                quoted = urllib.parse.quote(str(subject), safe="")
                versions = _get_json(session, f"{base}/subjects/{quoted}/versions", timeout)
                latest = _get_json(session, f"{base}/subjects/{quoted}/versions/latest", timeout)
                rows.append(
                    {
                        "subject": subject,
                        "versions": versions,
                        "latest_version": latest.get("version"),
                        "latest_id": latest.get("id"),
                        "schema_type": latest.get("schemaType", "AVRO"),
                    }
                )
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return _down("schema registry", f"{base}: {exc}")
    return {"component": "schema registry", "up": True, "error": None, "url": base, "subjects": rows,
            "truncated": len(subjects) > MAX_SUBJECTS}


def probe_connect(base_url: str, timeout: float) -> dict[str, Any]:
    """Connectors with their connector and task states from the Kafka Connect REST API."""
    base = base_url.rstrip("/")
    try:
        with requests.Session() as session:
            body = _get_json(session, f"{base}/connectors?expand=status", timeout)
        if not isinstance(body, dict):
            raise ValueError(f"GET /connectors?expand=status answered {type(body).__name__}, not an object")
        connectors = []
        for name in sorted(body):
            status = (body[name] or {}).get("status") or {}
            tasks = status.get("tasks") or []
            connectors.append(
                {
                    "name": name,
                    "state": (status.get("connector") or {}).get("state", "UNKNOWN"),
                    "type": status.get("type"),
                    "tasks": [
                        {"id": t.get("id"), "state": t.get("state"), "trace": (t.get("trace") or "")[:2000] or None}
                        for t in tasks
                    ],
                }
            )
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return _down("kafka connect", f"{base}: {exc}")
    return {"component": "kafka connect", "up": True, "error": None, "url": base, "connectors": connectors}


def probe_kafka(bootstrap: str, timeout: float) -> dict[str, Any]:
    """Topics with partitions and end offsets, and each consumer group's lag per topic."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient

    quiet = {"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": max(100, int(timeout * 1000))}
    try:
        admin = AdminClient(quiet)
        metadata = admin.list_topics(timeout=timeout)
        topics = {
            name: sorted(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")
        }
        consumer = Consumer({**quiet, "group.id": PROBE_GROUP, "enable.auto.commit": False})
        try:
            ends: dict[tuple[str, int], int] = {}
            for name, partitions in topics.items():
                for p in partitions:
                    _low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout, cached=False)
                    ends[(name, p)] = high
        finally:
            consumer.close()
    except (KafkaException, RuntimeError) as exc:
        return _down("kafka", f"{bootstrap}: {exc}")

    groups: list[dict[str, Any]] = []
    groups_error = None
    try:
        listed = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout)
        ids = sorted(g.group_id for g in listed.valid if g.group_id != PROBE_GROUP)[:MAX_GROUPS]
        for group_id in ids:
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)], request_timeout=timeout)[group_id]
            committed = future.result(timeout=timeout).topic_partitions or []
            lag_by_topic: dict[str, int] = {}
            for tp in committed:
                if tp.offset < 0 or (tp.topic, tp.partition) not in ends:
                    continue
                lag_by_topic[tp.topic] = lag_by_topic.get(tp.topic, 0) + max(0, ends[(tp.topic, tp.partition)] - tp.offset)
            groups.append({"group": group_id, "lag": [{"topic": t, "lag": lag} for t, lag in sorted(lag_by_topic.items())]})
    except Exception as exc:  # noqa: BLE001 - group APIs differ between brokers; topics still show
        groups_error = f"consumer groups unavailable: {exc}"
    return {
        "component": "kafka",
        "up": True,
        "error": None,
        "bootstrap_servers": bootstrap,
        "topics": [
            {"topic": name, "partitions": len(parts), "end_offset": sum(ends[(name, p)] for p in parts)}
            for name, parts in sorted(topics.items())
        ],
        "groups": groups,
        "groups_error": groups_error,
    }


def probe_stream(store: Store, *, stale_seconds: int, now: int | None = None) -> dict[str, Any]:
    """The stream job's status from its newest batch: the stream_progress row it writes every
    micro-batch, or (a job from before that table) the newest metrics row it wrote."""
    now = now_ms() if now is None else now
    lookback = max(stale_seconds * 1000 * 10, 15 * MINUTE_MS)
    try:
        latest = store.stream_progress(contracts.STREAM_QUERY_NAME)
        if latest is None:
            rows = store.metric_rows(since_ms=now - lookback, until_ms=now + MINUTE_MS)
            latest = max(rows, key=lambda r: (r.get("updated_at") or 0, r.get("batch_id") or 0), default=None)
    except Exception as exc:  # noqa: BLE001 - the store may be Cassandra and down
        return _down("stream job", f"store unreadable: {exc}")
    if latest is None:
        return {"component": "stream job", "up": False, "error": f"no metrics batch in the last {lookback // MINUTE_MS} minutes",
                "status": "not running", "last_batch_at": None, "last_batch_id": None}
    last = latest.get("updated_at") or latest["minute"]
    age = max(0.0, (now - last) / 1000)
    up = age <= stale_seconds
    return {
        "component": "stream job",
        "up": up,
        "error": None if up else f"last batch {age:.0f} s ago (stale after {stale_seconds} s)",
        "status": "running" if up else "stalled",
        "last_batch_at": last,
        "last_batch_id": latest.get("batch_id"),
        "age_seconds": round(age, 1),
    }


def hide_deleted_connector_groups(kafka: dict[str, Any], connect: dict[str, Any]) -> dict[str, Any]:
    """Kafka's consumer groups without those of sink connectors Connect no longer has.

    Deleting a connector leaves its group `connect-<name>` and committed offsets in Kafka
    (as real Kafka Connect does, so a connector of the same name resumes); its lag then
    only grows. When Connect answers, such groups are not the pipeline's any more.
    """
    if not kafka.get("up") or not connect.get("up"):
        return kafka
    live = {contracts.connect_group(c["name"]) for c in connect["connectors"]}
    groups = [g for g in kafka["groups"]
              if not g["group"].startswith(contracts.CONNECT_GROUP_PREFIX) or g["group"] in live]
    return {**kafka, "groups": groups}


class PipelineProbe:
    """Runs the four probes in parallel and caches the snapshot for a short time."""

    def __init__(self, config: Config, store_getter: Callable[[], Store]) -> None:
        self._config = config
        self._store_getter = store_getter
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._taken = 0.0

    def snapshot(self) -> dict[str, Any]:
        ttl = self._config.dashboard.probe_cache_seconds
        with self._lock:  # one probe at a time; concurrent requests wait for its answer
            if self._snapshot is None or time.monotonic() - self._taken > ttl:
                self._snapshot = self._probe()
                self._taken = time.monotonic()
            return self._snapshot

    def _probe(self) -> dict[str, Any]:
        c = self._config
        timeout = c.dashboard.probe_timeout_seconds

        def stream() -> dict[str, Any]:
            try:
                store = self._store_getter()
            except Exception as exc:  # noqa: BLE001 - a store that cannot open is a down component here
                return _down("stream job", f"store unavailable: {exc}")
            return probe_stream(store, stale_seconds=c.dashboard.stream_stale_seconds)

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard-probe") as pool:
            futures = {
                "registry": pool.submit(probe_registry, c.schema_registry.url, timeout),
                "connect": pool.submit(probe_connect, c.connect.url, timeout),
                "kafka": pool.submit(probe_kafka, c.kafka.bootstrap_servers, timeout),
                "stream": pool.submit(stream),
            }
            result = {name: future.result() for name, future in futures.items()}
        result["kafka"] = hide_deleted_connector_groups(result["kafka"], result["connect"])
        result["down"] = [r["component"] for r in result.values() if not r["up"]]
        result["probed_at"] = now_ms()
        return result

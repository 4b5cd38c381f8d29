"""Which of a sink connector's topics do not exist: a hint for the REST answers, never an error.

Kafka Connect accepts a connector whose topic does not exist yet (the producer may come
later) and starts reading it as soon as it appears. A typo in the topic name looks the
same, so the status and the create/update answers carry a `warnings` list naming the
missing topics. The broker's topic list is asked at most once per `ttl` seconds.
"""
from __future__ import annotations

import threading
import time
from typing import Iterable

# How often a sink task's consumer refreshes its metadata (librdkafka's default is 5 min):
# a subscribed topic created after the connector is picked up within this time.
METADATA_REFRESH_MS = 2000


class TopicWatch:
    """Answers which topics are missing from the broker, from a short-lived cache of its topic list."""

    def __init__(self, bootstrap_servers: str, *, ttl: float = 2.0, timeout: float = 2.0) -> None:
        self._bootstrap = bootstrap_servers
        self._ttl, self._timeout = ttl, timeout
        self._lock = threading.Lock()
        self._admin = None
        self._known: frozenset[str] | None = None
        self._taken: float | None = None

    def _topics(self) -> frozenset[str] | None:
        """The broker's topics, or None when it did not answer (also cached: no hint rather than a wrong one)."""
        with self._lock:
            if self._taken is None or time.monotonic() - self._taken > self._ttl:
                from confluent_kafka import KafkaException
                from confluent_kafka.admin import AdminClient

                if self._admin is None:
                    self._admin = AdminClient({"bootstrap.servers": self._bootstrap, "log_level": 0})
                try:  # every topic: asking for one by name may auto-create it
                    self._known = frozenset(self._admin.list_topics(timeout=self._timeout).topics)
                except KafkaException:
                    self._known = None
                self._taken = time.monotonic()
            return self._known

    def missing(self, topics: Iterable[str]) -> list[str]:
        wanted = sorted(set(topics))
        if not wanted:
            return []
        known = self._topics()
        return [] if known is None else [t for t in wanted if t not in known]

    def warnings(self, topics: Iterable[str]) -> list[str]:
        """One line per missing topic, for the `warnings` of a connector's REST answers."""
        return [f"topic {t!r} does not exist (yet): the connector will read it once it is created; "
                "check the name in `topics` if nothing arrives" for t in self.missing(topics)]

"""The one dead-letter producer: what the stream sources and the Connect sink tasks send bad records with.

A dead letter that is not delivered is a lost record, so every delivery is checked: the
delivery callback collects failures, and flush() raises the caller's error (StreamError,
TaskFailedError ...) when one failed or when the timeout passes with letters still queued.
The headers are the caller's (the stream's fraudpipe.error.*, Connect's __connect.errors.*).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from fraudpipe.errors import FraudpipeError

Headers = Sequence[tuple[str, bytes]]
ErrorType = Callable[[str], FraudpipeError]

# One copy of every letter, in order per partition; dead letters are rare, so a small linger is enough.
PRODUCER_CONFIG = {"linger.ms": 5, "acks": "all", "enable.idempotence": False}
FLUSH_SLICE_S = 1.0  # how often a flush looks at its `stop` event


class DeadLetterProducer:
    """Produces records to one dead-letter topic; created lazily, so a clean run opens no producer."""

    def __init__(self, bootstrap_servers: str, topic: str, *, error: ErrorType) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._error = error
        self._producer: Any = None
        self._failures: list[str] = []
        self.sent = 0

    def send(self, *, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        """Queue one dead letter; a full local queue waits for deliveries to drain."""
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer({"bootstrap.servers": self.bootstrap_servers, **PRODUCER_CONFIG})
        while True:
            try:
                self._producer.produce(self.topic, key=key, value=value, headers=list(headers),
                                       on_delivery=self._delivered)
                break
            except BufferError:
                self._producer.poll(0.5)
        self._producer.poll(0)
        self.sent += 1

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._failures.append(str(error))

    def flush(self, timeout: float = 30.0, *, stop: threading.Event | None = None) -> bool:
        """Wait until every queued letter is delivered: True when they are, False when `stop` was set first.

        Raises the caller's error when a delivery failed or `timeout` seconds passed with
        letters undelivered (math.inf: wait until delivered or stopped).
        """
        if self._producer is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            remaining = self._producer.flush(min(FLUSH_SLICE_S, max(deadline - time.monotonic(), 0)))
            if remaining == 0 or time.monotonic() >= deadline:
                break
            if stop is not None and stop.is_set():
                return False
        failures, self._failures = self._failures, []
        if remaining or failures:
            count = f"{remaining} undelivered after {timeout:g}s" if remaining else f"{len(failures)} failed"
            raise self._error(f"could not deliver dead letters to {self.topic} ({count}): {failures[:3]}")
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, best effort, and drop the producer (its threads go with it)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout)


__all__ = ["DeadLetterProducer", "PRODUCER_CONFIG"]

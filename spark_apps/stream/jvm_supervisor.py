"""What the JVM Kafka source needs around a running query: DLQ forwarding and re-planning on a new schema id.

- DeadLetterForwarder wraps the foreachBatch writer. Once the writer has run the micro-batch,
  the batch's observed metrics hold the (partition, offset, reason) of its undecodable
  records; they are fetched from Kafka and produced to the DLQ topic with the headers the
  Python source writes. A replayed batch sends them again (at least once, as the Python
  source), and the metrics count them once, through the carrier rows.
- SupervisedQuery runs the query and, when it stops on a writer schema id its plan did not
  know (jvm_source.UNKNOWN_ID_MARKER), looks the id up, re-plans and starts again on the
  same checkpoint: Spark replays the failed batch, so nothing is lost or counted twice.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable

from fraudpipe.dead_letters import DeadLetterProducer
from fraudpipe.errors import StreamError
from spark_apps.stream import jvm_source
from spark_apps.stream import decode as sd

log = logging.getLogger("fraudpipe.stream")

MAX_REPLANS = 50  # distinct unknown ids one run may meet before it gives up


class DeadLetterForwarder:
    """foreachBatch(writer) plus the DLQ: wraps any callable(batch, batch_id)."""

    def __init__(self, writer: Callable[[Any, int], None], *, bootstrap_servers: str, topic: str,
                 dlq_topic: str) -> None:
        self.writer = writer
        self._bootstrap, self._topic, self._dlq_topic = bootstrap_servers, topic, dlq_topic
        self.forwarded = 0
        self.query: Any = None  # the running StreamingQuery, set right after it starts

    def __getattr__(self, name: str) -> Any:  # the wrapped writer's state (timings, last_model_version ...)
        if name == "writer":
            raise AttributeError(name)
        return getattr(self.writer, name)

    def __call__(self, batch: Any, batch_id: int) -> None:
        self.writer(batch, batch_id)  # runs the micro-batch, which fills the observed metrics
        deadline = time.monotonic() + 30
        while self.query is None and time.monotonic() < deadline:  # the first batch can beat start()'s return
            time.sleep(0.05)
        if self.query is None:
            raise StreamError("the DLQ forwarder was never given its query")
        dead = jvm_source.observed_dead_letters(self.query)
        if dead:
            self.forward(dead)

    def forward(self, dead: list[tuple[int, int, str]]) -> None:
        from confluent_kafka import Consumer, TopicPartition

        wanted = {(p, o): reason for p, o, reason in dead}
        consumer = Consumer({"bootstrap.servers": self._bootstrap, "group.id": "fraudpipe-jvm-dlq",
                             "enable.auto.commit": False, "enable.partition.eof": True})
        dlq = DeadLetterProducer(self._bootstrap, self._dlq_topic, error=StreamError)
        try:
            for partition in sorted({p for p, _ in wanted}):
                offsets = sorted(o for p, o in wanted if p == partition)
                consumer.assign([TopicPartition(self._topic, partition, offsets[0])])
                remaining = set(offsets)
                deadline = time.monotonic() + 30
                while remaining and time.monotonic() < deadline:
                    for message in consumer.consume(500, timeout=0.5):
                        if message.error() is not None or message.offset() not in remaining:
                            continue
                        remaining.discard(message.offset())
                        reason = wanted[(partition, message.offset())]
                        headers = [*(message.headers() or []),
                                   *sd.dlq_headers(reason, error_class(reason), topic=self._topic,
                                                   partition=partition, offset=message.offset())]
                        dlq.send(key=message.key(), value=message.value(), headers=headers)
                        self.forwarded += 1
                if remaining:
                    raise StreamError(f"{self._topic}[{partition}]: could not read undecodable records at "
                                      f"{sorted(remaining)[:5]} to dead-letter them")
            dlq.flush(30)
        finally:
            consumer.close()
            dlq.close()


def error_class(reason: str) -> str:
    """The Python source's exception class name for the same kind of bad record."""
    return "UnknownSchemaIdError" if "not a transaction schema" in reason else "SerializationError"


def unknown_schema_id(exc: BaseException) -> int | None:
    """The id a query stopped on because its plan did not know it, or None for any other failure."""
    match = re.search(re.escape(jvm_source.UNKNOWN_ID_MARKER) + r"(\d+)", str(exc))
    return int(match.group(1)) if match else None


class SupervisedQuery:
    """A StreamingQuery that re-plans itself on new writer schema ids; the StreamingQuery calls tests use."""

    def __init__(self, start: Callable[[jvm_source.WriterSchemas], Any],
                 replan: Callable[[jvm_source.WriterSchemas, int], jvm_source.WriterSchemas],
                 schemas: jvm_source.WriterSchemas) -> None:
        self._start, self._replan = start, replan
        self.schemas = schemas
        self.replans = 0
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._done = threading.Event()
        self.query = start(schemas)
        self._thread = threading.Thread(target=self._watch, name="fraudpipe-jvm-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            while True:
                try:
                    self.query.awaitTermination()
                    return  # stopped
                except Exception as exc:  # StreamingQueryException: a new schema id, or a real failure
                    schema_id = unknown_schema_id(exc)
                    if self._stopping.is_set() or schema_id is None or self.replans >= MAX_REPLANS:
                        self._failure = exc
                        return
                    self.replans += 1
                    self.schemas = self._replan(self.schemas, schema_id)
                    log.warning("writer schema id %d appeared: re-planning the decoder (%d known)", schema_id,
                                len(self.schemas.known()))
                    self.query = self._start(self.schemas)
                    if self._stopping.is_set():
                        self.query.stop()
        except Exception as exc:  # noqa: BLE001 - a failed re-plan is the query's failure
            self._failure = exc
        finally:
            self._done.set()

    @property
    def isActive(self) -> bool:  # noqa: N802 - StreamingQuery's name
        return not self._done.is_set()

    def exception(self) -> BaseException | None:
        return self._failure

    @property
    def lastProgress(self) -> Any:  # noqa: N802
        return self.query.lastProgress

    @property
    def recentProgress(self) -> Any:  # noqa: N802
        return self.query.recentProgress

    def awaitTermination(self, timeout: float | None = None) -> bool:  # noqa: N802
        finished = self._done.wait(timeout)
        if self._failure is not None:
            raise self._failure
        return finished

    def stop(self) -> None:
        self._stopping.set()
        self.query.stop()
        self._done.wait(60)

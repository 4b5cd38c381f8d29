"""The sink task runtime: one thread and one consumer (group `connect-<name>`) per task.

Each loop consumes a batch, converts keys and values, lets the writer turn records
into rows, makes the batch durable, flushes dead letters, and only then commits the
offsets (at-least-once; the writers upsert by key, so a replay after a crash changes
nothing). `handle_bad_record` is the one place that decides dead-letter or fail.
"""
from __future__ import annotations

import logging
import math
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from fraudpipe.connect.converters import RegistryUnavailableError, make_converter
from fraudpipe.connect.plugin import TOLERANCE_ALL, BadRecordError, SinkPlugin, SinkRecord, converter_settings
from fraudpipe.connect.topics import METADATA_REFRESH_MS
from fraudpipe.connect.transforms import TIMESTAMP_CONVERTER_VALUE, Transform, apply_all, parse_transforms
from fraudpipe.dead_letters import DeadLetterProducer
from fraudpipe.errors import ConnectError, FraudpipeError, SerializationError, StoreError

log = logging.getLogger(__name__)

UNASSIGNED, RUNNING, PAUSED, FAILED, RESTARTING, STOPPED = (
    "UNASSIGNED", "RUNNING", "PAUSED", "FAILED", "RESTARTING", "STOPPED")
KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT = "KEY_CONVERTER", "VALUE_CONVERTER", "TASK_PUT"
TRANSFORMATION = "TRANSFORMATION"
ERROR_HEADER = "__connect.errors."

StatusCallback = Callable[[int, str, "str | None"], None]
OffsetsCallback = Callable[[dict[tuple[str, int], int]], None]


class TaskFailedError(ConnectError):
    """The task cannot go on (errors.tolerance=none, a non-retriable write error...)."""


class _Stopping(Exception):
    """Raised inside a retry loop when the task is asked to stop."""


@dataclass(frozen=True)
class TaskSettings:
    """What a task needs from the worker: where Kafka is and how to batch and back off."""

    bootstrap_servers: str
    session_timeout_ms: int = 6000
    batch_size: int = 5000
    poll_timeout_ms: int = 500
    retry_backoff_ms: int = 500
    retry_backoff_max_ms: int = 10000


def error_headers(message: Message, *, connector: str, task_id: int, stage: str, class_name: str,
                  exc: BaseException) -> list[tuple[str, bytes]]:
    """Kafka Connect's `__connect.errors.*` DLQ headers (KIP-298) for one failed record."""
    trace = "".join(traceback.format_exception(exc))
    fields = {
        "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
        "connector.name": connector, "task.id": task_id, "stage": stage, "class.name": class_name,
        "exception.class.name": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception.message": str(exc), "exception.stacktrace": trace,
    }
    return [(ERROR_HEADER + name, str(value).encode()) for name, value in fields.items()]


class SinkTask(threading.Thread):
    """Runs one task of a sink connector until stop(); reports its state through `on_status`."""

    def __init__(self, *, connector: str, task_id: int, plugin: type[SinkPlugin], values: Mapping[str, Any],
                 config: Mapping[str, str], settings: TaskSettings, on_status: StatusCallback,
                 on_offsets: OffsetsCallback) -> None:
        super().__init__(name=f"connect-{connector}-{task_id}", daemon=True)
        self.connector, self.task_id = connector, task_id
        self._plugin, self._values, self._config, self._settings = plugin, values, config, settings
        self._on_status, self._on_offsets = on_status, on_offsets
        self._stop_event = threading.Event()
        self.paused = threading.Event()
        self.topics_seen: set[str] = set()
        self._dlq_topic: str = values["errors.deadletterqueue.topic.name"]
        self._dlq: DeadLetterProducer | None = None
        self._transforms: list[Transform] = []

    def stop(self) -> None:
        self._stop_event.set()

    # --- lifecycle ------------------------------------------------------------------
    def run(self) -> None:
        consumer = writer = None
        try:
            writer = self._plugin.open_writer(self._values, self._config)
            self._key = self._resilient(make_converter(self._config["key.converter"],
                                                       converter_settings(self._config, "key.converter")))
            self._value = self._resilient(make_converter(self._config["value.converter"],
                                                         converter_settings(self._config, "value.converter")))
            self._transforms = parse_transforms(self._config)
            if self._dlq_topic:
                # the real worker creates its DLQ topic too; 1 partition keeps dead letters in order
                ensure_topics(self._settings.bootstrap_servers, {self._dlq_topic: 1})
                self._dlq = DeadLetterProducer(self._settings.bootstrap_servers, self._dlq_topic, error=TaskFailedError)
            consumer = self._subscribe()
            self._on_status(self.task_id, PAUSED if self.paused.is_set() else RUNNING, None)
            self._loop(consumer, writer)
        except _Stopping:
            pass
        except Exception as exc:  # anything that ends the task is reported with its trace
            log.error("connector %s task %d failed: %s", self.connector, self.task_id, exc)
            self._on_status(self.task_id, FAILED, "".join(traceback.format_exception(exc)))
        finally:
            for closer in (consumer.close if consumer else None, writer.close if writer else None,
                           self._dlq.close if self._dlq else None):
                try:
                    if closer:
                        closer()
                except Exception as exc:  # best effort on the way out; the state is already reported
                    log.warning("connector %s task %d: close failed: %s", self.connector, self.task_id, exc)
            self._dlq = None  # librdkafka handles go with the thread, not with a later GC

    def _subscribe(self) -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": self._settings.bootstrap_servers,
            "group.id": contracts.connect_group(self.connector),
            "client.id": f"connector-consumer-{self.connector}-{self.task_id}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self._settings.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self._settings.session_timeout_ms // 6),
            # a topic created after the connector is found at the next refresh, not 5 minutes later
            "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
            **{k[len("consumer.override."):]: v for k, v in self._config.items() if k.startswith("consumer.override.")},
        })
        regex = self._values["topics.regex"]
        consumer.subscribe([f"^{regex}"] if regex else list(self._values["topics"]))
        return consumer

    def _loop(self, consumer: Consumer, writer: Any) -> None:
        timeout = self._settings.poll_timeout_ms / 1000
        was_paused = False
        while not self._stop_event.is_set():
            if self.paused.is_set():
                # keep the group membership while paused, as Connect does: poll with every partition paused
                consumer.pause(consumer.assignment())
                if not was_paused:
                    self._on_status(self.task_id, PAUSED, None)
                was_paused = True
                consumer.poll(min(timeout, 0.2))
                continue
            if was_paused:
                consumer.resume(consumer.assignment())
                self._on_status(self.task_id, RUNNING, None)
                was_paused = False
            messages = consumer.consume(self._settings.batch_size, timeout=timeout)
            if messages:
                self._process(consumer, writer, messages)

    # --- one batch ------------------------------------------------------------------
    def _process(self, consumer: Consumer, writer: Any, messages: list[Message]) -> None:
        rows: list[tuple[Any, tuple[Any, ...]]] = []
        offsets: dict[tuple[str, int], int] = {}
        dead = 0
        key_converter, value_converter, prepare = self._key, self._value, writer.prepare
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("connector %s: consumer error %s", self.connector, error)
                    if error.fatal():
                        raise TaskFailedError(f"fatal consumer error: {error}")
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            offsets[(topic, partition)] = offset + 1
            stage = KEY_CONVERTER
            try:
                key = key_converter(message.key())
                stage = VALUE_CONVERTER
                value = value_converter(message.value())
                if self._transforms:
                    stage = TRANSFORMATION
                    value = apply_all(self._transforms, value)
                stage = TASK_PUT
                rows += prepare(SinkRecord(topic, partition, offset, key, value, message.timestamp()[1]))
            except (_Stopping, StoreError):
                raise
            except Exception as exc:  # converter and mapping errors are per record: tolerance decides
                self.handle_bad_record(message, stage, exc)
                dead += 1
        if rows:
            self._retrying(writer.write, rows)
        if dead:
            self._flush_dead_letters()
        self.topics_seen.update(topic for topic, _ in offsets)
        if offsets:
            self._commit(consumer, offsets)

    def handle_bad_record(self, message: Message, stage: str, exc: BaseException) -> None:
        """Skip (and dead-letter) a record that cannot be converted or mapped, or fail the task."""
        location = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        known = isinstance(exc, (SerializationError, BadRecordError, FraudpipeError))
        if self._values["errors.tolerance"] != TOLERANCE_ALL:
            raise TaskFailedError(
                f"Tolerance exceeded in error handler: {stage} failed for {location}: {exc}"
                + ("" if known else f" ({type(exc).__name__})")) from exc
        if self._values["errors.log.enable"]:
            log.warning("connector %s skipped %s at %s: %s", self.connector,
                        location if self._values["errors.log.include.messages"] else "a record", stage, exc)
        if self._dlq is None:
            return
        class_name = {KEY_CONVERTER: self._config["key.converter"], VALUE_CONVERTER: self._config["value.converter"],
                      TRANSFORMATION: TIMESTAMP_CONVERTER_VALUE}.get(stage, self._plugin.class_name)
        headers = list(message.headers() or [])
        if self._values["errors.deadletterqueue.context.headers.enable"]:
            headers += error_headers(message, connector=self.connector, task_id=self.task_id, stage=stage,
                                     class_name=class_name, exc=exc)
        self._dlq.send(key=message.key(), value=message.value(), headers=headers)

    def _flush_dead_letters(self) -> None:
        # dead letters must be durable before the offsets of their records are committed
        if self._dlq is not None and not self._dlq.flush(math.inf, stop=self._stop_event):
            raise _Stopping()

    def _commit(self, consumer: Consumer, offsets: dict[tuple[str, int], int]) -> None:
        try:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        except KafkaException as exc:
            # a rebalance took the partitions: the new owner replays from the last commit, and
            # the upserts make that replay harmless
            log.warning("connector %s: offset commit failed, records will be replayed: %s", self.connector, exc)
            return
        self._on_offsets(offsets)

    def _resilient(self, converter: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """The converter, waiting out an unreachable registry (not the record's fault) instead of dead-lettering."""
        def convert(data: Any) -> Any:
            try:
                return converter(data)
            except RegistryUnavailableError:
                return self._retrying(converter, data)

        return convert

    def _retrying(self, call: Callable[[Any], Any], argument: Any) -> Any:
        """Call, backing off and retrying on retriable store/registry errors until success or stop."""
        delay = self._settings.retry_backoff_ms / 1000
        cap = min(self._settings.retry_backoff_max_ms, self._values["errors.retry.delay.max.ms"]) / 1000
        while True:
            try:
                return call(argument)
            except (StoreError, RegistryUnavailableError) as exc:
                if not getattr(exc, "retriable", False):
                    raise
                log.warning("connector %s task %d: retrying in %.1fs after %s", self.connector, self.task_id, delay, exc)
            if self._stop_event.wait(delay):
                raise _Stopping()
            delay = min(delay * 2, max(cap, 0.05))

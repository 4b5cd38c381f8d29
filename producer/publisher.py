"""The Kafka / Schema Registry side: register through AvroSerializer, then produce batches fast.

Schemas are registered by confluent-kafka's own AvroSerializer (subject `<topic>-value`,
TopicNameStrategy) on the first record; the schema id is read from the frame it returns, and
the batch encoder's frame for that same record must be byte-identical before anything else is
sent. After that, transactions are framed by the vectorised encoder and produced keyed by
sender. Labels are serialized by AvroSerializer (they are ~1% of the volume), keyed by
transaction_id, and held back until the stream's event time passes their `labeled_at`.

Delivery reports are requested for failures only (`delivery.report.only.error`), so the
hot path pays no per-message callback, yet every failed record is counted.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from fraudpipe.config import KafkaConfig, ProducerConfig
from fraudpipe.errors import ProducerError
from producer.encoding import BatchEncoder, keys
from producer.generator import TransactionBatch


@dataclass
class DeliveryStats:
    """Counters of one run; `errors` counts records the broker did not acknowledge."""

    sent: int = 0
    labels_sent: int = 0
    errors: int = 0
    first_error: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed


class Publisher:
    """Produces transaction batches and their delayed labels to Kafka, Avro via the registry."""

    def __init__(
        self,
        kafka: KafkaConfig,
        producer: ProducerConfig,
        *,
        registry_url: str,
        topic: str = contracts.TRANSACTIONS_TOPIC,
        labels_topic: str = contracts.LABELS_TOPIC,
        schema_version: int | None = None,
        create_topics: bool = False,
        client_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.kafka = kafka
        self.config = producer
        self._client_config = dict(client_config or {})
        self.registry_url = registry_url
        self.topic = topic
        self.labels_topic = labels_topic
        self.schema_version = producer.schema_version if schema_version is None else schema_version
        self.create_topics = create_topics
        self.stats = DeliveryStats()
        self._pending_labels: deque[dict[str, Any]] = deque()
        self._encoder: BatchEncoder | None = None
        self._producer: Producer | None = None
        self._label_serializer: AvroSerializer | None = None
        self._labels_context = SerializationContext(labels_topic, MessageField.VALUE)

    # -- start-up: broker, topics, registry ---------------------------------------------------

    def start(self, first: TransactionBatch) -> None:
        """Check broker and topics, register both schemas, verify the fast frames; raise ProducerError."""
        self._check_topics()
        client = SchemaRegistryClient({"url": self.registry_url})
        tx_serializer = AvroSerializer(client, contracts.transaction_schema_str(self.schema_version))
        self._label_serializer = AvroSerializer(client, contracts.label_schema_str())
        sample = first.slice(0, 1)
        reference = self._register(tx_serializer, sample.records(self.schema_version)[0],
                                   SerializationContext(self.topic, MessageField.VALUE))
        schema_id = int.from_bytes(reference[1:5], "big")
        self._encoder = BatchEncoder(schema_id, schema_version=self.schema_version)
        if self._encoder.frames(sample)[0] != reference:
            raise ProducerError(f"fast Avro frames differ from AvroSerializer's for schema id {schema_id}; refusing to send")
        if sample.labeled.size == 0:  # register the label schema now, so registry trouble shows at start
            probe = {"transaction_id": "", "pattern": "", "sender_account": "", "event_time": 0, "labeled_at": 0}
            self._register(self._label_serializer, probe, self._labels_context)
        self._producer = Producer({
            "bootstrap.servers": self.kafka.bootstrap_servers,
            "linger.ms": self.config.linger_ms,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "queue.buffering.max.kbytes": 1048576,
            "message.timeout.ms": self.config.delivery_timeout_ms,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            # librdkafka properties over these defaults (tests: one record per batch, see tests/fixtures/stream.py)
            **(self._client_config or {}),
        })

    def _check_topics(self) -> None:
        wanted = {self.topic: self.kafka.partitions, self.labels_topic: self.kafka.partitions}
        bootstrap = self.kafka.bootstrap_servers
        if self.create_topics:
            ensure_topics(bootstrap, wanted)
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
        try:
            existing = admin.list_topics(timeout=5).topics  # all topics: asking for one may auto-create it
        except KafkaException as exc:
            raise ProducerError(f"broker at {bootstrap} is not reachable: {exc.args[0]}") from exc
        missing = [name for name in wanted if name not in existing]
        if missing:
            raise ProducerError(
                f"unknown topic {missing[0]!r} on broker {bootstrap}; create it (`fraudpipe up` does) "
                "or run `fraudpipe produce --create-topics`")

    def _register(self, serializer: AvroSerializer, record: dict[str, Any], context: SerializationContext) -> bytes:
        try:
            return serializer(record, context)
        except Exception as exc:  # httpx / SchemaRegistryError / serializer errors differ across client versions
            raise ProducerError(
                f"schema registry at {self.registry_url}: cannot register the schema of subject "
                f"{contracts.value_subject(context.topic)}: {exc}") from exc

    # -- delivery reports -----------------------------------------------------------------------

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.stats.errors += 1
            if self.stats.first_error is None:
                self.stats.first_error = f"{message.topic()}: {error.str()} (code {error.code()})"

    def _on_error(self, error: KafkaError) -> None:
        # Client-level errors (all brokers down) surface as delivery errors once records time out;
        # keep the first one so the summary can say why.
        if self.stats.first_error is None and error.fatal():
            self.stats.first_error = f"client: {error.str()}"

    # -- the hot path ---------------------------------------------------------------------------

    def publish(self, batch: TransactionBatch, start: int = 0, stop: int | None = None) -> None:
        """Produce rows [start, stop) of `batch` and queue their labels."""
        assert self._producer is not None and self._encoder is not None, "call start() first"
        part = batch if (start, stop) == (0, None) else batch.slice(start, len(batch) if stop is None else stop)
        if not len(part):
            return
        produce = self._producer.produce
        poll = self._producer.poll
        topic = self.topic
        sent = 0
        try:
            for value, key in zip(self._encoder.frames(part), keys(part)):
                try:
                    produce(topic, value, key)
                except BufferError:  # local queue full: let librdkafka drain, then retry once
                    poll(0.05)
                    produce(topic, value, key)
                sent += 1
        finally:  # also on Ctrl-C mid-slice: count and label exactly what was handed to librdkafka
            self.stats.sent += sent
            self._pending_labels.extend(part.slice(0, sent).labels())
        poll(0)
        self.publish_due_labels(int(part.emit_ms[-1]))

    def publish_due_labels(self, event_time_ms: int | None = None) -> None:
        """Send the labels whose labeled_at has passed `event_time_ms` (all of them when None)."""
        assert self._producer is not None and self._label_serializer is not None
        pending = self._pending_labels
        while pending and (event_time_ms is None or pending[0]["labeled_at"] <= event_time_ms):
            label = pending.popleft()
            value = self._register(self._label_serializer, label, self._labels_context)
            self._producer.produce(self.labels_topic, value, label["transaction_id"].encode())
            self.stats.labels_sent += 1

    @property
    def pending_labels(self) -> int:
        return len(self._pending_labels)

    def flush(self, timeout: float = 30.0) -> int:
        """Send waiting labels, wait for every delivery; returns records still undelivered."""
        if self._producer is None:
            return 0
        self.publish_due_labels(None)
        remaining = self._producer.flush(timeout)
        if remaining:
            self.stats.errors += remaining
            self.stats.first_error = self.stats.first_error or f"{remaining} records still undelivered after {timeout:.0f}s"
        return remaining

"""A Kafka source for Spark Structured Streaming without JVM jars: PySpark's Python Data Source API.

`spark.readStream.format("fraudpipe_kafka")` reads the transactions topic with
confluent-kafka. Offsets live in Spark's checkpoint as JSON ({"<partition>": next
offset}, string keys because JSON has no others); each micro-batch is one input
partition per Kafka partition and offset range, capped by max_records_per_trigger.

Measured facts this design follows:
- the reader object is pickled to the Python workers, so Kafka and registry clients are
  created inside read() (and dropped from the pickled state), never in __init__;
- the embedded broker under-reports the high watermark in list-offsets for good (5,000
  records in a partition, watermark 2,239), but the high watermark of a fetch response is
  exact, so the driver fetches one record at the last end it knew (or hits partition EOF)
  and takes the fetch's watermark, never list-offsets and never reading every record;
- Arrow batches with explicit types cost a fraction of Python tuples per row, and the
  Avro is decoded column-wise with numpy (spark_apps/stream/avro_columns.py);
- Python workers are reused across tasks, so each keeps one consumer and one decoder.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition

from fraudpipe import contracts
from fraudpipe.dead_letters import DeadLetterProducer
from fraudpipe.errors import StreamError
from spark_apps.stream import decode as sd

# Admission control (getDefaultReadLimit, latestOffset(start, limit), reportLatestOffset)
# came to Python streaming sources in pyspark 4.2; pyproject.toml's lower bound follows.
MIN_PYSPARK = (4, 2)
try:
    from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows
except ImportError as exc:  # an older pyspark than pyproject.toml allows
    import pyspark

    raise StreamError(f"the fraudpipe Kafka source needs pyspark >= {'.'.join(map(str, MIN_PYSPARK))} "
                      f"(the streaming ReadLimit API); found {pyspark.__version__}") from exc

SOURCE_NAME = "fraudpipe_kafka"
CHUNK_RECORDS = 20_000  # records per Arrow batch handed to Spark
PROGRESS_TIMEOUT_S = 60.0  # a partition that yields nothing this long while data is owed fails the task
EOF_ERROR = -191  # confluent_kafka.KafkaError._PARTITION_EOF
DLQ_FLUSH_TIMEOUT_S = 30.0  # a task whose dead letters are not delivered by then fails (and Spark replays it)


@dataclass(frozen=True)
class SourceOptions:
    """The source's options, parsed from Spark's string options once."""

    bootstrap_servers: str
    topic: str
    registry_url: str
    dlq_topic: str
    reader_schema_version: int
    max_records_per_trigger: int
    checkpoint_location: str
    columns: tuple[str, ...] | None = None  # None: every field of the reader schema

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> "SourceOptions":
        try:
            return cls(
                bootstrap_servers=options["bootstrap_servers"],
                topic=options.get("topic", contracts.TRANSACTIONS_TOPIC),
                registry_url=options["registry_url"],
                dlq_topic=options.get("dlq_topic", contracts.STREAM_DLQ_TOPIC),
                reader_schema_version=int(options.get("reader_schema_version", "1")),
                max_records_per_trigger=int(options.get("max_records_per_trigger", "0")),
                checkpoint_location=options.get("checkpoint_location", ""),
                columns=_column_list(options.get("columns", "")),
            )
        except KeyError as exc:
            raise StreamError(f"{SOURCE_NAME} source needs option {exc.args[0]!r}") from exc
        except ValueError as exc:
            raise StreamError(f"{SOURCE_NAME} source: bad numeric option: {exc}") from exc


@dataclass(frozen=True)
class KafkaRange(InputPartition):
    """Records [start, end) of one Kafka partition, with the watermark of the batch reading them."""

    partition: int
    start: int
    end: int
    watermark_ms: int


class KafkaTransactionsSource(DataSource):
    """Registered as `fraudpipe_kafka`; options: see SourceOptions."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        options = SourceOptions.parse(self.options)
        return sd.spark_ddl(options.reader_schema_version, options.columns)

    def streamReader(self, schema: Any) -> "KafkaStreamReader":
        return KafkaStreamReader(SourceOptions.parse(self.options))


def _column_list(option: str) -> tuple[str, ...] | None:
    names = tuple(name.strip() for name in option.split(",") if name.strip())
    return names or None


def consumer_config(bootstrap_servers: str) -> dict[str, Any]:
    # assign() only, never subscribe(): no group join (slow on the embedded broker), no commits
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": "fraudpipe-spark-source",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 262144,
        "socket.timeout.ms": 10000,
    }


def batch_watermark(checkpoint: str, end: Mapping[str, int]) -> int:
    """The watermark Spark uses for the micro-batch ending at `end`, from its offsets log.

    Spark writes offsets/<batch> (with batchWatermarkMs) before planning the batch, and
    replays a batch from the same file after a restart, so this is the exact watermark
    the stateful operator applies, run after run.
    """
    if not checkpoint:
        return 0
    offsets_dir = Path(checkpoint) / "offsets"
    try:
        batches = sorted((int(p.name) for p in offsets_dir.iterdir() if p.name.isdigit()), reverse=True)
    except FileNotFoundError:
        return 0
    for batch in batches[:3]:  # the batch being planned is the newest; allow for a race
        lines = (offsets_dir / str(batch)).read_text().splitlines()
        if len(lines) < 3:
            continue
        for line in lines[2:]:
            try:
                if line.strip() and json.loads(line) == dict(end):
                    return int(json.loads(lines[1]).get("batchWatermarkMs", 0))
            except json.JSONDecodeError:
                continue
    return 0


class KafkaStreamReader(DataSourceStreamReader):
    """Plans offset ranges on the driver and reads them in the Python workers."""

    def __init__(self, options: SourceOptions) -> None:
        self.options = options
        self._consumer: Any = None  # driver-side end finder, created on first use
        self._ends: dict[int, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        # what travels to the workers: options only, no client objects
        return {"options": self.options, "_consumer": None, "_ends": {}}

    # --- driver side -------------------------------------------------------------
    def _driver_consumer(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            # small fetches: it only needs one record (and the fetch's high watermark) per partition
            self._consumer = Consumer({**consumer_config(self.options.bootstrap_servers),
                                       "max.partition.fetch.bytes": 65536, "queued.max.messages.kbytes": 1024})
        return self._consumer

    def _partitions(self) -> list[int]:
        metadata = self._driver_consumer().list_topics(self.options.topic, timeout=10)
        topic = metadata.topics.get(self.options.topic)
        if topic is None or topic.error is not None:
            raise StreamError(f"topic {self.options.topic} not found on {self.options.bootstrap_servers}: "
                              f"{getattr(topic, 'error', 'no metadata')}")
        return sorted(topic.partitions)

    def initialOffset(self) -> dict:
        return {str(p): 0 for p in self._partitions()}

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.options.max_records_per_trigger > 0:
            return ReadMaxRows(self.options.max_records_per_trigger)
        return ReadAllAvailable()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        begin = {p: int(start.get(str(p), 0)) for p in self._partitions()}
        budget = limit.max_rows if isinstance(limit, ReadMaxRows) else None
        ends = self._find_ends(begin, budget)
        if budget is not None:
            ends = share_budget(begin, ends, budget)
        return {str(p): ends[p] for p in sorted(ends)}

    def _find_ends(self, begin: dict[int, int], budget: int | None) -> dict[int, int]:
        """Each partition's end: the high watermark of a fetch at its last known end (or partition EOF).

        list-offsets under-reports on the embedded broker, but every fetch response carries the
        true high watermark, so one small fetch per partition finds the end without reading the
        records in between (reading them all on the driver cost ~0.5 s per 50,000 records).
        """
        from confluent_kafka import TopicPartition

        consumer = self._driver_consumer()
        for p, offset in begin.items():
            self._ends[p] = max(self._ends.get(p, 0), offset)
        open_parts = {p for p in begin if budget is None or self._ends[p] - begin[p] < budget}
        if not open_parts:
            return dict(self._ends)
        consumer.assign([TopicPartition(self.options.topic, p, self._ends[p]) for p in sorted(open_parts)])
        deadline = time.monotonic() + 10.0
        while open_parts and time.monotonic() < deadline:
            message = consumer.poll(0.5)  # poll, not consume(n): consume waits for n records or the timeout
            if message is not None and message.partition() in open_parts:
                p = message.partition()
                error = message.error()
                if error is not None:
                    if error.code() != EOF_ERROR:
                        raise StreamError(f"reading {self.options.topic}[{p}] to find its end: {error}")
                    self._ends[p] = max(self._ends[p], message.offset())
                else:
                    _, high = consumer.get_watermark_offsets(TopicPartition(self.options.topic, p), cached=True)
                    self._ends[p] = max(self._ends[p], message.offset() + 1, high)
                open_parts.discard(p)
        consumer.unassign()
        return {p: self._ends[p] for p in begin}

    def reportLatestOffset(self) -> dict | None:
        return {str(p): e for p, e in sorted(self._ends.items())} or None

    def partitions(self, start: dict, end: dict) -> list[KafkaRange]:
        watermark = batch_watermark(self.options.checkpoint_location, end)
        ranges = []
        for key, stop in sorted(end.items(), key=lambda kv: int(kv[0])):
            first = int(start.get(key, 0))
            if int(stop) > first:
                ranges.append(KafkaRange(int(key), first, int(stop), watermark))
        return ranges

    def commit(self, end: dict) -> None:
        """Nothing to do: offsets are Spark's checkpoint, not consumer-group commits."""

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # --- worker side -------------------------------------------------------------
    def read(self, partition: KafkaRange) -> Iterator[Any]:
        """Yield Arrow batches for records [start, end) of one partition, DLQ-ing what cannot be decoded."""
        from confluent_kafka import TopicPartition

        decoder, consumer = _worker_clients(self.options)
        dlq = DeadLetterProducer(self.options.bootstrap_servers, self.options.dlq_topic, error=StreamError)
        where = f"{self.options.topic}[{partition.partition}]"
        consumer.assign([TopicPartition(self.options.topic, partition.partition, partition.start)])
        try:
            position = partition.start
            chunk: list[Any] = []
            last_progress = time.monotonic()
            while position < partition.end:
                messages = consumer.consume(num_messages=min(CHUNK_RECORDS, partition.end - position), timeout=0.5)
                if messages:
                    last_progress = time.monotonic()
                    position = _take_range(messages, position, partition.end, chunk, where)
                elif time.monotonic() - last_progress > PROGRESS_TIMEOUT_S:
                    raise StreamError(f"{where}: no records for {PROGRESS_TIMEOUT_S:.0f}s at offset {position}, "
                                      f"expected up to {partition.end} (was the topic recreated?)")
                if len(chunk) >= CHUNK_RECORDS or (chunk and position >= partition.end):
                    decoded = decoder.decode_values([m.value() for m in chunk], watermark_ms=partition.watermark_ms,
                                                    origin=lambda i, c=chunk: (c[i].key(), c[i].offset()))
                    send_dead_letters(dlq, decoded.rejected, topic=self.options.topic, partition=partition.partition)
                    chunk = []
                    yield decoded.batch
            dlq.flush(DLQ_FLUSH_TIMEOUT_S)
        finally:
            consumer.unassign()
            dlq.close()


# One decoder (with its registry cache) and one consumer per Python worker process, reused by every
# task that worker runs: built per task, every micro-batch paid a broker connection and an HTTP
# schema lookup per partition. A task only assign()s its own range, so reuse carries nothing over.
_WORKER_CLIENTS: dict[tuple[Any, ...], tuple[sd.BatchDecoder, Any]] = {}


def _worker_clients(options: SourceOptions) -> tuple[sd.BatchDecoder, Any]:
    key = (options.bootstrap_servers, options.registry_url, options.reader_schema_version, options.columns)
    if key not in _WORKER_CLIENTS:
        from confluent_kafka import Consumer

        decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(options.registry_url), options.reader_schema_version),
                                  options.reader_schema_version, options.columns)
        _WORKER_CLIENTS[key] = (decoder, Consumer(consumer_config(options.bootstrap_servers)))
    return _WORKER_CLIENTS[key]


def _take_range(messages: list[Any], position: int, end: int, chunk: list[Any], where: str) -> int:
    """Append the messages with offsets in [position, end) to `chunk`; return the next position."""
    for message in messages:
        error = message.error()
        if error is None:
            offset = message.offset()
            if position <= offset < end:
                chunk.append(message)
                position = offset + 1
        elif error.code() != EOF_ERROR:  # EOF: the range end was seen on the driver; the data is coming
            raise StreamError(f"reading {where}@{position}: {error}")
    return position


def send_dead_letters(dlq: DeadLetterProducer, rejected: list[sd.Rejected], *, topic: str, partition: int) -> None:
    """Undecodable records to the DLQ topic, with the reason headers; delivery is checked at flush."""
    for record in rejected:
        dlq.send(key=record.key, value=record.value,
                 headers=sd.dlq_headers(record.reason, record.error_class, topic=topic, partition=partition,
                                        offset=record.offset))


def share_budget(begin: Mapping[int, int], ends: Mapping[int, int], budget: int) -> dict[int, int]:
    """Cap the total records of a batch at `budget`, shared fairly across partitions.

    Water-filling: each partition gets an equal share, and what a short partition cannot
    use goes to the others, so a lagging partition is never starved by a busy one.
    """
    available = {p: max(ends[p] - begin[p], 0) for p in begin}
    granted = {p: 0 for p in begin}
    remaining = budget
    hungry = sorted(p for p in begin if available[p] > 0)
    while remaining > 0 and hungry:
        share = max(remaining // len(hungry), 1)
        for p in list(hungry):
            take = min(share, available[p] - granted[p], remaining)
            granted[p] += take
            remaining -= take
            if granted[p] >= available[p]:
                hungry.remove(p)
            if remaining == 0:
                break
    return {p: begin[p] + granted[p] for p in begin}

"""Deterministic transaction stream with labelled fraud patterns; pure numpy, no Kafka.

    gen = TransactionGenerator(config.producer, seed=7, start_ms=1_700_000_000_000, clock="simulated")
    for batch in gen.batches(count=100_000):
        batch.records()     # transaction dicts matching schema.avsc
        batch.labels()      # label dicts (label.avsc) for the rows of injected fraud patterns

Record conventions: `event_time` (and a label's `labeled_at`) is an **int, epoch
milliseconds UTC** (Avro timestamp-millis accepts it; AvroDeserializer hands back tz-aware
datetimes), `amount_minor` an int in cents, enums are their symbol strings, ids are fixed
width (`ACC-00012345`, UUID4 transaction ids). Rows come in *arrival* order (`emit_ms`):
background rows may carry an older event time (out-of-order or late), pattern rows never do,
so every pattern instance stays whole inside one 1-minute window.

Same seed + same start_ms + same config = the same stream, byte for byte. The realtime clock
only differs in that start_ms is "now" and the event rate is the send rate; the publisher then
sends each row when its event time comes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import numpy as np

from fraudpipe import contracts
from fraudpipe.config import ProducerConfig
from fraudpipe.errors import ConfigError
from producer.patterns import build_shapes, place_instances
from producer.traffic import (
    ACCOUNT, CHANNELS, DEVICE, ID_WIDTH, STATUSES, TX_ID_WIDTH, TYPES, Population, format_ids, uuid4_ids,
)

MINUTE_MS = 60_000
Clock = Literal["simulated", "realtime"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _strings(matrix: np.ndarray) -> list[str]:
    width = matrix.shape[1]
    text = matrix.tobytes().decode("ascii")
    return [text[i:i + width] for i in range(0, len(text), width)]


@dataclass(frozen=True)
class TransactionBatch:
    """A columnar slice of the stream; fixed-width ids are (n, width) uint8 ASCII matrices.

    `pattern` holds the index into `pattern_names` of the fraud pattern a row belongs to, or -1.
    """

    transaction_id: np.ndarray
    event_time: np.ndarray
    emit_ms: np.ndarray
    sender: np.ndarray
    receiver: np.ndarray
    device: np.ndarray
    amount_minor: np.ndarray
    transaction_type: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    pattern: np.ndarray
    pattern_names: tuple[str, ...]
    currency: str
    label_delay_ms: int

    def __len__(self) -> int:
        return len(self.event_time)

    def slice(self, start: int, stop: int) -> "TransactionBatch":
        cut = {name: getattr(self, name)[start:stop] for name in _COLUMNS}
        return TransactionBatch(**cut, pattern_names=self.pattern_names, currency=self.currency,
                                label_delay_ms=self.label_delay_ms)

    def records(self, schema_version: int = 1) -> list[dict[str, Any]]:
        """Transaction dicts matching schema.avsc (v2 adds device_id)."""
        columns = {
            "transaction_id": _strings(self.transaction_id),
            "event_time": self.event_time.tolist(),
            "sender_account": _strings(self.sender),
            "receiver_account": _strings(self.receiver),
            "amount_minor": self.amount_minor.tolist(),
            "currency": [self.currency] * len(self),
            "transaction_type": [TYPES[i] for i in self.transaction_type.tolist()],
            "status": [STATUSES[i] for i in self.status.tolist()],
            "channel": [CHANNELS[i] for i in self.channel.tolist()],
        }
        if contracts.DEVICE_ID_FIELD in contracts.added_field_names(schema_version):
            columns[contracts.DEVICE_ID_FIELD] = _strings(self.device)
        names = list(columns)
        return [dict(zip(names, row)) for row in zip(*columns.values())]

    @property
    def labeled(self) -> np.ndarray:
        """Row indexes that belong to an injected fraud pattern."""
        return np.flatnonzero(self.pattern >= 0)

    def labels(self) -> list[dict[str, Any]]:
        """Label dicts (label.avsc) for exactly the rows of injected patterns, labeled_at = event_time + delay."""
        rows = self.labeled
        ids = _strings(self.transaction_id[rows])
        senders = _strings(self.sender[rows])
        times = self.event_time[rows].tolist()
        names = [self.pattern_names[p] for p in self.pattern[rows].tolist()]
        return [
            {"transaction_id": t, "pattern": p, "sender_account": s, "event_time": e, "labeled_at": e + self.label_delay_ms}
            for t, p, s, e in zip(ids, names, senders, times)
        ]


_COLUMNS = ("transaction_id", "event_time", "emit_ms", "sender", "receiver", "device", "amount_minor",
            "transaction_type", "status", "channel", "pattern")


class TransactionGenerator:
    """Endless, deterministic stream of transaction batches cut into chunks inside 1-minute windows.

    `clock="simulated"`: event times start at `start_ms` (default config.start_ms, 0 = now) and
    advance at `event_rate` transactions per event-time second (default config.event_rate).
    `clock="realtime"`: start_ms is now and the event rate is config.rate, so a publisher that
    sends each row at its event time produces at `rate` with event time = wall time.
    """

    def __init__(
        self,
        config: ProducerConfig,
        *,
        seed: int | None = None,
        start_ms: int | None = None,
        clock: Clock | None = None,
        event_rate: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or config.clock
        if self.clock not in ("simulated", "realtime"):
            raise ConfigError(f"producer.clock must be 'simulated' or 'realtime', got {self.clock!r}")
        if self.clock == "realtime":
            start_ms = now_ms() if start_ms is None else start_ms
            event_rate = event_rate or config.rate
            if event_rate <= 0:
                raise ConfigError("producer.rate must be > 0 with the realtime clock (rate 0 needs clock: simulated)")
        self.event_rate = float(event_rate or config.event_rate)
        if self.event_rate <= 0:
            raise ConfigError(f"producer.event_rate must be > 0, got {self.event_rate}")
        if config.batch_size <= 0:
            raise ConfigError(f"producer.batch_size must be positive, got {config.batch_size}")
        self.seed = config.seed if seed is None else seed
        self.start_ms = int(start_ms if start_ms is not None else (config.start_ms or now_ms()))
        self.rng = np.random.default_rng(self.seed)
        self.population = Population(config, self.rng, event_rate=self.event_rate)
        self.shapes = build_shapes(config.patterns, config.bursts)
        self.pattern_names = tuple(config.patterns)
        self.label_delay_ms = int(config.label_delay_seconds * 1000)
        # Chunks hold about batch_size rows but never cross a minute boundary.
        self._chunk_ms = max(1000, min(MINUTE_MS, int(config.batch_size / self.event_rate * 1000)))
        self._cursor = self.start_ms
        self._due = 0.0

    def batches(self, count: int | None = None, *, whole_minutes: bool = False) -> Iterator[TransactionBatch]:
        """Successive batches in arrival order; stops after `count` transactions when given.

        With `whole_minutes`, generation goes on past `count` to the end of the event-time
        minute it reached: no 1-minute window, and so no pattern instance, is cut short.
        A cut one would be a labelled window of, say, one transfer of an account takeover,
        which trains a fraud centroid into the middle of ordinary windows.
        """
        sent = 0
        while count is None or sent < count or (whole_minutes and self._cursor % MINUTE_MS):
            batch = self._next_chunk()
            if count is not None and not whole_minutes and sent + len(batch) > count:
                batch = batch.slice(0, count - sent)
            sent += len(batch)
            if len(batch):
                yield batch

    def transactions(self, count: int) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(transaction, label or None) pairs, one by one (convenient, not fast)."""
        for batch in self.batches(count):
            labels = iter(batch.labels())
            for record, pattern in zip(batch.records(), batch.pattern.tolist()):
                yield record, (next(labels) if pattern >= 0 else None)

    def _next_chunk(self) -> TransactionBatch:
        start = self._cursor
        end = min(start + self._chunk_ms, (start // MINUTE_MS + 1) * MINUTE_MS)
        self._cursor = end
        self._due += self.event_rate * (end - start) / 1000.0
        total = int(self._due)
        self._due -= total
        pop = self.population
        parts = [part for shape in self.shapes
                 if (part := place_instances(shape, pop, chunk_start=start, chunk_end=end, chunk_total=total)) is not None]
        n_background = max(0, total - sum(len(p["emit_ms"]) for p in parts))
        background = pop.background(n_background)
        emit = np.sort(start + (self.rng.random(n_background) * (end - start)).astype(np.int64))
        background["emit_ms"] = emit
        background["event_time"] = pop.disorder(emit)
        background["pattern"] = np.full(n_background, -1, dtype=np.int8)
        parts.append(background)
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        order = np.argsort(columns["emit_ms"], kind="stable")
        n = len(order)
        return TransactionBatch(
            transaction_id=uuid4_ids(self.rng, n),
            event_time=columns["event_time"][order],
            emit_ms=columns["emit_ms"][order],
            sender=format_ids(ACCOUNT, columns["sender"][order]),
            receiver=format_ids(columns["receiver_kind"][order], columns["receiver"][order]),
            device=format_ids(DEVICE, columns["device"][order]),
            amount_minor=columns["amount_minor"][order],
            transaction_type=columns["transaction_type"][order],
            status=columns["status"][order],
            channel=columns["channel"][order],
            pattern=columns["pattern"][order],
            pattern_names=self.pattern_names,
            currency=self.config.traffic.currency,
            label_delay_ms=self.label_delay_ms,
        )


__all__ = ["TransactionBatch", "TransactionGenerator", "MINUTE_MS", "ID_WIDTH", "TX_ID_WIDTH", "now_ms"]

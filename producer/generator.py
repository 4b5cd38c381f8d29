"""Deterministic transaction stream with labelled fraud patterns; pure numpy, no Kafka.

    gen = TransactionGenerator(config.producer, seed=7, start_ms=1_700_000_000_000, clock="simulated")
    for batch in gen.batches(count=100_000):
        batch.records()     # transaction dicts matching schema.avsc
        batch.labels()      # label dicts (label.avsc) for the rows of injected fraud patterns

Record conventions: `event_time` (and a label's `labeled_at`) is an **int, epoch
milliseconds UTC** (Avro timestamp-millis accepts it; AvroDeserializer hands back tz-aware
datetimes), `amount_minor` an int in cents, enums are their symbol strings, ids are fixed
width (`ACC-00012345`, UUID4 transaction ids). Rows come in *arrival* order (`emit_ms`):
background rows may carry an older event time (out-of-order or late), burst rows never do.
A burst instance starts at any moment and may run over chunk and minute boundaries (for
minutes, in slow variants): its later rows wait in a pending buffer and are merged into the
chunk their event time falls in.

Same seed + same start_ms + same config = the same stream, byte for byte. The realtime clock
only differs in that start_ms is "now" and the event rate is the send rate; the publisher then
sends each row when its event time comes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

import numpy as np

from fraudpipe import contracts
from fraudpipe.config import ProducerConfig
from fraudpipe.errors import ConfigError
from producer.patterns import build_families, place_instances
from producer.traffic import (
    ACCOUNT, CHANNELS, DEVICE, ID_WIDTH, STATUSES, TX_ID_WIDTH, TYPES, Population, format_ids, uuid4_ids,
)

# Columns of burst rows, kept in the pending buffer until their chunk comes.
_ROW_COLUMNS = ("sender", "receiver_kind", "receiver", "transaction_type", "amount_minor", "status", "channel",
                "device", "emit_ms", "event_time", "pattern", "instance", "variant")

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

    `pattern` holds the index into `pattern_names` of the fraud family a row belongs to, or -1;
    `instance` a unique id of the fraud instance (one burst of one sender), or -1;
    `variant` the index into `variant_names` ("family.variant") of the instance's variant, or -1.
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
    instance: np.ndarray
    variant: np.ndarray
    pattern_names: tuple[str, ...]
    variant_names: tuple[str, ...]
    currency: str
    label_delay_ms: int

    def __len__(self) -> int:
        return len(self.event_time)

    def slice(self, start: int, stop: int) -> "TransactionBatch":
        cut = {name: getattr(self, name)[start:stop] for name in _COLUMNS}
        return TransactionBatch(**cut, pattern_names=self.pattern_names, variant_names=self.variant_names,
                                currency=self.currency, label_delay_ms=self.label_delay_ms)

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
            "transaction_type", "status", "channel", "pattern", "instance", "variant")


class TransactionGenerator:
    """Endless, deterministic stream of transaction batches, generated in chunks inside 1-minute steps.

    `clock="simulated"`: event times start at `start_ms` (default config.start_ms, 0 = now) and
    advance at `event_rate` transactions per event-time second (default config.event_rate).
    `clock="realtime"`: start_ms is now and the event rate is config.rate, so a publisher that
    sends each row at its event time produces at `rate` with event time = wall time.
    Chunks end on minute boundaries (so whole_minutes can stop on one); bursts ignore them.
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
        self.families = build_families(config.patterns, config.bursts)
        self.population = Population(config, self.rng, event_rate=self.event_rate)
        self.pattern_names = tuple(config.patterns)
        self.variant_names = tuple(f"{f.name}.{v.name}" for f in self.families if f.label >= 0 for v in f.variants)
        # position of each fraud family's first variant in variant_names
        self._variant_base = {f.name: self.variant_names.index(f"{f.name}.{f.variants[0].name}")
                              for f in self.families if f.label >= 0}
        self.label_delay_ms = int(config.label_delay_seconds * 1000)
        self._chunk_ms = max(1000, min(MINUTE_MS, int(config.batch_size / self.event_rate * 1000)))
        self._cursor = self.start_ms
        self._due = 0.0
        self._next_instance = 0
        self._bursts_until = self.start_ms
        self._pending: dict[str, np.ndarray] | None = None  # burst rows at or after the cursor

    @property
    def generated_until_ms(self) -> int:
        """Event time up to which chunks have been generated (the end of the last one)."""
        return self._cursor

    @property
    def bursts_until_ms(self) -> int:
        """End of the last chunk in which bursts were placed: after it (the whole_minutes tail) no burst starts.

        A time-split evaluation should end its test range here, or the tail dilutes the fraud.
        """
        return self._bursts_until

    @property
    def instances_started(self) -> int:
        """Fraud instances placed so far (their ids are 0 .. instances_started - 1)."""
        return self._next_instance

    @property
    def pending_rows(self) -> int:
        """Burst rows already drawn whose event time lies after the last chunk."""
        return 0 if self._pending is None else len(self._pending["emit_ms"])

    def batches(self, count: int | None = None, *, whole_minutes: bool = False) -> Iterator[TransactionBatch]:
        """Successive batches in arrival order; stops after `count` transactions when given.

        With `whole_minutes`, once `count` is reached no new burst instance starts, the rows
        still pending (instances running on) are generated, and the stream stops at the next
        minute boundary after the last of them: no 1-minute window, and no instance, is cut
        short. (A cut instance would be, say, one transfer of an account takeover: a labelled
        window that looks like ordinary traffic.)
        """
        sent = 0
        while True:
            draining = whole_minutes and count is not None and sent >= count
            if draining and not self.pending_rows and self._cursor % MINUTE_MS == 0:
                return
            if count is not None and not whole_minutes and sent >= count:
                return
            batch = self._next_chunk(place=not draining)
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

    def _bursts(self, start: int, end: int, total: int, place: bool) -> dict[str, np.ndarray] | None:
        """Burst rows due in [start, end): pending ones plus new instances; the rest stays pending."""
        parts = [] if self._pending is None else [self._pending]
        if place:
            for family in self.families:
                owed = family.owed(self.rng, total)
                for code in sorted({v for v, _ in owed}):
                    sizes = [size for v, size in owed if v == code]
                    base = self._variant_base.get(family.name, -1)
                    part = place_instances(family, family.variants[code], sizes, self.population, chunk_start=start,
                                           chunk_end=end, first_instance=self._next_instance,
                                           variant_code=base + code if base >= 0 else -1)
                    if part is not None:
                        parts.append(part)
                        if family.label >= 0:
                            self._next_instance += len(sizes)
        if not parts:
            return None
        rows = {name: np.concatenate([p[name] for p in parts]) for name in _ROW_COLUMNS} if len(parts) > 1 else parts[0]
        later = rows["emit_ms"] >= end
        if later.any():
            self._pending = {name: column[later] for name, column in rows.items()}
            rows = {name: column[~later] for name, column in rows.items()}
        else:
            self._pending = None
        return rows

    def _background(self, n: int, draw: Callable[[int], dict[str, np.ndarray]], start: int,
                    end: int) -> dict[str, np.ndarray]:
        """n rows from `draw` (consumers or businesses) at uniform arrival times in [start, end), disordered."""
        rows = draw(n)
        emit = np.sort(start + (self.rng.random(n) * (end - start)).astype(np.int64))
        rows["emit_ms"] = emit
        rows["event_time"] = self.population.disorder(emit)
        rows["pattern"] = np.full(n, -1, dtype=np.int8)
        rows["instance"] = np.full(n, -1, dtype=np.int64)
        rows["variant"] = np.full(n, -1, dtype=np.int16)
        return rows

    def _next_chunk(self, *, place: bool = True) -> TransactionBatch:
        start = self._cursor
        end = min(start + self._chunk_ms, (start // MINUTE_MS + 1) * MINUTE_MS)
        self._cursor = end
        self._due += self.event_rate * (end - start) / 1000.0
        total = int(self._due)
        self._due -= total
        pop = self.population
        bursts = self._bursts(start, end, total, place)
        if place:
            self._bursts_until = end
        parts = [] if bursts is None else [bursts]
        left = total - (0 if bursts is None else len(bursts["emit_ms"]))
        # Businesses send at their own absolute rates; consumers get whatever the event rate leaves.
        n_business = max(0, min(pop.businesses.count(end - start), left))
        if n_business:
            parts.append(self._background(n_business, pop.business_background, start, end))
        parts.append(self._background(max(0, left - n_business), pop.background, start, end))
        columns = {name: np.concatenate([p[name] for p in parts]) for name in _ROW_COLUMNS}
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
            instance=columns["instance"][order],
            variant=columns["variant"][order],
            pattern_names=self.pattern_names,
            variant_names=self.variant_names,
            currency=self.config.traffic.currency,
            label_delay_ms=self.label_delay_ms,
        )


__all__ = ["TransactionBatch", "TransactionGenerator", "MINUTE_MS", "ID_WIDTH", "TX_ID_WIDTH", "now_ms"]

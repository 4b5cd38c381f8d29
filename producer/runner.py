"""The produce loop: pacing (rate or event time), count/duration limits, progress line, Ctrl-C summary."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from fraudpipe.errors import ProducerError
from producer.generator import TransactionBatch, TransactionGenerator
from producer.publisher import DeliveryStats, Publisher

# Largest slice produced between clock checks, so --duration and Ctrl-C stay responsive.
SLICE = 5000


@dataclass(frozen=True)
class Pacer:
    """When each row may be sent (wall-clock epoch seconds), or None for as fast as possible.

    realtime clock: a row goes when its event time comes (emit_ms), so event time = wall time.
    simulated clock with rate > 0: row i goes at t0 + i / rate. rate 0: no waiting.
    """

    clock: str
    rate: float
    t0: float

    def due(self, batch: TransactionBatch, first_index: int) -> np.ndarray | None:
        if self.clock == "realtime":
            return batch.emit_ms / 1000.0
        if self.rate > 0:
            return self.t0 + (first_index + np.arange(len(batch))) / self.rate
        return None


def format_progress(stats: DeliveryStats, pending_labels: int) -> str:
    return (f"sent {stats.sent:,} tx ({stats.rate:,.0f} tx/s), labels {stats.labels_sent:,} "
            f"(+{pending_labels:,} waiting), delivery errors {stats.errors:,}")


def run(
    publisher: Publisher,
    generator: TransactionGenerator,
    *,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 1.0,
) -> DeliveryStats:
    """Produce until count, duration or Ctrl-C; always flush. Raises ProducerError if records were lost."""
    stats = publisher.stats
    pacer = Pacer(generator.clock, rate, time.time())
    deadline = None if duration is None else time.monotonic() + duration
    next_progress = time.monotonic() + progress_every
    interrupted = False
    started = False
    try:
        for batch in generator.batches(count):
            if not started:
                publisher.start(batch)
                stats.started = time.monotonic()
                started = True
            due = pacer.due(batch, stats.sent)
            i = 0
            while i < len(batch):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if progress is not None and now >= next_progress:
                    progress(format_progress(stats, publisher.pending_labels))
                    next_progress = now + progress_every
                stop = min(len(batch), i + SLICE)
                if due is not None:
                    wall = time.time()
                    stop = min(stop, int(np.searchsorted(due, wall, side="right")))
                    if stop <= i:
                        time.sleep(min(float(due[i]) - wall, 0.1))
                        continue
                publisher.publish(batch, i, stop)
                i = stop
            else:
                continue
            break  # the deadline passed
    except KeyboardInterrupt:
        interrupted = True
    if started:
        try:
            publisher.flush()
        except KeyboardInterrupt:  # a second Ctrl-C while flushing: report what we know
            interrupted = True
        if progress is not None:
            progress(("interrupted: " if interrupted else "done: ") + format_progress(stats, publisher.pending_labels))
    if stats.errors:
        raise ProducerError(f"{stats.errors:,} records were not delivered; first error: {stats.first_error}")
    return stats

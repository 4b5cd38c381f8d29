"""Burst shapes: labelled fraud patterns and unlabelled legitimate bursts.

An instance of a shape is one sender making `min_size..max_size` transactions whose event
times all fall inside one time chunk, and chunks never cross a 1-minute boundary, so the
instance lives in exactly one 1-minute tumbling window (windows with a labelled transaction
are fraud windows; nothing of an instance leaks into the next one).

How many instances appear is decided by a credit account per shape: each chunk adds
`share * transactions_in_chunk` credit and an instance is placed once the credit covers its
(pre-drawn) size, so the realised share tracks the configured share within one instance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudpipe.config import BurstConfig
from fraudpipe.errors import ConfigError
from producer.traffic import CHANNELS, KIND_NAMES, TYPES, Population, failed_statuses, lognormal_minor


@dataclass
class Shape:
    """One configured shape plus its running credit; `label` is the pattern index or -1 (legitimate)."""

    name: str
    config: BurstConfig
    label: int
    key: str
    credit: float = 0.0
    next_size: int = 0
    type_codes: np.ndarray = field(init=False)
    channel_codes: np.ndarray = field(init=False)
    receiver_kind: int = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        if not 0.0 <= c.share < 1.0:
            raise ConfigError(f"{self.key}.share must be in [0, 1), got {c.share}")
        if not 1 <= c.min_size <= c.max_size:
            raise ConfigError(f"{self.key}: need 1 <= min_size <= max_size, got {c.min_size}..{c.max_size}")
        if not 0.0 < c.span_seconds <= 60.0:
            raise ConfigError(f"{self.key}.span_seconds must be in (0, 60] to fit a 1-minute window, got {c.span_seconds}")
        if not 0.0 <= c.failed_share <= 1.0:
            raise ConfigError(f"{self.key}.failed_share must be in [0, 1], got {c.failed_share}")
        if c.receivers not in KIND_NAMES:
            raise ConfigError(f"{self.key}.receivers must be one of {', '.join(KIND_NAMES)}, got {c.receivers!r}")
        if c.receiver_pool < 0:
            raise ConfigError(f"{self.key}.receiver_pool must be >= 0, got {c.receiver_pool}")
        for what, values, symbols in (("transaction_types", c.transaction_types, TYPES), ("channels", c.channels, CHANNELS)):
            if not values:
                raise ConfigError(f"{self.key}.{what} must not be empty")
            for value in values:
                if value not in symbols:
                    raise ConfigError(f"{self.key}.{what}: {value!r} is not one of {', '.join(symbols)}")
        self.type_codes = np.array([TYPES.index(t) for t in c.transaction_types], dtype=np.uint8)
        self.channel_codes = np.array([CHANNELS.index(ch) for ch in c.channels], dtype=np.uint8)
        self.receiver_kind = KIND_NAMES[c.receivers]


def build_shapes(patterns: dict[str, BurstConfig], bursts: dict[str, BurstConfig]) -> list[Shape]:
    """Fraud patterns (label = their index in `patterns`) followed by legitimate bursts (label -1)."""
    shapes = [Shape(name, cfg, i, f"producer.patterns.{name}") for i, (name, cfg) in enumerate(patterns.items())]
    shapes += [Shape(name, cfg, -1, f"producer.bursts.{name}") for name, cfg in bursts.items()]
    return shapes


def place_instances(
    shape: Shape,
    population: Population,
    *,
    chunk_start: int,
    chunk_end: int,
    chunk_total: int,
) -> dict[str, np.ndarray] | None:
    """Columns of the instances of `shape` owed for a chunk [chunk_start, chunk_end) ms, or None.

    Every instance's event times lie inside the chunk (spans are compressed for short chunks).
    """
    rng = population.rng
    cfg = shape.config
    if cfg.share <= 0.0:
        return None
    if shape.next_size == 0:
        shape.next_size = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    shape.credit += cfg.share * chunk_total
    sizes: list[int] = []
    while shape.credit >= shape.next_size:
        sizes.append(shape.next_size)
        shape.credit -= shape.next_size
        shape.next_size = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    if not sizes:
        return None
    k = len(sizes)
    size_arr = np.array(sizes, dtype=np.int64)
    instance = np.repeat(np.arange(k), size_arr)
    m = len(instance)

    span = min(int(cfg.span_seconds * 1000), chunk_end - chunk_start)
    starts = chunk_start + (rng.random(k) * (chunk_end - chunk_start - span + 1)).astype(np.int64)
    times = starts[instance] + (rng.random(m) * span).astype(np.int64)

    # Fraud hits random accounts; legitimate bursts come from accounts that are active anyway.
    senders = population.uniform_accounts(k) if shape.label >= 0 else population.active_accounts(k)
    if cfg.receiver_pool > 0:
        pool = population.receivers(shape.receiver_kind, k * cfg.receiver_pool).reshape(k, cfg.receiver_pool)
        receiver = pool[instance, rng.integers(0, cfg.receiver_pool, m)]
    else:
        receiver = population.receivers(shape.receiver_kind, m)
    # A fraudster uses their own device, one per instance; legitimate bursts keep the account's.
    device = rng.integers(0, 10**8, k)[instance] if shape.label >= 0 else (senders[instance] * 2654435761) % 10**8
    return {
        "sender": senders[instance],
        "receiver_kind": np.full(m, shape.receiver_kind, dtype=np.uint8),
        "receiver": receiver,
        "transaction_type": shape.type_codes[rng.integers(0, len(shape.type_codes), m)],
        "amount_minor": lognormal_minor(rng, cfg.amount, m),
        "status": failed_statuses(rng, cfg.failed_share, m),
        "channel": shape.channel_codes[rng.integers(0, len(shape.channel_codes), m)],
        "device": device,
        "emit_ms": times,
        "event_time": times,
        "pattern": np.full(m, shape.label, dtype=np.int8),
    }

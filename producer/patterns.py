"""Burst families: labelled fraud patterns and unlabelled legitimate bursts, placed in continuous time.

An instance of a family is one sender making `size` transactions spread over `span_seconds`
from a start drawn uniformly in the current chunk, so it starts at any moment and may run
past the chunk's end, across minute boundaries, for minutes (slow card testing). Rows past
the chunk end wait in the generator's pending buffer for the chunk they fall into.

Which variant an instance takes is drawn by the variants' weights; its parameters (size,
span, amount median, failure share, receiver pool) are drawn from the variant's ranges.
How many instances appear is decided by a credit per family: each chunk adds
`share * transactions_in_chunk` and an instance is placed once the credit covers its
(pre-drawn) size, so the realised share tracks the configured share within one instance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraudpipe.config import FamilyConfig, VariantConfig
from fraudpipe.errors import ConfigError
from producer.segments import loguniform, uniform, uniform_int
from producer.traffic import (
    ACCOUNT, CHANNELS, MERCHANT, NEW_PAYEE, TYPES, Population, account_device, failed_statuses,
)

SENDERS = ("any", "dormant", "active", "business")
RECEIVERS = {"merchant": MERCHANT, "any_merchant": MERCHANT, "account": ACCOUNT, "new": NEW_PAYEE, "payees": ACCOUNT}
MAX_SPAN_SECONDS = 3600.0


@dataclass
class Variant:
    """One validated variant with its enum codes."""

    name: str
    config: VariantConfig
    key: str
    type_codes: np.ndarray = field(init=False)
    channel_codes: np.ndarray = field(init=False)
    receiver_kind: int = field(init=False)

    def __post_init__(self) -> None:
        c, key = self.config, self.key
        if c.weight < 0:
            raise ConfigError(f"{key}.weight must be >= 0, got {c.weight}")
        if c.size.lo < 1:
            raise ConfigError(f"{key}.size must be >= 1, got [{c.size.lo}, {c.size.hi}]")
        if not 0.0 < c.span_seconds.lo <= c.span_seconds.hi <= MAX_SPAN_SECONDS:
            raise ConfigError(f"{key}.span_seconds must be in (0, {MAX_SPAN_SECONDS:.0f}], got [{c.span_seconds.lo}, {c.span_seconds.hi}]")
        if c.pace_per_minute.hi > 0 and c.pace_per_minute.lo <= 0:
            raise ConfigError(f"{key}.pace_per_minute must be > 0 (or 0 = use span_seconds), got [{c.pace_per_minute.lo}, {c.pace_per_minute.hi}]")
        if c.amount_min.lo < 0:
            raise ConfigError(f"{key}.amount_min must be >= 0, got [{c.amount_min.lo}, {c.amount_min.hi}]")
        if not 0.0 <= c.failed_share.lo <= c.failed_share.hi <= 1.0:
            raise ConfigError(f"{key}.failed_share must be in [0, 1], got [{c.failed_share.lo}, {c.failed_share.hi}]")
        if c.amount_median.lo <= 0 or c.amount_sigma.lo < 0 or c.amount_threshold.lo < 0:
            raise ConfigError(f"{key}.amount_median must be > 0, amount_sigma and amount_threshold >= 0")
        if c.sender not in SENDERS:
            raise ConfigError(f"{key}.sender must be one of {', '.join(SENDERS)}, got {c.sender!r}")
        if c.receivers not in RECEIVERS:
            raise ConfigError(f"{key}.receivers must be one of {', '.join(RECEIVERS)}, got {c.receivers!r}")
        if c.receivers == "payees" and c.sender != "business":
            raise ConfigError(f"{key}.receivers: payees needs sender: business, got sender {c.sender!r}")
        if c.receiver_pool.lo < 0:
            raise ConfigError(f"{key}.receiver_pool must be >= 0, got [{c.receiver_pool.lo}, {c.receiver_pool.hi}]")
        for what, values, symbols in (("transaction_types", c.transaction_types, TYPES), ("channels", c.channels, CHANNELS)):
            if not values:
                raise ConfigError(f"{key}.{what} must not be empty")
            for value in values:
                if value not in symbols:
                    raise ConfigError(f"{key}.{what}: {value!r} is not one of {', '.join(symbols)}")
        self.type_codes = np.array([TYPES.index(t) for t in c.transaction_types], dtype=np.uint8)
        self.channel_codes = np.array([CHANNELS.index(ch) for ch in c.channels], dtype=np.uint8)
        self.receiver_kind = RECEIVERS[c.receivers]


@dataclass
class Family:
    """A configured family, its variants and its running credit; `label` is the pattern index or -1 (legitimate)."""

    name: str
    config: FamilyConfig
    label: int
    key: str
    variants: list[Variant] = field(init=False)
    credit: float = 0.0
    next_variant: int = -1
    next_size: int = 0

    def __post_init__(self) -> None:
        c = self.config
        if not 0.0 <= c.share < 1.0:
            raise ConfigError(f"{self.key}.share must be in [0, 1), got {c.share}")
        if not c.variants:
            raise ConfigError(f"{self.key}.variants must not be empty")
        self.variants = [Variant(name, v, f"{self.key}.variants.{name}") for name, v in c.variants.items()]
        weights = np.array([v.config.weight for v in self.variants], dtype=np.float64)
        if weights.sum() <= 0:
            raise ConfigError(f"{self.key}.variants: the weights must have a positive sum")
        self.cdf = np.cumsum(weights) / weights.sum()

    def _draw_next(self, rng: np.random.Generator) -> None:
        self.next_variant = min(int(np.searchsorted(self.cdf, rng.random(), side="right")), len(self.variants) - 1)
        size = self.variants[self.next_variant].config.size
        self.next_size = int(rng.integers(size.lo, size.hi + 1))

    def owed(self, rng: np.random.Generator, chunk_total: int) -> list[tuple[int, int]]:
        """(variant index, size) of each instance the credit pays for after a chunk of chunk_total rows."""
        if self.config.share <= 0.0:
            return []
        if self.next_variant < 0:
            self._draw_next(rng)
        self.credit += self.config.share * chunk_total
        owed = []
        while self.credit >= self.next_size:
            owed.append((self.next_variant, self.next_size))
            self.credit -= self.next_size
            self._draw_next(rng)
        return owed


def build_families(patterns: dict[str, FamilyConfig], bursts: dict[str, FamilyConfig]) -> list[Family]:
    """Fraud families (label = their index in `patterns`) followed by legitimate burst families (label -1)."""
    families = [Family(name, cfg, i, f"producer.patterns.{name}") for i, (name, cfg) in enumerate(patterns.items())]
    families += [Family(name, cfg, -1, f"producer.bursts.{name}") for name, cfg in bursts.items()]
    return families


def _round_threshold(raw: np.ndarray) -> np.ndarray:
    """Thresholds rounded to one significant digit: 1000, 2000, 5000, 10000 ..."""
    scale = 10.0 ** np.floor(np.log10(np.maximum(raw, 1.0)))
    return np.maximum(np.rint(raw / scale), 1.0) * scale


def _senders(variant: Variant, population: Population, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(account indexes, business positions or None) of k instance senders; empty when the segment is."""
    sender = variant.config.sender
    if sender == "business":
        businesses = population.businesses
        if not len(businesses.ids):
            return np.zeros(0, dtype=np.int64), None
        position = businesses.uniform(k)
        return businesses.ids[position], position
    if sender == "dormant":
        if not len(population.segments.dormant):
            return np.zeros(0, dtype=np.int64), None
        return population.dormant_accounts(k), None
    if sender == "active":
        return population.active_accounts(k), None
    return population.uniform_targets(k), None


def _receivers(variant: Variant, population: Population, instance: np.ndarray, k: int,
               business: np.ndarray | None) -> np.ndarray:
    rng, cfg = population.rng, variant.config
    m = len(instance)
    if cfg.receivers == "payees":
        return population.businesses.payee(business[instance])

    def draw(n: int) -> np.ndarray:
        if cfg.receivers == "any_merchant":
            return population.merchants_uniform(n)
        return population.receivers(variant.receiver_kind, n)

    pool = uniform_int(rng, cfg.receiver_pool, k)
    if not pool.any():
        return draw(m)
    start = np.concatenate([[0], np.cumsum(pool)[:-1]])
    members = draw(int(pool.sum()))
    size = pool[instance]
    pooled = size > 0
    receiver = np.empty(m, dtype=np.int64)
    offset = (rng.random(int(pooled.sum())) * size[pooled]).astype(np.int64)
    receiver[pooled] = members[start[instance[pooled]] + offset]
    receiver[~pooled] = draw(int((~pooled).sum()))
    return receiver


def place_instances(family: Family, variant: Variant, sizes: list[int], population: Population, *,
                    chunk_start: int, chunk_end: int, first_instance: int,
                    variant_code: int = -1) -> dict[str, np.ndarray] | None:
    """Columns of instances of one variant starting in [chunk_start, chunk_end) ms; rows may lie later.

    Fraud rows carry `instance` ids first_instance, first_instance + 1, ... (-1 for legitimate
    bursts) and `variant` = variant_code (-1 for legitimate bursts).
    """
    rng, cfg = population.rng, variant.config
    k = len(sizes)
    senders, business = _senders(variant, population, k)
    if not len(senders):
        return None
    size_arr = np.array(sizes, dtype=np.int64)
    instance = np.repeat(np.arange(k), size_arr)
    m = len(instance)
    starts = chunk_start + (rng.random(k) * (chunk_end - chunk_start)).astype(np.int64)
    if cfg.pace_per_minute.hi > 0:  # a pace: the span grows with the size
        spans = np.minimum(size_arr * 60_000.0 / uniform(rng, cfg.pace_per_minute, k), MAX_SPAN_SECONDS * 1000.0)
    else:
        spans = uniform(rng, cfg.span_seconds, k) * 1000.0
    times = starts[instance] + (rng.random(m) * spans[instance]).astype(np.int64)

    if cfg.amount_threshold.hi > 0:
        threshold = _round_threshold(uniform(rng, cfg.amount_threshold, k))
        major = threshold[instance] * rng.uniform(0.90, 0.999, m)
    else:
        median = loguniform(rng, cfg.amount_median, k)
        sigma = uniform(rng, cfg.amount_sigma, k)
        major = median[instance] * np.exp(sigma[instance] * rng.standard_normal(m))
    if cfg.amount_min.hi > 0:
        floor = uniform(rng, cfg.amount_min, k)[instance]
        major = np.where(major < floor, floor * rng.uniform(1.0, 1.3, m), major)
    failed_share = uniform(rng, cfg.failed_share, k)
    fraud = family.label >= 0
    # A fraudster uses their own device, one per instance; legitimate bursts keep the account's.
    device = rng.integers(0, 10**8, k)[instance] if fraud else account_device(senders[instance])
    ids = (first_instance + instance) if fraud else np.full(m, -1, dtype=np.int64)
    return {
        "sender": senders[instance],
        "receiver_kind": np.full(m, variant.receiver_kind, dtype=np.uint8),
        "receiver": _receivers(variant, population, instance, k, business),
        "transaction_type": variant.type_codes[rng.integers(0, len(variant.type_codes), m)],
        "amount_minor": np.maximum(np.rint(major * 100.0), 1).astype(np.int64),
        "status": failed_statuses(rng, failed_share[instance], m),
        "channel": variant.channel_codes[rng.integers(0, len(variant.channel_codes), m)],
        "device": device,
        "emit_ms": times,
        "event_time": times,
        "pattern": np.full(m, family.label, dtype=np.int8),
        "instance": ids.astype(np.int64),
        "variant": np.full(m, variant_code if fraud else -1, dtype=np.int16),
    }

"""Account segments: which accounts are consumers, businesses or dormant, and the businesses' traffic.

Consumers follow producer.traffic (Zipf activity, capped). Businesses send steady, large
TRANSFER/PAYMENT traffic, each at its own rate and amount scale, mostly to its own pool of
payees (suppliers, employees). Dormant accounts send nothing in the background; they only
appear as senders through bursts with `sender: dormant` (wake-ups) or when fraud hits them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from fraudpipe.config import BusinessConfig, IntRange, Range, SegmentsConfig
from fraudpipe.errors import ConfigError

MINUTE_MS = 60_000
PAYEE_SKEW = 3.0


def loguniform(rng: np.random.Generator, r: Range, n: int) -> np.ndarray:
    """n draws log-uniform in [r.lo, r.hi] (r.lo > 0)."""
    if r.lo == r.hi:
        return np.full(n, r.lo)
    return np.exp(rng.uniform(math.log(r.lo), math.log(r.hi), n))


def uniform(rng: np.random.Generator, r: Range, n: int) -> np.ndarray:
    return np.full(n, r.lo) if r.lo == r.hi else rng.uniform(r.lo, r.hi, n)


def uniform_int(rng: np.random.Generator, r: IntRange, n: int) -> np.ndarray:
    return rng.integers(r.lo, r.hi + 1, n, dtype=np.int64)


def check_segments(segments: SegmentsConfig, *, types: tuple[str, ...], channels: tuple[str, ...]) -> None:
    """Fail naming the key of the first invalid segment setting."""
    key = "producer.segments"
    b, d = segments.business, segments.dormant
    for name, share in (("business.share", b.share), ("dormant.share", d.share)):
        if not 0.0 <= share < 1.0:
            raise ConfigError(f"{key}.{name} must be in [0, 1), got {share}")
    if b.share + d.share >= 0.9:
        raise ConfigError(f"{key}: business.share + dormant.share must leave at least 10 % consumers, got {b.share + d.share}")
    if b.tx_per_minute.lo <= 0:
        raise ConfigError(f"{key}.business.tx_per_minute must be > 0, got [{b.tx_per_minute.lo}, {b.tx_per_minute.hi}]")
    if b.amount_median.lo <= 0:
        raise ConfigError(f"{key}.business.amount_median must be > 0, got [{b.amount_median.lo}, {b.amount_median.hi}]")
    if b.amount_sigma < 0:
        raise ConfigError(f"{key}.business.amount_sigma must be >= 0, got {b.amount_sigma}")
    if b.payees.lo < 1:
        raise ConfigError(f"{key}.business.payees must be >= 1, got [{b.payees.lo}, {b.payees.hi}]")
    for name, share in (("new_payee_share", b.new_payee_share), ("failed_share", b.failed_share)):
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{key}.business.{name} must be in [0, 1], got {share}")
    if not b.type_mix or any(w < 0 for w in b.type_mix.values()) or sum(b.type_mix.values()) <= 0:
        raise ConfigError(f"{key}.business.type_mix must hold non-negative weights with a positive sum")
    for name in b.type_mix:
        if name not in types:
            raise ConfigError(f"{key}.business.type_mix.{name}: {name!r} is not one of {', '.join(types)}")
    if not b.channels:
        raise ConfigError(f"{key}.business.channels must not be empty")
    for name in b.channels:
        if name not in channels:
            raise ConfigError(f"{key}.business.channels: {name!r} is not one of {', '.join(channels)}")


@dataclass(frozen=True)
class SegmentIds:
    """Account indexes per segment (each sorted)."""

    consumers: np.ndarray
    businesses: np.ndarray
    dormant: np.ndarray

    @property
    def fraud_targets(self) -> np.ndarray:
        """Accounts fraud may hit: consumers and dormant accounts (businesses are watched by their banks)."""
        return np.sort(np.concatenate([self.consumers, self.dormant]))


def assign_segments(rng: np.random.Generator, accounts: int, segments: SegmentsConfig) -> SegmentIds:
    """A random split of account indexes [0, accounts) into businesses, dormant accounts and consumers."""
    n_business = int(round(segments.business.share * accounts))
    n_dormant = int(round(segments.dormant.share * accounts))
    order = rng.permutation(accounts).astype(np.int64)
    return SegmentIds(
        consumers=np.sort(order[n_business + n_dormant:]),
        businesses=np.sort(order[:n_business]),
        dormant=np.sort(order[n_business:n_business + n_dormant]),
    )


class PayeePools:
    """Per owner (by position) a stable pool of payees, the first ones paid most often when skewed."""

    def __init__(self, rng: np.random.Generator, sizes: np.ndarray, *, space: int, skew: float = 1.0) -> None:
        self.rng = rng
        self.sizes = sizes
        self.start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.members = rng.integers(0, space, int(sizes.sum()), dtype=np.int64)
        self.skew = skew

    def pick(self, position: np.ndarray) -> np.ndarray:
        """One payee from each given owner's pool."""
        draw = self.rng.random(len(position))
        if self.skew != 1.0:
            draw = draw ** self.skew
        return self.members[self.start[position] + (draw * self.sizes[position]).astype(np.int64)]

    def pool(self, position: int) -> np.ndarray:
        """All payees of one owner."""
        return self.members[self.start[position]:self.start[position] + self.sizes[position]]


class Businesses:
    """Every business's rate, amount scale and payee pool, and their steady background traffic."""

    def __init__(self, config: BusinessConfig, ids: np.ndarray, rng: np.random.Generator, *, accounts: int,
                 type_codes: dict[str, int], channel_codes: dict[str, int]) -> None:
        self.config = config
        self.ids = ids
        self.rng = rng
        n = len(ids)
        self.tx_per_minute = loguniform(rng, config.tx_per_minute, n)
        self.amount_median = loguniform(rng, config.amount_median, n)
        # u ** PAYEE_SKEW puts most payments on the first payees of a pool (the main
        # suppliers, the payroll), so a business repeats payees within minutes, not days.
        self.payees = PayeePools(rng, uniform_int(rng, config.payees, n), space=accounts, skew=PAYEE_SKEW)
        self._rate_cdf = np.cumsum(self.tx_per_minute) / self.tx_per_minute.sum() if n else np.zeros(0)
        self.total_per_minute = float(self.tx_per_minute.sum())
        weights = np.array(list(config.type_mix.values()), dtype=np.float64)
        self._type_codes = np.array([type_codes[t] for t in config.type_mix], dtype=np.uint8)
        self._type_cdf = np.cumsum(weights) / weights.sum()
        self._channel_codes = np.array([channel_codes[c] for c in config.channels], dtype=np.uint8)

    def count(self, span_ms: int) -> int:
        """How many business transactions fall into `span_ms` of event time (Poisson)."""
        if not len(self.ids):
            return 0
        return int(self.rng.poisson(self.total_per_minute * span_ms / MINUTE_MS))

    def pick(self, n: int) -> np.ndarray:
        """n business positions (indexes into self.ids) drawn by rate."""
        return np.searchsorted(self._rate_cdf, self.rng.random(n), side="right").clip(0, len(self.ids) - 1)

    def uniform(self, n: int) -> np.ndarray:
        """n business positions drawn uniformly (who runs a payout)."""
        return self.rng.integers(0, len(self.ids), n, dtype=np.int64)

    def payee(self, position: np.ndarray) -> np.ndarray:
        """One payee (account index) from each given business's own pool, the regular ones most often."""
        return self.payees.pick(position)

    def background(self, n: int, *, account_kind: int, new_kind: int, new_space: int,
                   failed: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
        """Columns of n ordinary business transactions (no times yet)."""
        rng, cfg = self.rng, self.config
        position = self.pick(n)
        sender = self.ids[position]
        receiver = self.payee(position)
        receiver_kind = np.full(n, account_kind, dtype=np.uint8)
        new = rng.random(n) < cfg.new_payee_share
        receiver_kind[new] = new_kind
        receiver[new] = rng.integers(0, new_space, int(new.sum()), dtype=np.int64)
        major = self.amount_median[position] * np.exp(cfg.amount_sigma * rng.standard_normal(n))
        return {
            "sender": sender, "receiver_kind": receiver_kind, "receiver": receiver,
            "transaction_type": self._type_codes[np.searchsorted(self._type_cdf, rng.random(n), side="right")],
            "amount_minor": np.maximum(np.rint(major * 100.0), 1).astype(np.int64),
            "status": failed(rng, cfg.failed_share, n),
            "channel": self._channel_codes[rng.integers(0, len(self._channel_codes), n)],
            "device": (sender * 2654435761) % new_space,
        }

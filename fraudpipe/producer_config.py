"""The producer's typed settings: traffic, account segments, fraud families and legitimate bursts.

Parsed by fraudpipe.config like every section (unknown keys fail naming the key). A numeric
parameter typed `Range`/`IntRange` may be written as a scalar (`5`) or a range (`[2, 8]`);
the generator draws it per instance (sizes and pools uniform ints, amount medians
log-uniform, spans and shares uniform).
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field

from fraudpipe.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A closed range of floats, [lo, hi]; lo == hi is a fixed value."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ConfigError(f"range [{self.lo}, {self.hi}] has lo > hi")


@dataclass(frozen=True)
class IntRange:
    """A closed range of ints, [lo, hi]; lo == hi is a fixed value."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ConfigError(f"range [{self.lo}, {self.hi}] has lo > hi")


def _r(lo: float, hi: float | None = None) -> Range:
    return Range(float(lo), float(lo if hi is None else hi))


def _i(lo: int, hi: int | None = None) -> IntRange:
    return IntRange(lo, lo if hi is None else hi)


@dataclass(frozen=True)
class AmountConfig:
    """A log-normal amount distribution in major units (dollars): median and sigma of ln(amount)."""

    median: float = 40.0
    sigma: float = 1.0


@dataclass(frozen=True)
class VariantConfig:
    """One shape of a burst family; every instance draws its own parameters from the ranges.

    An instance is one sender making `size` transactions spread uniformly over `span_seconds`
    from a start at any moment of event time (so it may cross minute boundaries).
    """

    weight: float = 1.0  # relative frequency among the family's variants
    size: IntRange = field(default_factory=lambda: _i(1))
    span_seconds: Range = field(default_factory=lambda: _r(50.0))
    # > 0: the pace instead of span_seconds, transactions per minute (span = size * 60 / pace)
    pace_per_minute: Range = field(default_factory=lambda: _r(0.0))
    transaction_types: tuple[str, ...] = ("PURCHASE",)
    channels: tuple[str, ...] = ("ONLINE",)
    amount_median: Range = field(default_factory=lambda: _r(40.0))  # dollars, log-uniform per instance
    amount_sigma: Range = field(default_factory=lambda: _r(1.0))  # sigma of ln(amount) inside an instance, uniform
    amount_threshold: Range = field(default_factory=lambda: _r(0.0))  # > 0: amounts 90-99.9 % of a round threshold
    amount_min: Range = field(default_factory=lambda: _r(0.0))  # dollars; smaller amounts are raised to 1-1.3 x this
    failed_share: Range = field(default_factory=lambda: _r(0.02))
    # who sends: any (uniform over consumers and dormant accounts), dormant, active (consumers
    # by activity) or business (a business account)
    sender: str = "any"
    # who receives: merchant (by popularity), any_merchant (uniform), account, new (never seen
    # before) or payees (the sending business's own payees)
    receivers: str = "merchant"
    receiver_pool: IntRange = field(default_factory=lambda: _i(0))  # distinct receivers per instance; 0 = fresh each


@dataclass(frozen=True)
class FamilyConfig:
    """A burst family: labelled with its name when it is fraud (producer.patterns), never when legitimate."""

    share: float = 0.0  # fraction of all transactions that belong to the family
    variants: dict[str, VariantConfig] = field(default_factory=lambda: types.MappingProxyType({"default": VariantConfig()}))


@dataclass(frozen=True)
class TrafficConfig:
    """Consumer background traffic: activity, transaction mix, amounts, failures, disorder."""

    merchants: int = 2000
    activity_skew: float = 1.1
    # A person makes a few card transactions a minute at most: the Zipf skew is capped at
    # this expected background rate per account (0 = uncapped); bursts come on top.
    max_account_tx_per_minute: float = 2.5
    type_mix: dict[str, float] = field(default_factory=lambda: types.MappingProxyType(
        {"PURCHASE": 0.6, "PAYMENT": 0.15, "TRANSFER": 0.15, "WITHDRAWAL": 0.08, "OTHER": 0.02}))
    amounts: dict[str, AmountConfig] = field(default_factory=lambda: types.MappingProxyType({
        "PURCHASE": AmountConfig(35.0, 1.0), "PAYMENT": AmountConfig(80.0, 0.9),
        "TRANSFER": AmountConfig(150.0, 1.2), "WITHDRAWAL": AmountConfig(60.0, 0.6),
        "OTHER": AmountConfig(20.0, 1.0)}))
    failed_share: float = 0.02
    # People pay the same people: each consumer's TRANSFERs go to its own few payees (accounts)
    # and its PAYMENTs to as many billers (merchants); new_payee_share to someone never paid before.
    payees: IntRange = field(default_factory=lambda: _i(1, 8))
    new_payee_share: float = 0.1
    currency: str = "USD"
    out_of_order_share: float = 0.05
    out_of_order_max_seconds: float = 5.0
    late_share: float = 0.01
    late_min_seconds: float = 30.0
    late_max_seconds: float = 120.0


@dataclass(frozen=True)
class BusinessConfig:
    """Businesses: steady, large TRANSFER/PAYMENT traffic to their own payees, each at its own rate and scale."""

    share: float = 0.02  # of the accounts
    tx_per_minute: Range = field(default_factory=lambda: _r(0.3, 8.0))  # per business, log-uniform
    amount_median: Range = field(default_factory=lambda: _r(300.0, 5000.0))  # per business, log-uniform, dollars
    amount_sigma: float = 0.7
    payees: IntRange = field(default_factory=lambda: _i(5, 200))  # suppliers/employees per business
    new_payee_share: float = 0.05  # transactions to a payee never seen before
    type_mix: dict[str, float] = field(default_factory=lambda: types.MappingProxyType({"TRANSFER": 0.7, "PAYMENT": 0.3}))
    channels: tuple[str, ...] = ("ONLINE", "MOBILE")
    failed_share: float = 0.01


@dataclass(frozen=True)
class DormantConfig:
    """Dormant accounts: no background traffic; they wake up through producer.bursts with sender: dormant."""

    share: float = 0.10  # of the accounts


@dataclass(frozen=True)
class SegmentsConfig:
    """Account segments beside the consumers (the rest, who follow producer.traffic)."""

    business: BusinessConfig = field(default_factory=BusinessConfig)
    dormant: DormantConfig = field(default_factory=DormantConfig)


def _v(weight, size, span, types_, channels, median, sigma, failed, sender, receivers, pool=0, threshold=0.0,
       pace=0.0, amount_min=0.0):
    def rng(v, cast):
        return cast(*v) if isinstance(v, tuple) else cast(v)
    return VariantConfig(weight=weight, size=rng(size, _i), span_seconds=rng(span, _r), pace_per_minute=rng(pace, _r),
                         transaction_types=types_, channels=channels, amount_median=rng(median, _r),
                         amount_sigma=rng(sigma, _r), amount_threshold=rng(threshold, _r), amount_min=rng(amount_min, _r),
                         failed_share=rng(failed, _r), sender=sender, receivers=receivers, receiver_pool=rng(pool, _i))


_REMOTE = ("ONLINE", "MOBILE")


def _default_patterns() -> types.MappingProxyType:
    fam = lambda share, **variants: FamilyConfig(share, types.MappingProxyType(variants))  # noqa: E731
    pos = ("ONLINE", "MOBILE", "POS")
    return types.MappingProxyType({
        "card_testing": fam(
            0.004,
            one_merchant=_v(0.45, (10, 40), (20, 90), ("PURCHASE",), ("ONLINE",), (0.5, 5), 0.4, (0.5, 0.95), "any", "merchant", (1, 2)),
            many_merchants=_v(0.35, (10, 40), (20, 120), ("PURCHASE",), ("ONLINE",), (0.5, 5), 0.4, (0.5, 0.95), "any", "any_merchant"),
            slow=_v(0.2, (8, 25), (120, 300), ("PURCHASE",), ("ONLINE",), (0.5, 5), 0.4, (0.4, 0.9), "any", "merchant", (1, 3))),
        "account_takeover": fam(
            0.001,
            drain=_v(0.5, (2, 6), (10, 120), ("TRANSFER",), _REMOTE, (1500, 10000), 0.4, (0.0, 0.15), "any", "new", (1, 3),
                     amount_min=1000.0),
            dormant_takeover=_v(0.25, (2, 5), (10, 150), ("TRANSFER",), _REMOTE, (1500, 8000), 0.4, (0.0, 0.15), "dormant", "new",
                                (1, 3), amount_min=1000.0),
            purchase_spree=_v(0.25, (4, 10), (30, 150), ("PURCHASE",), _REMOTE, (300, 3000), 0.5, (0.0, 0.2), "any", "merchant",
                              amount_min=150.0)),
        "velocity_spike": fam(
            0.003,
            burst=_v(0.6, (8, 60), 50, ("PURCHASE", "PAYMENT"), pos, (20, 150), 0.8, (0.01, 0.1), "any", "merchant", pace=(8, 40)),
            slow=_v(0.4, (10, 30), 50, ("PURCHASE", "PAYMENT"), pos, (20, 150), 0.8, (0.01, 0.1), "any", "merchant", pace=(5, 8))),
        "mule_fan_out": fam(
            0.002,
            fan_out=_v(0.6, (6, 40), (20, 120), ("TRANSFER",), _REMOTE, (100, 2000), 0.3, (0.0, 0.05), "any", "new"),
            structuring=_v(0.4, (5, 25), (30, 240), ("TRANSFER",), _REMOTE, 950, 0.1, (0.0, 0.05), "any", "new", threshold=1000.0)),
    })


def _default_bursts() -> types.MappingProxyType:
    one = lambda share, variant: FamilyConfig(share, types.MappingProxyType({"default": variant}))  # noqa: E731
    return types.MappingProxyType({
        "shopping_spree": one(0.01, _v(1.0, (3, 10), 50, ("PURCHASE",), ("POS", "ONLINE", "MOBILE"), (20, 60), 1.0, 0.02, "active",
                                       "merchant", pace=(1, 3))),
        "payroll": one(0.004, _v(1.0, (6, 18), (20, 120), ("TRANSFER",), _REMOTE, (800, 2500), 0.5, 0.01, "business", "payees")),
        "big_purchase": one(0.001, _v(1.0, (1, 2), (5, 60), ("PURCHASE",), ("POS", "ONLINE"), (1500, 5000), 0.5, 0.05, "active",
                                      "merchant")),
        "retries": one(0.002, _v(1.0, (2, 6), (10, 60), ("PURCHASE",), _REMOTE, (15, 80), 0.6, 0.5, "active", "merchant", 1)),
        "payout_run": one(0.01, _v(1.0, (5, 40), (30, 180), ("TRANSFER",), _REMOTE, (500, 5000), 0.5, 0.01, "business", "payees")),
        "wake_up": FamilyConfig(0.0005, types.MappingProxyType({
            "purchase": _v(0.6, (1, 3), (10, 300), ("PURCHASE",), ("POS", "ONLINE", "MOBILE"), (20, 200), 0.8, 0.02, "dormant", "merchant"),
            "transfer": _v(0.4, (1, 2), (10, 300), ("TRANSFER",), _REMOTE, (50, 400), 0.6, 0.02, "dormant", "new", 1)})),
    })


@dataclass(frozen=True)
class ProducerConfig:
    """`fraudpipe produce`: send rate, clock, the traffic model, segments and the burst families."""

    rate: float = 200.0  # transactions per wall-clock second; 0 = as fast as possible
    seed: int = 42
    accounts: int = 200000
    schema_version: int = 1
    clock: str = "realtime"  # realtime | simulated
    event_rate: float = 200.0  # simulated clock: transactions per event-time second
    start_ms: int = 0  # simulated clock: first event time (epoch ms); 0 = now
    label_delay_seconds: float = 30.0  # labels are published this much event time later
    batch_size: int = 20000
    linger_ms: int = 20  # librdkafka batching delay: larger batches, fewer requests
    delivery_timeout_ms: int = 30000  # a record not acknowledged by then counts as a delivery error
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    patterns: dict[str, FamilyConfig] = field(default_factory=_default_patterns)
    bursts: dict[str, FamilyConfig] = field(default_factory=_default_bursts)

    def __post_init__(self) -> None:
        if self.rate < 0 or self.event_rate < 0:
            raise ConfigError(f"producer.rate and producer.event_rate must be >= 0 (0 = as fast as possible), "
                              f"got {self.rate:g}, {self.event_rate:g}")

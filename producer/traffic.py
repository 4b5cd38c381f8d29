"""Background traffic: the account population, fixed-width ids, amounts, statuses and disorder.

Everything is vectorised with numpy and driven by one `numpy.random.Generator`, so a seed
fixes the stream. Ids are fixed width (12 ASCII bytes for accounts, 36 for transaction ids)
so they can be handled as byte matrices and framed as Avro without per-record Python work.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from fraudpipe import contracts
from fraudpipe.config import AmountConfig, ProducerConfig, TrafficConfig
from fraudpipe.errors import ConfigError
from producer.segments import Businesses, PayeePools, assign_segments, check_segments, uniform_int

TYPES: tuple[str, ...] = contracts.enum_symbols("transaction_type")
STATUSES: tuple[str, ...] = contracts.enum_symbols("status")
CHANNELS: tuple[str, ...] = contracts.enum_symbols("channel")
APPROVED = STATUSES.index("APPROVED")
DECLINED = STATUSES.index("DECLINED")
FAILED = STATUSES.index("FAILED")

# Receiver kinds; each has its own id prefix so ids say what they are.
ACCOUNT, MERCHANT, NEW_PAYEE, ATM = 0, 1, 2, 3
KIND_NAMES = {"account": ACCOUNT, "merchant": MERCHANT, "new": NEW_PAYEE}  # receivers of bursts (+ any_merchant, payees)
_PREFIXES = np.frombuffer(b"ACC-MER-EXT-ATM-DEV-", dtype=np.uint8).reshape(5, 4)
DEVICE = 4
ID_DIGITS = 8
ID_WIDTH = 4 + ID_DIGITS
TX_ID_WIDTH = 36
NEW_PAYEE_SPACE = 10**ID_DIGITS
_POWERS = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Which channels each transaction type uses, with weights (ATMs only serve withdrawals).
_CHANNEL_MIX = {
    "PURCHASE": {"POS": 0.5, "ONLINE": 0.35, "MOBILE": 0.15},
    "PAYMENT": {"ONLINE": 0.6, "MOBILE": 0.35, "OTHER": 0.05},
    "TRANSFER": {"ONLINE": 0.5, "MOBILE": 0.5},
    "WITHDRAWAL": {"ATM": 1.0},
    "OTHER": {"OTHER": 0.5, "ONLINE": 0.5},
}
_RECEIVER_KIND = {"PURCHASE": MERCHANT, "PAYMENT": MERCHANT, "TRANSFER": ACCOUNT, "WITHDRAWAL": ATM, "OTHER": MERCHANT}


def format_ids(kind: np.ndarray | int, index: np.ndarray) -> np.ndarray:
    """(n, 12) ASCII matrix of ids like ACC-00012345 for the given kinds and indexes."""
    index = np.asarray(index, dtype=np.int64)
    out = np.empty((len(index), ID_WIDTH), dtype=np.uint8)
    out[:, :4] = _PREFIXES[kind]
    out[:, 4:] = (index[:, None] // _POWERS) % 10 + 48
    return out


def account_id(index: int) -> str:
    """The id of account `index` (for tests and tools)."""
    return format_ids(ACCOUNT, np.array([index]))[0].tobytes().decode()


def uuid4_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 36) ASCII matrix of random, well-formed UUID4 strings drawn from `rng`."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    hexed = _HEX[nibbles]
    out = np.full((n, TX_ID_WIDTH), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at:at + stop - start] = hexed[:, start:stop]
    return out


def lognormal_minor(rng: np.random.Generator, amount: AmountConfig, n: int) -> np.ndarray:
    """n amounts in minor units (cents) from a log-normal with the configured median and sigma."""
    major = amount.median * np.exp(amount.sigma * rng.standard_normal(n))
    return np.maximum(np.rint(major * 100.0), 1).astype(np.int64)


def failed_statuses(rng: np.random.Generator, failed_share: float, n: int) -> np.ndarray:
    """Statuses: APPROVED, or with probability failed_share DECLINED (3 in 4) or FAILED."""
    draw = rng.random(n)
    status = np.full(n, APPROVED, dtype=np.uint8)
    status[draw < failed_share] = DECLINED
    status[draw < failed_share * 0.25] = FAILED
    return status


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


def _zipf_weights(rng: np.random.Generator, n: int, skew: float) -> np.ndarray:
    """Zipf(skew) shares (summing to 1) over n items in a random order (so id 0 is not the busiest)."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** skew
    return (weights / weights.sum())[rng.permutation(n)]


def _zipf_cdf(rng: np.random.Generator, n: int, skew: float) -> np.ndarray:
    return _cdf(_zipf_weights(rng, n, skew))


def cap_shares(shares: np.ndarray, cap: float) -> np.ndarray:
    """Shares (summing to 1) with none above `cap`, the excess spread over the others in proportion.

    Water-filling: the m largest are set to the cap and the rest scaled by (1 - m*cap) / rest,
    with the smallest m for which the largest scaled one stays under the cap. The order of the
    uncapped shares (the skew) is kept. Needs len(shares) * cap >= 1.
    """
    if cap * len(shares) < 1.0 - 1e-12:
        raise ConfigError(f"cannot cap {len(shares)} shares at {cap}: they would sum to less than 1")
    ranked = np.sort(shares)[::-1]
    rest = np.cumsum(ranked[::-1])[::-1]  # rest[m] = sum of all but the m largest
    m = np.arange(len(ranked))
    scale = np.divide(1.0 - m * cap, rest, out=np.zeros(len(ranked)), where=rest > 0)
    first = int(np.argmax(ranked * scale <= cap * (1 + 1e-12)))
    return np.minimum(shares * scale[first], cap)


def population_size(accounts: int, *, tx_per_minute: float, max_account_tx_per_minute: float,
                    consumer_share: float = 1.0) -> int:
    """`accounts`, widened when it has too few consumers to keep every one under the per-minute cap.

    With half again the bare minimum, the cap binds only on the busiest accounts and the
    Zipf skew still shows below it.
    """
    if max_account_tx_per_minute <= 0:
        return accounts
    return max(accounts, math.ceil(1.5 * tx_per_minute / max_account_tx_per_minute / consumer_share))


def account_device(sender: np.ndarray) -> np.ndarray:
    """A normal sender pays from their own device: one per account, stable."""
    return (sender * 2654435761) % NEW_PAYEE_SPACE


@dataclass
class Population:
    """Accounts in segments, consumers with skewed activity, merchants with skewed popularity, ATMs, the type mix.

    `accounts` is config.accounts, or more when the event rate needs more consumers to keep
    every one's expected background rate under traffic.max_account_tx_per_minute.
    `account_shares` are the consumers' activity shares (aligned with segments.consumers).
    """

    config: ProducerConfig
    rng: np.random.Generator
    # Transactions per event-time second the stream runs at (default: config.event_rate);
    # with the per-account cap it fixes how busy the busiest account may be.
    event_rate: float | None = None

    def __post_init__(self) -> None:
        traffic: TrafficConfig = self.config.traffic
        _check_positive("producer.accounts", self.config.accounts)
        _check_positive("producer.traffic.merchants", traffic.merchants)
        if traffic.max_account_tx_per_minute < 0:
            raise ConfigError(f"producer.traffic.max_account_tx_per_minute must be >= 0, got {traffic.max_account_tx_per_minute}")
        segments = self.config.segments
        check_segments(segments, types=TYPES, channels=CHANNELS)
        tx_per_minute = 60.0 * (self.event_rate or self.config.event_rate)
        consumer_share = 1.0 - segments.business.share - segments.dormant.share
        self.accounts = population_size(self.config.accounts, tx_per_minute=tx_per_minute,
                                        max_account_tx_per_minute=traffic.max_account_tx_per_minute,
                                        consumer_share=consumer_share)
        if self.accounts > 10**ID_DIGITS or traffic.merchants > 10**ID_DIGITS:
            raise ConfigError(f"producer.accounts and producer.traffic.merchants must be at most {10**ID_DIGITS}")
        for name in traffic.type_mix:
            _check_symbol(f"producer.traffic.type_mix.{name}", name, TYPES)
        missing = [name for name in traffic.type_mix if name not in traffic.amounts]
        if missing:
            raise ConfigError(f"producer.traffic.amounts has no entry for {missing[0]} (used in type_mix)")
        self.segments = assign_segments(self.rng, self.accounts, segments)
        self.fraud_targets = self.segments.fraud_targets
        self.businesses = Businesses(segments.business, self.segments.businesses, self.rng, accounts=self.accounts,
                                     type_codes={t: i for i, t in enumerate(TYPES)},
                                     channel_codes={c: i for i, c in enumerate(CHANNELS)})
        # Consumers only: businesses have their own traffic, dormant accounts none.
        shares = _zipf_weights(self.rng, len(self.segments.consumers), traffic.activity_skew)
        if traffic.max_account_tx_per_minute > 0:
            shares = cap_shares(shares, traffic.max_account_tx_per_minute / tx_per_minute)
        self.account_shares = shares
        self.account_cdf = _cdf(shares)
        if traffic.payees.lo < 1:
            raise ConfigError(f"producer.traffic.payees must be >= 1, got [{traffic.payees.lo}, {traffic.payees.hi}]")
        if not 0.0 <= traffic.new_payee_share <= 1.0:
            raise ConfigError(f"producer.traffic.new_payee_share must be in [0, 1], got {traffic.new_payee_share}")
        # Per consumer (aligned with segments.consumers): payee accounts; member % merchants = billers.
        self.consumer_payees = PayeePools(self.rng, uniform_int(self.rng, traffic.payees, len(self.segments.consumers)),
                                          space=self.accounts)
        self.merchant_cdf = _zipf_cdf(self.rng, traffic.merchants, 1.0)
        self.atms = max(1, traffic.merchants // 4)
        self.type_codes = np.array([TYPES.index(name) for name in traffic.type_mix], dtype=np.uint8)
        self.type_cdf = _cdf(np.array(list(traffic.type_mix.values()), dtype=np.float64))
        self.channel_tables = {
            TYPES.index(name): (np.array([CHANNELS.index(c) for c in mix], dtype=np.uint8), _cdf(np.array(list(mix.values()))))
            for name, mix in _CHANNEL_MIX.items()
        }

    def active_positions(self, n: int) -> np.ndarray:
        """n consumer positions (indexes into segments.consumers) drawn by activity."""
        return np.searchsorted(self.account_cdf, self.rng.random(n), side="right")

    def active_accounts(self, n: int) -> np.ndarray:
        """n consumer account indexes drawn by activity (a few accounts are far busier than most)."""
        return self.segments.consumers[self.active_positions(n)]

    def uniform_accounts(self, n: int) -> np.ndarray:
        """n account indexes of any segment, uniformly (receivers of transfers)."""
        return self.rng.integers(0, self.accounts, n, dtype=np.int64)

    def uniform_targets(self, n: int) -> np.ndarray:
        """n accounts fraud may hit (consumers and dormant), uniformly."""
        return self.fraud_targets[self.rng.integers(0, len(self.fraud_targets), n)]

    def dormant_accounts(self, n: int) -> np.ndarray:
        """n dormant account indexes, uniformly (a consumer when there are none)."""
        pool = self.segments.dormant if len(self.segments.dormant) else self.segments.consumers
        return pool[self.rng.integers(0, len(pool), n)]

    def merchants_uniform(self, n: int) -> np.ndarray:
        """n merchant indexes, uniformly (small, rarely used shops included)."""
        return self.rng.integers(0, self.config.traffic.merchants, n, dtype=np.int64)

    def business_background(self, n: int) -> dict[str, np.ndarray]:
        """Columns of n ordinary business transactions (no times yet)."""
        return self.businesses.background(n, account_kind=ACCOUNT, new_kind=NEW_PAYEE, new_space=NEW_PAYEE_SPACE,
                                          failed=failed_statuses)

    def receivers(self, kind: int, n: int) -> np.ndarray:
        """n receiver indexes of one kind (merchants by popularity, accounts and ATMs uniformly)."""
        if kind == MERCHANT:
            return np.searchsorted(self.merchant_cdf, self.rng.random(n), side="right").astype(np.int64)
        if kind == ATM:
            return self.rng.integers(0, self.atms, n, dtype=np.int64)
        if kind == NEW_PAYEE:
            return self.rng.integers(0, NEW_PAYEE_SPACE, n, dtype=np.int64)
        return self.uniform_accounts(n)

    def background(self, n: int) -> dict[str, np.ndarray]:
        """Columns of n ordinary transactions (no times yet): sender, receiver, type, amount, status, channel."""
        traffic = self.config.traffic
        position = self.active_positions(n)
        sender = self.segments.consumers[position]
        ttype = self.type_codes[np.searchsorted(self.type_cdf, self.rng.random(n), side="right")]
        receiver_kind = np.empty(n, dtype=np.uint8)
        receiver = np.empty(n, dtype=np.int64)
        amount = np.empty(n, dtype=np.int64)
        channel = np.empty(n, dtype=np.uint8)
        for code in np.unique(ttype):
            rows = np.flatnonzero(ttype == code)
            name = TYPES[code]
            kind = _RECEIVER_KIND[name]
            if name in ("TRANSFER", "PAYMENT"):
                kind, receiver[rows] = self._known_payees(name, position[rows])
            else:
                receiver[rows] = self.receivers(kind, len(rows))
            receiver_kind[rows] = kind
            amount[rows] = lognormal_minor(self.rng, traffic.amounts[name], len(rows))
            symbols, cdf = self.channel_tables[code]
            channel[rows] = symbols[np.searchsorted(cdf, self.rng.random(len(rows)), side="right")]
        withdrawals = ttype == TYPES.index("WITHDRAWAL")
        amount[withdrawals] = np.maximum(2000, np.rint(amount[withdrawals] / 2000) * 2000)  # ATMs pay out in $20 notes
        device = account_device(sender)
        return {
            "sender": sender, "receiver_kind": receiver_kind, "receiver": receiver, "transaction_type": ttype,
            "amount_minor": amount, "status": failed_statuses(self.rng, traffic.failed_share, n),
            "channel": channel, "device": device,
        }

    def _known_payees(self, name: str, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(receiver kinds, receivers) of consumer TRANSFERs or PAYMENTs: mostly their own payees or billers."""
        n = len(position)
        known = self.consumer_payees.pick(position)
        new = self.rng.random(n) < self.config.traffic.new_payee_share
        if name == "TRANSFER":
            kind = np.where(new, NEW_PAYEE, ACCOUNT).astype(np.uint8)
            receiver = np.where(new, self.rng.integers(0, NEW_PAYEE_SPACE, n, dtype=np.int64), known)
        else:  # a biller: the same pool read as merchant ids, or a merchant by popularity
            kind = np.full(n, MERCHANT, dtype=np.uint8)
            receiver = np.where(new, self.receivers(MERCHANT, n), known % self.config.traffic.merchants)
        return kind, receiver

    def disorder(self, emit_ms: np.ndarray) -> np.ndarray:
        """Event times for background rows: most equal their emit time, some a little older, a few late."""
        traffic = self.config.traffic
        n = len(emit_ms)
        draw = self.rng.random(n)
        delay = np.zeros(n, dtype=np.float64)
        late = draw < traffic.late_share
        ooo = (draw >= traffic.late_share) & (draw < traffic.late_share + traffic.out_of_order_share)
        delay[late] = self.rng.uniform(traffic.late_min_seconds, traffic.late_max_seconds, int(late.sum())) * 1000.0
        delay[ooo] = self.rng.uniform(1.0, traffic.out_of_order_max_seconds * 1000.0, int(ooo.sum()))
        return emit_ms - delay.astype(np.int64)


def _check_positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {value}")


def _check_symbol(key: str, value: str, symbols: tuple[str, ...]) -> None:
    if value not in symbols:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(symbols)}")

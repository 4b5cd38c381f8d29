"""A labelled traffic mix written apart from producer/: a second opinion on transfer.

    .venv/bin/python -m benchmarks.detection.independent --out data/independent.parquet [--seed 1] [--scale 1.0]

The shifted configuration (shifted.yml) moves the producer's own parameters; its traffic still
has the producer's shapes. This mix is built another way, so that a model that only learned
the producer's shapes shows it:

- arrivals are Poisson per account over continuous time, with follow-up purchases (a person's
  shopping trip) and business batches (a payout file sent in seconds);
- consumers shop at merchants drawn by popularity (shared between consumers, often new to the
  buyer), pay 1-4 contacts, withdraw cash at ATMs and pay bills; businesses pay suppliers and
  staff in batches of large remote transfers; dormant accounts mostly stay quiet;
- four fraud families under their own names, each instance with its parameters drawn from wide
  ranges and starting at any moment: `carding` (tiny purchases, one or many merchants, many
  declines), `takeover` (a probe, then 1-6 large transfers to strangers), `spending_spree`
  (6-25 mid-size purchases in under five minutes), `mule` (4-40 transfers to strangers).

It writes the `produce --to-file` columns, `pattern`, `fraud_instance` and `fraud_variant`
included, so `fraudpipe evaluate` and `fraudpipe train --input` read it. Nothing in it was
fitted to the model: its ranges were set before any model was scored on it (docs/detection.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MINUTE_MS = 60_000
START_MS = 1_780_300_800_000  # 2026-06-01T08:00Z; any start will do, it need not sit on a minute
CONSUMERS, BUSINESSES, DORMANT, MERCHANTS = 120_000, 2_500, 20_000, 20_000
FRAUD_PER_MINUTE = 4.5
DEFAULT_MINUTES = 90
FAMILY_WEIGHTS = {"carding": 0.3, "takeover": 0.25, "spending_spree": 0.2, "mule": 0.25}


class _Rows:
    """Column lists that the traffic parts append to; one pyarrow table at the end."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {}

    def add(self, **columns: np.ndarray) -> None:
        size = len(columns["time_ms"])
        for name, values in columns.items():
            values = np.asarray(values)
            self.columns.setdefault(name, []).append(np.broadcast_to(values, (size,)) if values.ndim == 0 else values)

    def table(self, start_ms: int) -> pa.Table:
        """The rows in event-time order, their times (ms from the start) moved to start at `start_ms`."""
        joined = {name: np.concatenate(parts) for name, parts in self.columns.items()}
        order = np.argsort(joined["time_ms"], kind="stable")
        joined = {name: values[order] for name, values in joined.items()}
        instance = joined["fraud_instance"]
        labelled = instance >= 0
        return pa.table({
            "transaction_id": [f"ind-{i:09d}" for i in range(len(order))],
            "event_time": pa.array(joined["time_ms"].astype("int64") + start_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "sender_account": joined["sender"].astype(str),
            "receiver_account": joined["receiver"].astype(str),
            "amount_minor": np.maximum(joined["amount"], 1).astype("int64"),
            "currency": np.full(len(order), "USD"),
            "transaction_type": joined["type"].astype(str),
            "status": joined["status"].astype(str),
            "channel": joined["channel"].astype(str),
            "pattern": pa.array(joined["pattern"].astype(str), pa.string(), mask=~labelled),
            "fraud_instance": pa.array(np.where(labelled, instance, 0), pa.int64(), mask=~labelled),
            "fraud_variant": pa.array(joined["variant"].astype(str), pa.string(), mask=~labelled),
        })


def _names(prefix: str, ids: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(ids.astype(str), 6))


def _status(rng: np.random.Generator, n: int, declined: float | np.ndarray, failed: float = 0.005) -> np.ndarray:
    u = rng.random(n)
    return np.where(u < declined, "DECLINED", np.where(u < declined + failed, "FAILED", "APPROVED"))


def _popular_merchants(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.zipf(1.3, n) - 1) % MERCHANTS


def _consumers(rng: np.random.Generator, rows: _Rows, span_ms: int) -> None:
    minutes = span_ms / MINUTE_MS
    rate = np.minimum(rng.lognormal(np.log(0.03), 1.0, CONSUMERS), 1.5)  # transactions a minute
    counts = rng.poisson(rate * minutes)
    who = np.repeat(np.arange(CONSUMERS), counts)
    t = rng.random(len(who)) * span_ms
    # a shopping trip: some purchases bring one to three more a few minutes later
    followers = np.repeat(np.arange(len(who)), np.where(rng.random(len(who)) < 0.3, rng.integers(1, 4, len(who)), 0))
    who = np.concatenate([who, who[followers]])
    t = np.concatenate([t, t[followers] + rng.exponential(3 * MINUTE_MS, len(followers))])
    inside = t < span_ms  # a trip that would run past the end is cut there
    who, t = who[inside], t[inside]
    n = len(who)
    scale = rng.lognormal(np.log(3500), 0.6, CONSUMERS)[who]  # the person's typical purchase, cents
    kind = rng.choice(4, n, p=[0.78, 0.12, 0.06, 0.04])  # purchase, contact transfer, ATM, bill
    home = (who * 7919 + rng.integers(0, 6, n)) % MERCHANTS  # six shops each person returns to
    merchant = np.where(rng.random(n) < 0.6, home, _popular_merchants(rng, n))
    contact = (who * 104729 + rng.integers(0, 1 + who % 4, n)) % CONSUMERS
    contact = np.where(rng.random(n) < 0.85, contact, rng.integers(0, CONSUMERS, n))
    receiver = np.select([kind == 0, kind == 1, kind == 2],
                         [_names("SHOP", merchant), _names("CUST", contact), _names("ATM", who % 900)],
                         _names("BILL", who % 300))
    amount = np.select([kind == 0, kind == 1, kind == 2],
                       [scale * rng.lognormal(0, 1.0, n), rng.lognormal(np.log(8000), 0.9, n),
                        rng.integers(1, 21, n) * 2000],
                       rng.uniform(5000, 30000, n))
    channel = np.select([kind == 0, kind == 1, kind == 2],
                        [rng.choice(["POS", "ONLINE", "MOBILE"], n, p=[0.55, 0.3, 0.15]),
                         rng.choice(["MOBILE", "ONLINE"], n, p=[0.7, 0.3]), "ATM"], "ONLINE")
    type_ = np.select([kind == 0, kind == 1, kind == 2], ["PURCHASE", "TRANSFER", "WITHDRAWAL"], "PAYMENT")
    rows.add(time_ms=t, sender=_names("CUST", who), receiver=receiver, amount=amount.round(), type=type_,
             status=_status(rng, n, 0.025), channel=channel, pattern="", variant="", fraud_instance=-1)


def _businesses(rng: np.random.Generator, rows: _Rows, span_ms: int) -> None:
    minutes = span_ms / MINUTE_MS
    rate = rng.lognormal(np.log(0.8), 0.8, BUSINESSES)
    batch_size = rng.integers(2, 21, BUSINESSES)
    batches = rng.poisson(rate * minutes / batch_size)
    owner = np.repeat(np.arange(BUSINESSES), batches)
    start = rng.random(len(owner)) * span_ms
    size = rng.integers(1, batch_size[owner] + 1)
    batch = np.repeat(np.arange(len(owner)), size)
    who = owner[batch]
    n = len(who)
    t = start[batch] + rng.uniform(0, 1, n) * rng.uniform(5_000, 120_000, len(owner))[batch]
    inside = t < span_ms
    who, t, n = who[inside], t[inside], int(inside.sum())
    payees = rng.integers(10, 301, BUSINESSES)[who]
    payee = np.where(rng.random(n) < 0.9, (who * 1_000 + rng.integers(0, payees)), 10_000_000 + rng.integers(0, 10**6, n))
    amount = rng.lognormal(np.log(rng.uniform(30_000, 1_500_000, BUSINESSES))[who], 0.7)
    rows.add(time_ms=t, sender=_names("BIZ", who), receiver=_names("PAYEE", payee), amount=amount.round(),
             type=rng.choice(["TRANSFER", "PAYMENT"], n, p=[0.65, 0.35]), status=_status(rng, n, 0.01),
             channel=rng.choice(["ONLINE", "MOBILE"], n, p=[0.6, 0.4]), pattern="", variant="", fraud_instance=-1)


def _dormant(rng: np.random.Generator, rows: _Rows, span_ms: int) -> None:
    who = np.flatnonzero(rng.random(DORMANT) < 0.03)
    who = np.repeat(who, rng.integers(1, 3, len(who)))
    n = len(who)
    rows.add(time_ms=rng.random(n) * span_ms, sender=_names("IDLE", who),
             receiver=np.where(rng.random(n) < 0.5, _names("SHOP", _popular_merchants(rng, n)),
                               _names("CUST", rng.integers(0, CONSUMERS, n))),
             amount=rng.lognormal(np.log(6000), 1.0, n).round(), type=rng.choice(["PURCHASE", "TRANSFER"], n),
             status=_status(rng, n, 0.03), channel=rng.choice(["ONLINE", "MOBILE", "POS"], n),
             pattern="", variant="", fraud_instance=-1)


def _fraud(rng: np.random.Generator, rows: _Rows, span_ms: int) -> None:
    instances = rng.poisson(FRAUD_PER_MINUTE * span_ms / MINUTE_MS)
    families = rng.choice(list(FAMILY_WEIGHTS), instances, p=list(FAMILY_WEIGHTS.values()))
    stranger = iter(range(10**6))
    for instance, family in enumerate(families):
        victim = f"IDLE{rng.integers(0, DORMANT):06d}" if rng.random() < 0.3 else f"CUST{rng.integers(0, CONSUMERS):06d}"
        if family == "carding":
            n = int(rng.integers(4, 61))
            span = rng.uniform(15_000, 480_000)
            spread = rng.random() < 0.6
            variant = "many_merchants" if spread else "one_merchant"
            shops = rng.integers(0, MERCHANTS, n) if spread else np.full(n, rng.integers(0, MERCHANTS))
            receivers = _names("SHOP", shops)
            amount = rng.uniform(10, 499, n).round()
            status = _status(rng, n, rng.uniform(0.2, 0.9))
            channel = rng.choice(["ONLINE", "MOBILE"], n, p=[0.9, 0.1])
            type_ = np.full(n, "PURCHASE")
        elif family == "takeover":
            n = int(rng.integers(1, 7))
            probe = rng.random() < 0.4
            span = rng.uniform(10_000, 360_000)
            mules = [f"ACCT{next(stranger):07d}" for _ in range(int(rng.integers(1, 4)))]
            receivers = np.array([mules[i % len(mules)] for i in range(n + probe)])
            amount = rng.lognormal(np.log(rng.uniform(70_000, 900_000)), 0.5, n + probe).round()
            if probe:
                amount[0] = rng.uniform(100, 2_000)
            n += probe
            variant = "probe_then_drain" if probe else "drain"
            status = _status(rng, n, rng.uniform(0, 0.3))
            channel = rng.choice(["ONLINE", "MOBILE"], n)
            type_ = rng.choice(["TRANSFER", "PAYMENT"], n, p=[0.8, 0.2])
        elif family == "spending_spree":
            n = int(rng.integers(6, 26))
            span = rng.uniform(40_000, 300_000)
            variant = "card_present" if rng.random() < 0.4 else "online"
            receivers = _names("SHOP", rng.integers(0, MERCHANTS, n))
            amount = rng.lognormal(np.log(rng.uniform(2_500, 30_000)), 0.6, n).round()
            status = _status(rng, n, rng.uniform(0, 0.2))
            channel = np.full(n, "POS") if variant == "card_present" else rng.choice(["ONLINE", "MOBILE"], n)
            type_ = np.full(n, "PURCHASE")
        else:
            n = int(rng.integers(4, 41))
            span = rng.uniform(30_000, 720_000)
            variant = "fan_out"
            receivers = np.array([f"ACCT{next(stranger):07d}" for _ in range(n)])
            amount = rng.uniform(9_000, 290_000, n).round()
            status = _status(rng, n, rng.uniform(0, 0.1))
            channel = rng.choice(["MOBILE", "ONLINE"], n)
            type_ = np.full(n, "TRANSFER")
        start = rng.random() * (span_ms - span)  # any moment, the whole burst inside the mix
        rows.add(time_ms=start + np.sort(rng.random(n)) * span, sender=np.full(n, victim), receiver=receivers,
                 amount=amount, type=type_, status=status, channel=channel, pattern=family,
                 variant=f"{family}.{variant}", fraud_instance=instance)


def generate(seed: int, minutes: int) -> pa.Table:
    """The mix over `minutes` minutes from a start that is not a minute boundary."""
    rng = np.random.default_rng(seed)
    span_ms = minutes * MINUTE_MS
    rows = _Rows()
    for part in (_consumers, _businesses, _dormant, _fraud):
        part(rng, rows, span_ms)
    return rows.table(START_MS + seed * 7_919 + 17_321)  # no part of the mix starts on a minute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=int, default=DEFAULT_MINUTES)
    args = parser.parse_args()
    table = generate(args.seed, args.minutes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    labelled = table.column("pattern").drop_null()
    print(f"{args.out}: {table.num_rows:,} transactions over {args.minutes} minutes, {len(labelled):,} labelled, "
          f"{len(set(table.column('fraud_instance').drop_null().to_pylist())):,} fraud instances")


if __name__ == "__main__":
    main()

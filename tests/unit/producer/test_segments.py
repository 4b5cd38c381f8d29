"""Account segments: businesses at their own rates and scales to their own payees, silent dormant accounts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fraudpipe import contracts
from fraudpipe.config import ProducerConfig
from producer.generator import MINUTE_MS
from tests.fixtures.producer import generate

TYPES = contracts.enum_symbols("transaction_type")
CHANNELS = contracts.enum_symbols("channel")


def minutes(stream) -> float:
    return (stream.generator.generated_until_ms - stream.generator.start_ms) / MINUTE_MS


def test_segments_split_the_accounts_at_the_configured_shares(default_stream):
    pop = default_stream.generator.population
    seg = pop.segments
    config = ProducerConfig().segments
    assert len(seg.businesses) == round(config.business.share * pop.accounts)
    assert len(seg.dormant) == round(config.dormant.share * pop.accounts)
    everyone = np.concatenate([seg.consumers, seg.businesses, seg.dormant])
    assert np.array_equal(np.sort(everyone), np.arange(pop.accounts))


def test_each_business_sends_at_its_own_rate_and_amount_scale(default_stream):
    s = default_stream
    biz = s.generator.population.businesses
    config = ProducerConfig().segments.business
    assert config.tx_per_minute.lo <= biz.tx_per_minute.min() and biz.tx_per_minute.max() <= config.tx_per_minute.hi
    assert biz.tx_per_minute.max() > 8 * biz.tx_per_minute.min()  # a wide range, not one rate
    assert biz.amount_median.max() > 5 * biz.amount_median.min()
    position = np.searchsorted(biz.ids, s.sender)
    is_business = np.isin(s.sender, biz.ids)
    counts = np.bincount(position[is_business], minlength=len(biz.ids))
    expected = biz.tx_per_minute * minutes(s)
    # counts are the steady rate plus payout runs (unlabelled bursts) on top
    steady = is_business & (s.pattern < 0)
    assert counts.sum() == pytest.approx(expected.sum() + 0.01 * len(s), rel=0.1)
    assert np.corrcoef(counts, expected)[0, 1] > 0.8
    busy = np.flatnonzero(counts >= 40)
    ratios = [np.median(s.amount_minor[steady & (position == b)]) / 100 / biz.amount_median[b] for b in busy]
    assert len(busy) > 20 and 0.6 < np.median(ratios) < 1.6
    assert set(np.unique(s.transaction_type[steady])) <= {TYPES.index("TRANSFER"), TYPES.index("PAYMENT")}
    assert set(np.unique(s.channel[steady])) <= {CHANNELS.index("ONLINE"), CHANNELS.index("MOBILE")}
    # large: a typical business transaction is far above a consumer's
    consumers = np.isin(s.sender, s.generator.population.segments.consumers)
    assert np.median(s.amount_minor[steady]) > 5 * np.median(s.amount_minor[consumers])


def test_businesses_mostly_pay_their_own_stable_pool_of_payees(default_stream):
    s = default_stream
    biz = s.generator.population.businesses
    rows = np.flatnonzero(np.isin(s.sender, biz.ids))
    position = np.searchsorted(biz.ids, s.sender[rows])
    pools = [set(biz.payees.pool(b).tolist()) for b in range(len(biz.ids))]
    to_account = s.receiver_prefix[rows] == "ACC-"
    in_pool = np.array([r in pools[p] for r, p in zip(s.receiver[rows].tolist(), position.tolist())])
    assert (in_pool == to_account).all()  # account receivers all come from the pool; the rest are new payees
    assert 0.9 < in_pool.mean() < 0.99
    # reuse: most payments go to a payee this business has already paid in the stream
    # (25 minutes here; over a 1M-row stream, 83 minutes, 70 % overall and 80 % in its second half)
    seen: set[tuple[int, int]] = set()
    repeat = np.zeros(len(rows), dtype=bool)
    for i, pair in enumerate(zip(s.sender[rows].tolist(), s.receiver[rows].tolist())):
        repeat[i] = pair in seen
        seen.add(pair)
    half = len(rows) // 2
    assert repeat.mean() > 0.45 and repeat[half:].mean() > repeat[:half].mean() + 0.1
    assert ProducerConfig().segments.business.payees.lo <= biz.payees.sizes.min()
    assert biz.payees.sizes.max() <= ProducerConfig().segments.business.payees.hi


def test_dormant_accounts_send_only_wake_ups_and_fraud(default_stream):
    s = default_stream
    dormant = s.generator.population.segments.dormant
    rows = np.isin(s.sender, dormant)
    legit = rows & (s.pattern < 0)
    share = ProducerConfig().bursts["wake_up"].share
    assert legit.sum() == pytest.approx(share * 300_000, rel=0.35)
    _, per_account = np.unique(s.sender[legit], return_counts=True)
    assert per_account.max() <= 6  # one or two wake-ups of 1-3 transactions, no background
    assert (rows & (s.pattern >= 0)).sum() > 0  # fraud hits dormant accounts too


def test_without_wake_ups_every_transaction_of_a_dormant_account_is_fraud():
    config = ProducerConfig()
    bursts = dict(config.bursts)
    bursts["wake_up"] = dataclasses.replace(bursts["wake_up"], share=0.0)
    s = generate(dataclasses.replace(config, bursts=bursts), 100_000)
    rows = np.isin(s.sender, s.generator.population.segments.dormant)
    assert rows.sum() > 0 and (s.pattern[rows] >= 0).all()


def test_no_segments_is_the_consumer_only_stream():
    config = ProducerConfig()
    segments = dataclasses.replace(config.segments, business=dataclasses.replace(config.segments.business, share=0.0),
                                   dormant=dataclasses.replace(config.segments.dormant, share=0.0))
    s = generate(dataclasses.replace(config, segments=segments), 50_000)
    pop = s.generator.population
    assert len(pop.segments.consumers) == pop.accounts
    assert len(s) >= 50_000  # payout runs and wake-ups find no sender and simply do not happen


def test_consumers_pay_their_own_few_payees_and_sometimes_someone_new(default_stream):
    s = default_stream
    pop = s.generator.population
    traffic = ProducerConfig().traffic
    consumers = pop.segments.consumers
    background = np.isin(s.sender, consumers) & (s.pattern < 0)
    position = np.searchsorted(consumers, s.sender)
    pools = pop.consumer_payees
    assert traffic.payees.lo <= pools.sizes.min() and pools.sizes.max() <= traffic.payees.hi
    transfers = np.flatnonzero(background & (s.transaction_type == TYPES.index("TRANSFER")))
    known = np.array([r in set(pools.pool(p).tolist()) for r, p in zip(s.receiver[transfers].tolist(), position[transfers].tolist())])
    new = s.receiver_prefix[transfers] == "EXT-"
    # legitimate bursts from consumers (shopping, retries, big purchases) transfer nothing, so
    # every consumer transfer goes to a known payee or to a new one
    assert (known | new).all()
    assert new.mean() == pytest.approx(traffic.new_payee_share, abs=0.02)
    payments = np.flatnonzero(background & (s.transaction_type == TYPES.index("PAYMENT")))
    billers = np.array([r in set((pools.pool(p) % traffic.merchants).tolist())
                        for r, p in zip(s.receiver[payments].tolist(), position[payments].tolist())])
    assert billers.mean() > 1 - traffic.new_payee_share - 0.03

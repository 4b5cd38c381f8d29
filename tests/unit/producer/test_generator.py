"""The generator: determinism, family shares, exact labels, disorder shares, whole minutes, clocks, caps."""
from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest

from fraudpipe import contracts
from fraudpipe.config import FamilyConfig, IntRange, ProducerConfig, Range, VariantConfig, load_config
from fraudpipe.errors import ConfigError
from producer.generator import MINUTE_MS, TransactionGenerator
from producer.traffic import Population, cap_shares

START = 1_700_000_000_000  # a fixed simulated start, so streams are reproducible
N = 200_000


def generate(config: ProducerConfig, count: int, seed: int = 11, whole_minutes: bool = False, **kwargs):
    gen = TransactionGenerator(config, seed=seed, start_ms=START, clock="simulated", **kwargs)
    records, labels, patterns = [], [], []
    for batch in gen.batches(count, whole_minutes=whole_minutes):
        records += batch.records()
        labels += batch.labels()
        patterns += [batch.pattern_names[p] if p >= 0 else None for p in batch.pattern.tolist()]
    return records, labels, patterns


@pytest.fixture(scope="module")
def stream():
    return generate(ProducerConfig(), N, whole_minutes=True)


def test_config_yml_producer_section_is_the_documented_default():
    assert load_config().producer == ProducerConfig()


def test_same_seed_same_stream_and_other_seed_differs():
    a = generate(ProducerConfig(), 30_000, seed=5, whole_minutes=True)
    b = generate(ProducerConfig(), 30_000, seed=5, whole_minutes=True)
    c = generate(ProducerConfig(), 30_000, seed=6, whole_minutes=True)
    assert a == b
    assert a[0] != c[0]
    one, two = (list(TransactionGenerator(ProducerConfig(), seed=5, start_ms=START, clock="simulated").batches(30_000))
                for _ in range(2))
    for name in ("instance", "variant", "emit_ms", "device"):
        assert np.array_equal(np.concatenate([getattr(b, name) for b in one]), np.concatenate([getattr(b, name) for b in two]))


def test_records_match_the_schema_and_conventions(stream):
    records, _, _ = stream
    assert N <= len(records) < N + 11 * 60 * ProducerConfig().event_rate  # whole minutes: the longest span is 10 min
    N_ = len(records)
    fields = set(contracts.transaction_field_names(1))
    symbols = {name: set(contracts.enum_symbols(name)) for name in ("transaction_type", "status", "channel")}
    for record in records[:5000]:
        assert set(record) == fields
        assert isinstance(record["event_time"], int) and isinstance(record["amount_minor"], int)
        assert record["amount_minor"] > 0
        for name, allowed in symbols.items():
            assert record[name] in allowed
    assert len({r["transaction_id"] for r in records}) == N_
    # Accounts have skewed activity: the busiest 1% of senders send far more than 1% of transactions.
    per_sender = np.sort(np.unique([r["sender_account"] for r in records], return_counts=True)[1])[::-1]
    assert per_sender[: max(1, len(per_sender) // 100)].sum() > 0.05 * N_
    failed = sum(r["status"] in contracts.FAILED_STATUSES for r in records)
    assert 0.01 * N_ < failed < 0.05 * N_


def test_each_family_appears_at_its_configured_share(stream):
    records, _, patterns = stream
    config = ProducerConfig()
    # Instances start only until the count is reached (whole_minutes then drains them).
    for name, pattern in config.patterns.items():
        share = patterns.count(name) / N
        assert share == pytest.approx(pattern.share, rel=0.15), name


def test_labels_are_exactly_the_pattern_transactions(stream):
    records, labels, patterns = stream
    by_id = {r["transaction_id"]: r for r in records}
    pattern_rows = {r["transaction_id"]: p for r, p in zip(records, patterns) if p is not None}
    assert {label["transaction_id"] for label in labels} == set(pattern_rows)
    assert len(labels) == len(pattern_rows)
    delay = int(ProducerConfig().label_delay_seconds * 1000)
    for label in labels:
        record = by_id[label["transaction_id"]]
        assert label["pattern"] == pattern_rows[label["transaction_id"]]
        assert label["sender_account"] == record["sender_account"]
        assert label["event_time"] == record["event_time"]
        assert label["labeled_at"] == record["event_time"] + delay
    assert set(contracts.label_schema()["fields"][i]["name"] for i in range(5)) == set(labels[0])


def test_late_and_out_of_order_shares_are_honoured(stream):
    records, _, patterns = stream
    traffic = ProducerConfig().traffic
    running_max = 0
    late = ooo = background = 0
    pattern_behind = 0
    for record, pattern in zip(records, patterns):
        t = record["event_time"]
        behind = running_max - t
        if pattern is None:
            background += 1
            if behind >= traffic.late_min_seconds * 1000 - 1000:
                late += 1
            elif behind > 0:
                ooo += 1
        elif behind > traffic.out_of_order_max_seconds * 1000:
            pattern_behind += 1
        running_max = max(running_max, t)
    assert late / background == pytest.approx(traffic.late_share, rel=0.15)
    # An event only a millisecond or two older than its neighbour may still be in order.
    assert ooo / background == pytest.approx(traffic.out_of_order_share, rel=0.15)
    assert pattern_behind == 0  # pattern rows are never late, so Spark's watermark keeps them


def windows(records):
    """1-minute tumbling per-sender windows."""
    out = defaultdict(list)
    for record in records:
        out[(record["sender_account"], record["event_time"] // MINUTE_MS)].append(record)
    return out


def test_whole_minutes_never_cut_an_instance_and_stop_on_a_minute_boundary():
    # 30,000 transactions at 200/s end 30 s into a minute, with instances running on for
    # minutes. A plain count cuts them; whole_minutes starts no new one, emits every pending
    # row and stops at the minute boundary after the last. A longer stream with the same seed
    # holds the same instances whole (an instance's rows are drawn when it is placed).
    def instance_sizes(count: int, whole_minutes: bool):
        gen = TransactionGenerator(ProducerConfig(), seed=11, start_ms=START + 40_000, clock="simulated")
        batches, sent, started = [], 0, None
        for batch in gen.batches(count, whole_minutes=whole_minutes):
            batches.append(batch)
            sent += len(batch)
            if started is None and sent >= count:
                started = gen.instances_started
        ids, sizes = np.unique(np.concatenate([b.instance for b in batches]), return_counts=True)
        last = max(int(b.event_time.max()) for b in batches)
        return dict(zip(ids[1:].tolist(), sizes[1:].tolist())), last, gen, started

    assert (START + 40_000) % MINUTE_MS == 0
    cut, cut_end, _, _ = instance_sizes(30_000, False)
    whole, whole_end, gen, started = instance_sizes(30_000, True)
    full, _, _, _ = instance_sizes(30_000 + 12 * 60 * 200, False)
    assert any(cut[i] < full[i] for i in cut)  # a plain count cuts instances
    assert whole and all(whole[i] == full[i] for i in whole)  # whole_minutes cuts none
    # ... and starts no new one once the count is reached
    assert gen.instances_started == started == len(whole) and set(cut) <= set(whole) < set(full)
    assert gen.bursts_until_ms == START + 40_000 + 180_000  # the end of the chunk that reached the count (150 s in)
    assert gen.pending_rows == 0 and gen.generated_until_ms % MINUTE_MS == 0
    assert whole_end // MINUTE_MS == (gen.generated_until_ms - 1) // MINUTE_MS  # the last minute holds a row: no idle minutes
    assert whole_end > cut_end


def test_legitimate_bursts_make_detection_non_trivial(stream):
    records, labels, _ = stream
    labelled = {label["transaction_id"] for label in labels}
    clean = [rows for rows in windows(records).values() if not any(r["transaction_id"] in labelled for r in rows)]
    assert sum(len(rows) >= 6 for rows in clean) > 20  # busy but honest windows
    assert sum(len({r["receiver_account"] for r in rows}) >= 8 for rows in clean) > 5  # payroll fan-out
    assert sum(max(r["amount_minor"] for r in rows) > 200_000 for rows in clean) > 20  # big honest amounts


def test_realtime_clock_starts_now_and_runs_at_the_send_rate():
    config = dataclasses.replace(ProducerConfig(), rate=1000.0, batch_size=1000)
    gen = TransactionGenerator(config, clock="realtime", start_ms=START)
    batch = next(gen.batches(5000))
    assert gen.event_rate == 1000.0
    assert START <= batch.emit_ms.min() and batch.emit_ms.max() < START + 1000
    with pytest.raises(ConfigError, match="rate"):
        TransactionGenerator(dataclasses.replace(config, rate=0.0), clock="realtime")


def test_a_custom_family_gets_labelled_with_its_config_name():
    variant = VariantConfig(size=IntRange(3, 3), span_seconds=Range(10.0, 10.0), amount_median=Range(35.0, 35.0))
    config = dataclasses.replace(ProducerConfig(), patterns={"night_owl": FamilyConfig(0.01, {"only": variant})})
    _, labels, _ = generate(config, 20_000, whole_minutes=True)
    assert {label["pattern"] for label in labels} == {"night_owl"}
    assert len(labels) == pytest.approx(200, abs=6)


def test_cap_shares_keeps_the_skew_under_the_cap():
    shares = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    capped = cap_shares(shares, 0.25)
    assert capped.sum() == pytest.approx(1.0)
    assert capped.max() == pytest.approx(0.25)
    # the two above the cap sit at it; the rest grow in proportion, so their order holds
    assert capped[0] == capped[1] == pytest.approx(0.25)
    assert capped[2:] == pytest.approx(shares[2:] * 0.5 / 0.3)
    with pytest.raises(ConfigError):
        cap_shares(shares, 0.1)


def test_no_account_is_busier_than_a_person_and_the_population_widens_for_fast_streams():
    config = ProducerConfig()
    cap = config.traffic.max_account_tx_per_minute
    pop = Population(config, np.random.default_rng(0))
    assert pop.accounts == config.accounts
    assert pop.account_shares.max() * config.event_rate * 60 == pytest.approx(cap)
    assert pop.account_shares.max() > 10 * pop.account_shares.min()  # still skewed below the cap
    fast = Population(config, np.random.default_rng(0), event_rate=2000.0)  # 120k tx/min
    assert fast.accounts >= 120_000 / cap
    assert fast.account_shares.max() * 120_000 == pytest.approx(cap)


def test_consumer_windows_stay_human_and_bursts_stay_busy(default_stream):
    s = default_stream
    consumers = s.generator.population.segments.consumers
    rows = np.isin(s.sender, consumers) & (s.pattern < 0)
    _, sizes = np.unique(np.stack([s.sender[rows], s.event_time[rows] // MINUTE_MS]), axis=1, return_counts=True)
    # Poisson background at <= 2.5/min plus a legitimate burst or two per window
    assert sizes.max() < 30
    assert (sizes >= 4).sum() > 10  # legitimate bursts (200k accounts: background alone rarely gives 4)

"""The generator: determinism, pattern shares, exact labels, disorder shares, window separability."""
from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest

from fraudpipe import contracts
from fraudpipe.config import BurstConfig, ProducerConfig, load_config
from fraudpipe.errors import ConfigError
from producer.generator import MINUTE_MS, TransactionGenerator
from producer.traffic import Population, cap_shares

START = 1_700_000_000_000  # a fixed simulated start, so streams are reproducible
N = 200_000


def generate(config: ProducerConfig, count: int, seed: int = 11, **kwargs):
    gen = TransactionGenerator(config, seed=seed, start_ms=START, clock="simulated", **kwargs)
    records, labels, patterns = [], [], []
    for batch in gen.batches(count):
        records += batch.records()
        labels += batch.labels()
        patterns += [batch.pattern_names[p] if p >= 0 else None for p in batch.pattern.tolist()]
    return records, labels, patterns


@pytest.fixture(scope="module")
def stream():
    return generate(ProducerConfig(), N)


def test_config_yml_producer_section_is_the_documented_default():
    assert load_config().producer == ProducerConfig()


def test_same_seed_same_stream_and_other_seed_differs():
    a = generate(ProducerConfig(), 30_000, seed=5)
    b = generate(ProducerConfig(), 30_000, seed=5)
    c = generate(ProducerConfig(), 30_000, seed=6)
    assert a == b
    assert a[0] != c[0]


def test_records_match_the_schema_and_conventions(stream):
    records, _, _ = stream
    assert len(records) == N
    fields = set(contracts.transaction_field_names(1))
    symbols = {name: set(contracts.enum_symbols(name)) for name in ("transaction_type", "status", "channel")}
    for record in records[:5000]:
        assert set(record) == fields
        assert isinstance(record["event_time"], int) and isinstance(record["amount_minor"], int)
        assert record["amount_minor"] > 0
        for name, allowed in symbols.items():
            assert record[name] in allowed
    assert len({r["transaction_id"] for r in records}) == N
    # Accounts have skewed activity: the busiest 1% of senders send far more than 1% of transactions.
    per_sender = np.sort(np.unique([r["sender_account"] for r in records], return_counts=True)[1])[::-1]
    assert per_sender[: max(1, len(per_sender) // 100)].sum() > 0.05 * N
    failed = sum(r["status"] in contracts.FAILED_STATUSES for r in records)
    assert 0.01 * N < failed < 0.05 * N


def test_each_pattern_appears_at_its_configured_share(stream):
    records, _, patterns = stream
    config = ProducerConfig()
    for name, pattern in config.patterns.items():
        share = patterns.count(name) / len(records)
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
    """1-minute tumbling per-sender windows: the features the streaming job computes."""
    out = defaultdict(list)
    for record in records:
        out[(record["sender_account"], record["event_time"] // MINUTE_MS)].append(record)
    return out


def test_pattern_instances_stay_in_one_window_and_are_separable(stream):
    records, labels, patterns = stream
    labelled = {label["transaction_id"]: label["pattern"] for label in labels}
    by_pattern = defaultdict(list)
    for key, rows in windows(records).items():
        for name in {labelled[r["transaction_id"]] for r in rows if r["transaction_id"] in labelled}:
            by_pattern[name].append(rows)
    config = ProducerConfig()
    for name, pattern in config.patterns.items():
        # Whole instances: every labelled window holds at least min_size labelled rows.
        for rows in by_pattern[name]:
            assert sum(r["transaction_id"] in labelled for r in rows) >= pattern.min_size
    median = lambda values: float(np.median(values))  # noqa: E731
    card = by_pattern["card_testing"]
    assert median([len(w) for w in card]) >= 15
    assert median([sum(r["status"] in contracts.FAILED_STATUSES for r in w) / len(w) for w in card]) > 0.6
    assert median([max(r["amount_minor"] for r in w) for w in card]) < 1000
    ato = by_pattern["account_takeover"]
    assert median([max(r["amount_minor"] for r in w) for w in ato]) > 200_000
    assert all(r["receiver_account"].startswith("EXT-") for w in ato for r in w if r["transaction_id"] in labelled)
    assert median([len(w) for w in by_pattern["velocity_spike"]]) >= 20
    assert median([len({r["receiver_account"] for r in w}) for w in by_pattern["mule_fan_out"]]) >= 10


def test_whole_minutes_go_on_to_the_end_of_the_minute_so_no_instance_is_cut():
    # 30,000 transactions at 200/s from a minute boundary end 30 s into a minute: a plain
    # count cuts the instances of that minute short, whole_minutes finishes it.
    def labelled_windows(whole_minutes: bool) -> tuple[int, list[tuple[str, int]]]:
        gen = TransactionGenerator(ProducerConfig(), seed=11, start_ms=START + 40_000, clock="simulated")
        batches = list(gen.batches(30_000, whole_minutes=whole_minutes))
        sizes: dict[tuple[str, str, int], int] = defaultdict(int)
        for batch in batches:
            for label in batch.labels():
                sizes[(label["pattern"], label["sender_account"], label["event_time"] // MINUTE_MS)] += 1
        ends = max(int(b.event_time.max()) for b in batches)
        return ends, [(pattern, n) for (pattern, _sender, _minute), n in sizes.items()]

    patterns = ProducerConfig().patterns
    cut_end, cut = labelled_windows(False)
    whole_end, whole = labelled_windows(True)
    assert (START + 40_000) % MINUTE_MS == 0 and (START + 40_000 + 150_000) - cut_end < 1_000
    assert any(n < patterns[name].min_size for name, n in cut)
    assert whole_end // MINUTE_MS == cut_end // MINUTE_MS and (whole_end + 1_000) // MINUTE_MS > whole_end // MINUTE_MS
    assert all(n >= patterns[name].min_size for name, n in whole)


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


@pytest.mark.parametrize(
    "change, key",
    [
        ({"transaction_types": ("REFUND",)}, "producer.patterns.card_testing.transaction_types"),
        ({"span_seconds": 90.0}, "producer.patterns.card_testing.span_seconds"),
        ({"min_size": 5, "max_size": 2}, "producer.patterns.card_testing"),
        ({"receivers": "aliens"}, "producer.patterns.card_testing.receivers"),
    ],
)
def test_invalid_pattern_config_names_the_key(change, key):
    patterns = dict(ProducerConfig().patterns)
    patterns["card_testing"] = dataclasses.replace(patterns["card_testing"], **change)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TransactionGenerator(dataclasses.replace(ProducerConfig(), patterns=patterns), start_ms=START, clock="simulated")


def test_a_custom_pattern_gets_labelled_with_its_config_name():
    patterns = {"night_owl": BurstConfig(share=0.01, min_size=3, max_size=3, amount=ProducerConfig().traffic.amounts["PURCHASE"])}
    config = dataclasses.replace(ProducerConfig(), patterns=patterns)
    _, labels, _ = generate(config, 20_000)
    assert {label["pattern"] for label in labels} == {"night_owl"}
    assert len(labels) == pytest.approx(200, abs=3)


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


def test_background_windows_stay_human_and_bursts_stay_busy(stream):
    records, labels, _ = stream
    labelled = {label["transaction_id"] for label in labels}
    sizes = [len(rows) for rows in windows(records).values() if not any(r["transaction_id"] in labelled for r in rows)]
    # Poisson background at <= 2.5/min plus at most one legitimate burst (<= 18) per window
    assert max(sizes) < 30
    assert sum(size >= 10 for size in sizes) > 10

"""Burst families: straddling instances, variants drawn from wide ranges, labels per family, instance ids."""
from __future__ import annotations

import numpy as np
import pytest

from fraudpipe import contracts
from producer.generator import MINUTE_MS

FAILED = [contracts.enum_symbols("status").index(s) for s in contracts.FAILED_STATUSES]
TRANSFER = contracts.enum_symbols("transaction_type").index("TRANSFER")


def extent(stream, rows: np.ndarray) -> tuple[int, int]:
    times = stream.event_time[rows]
    return int(times.min()), int(times.max())


def test_instances_start_anywhere_and_many_cross_a_minute_boundary(default_stream):
    s = default_stream
    instances = s.instances()
    spans = np.array([extent(s, rows) for rows in instances.values()])
    crossing = (spans[:, 0] // MINUTE_MS != spans[:, 1] // MINUTE_MS).mean()
    assert crossing >= 0.30
    # starts are spread over the minute, not stuck to its beginning
    offsets = spans[:, 0] % MINUTE_MS
    assert np.histogram(offsets, bins=4, range=(0, MINUTE_MS))[0].min() > 0.15 * len(offsets)
    # slow variants run for minutes
    assert ((spans[:, 1] - spans[:, 0]) > 2 * MINUTE_MS).sum() > 10


def test_every_fraud_instance_is_one_sender_one_family_one_variant_and_its_rows_are_never_late(default_stream):
    s = default_stream
    instances = s.instances()
    assert sorted(instances) == list(range(len(instances)))  # unique ids 0..n-1
    for rows in instances.values():
        assert len(set(s.sender[rows].tolist())) == 1
        assert len(set(s.pattern[rows].tolist())) == 1 and len(set(s.variant[rows].tolist())) == 1
        family = s.pattern_names[s.pattern[rows[0]]]
        assert s.variant_names[s.variant[rows[0]]].startswith(family + ".")
        assert np.array_equal(s.event_time[rows], s.emit_ms[rows])
    # labelled rows are exactly the instance rows; legitimate bursts carry no instance
    assert np.array_equal(s.pattern >= 0, s.instance >= 0)
    assert np.array_equal(s.pattern >= 0, s.variant >= 0)
    # arrival order holds across the carried-over rows
    assert (np.diff(s.emit_ms) >= 0).all()


def test_labels_carry_the_family_name_per_transaction(default_stream):
    s = default_stream
    labels = [label for batch in s.batches for label in batch.labels()]
    assert len(labels) == int((s.pattern >= 0).sum())
    assert {label["pattern"] for label in labels} == set(s.pattern_names)
    assert s.pattern_names == ("card_testing", "account_takeover", "velocity_spike", "mule_fan_out")


def test_every_variant_appears_with_instance_parameters_drawn_from_wide_ranges(default_stream):
    s = default_stream
    config = s.generator.config
    for name in s.variant_names:
        family, variant = name.split(".")
        instances = s.instances(s.variant_rows(name))
        assert len(instances) >= 3, name
        size = config.patterns[family].variants[variant].size
        sizes = [len(rows) for rows in instances.values()]
        assert size.lo <= min(sizes) and max(sizes) <= size.hi, name
    sizes = [len(r) for r in s.instances(s.variant_rows("velocity_spike.burst")).values()]
    assert max(sizes) - min(sizes) > 25  # not one tuned shape
    medians = [np.median(s.amount_minor[r]) for r in s.instances(s.variant_rows("mule_fan_out.fan_out")).values()]
    assert max(medians) > 4 * min(medians)


def test_card_testing_variants(default_stream):
    s = default_stream
    for name in ("card_testing.one_merchant", "card_testing.many_merchants", "card_testing.slow"):
        for rows in s.instances(s.variant_rows(name)).values():
            assert s.amount_minor[rows].max() < 5_000 * 4  # tiny amounts
            receivers = len(set(s.receiver[rows].tolist()))
            if name.endswith("one_merchant"):
                assert receivers <= 2
            elif name.endswith("many_merchants"):
                assert receivers >= 0.8 * len(rows)  # a fresh merchant per try
    failed = np.isin(s.status, FAILED)
    rows = s.family_rows("card_testing")
    assert failed[rows].mean() > 0.5
    slow = [extent(s, r) for r in s.instances(s.variant_rows("card_testing.slow")).values()]
    assert np.median([hi - lo for lo, hi in slow]) > 90_000


def test_takeover_variants_use_new_payees_dormant_accounts_and_new_devices(default_stream):
    s = default_stream
    dormant = s.generator.population.segments.dormant
    for name in ("account_takeover.drain", "account_takeover.dormant_takeover"):
        rows = s.variant_rows(name)
        assert (s.receiver_prefix[rows] == "EXT-").all()
        assert (s.transaction_type[rows] == TRANSFER).all()
        assert np.median(s.amount_minor[rows]) > 100_000
    assert np.isin(s.sender[s.variant_rows("account_takeover.dormant_takeover")], dormant).all()
    spree = s.variant_rows("account_takeover.purchase_spree")
    assert (s.receiver_prefix[spree] == "MER-").all() and np.median(s.amount_minor[spree]) > 20_000
    # fraud never comes from a business, and never from the account's own device
    assert not np.isin(s.sender[s.pattern >= 0], s.generator.population.segments.businesses).any()
    devices = np.concatenate([b.device for b in s.batches])
    own = (s.sender * 2654435761) % 10**8
    device_numbers = (devices[:, 4:].astype(np.int64) - 48) @ (10 ** np.arange(7, -1, -1))
    assert (device_numbers[s.pattern >= 0] != own[s.pattern >= 0]).mean() > 0.99
    assert (device_numbers[s.pattern < 0] == own[s.pattern < 0]).all()


def test_structuring_amounts_sit_just_under_a_round_threshold(default_stream):
    s = default_stream
    dollars = s.amount_minor[s.variant_rows("mule_fan_out.structuring")] / 100
    assert len(dollars) > 20
    assert ((dollars >= 900) & (dollars < 1000)).all()
    fan_out = s.variant_rows("mule_fan_out.fan_out")
    for rows in s.instances(fan_out).values():
        assert len(set(s.receiver[rows].tolist())) >= 0.8 * len(rows)


@pytest.mark.parametrize("name, pace", [("velocity_spike.burst", 8), ("velocity_spike.slow", 5)])
def test_velocity_spikes_run_faster_than_any_person_shops(default_stream, name, pace):
    # shopping sprees go at 1-3 a minute; a velocity spike at >= 8 (its slow variant >= 5)
    s = default_stream
    for rows in s.instances(s.variant_rows(name)).values():
        lo, hi = extent(s, rows)
        # n uniform times over a span cover about (n - 1) / (n + 1) of it
        span = (hi - lo) * (len(rows) + 1) / max(len(rows) - 1, 1)
        assert len(rows) / max(span, 1) * MINUTE_MS >= pace * 0.6
    slow = [extent(s, r) for r in s.instances(s.variant_rows("velocity_spike.slow")).values()]
    assert np.median([hi - lo for lo, hi in slow]) > MINUTE_MS  # slow ones still straddle minutes

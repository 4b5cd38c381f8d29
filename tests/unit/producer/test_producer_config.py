"""The producer's config: ranges, segments and families parse strictly and fail naming the key."""
from __future__ import annotations

import textwrap

import pytest

from fraudpipe.config import IntRange, ProducerConfig, Range, load_config
from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.errors import ConfigError
from producer.generator import TransactionGenerator

SHIFTED = PROJECT_ROOT / "benchmarks" / "detection" / "shifted.yml"


def load(tmp_path, producer_yaml: str):
    path = tmp_path / "config.yml"
    path.write_text("producer:\n" + textwrap.indent(textwrap.dedent(producer_yaml), "  "))
    return load_config(path, environ={})


def start(config):
    return TransactionGenerator(config.producer, start_ms=1_700_000_040_000, clock="simulated")


def test_a_range_is_a_scalar_or_a_pair(tmp_path):
    config = load(tmp_path, """
        patterns:
          card_testing:
            share: 0.01
            variants:
              only: {size: [3, 9], span_seconds: 40, amount_median: [1, 4.5], receiver_pool: 2}
    """)
    variant = config.producer.patterns["card_testing"].variants["only"]
    assert variant.size == IntRange(3, 9) and variant.span_seconds == Range(40.0, 40.0)
    assert variant.amount_median == Range(1.0, 4.5) and variant.receiver_pool == IntRange(2, 2)


@pytest.mark.parametrize(
    "text, key",
    [
        ("segments: {business: {rate: 3}}", "unknown key producer.segments.business.rate"),
        ("patterns: {card_testing: {variants: {slow: {size: [25, 8]}}}}", "producer.patterns.card_testing.variants.slow.size"),
        ("patterns: {card_testing: {variants: {slow: {size: [1, 2, 3]}}}}", "producer.patterns.card_testing.variants.slow.size"),
        ("patterns: {card_testing: {variants: {slow: {span_seconds: fast}}}}", "producer.patterns.card_testing.variants.slow.span_seconds"),
        ("segments: {business: {payees: 7.5}}", "producer.segments.business.payees"),
    ],
)
def test_bad_values_fail_at_load_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(tmp_path, text)


@pytest.mark.parametrize(
    "text, key",
    [
        ("segments: {business: {share: 1.5}}", "producer.segments.business.share"),
        ("segments: {dormant: {share: 0.5}, business: {share: 0.45}}", "producer.segments"),
        ("segments: {business: {tx_per_minute: [0, 3]}}", "producer.segments.business.tx_per_minute"),
        ("segments: {business: {type_mix: {REFUND: 1}}}", "producer.segments.business.type_mix.REFUND"),
        ("segments: {business: {channels: [FAX]}}", "producer.segments.business.channels"),
        ("segments: {business: {payees: [0, 3]}}", "producer.segments.business.payees"),
        ("patterns: {card_testing: {share: 1.2}}", "producer.patterns.card_testing.share"),
        ("patterns: {card_testing: {variants: {}}}", "producer.patterns.card_testing.variants"),
        ("patterns: {card_testing: {variants: {a: {weight: 0}}}}", "producer.patterns.card_testing.variants"),
        ("patterns: {card_testing: {variants: {a: {span_seconds: [10, 4000]}}}}", "producer.patterns.card_testing.variants.a.span_seconds"),
        ("patterns: {card_testing: {variants: {a: {size: 0}}}}", "producer.patterns.card_testing.variants.a.size"),
        ("patterns: {card_testing: {variants: {a: {failed_share: [0.5, 1.5]}}}}", "producer.patterns.card_testing.variants.a.failed_share"),
        ("patterns: {card_testing: {variants: {a: {sender: aliens}}}}", "producer.patterns.card_testing.variants.a.sender"),
        ("patterns: {card_testing: {variants: {a: {receivers: aliens}}}}", "producer.patterns.card_testing.variants.a.receivers"),
        ("patterns: {card_testing: {variants: {a: {receivers: payees}}}}", "producer.patterns.card_testing.variants.a.receivers"),
        ("patterns: {card_testing: {variants: {a: {transaction_types: [REFUND]}}}}", "producer.patterns.card_testing.variants.a.transaction_types"),
        ("bursts: {payroll: {variants: {a: {channels: []}}}}", "producer.bursts.payroll.variants.a.channels"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(tmp_path, text, key):
    config = load(tmp_path, text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        start(config)


def test_shifted_configuration_loads_and_differs_where_it_says(tmp_path):
    shifted = load_config(SHIFTED, environ={}).producer
    default = ProducerConfig()
    start(load_config(SHIFTED, environ={}))
    assert shifted.seed != default.seed
    assert shifted.segments.business.share > default.segments.business.share
    assert shifted.segments.dormant.share > default.segments.dormant.share
    assert shifted.segments.business.tx_per_minute != default.segments.business.tx_per_minute
    assert set(shifted.patterns) == set(default.patterns)  # same families, so per-family recall compares
    for name, family in shifted.patterns.items():
        base = default.patterns[name]
        assert set(family.variants) == set(base.variants)
        assert family.variants != base.variants  # other ranges and weights
        for variant, cfg in family.variants.items():
            mine, theirs = cfg.size, base.variants[variant].size
            assert mine.lo <= theirs.hi and theirs.lo <= mine.hi  # shifted but overlapping


@pytest.mark.parametrize("path", [PROJECT_ROOT / "config.yml", SHIFTED], ids=["config.yml", "shifted.yml"])
def test_every_fraud_variant_differs_from_the_legitimate_shapes_in_something_observable(path):
    # The design rules both configurations keep (docs/producer.md): without them a detector
    # cannot tell fraud from a legitimate burst of the same observable shape, whatever it learns.
    producer = load_config(path, environ={}).producer
    fraud = {f"{f}.{v}": c for f, fam in producer.patterns.items() for v, c in fam.variants.items()}
    legit = {f"{f}.{v}": c for f, fam in producer.bursts.items() for v, c in fam.variants.items()}
    # fraud pays strangers: its transfers go to new payees; legitimate transfers come from
    # businesses to their payees, or (a wake-up) one or two to a new payee
    for name, c in fraud.items():
        if "TRANSFER" in c.transaction_types:
            assert c.receivers == "new", name
    for name, c in legit.items():
        if "TRANSFER" in c.transaction_types:
            assert c.sender == "business" and c.receivers == "payees" or c.size.hi <= 3, name
    # people shop at a human pace, velocity spikes go faster
    spree = legit["shopping_spree.default"]
    assert 0 < spree.pace_per_minute.hi <= 4 and spree.size.hi <= 12
    assert fraud["velocity_spike.burst"].pace_per_minute.lo >= 8 and fraud["velocity_spike.slow"].pace_per_minute.lo >= 5
    # one or two big purchases are legitimate; a takeover's spree is three or more, remote
    big = legit["big_purchase.default"]
    assert big.size.hi <= 2 and big.transaction_types == ("PURCHASE",)
    spree = fraud["account_takeover.purchase_spree"]
    assert spree.size.lo >= 3 and set(spree.channels) <= {"ONLINE", "MOBILE"}
    # takeovers drain in large amounts
    assert fraud["account_takeover.drain"].amount_min.lo >= 1000 and fraud["account_takeover.dormant_takeover"].amount_min.lo >= 1000

"""The stream workload shared by the tests and the stream benchmark: a tiny published model
and transactions generated and published with the real producer.

Not test code: benchmarks import it, and tests/fixtures/stream.py builds its fixtures on it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fraudpipe.config import Config, ProducerConfig
from fraudpipe.errors import ProducerError
from spark_apps.model_registry import ModelRegistry, new_version
from spark_apps.explanations import population_profile
from spark_apps.scoring import ModelMetadata

# Typical spread of each feature the tiny model uses, so scaled distances are comparable.
# Pair features (spark_apps.history): a card-testing burst cut by a minute boundary is whole
# in the later window's pair, and slow card testing (a few probes a minute) adds up there.
_SCALE = {"pair_small_amount_count": 1.0, "pair_failed_count": 1.0, "pair_tx_count": 10.0, "small_amount_count": 2.0,
          "distinct_receivers": 5.0}
# Window shapes in raw units: an ordinary sender minute, and card testing (many tiny, mostly failed charges).
NORMAL_WINDOW = {"pair_small_amount_count": 0, "pair_failed_count": 0.03, "pair_tx_count": 2, "small_amount_count": 0,
                 "distinct_receivers": 1}
CARD_TESTING_WINDOW = {"pair_small_amount_count": 5, "pair_failed_count": 3, "pair_tx_count": 6, "small_amount_count": 3,
                       "distinct_receivers": 2}


def normal_population(rows: int = 2_000, seed: int = 5) -> dict[str, np.ndarray]:
    """Ordinary sender minutes around NORMAL_WINDOW, raw units per feature: the tiny model's normal training windows."""
    rng = np.random.default_rng(seed)
    tx = np.minimum(1 + rng.poisson(0.6, rows), 8)
    present = np.arange(8)[None, :] < tx[:, None]
    amounts = np.where(present, np.round(rng.lognormal(np.log(3_500), 0.8, (rows, 8))), 0.0)
    failed = (rng.random((rows, 8)) < 0.03) & present
    total = amounts.sum(axis=1)
    return {"tx_count": tx.astype(float), "total_amount_minor": total, "failed_count": failed.sum(axis=1).astype(float),
            "distinct_receivers": np.minimum(tx, 1 + rng.binomial(tx - 1, 0.5)).astype(float),
            "max_amount_minor": amounts.max(axis=1), "small_amount_count": ((amounts < 500) & present).sum(axis=1) * 1.0,
            "avg_amount_minor": total / tx, "failed_ratio": failed.sum(axis=1) / tx,
            # a quiet sender's minute seldom pairs with the one before: its pair is itself
            "pair_tx_count": tx.astype(float), "pair_failed_count": failed.sum(axis=1).astype(float),
            "pair_small_amount_count": ((amounts < 500) & present).sum(axis=1) * 1.0}


def tiny_model(version: str | None = None, *, fraud_first: bool = False, currency: str = "USD") -> ModelMetadata:
    """A 2-centroid model: one normal cluster, one card-testing cluster (index from metadata)."""
    # The model may use any subset of the window and context features; these separate card testing.
    names = tuple(_SCALE)
    population = normal_population()
    scale = [_SCALE[name] for name in names]
    centroids = [tuple(shape[name] / s for name, s in zip(names, scale))
                 for shape in (NORMAL_WINDOW, CARD_TESTING_WINDOW)]
    if fraud_first:  # the fraud cluster's index is metadata, never a constant
        centroids.reverse()
    return ModelMetadata(
        version=version or new_version(),
        trained_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        feature_names=names,
        log_features=(),
        scaler_mean=tuple(0.0 for _ in names),
        scaler_std=tuple(scale),
        centroids=tuple(centroids),
        fraud_clusters=(0,) if fraud_first else (1,),
        population_profile=population_profile(np.column_stack([population[n] for n in names]), names, currency=currency),
    )


def publish_model(directory: Path, model: ModelMetadata) -> None:
    registry = ModelRegistry(directory)
    registry.publish(registry.begin(), model)


# --- feeding the topic ------------------------------------------------------------------
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, on a minute boundary


def producer_config(config: Config, *, card_testing_share: float = 0.04, event_rate: float = 40.0) -> ProducerConfig:
    """The producer's config with more card testing than production, so a small run has many instances."""
    patterns = dict(config.producer.patterns)
    card_testing = patterns["card_testing"]
    # the pipeline tests check one alert per burst with a two-centroid model: keep the card
    # testing that probes several times a minute (the slow variant is detection's business,
    # measured by benchmarks/detection, not the pipeline's)
    fast = {name: variant for name, variant in card_testing.variants.items() if name != "slow"}
    patterns["card_testing"] = dataclasses.replace(card_testing, share=card_testing_share, variants=fast)
    return dataclasses.replace(config.producer, patterns=patterns, clock="simulated", event_rate=event_rate, seed=11)


def publish_transactions(config: Config, topic: str, *, count: int, schema_version: int = 1,
                         start_ms: int = START_MS, skip: int = 0,
                         client_config: Mapping[str, Any] | None = None) -> list:
    """Publish `count` generated transactions (after skipping `skip`) with the real producer; returns the batches."""
    from producer.generator import TransactionGenerator
    from producer.publisher import Publisher

    generator = TransactionGenerator(producer_config(config), start_ms=start_ms, clock="simulated")
    batches = []
    seen = 0
    for batch in generator.batches(skip + count):
        first, seen = seen, seen + len(batch)  # stream positions [first, seen) of this batch
        if seen <= skip:
            continue
        batches.append(batch.slice(max(skip - first, 0), len(batch)))
    if sum(len(b) for b in batches) != count:
        raise ProducerError(f"the generator gave {sum(len(b) for b in batches)} transactions, not {count}")
    publisher = Publisher(config.kafka, dataclasses.replace(config.producer, schema_version=schema_version),
                          registry_url=config.schema_registry.url, topic=topic, labels_topic=topic + "-labels",
                          schema_version=schema_version, create_topics=True, client_config=client_config)
    publisher.start(batches[0])
    for batch in batches:
        publisher.publish(batch)
    unsent = publisher.flush(60)
    if unsent or publisher.stats.errors:
        raise ProducerError(f"publishing to {topic}: {unsent} records unsent after 60 s, "
                            f"{publisher.stats.errors} errors (first: {publisher.stats.first_error})")
    return batches

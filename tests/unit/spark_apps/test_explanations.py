"""Alert explanations: reasons by contribution, only deviations, user units; scores at or above the threshold."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from spark_apps import explanations as ex
from spark_apps.scoring import ModelMetadata, score_matrix, score_windows
from spark_apps.history import SenderHistory
from spark_apps.stream.context import BatchWindows
from spark_apps.stream.outputs import build_outputs
from workloads.stream import CARD_TESTING_WINDOW, NORMAL_WINDOW, normal_population, tiny_model

MONEY_USD = re.compile(r"^\$\d{1,3}(,\d{3})*\.\d{2}$")
COUNT = re.compile(r"^\d{1,3}(,\d{3})*$")
T0 = pd.Timestamp("2026-01-01T12:00:00Z")


def random_windows(rows: int, seed: int) -> pd.DataFrame:
    """Windows from quiet to card testing and beyond, every feature drawn independently (raw units)."""
    rng = np.random.default_rng(seed)
    tx = rng.integers(1, 40, rows)
    failed = rng.binomial(tx, rng.random(rows))
    small = rng.binomial(tx, rng.random(rows))
    total = rng.integers(100, 3_000_000, rows)
    return pd.DataFrame({
        "sender_account": [f"S{i}" for i in range(rows)],
        "window_start": T0, "window_end": T0 + pd.Timedelta(minutes=1),
        "tx_count": tx, "total_amount_minor": total, "failed_count": failed,
        "distinct_receivers": np.minimum(tx, rng.integers(1, 20, rows)),
        "max_amount_minor": np.minimum(total, rng.integers(100, 2_000_000, rows)),
        "small_amount_count": small, "avg_amount_minor": total / tx, "failed_ratio": failed / tx,
        "distinct_types": rng.integers(1, 4, rows), "transfer_count": rng.binomial(tx, 0.3),
        "remote_amount_minor": total // 2,
        # the tiny model scores pairs: a random window here is its own pair
        "pair_tx_count": tx, "pair_failed_count": failed, "pair_small_amount_count": small,
        # what the stream's windows carry for the sender history
        "first_event_ms": T0.value // 1_000_000 + 1_000, "last_event_ms": T0.value // 1_000_000 + 50_000,
        "receiver_hashes": [list(range(int(n))) for n in np.minimum(tx, rng.integers(1, 20, rows))],
    })


def window(**values: float) -> pd.DataFrame:
    return pd.DataFrame([{"sender_account": "C", "window_start": T0, "window_end": T0 + pd.Timedelta(minutes=1),
                          **CARD_TESTING_WINDOW, **values}])


# --- units ---------------------------------------------------------------------------------------
def test_money_is_formatted_with_its_currency_and_its_minor_unit() -> None:
    assert ex.format_money(1_970_891, "USD") == "$19,708.91"
    assert ex.format_money(48_000, "EUR") == "€480.00"
    assert ex.format_money(1_200, "JPY") == "¥1,200"  # no minor unit
    assert ex.format_money(1_250, "SEK") == "SEK 12.50"
    assert ex.format_count(23.0) == "23" and ex.format_count(2.44) == "2.4"
    assert ex.format_value("share", 0.75, None) == "75%" and ex.format_minutes(3 * 1440) == "3 days"


def test_reasons_of_a_card_testing_window_are_in_user_units() -> None:
    model = tiny_model("v1")
    scored = score_windows(window(), model)
    assert bool(scored["is_fraud"].iloc[0])
    reasons = json.loads(scored["explanation"].iloc[0])
    assert 1 <= len(reasons) <= ex.EXPLAIN_TOP
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)
    by_feature = {r["feature"]: r for r in reasons}
    assert by_feature["small_amount_count"]["text"].startswith(f"{CARD_TESTING_WINDOW['small_amount_count']} charges under $5.00 in the minute; higher than")
    assert by_feature["small_amount_count"]["population_percentile"] >= 99.0
    for r in reasons:
        assert set(r) >= {"feature", "value", "typical_for_sender", "population_percentile", "contribution", "text"}
        assert 0 < r["contribution"] <= 1 and "minor" not in r["text"] and "σ" not in r["text"]
        assert re.search(r"; (higher|lower) than (every normal window|[\d.]+% of normal windows)$", r["text"])
        shown = r["text"].split(" ")[0]
        if r["unit"] == "money":
            assert MONEY_USD.match(shown) and r["currency"] == "USD"
        elif r["unit"] == "count":
            assert COUNT.match(shown) and int(shown.replace(",", "")) == r["value"]
        elif r["unit"] == "share":
            assert shown == f"{100 * r['value']:.0f}%"


def test_money_reason_states_sender_history_and_population() -> None:
    # a drain: two huge remote transfers from a sender whose typical minute is $480.00
    model = dataclasses.replace(tiny_model("v1"), feature_names=("total_amount_minor", "tx_count"),
                                scaler_mean=(0.0, 0.0), scaler_std=(50_000.0, 5.0),
                                centroids=((0.07, 0.2), (40.0, 0.4)), fraud_clusters=(1,),
                                population_profile=ex.population_profile(
                                    np.column_stack([normal_population()[n] for n in ("total_amount_minor", "tx_count")]),
                                    ("total_amount_minor", "tx_count"), currency="USD"))
    frame = window(total_amount_minor=1_970_891, tx_count=2, typical_tx=1.2, typical_amount_minor=48_000,
                   history_windows=30.0)
    scored = score_windows(frame, model)
    reasons = json.loads(scored["explanation"].iloc[0])
    assert [r["feature"] for r in reasons] == ["total_amount_minor"]  # 2 transactions are no deviation
    text = reasons[0]["text"]
    assert text.startswith("$19,708.91 sent in the minute — 41x this sender's typical $480.00 a minute; higher than")
    assert reasons[0]["typical_for_sender"] == 48_000 and reasons[0]["population_percentile"] >= 99.9


def test_no_reason_for_a_value_ordinary_for_the_sender_or_the_population() -> None:
    model = tiny_model("v1")
    # a business whose typical minute is 40 transactions: 40 is ordinary for it, so pair_tx_count is no reason
    busy = json.loads(score_windows(window(pair_tx_count=40, typical_tx=40.0, typical_amount_minor=2_000.0,
                                           history_windows=100.0), model)["explanation"].iloc[0])
    plain = json.loads(score_windows(window(pair_tx_count=40), model)["explanation"].iloc[0])
    assert "pair_tx_count" in {r["feature"] for r in plain} and "pair_tx_count" not in {r["feature"] for r in busy}
    # a flagged window whose only pull toward fraud is an ordinary value has no reason at all
    ordinary = dict(NORMAL_WINDOW, distinct_receivers=2)
    values = {**ordinary}
    scaled = (np.array([values[n] for n in model.feature_names]) / np.array(model.scaler_std))
    reasons = ex.explain_window(values, scaled, normal_cluster=0, fraud_cluster=1, model=model)
    assert reasons == []


def test_every_reason_over_many_random_windows_is_a_deviation_that_pulls_toward_fraud() -> None:
    model = tiny_model("v1")
    frame = random_windows(3_000, seed=4)
    result = score_matrix(frame[list(model.feature_names)].to_numpy(dtype=float), model)
    flagged = np.flatnonzero(result["is_fraud"])
    assert len(flagged) > 100
    profile = model.population_profile
    seen = 0
    for i, text in zip(flagged, ex.explain_rows(frame, result, flagged, model)):
        for r in json.loads(text):
            seen += 1
            j = model.feature_names.index(r["feature"])
            q = np.asarray(profile["quantiles"][r["feature"]])
            value = float(frame[r["feature"]].iloc[i])
            if r["direction"] == "high":
                assert value > q[profile["levels"].index(0.9)]  # above the 90th percentile of normal windows
            else:
                assert value < q[profile["levels"].index(0.1)]
            normal = np.asarray(model.centroids[result["nearest_normal"][i]])
            fraud = np.asarray(model.centroids[result["nearest_fraud"][i]])
            x = result["scaled"][i]
            assert (x[j] - normal[j]) ** 2 - (x[j] - fraud[j]) ** 2 > 0
    assert seen > len(flagged)  # most alerts have reasons, some several


# --- the threshold --------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold, outlier", [(None, None), (0.3, None), (0.62, None), (0.62, 4.0), (None, 2.5)])
def test_every_alert_scores_at_or_above_its_models_threshold(threshold, outlier) -> None:
    model = dataclasses.replace(tiny_model("v7"), score_threshold=threshold, outlier_distance=outlier)
    frame = random_windows(5_000, seed=11)
    # through the stream's own path: each sender's one window is its own pair
    batch = BatchWindows.from_pandas(frame.drop(columns=["pair_tx_count", "pair_failed_count", "pair_small_amount_count"]))
    outputs = build_outputs(batch, model, batch_id=1, now_ms=int(T0.value // 1_000_000) + 120_000, history=SenderHistory())
    result = score_matrix(frame[list(model.feature_names)].to_numpy(dtype=float), model)
    assert result["is_fraud"].tolist() == (result["score"] >= model.threshold).tolist()
    assert 0 < len(outputs.alerts) < len(frame)
    assert len(outputs.alerts) == int(result["is_fraud"].sum())
    assert min(a["score"] for a in outputs.alerts) >= model.threshold
    assert all(a["model_version"] == "v7" for a in outputs.alerts)


def test_an_outlier_is_flagged_by_its_score_rising_with_the_distance() -> None:
    model = dataclasses.replace(tiny_model("v1"), score_threshold=0.6, outlier_distance=3.0)
    # far from normal on the pair's transactions alone (still nearer normal than card testing):
    # flagged through the outlier path
    far = pd.DataFrame([dict(NORMAL_WINDOW, pair_tx_count=n) for n in (100, 200, 400)])
    result = score_matrix(far[list(model.feature_names)].to_numpy(dtype=float), model)
    assert result["is_fraud"].all() and (np.diff(result["score"]) > 0).all()
    assert result["score"][0] >= 0.6 and result["score"][-1] < 1.0


# --- the profile in the metadata --------------------------------------------------------------------
def test_profile_round_trips_and_old_metadata_still_loads() -> None:
    model = tiny_model("v1", currency="EUR")
    again = ModelMetadata.from_dict(json.loads(model.to_json()))
    assert again == model and again.population_profile["currency"] == "EUR"
    assert again.population_profile["windows"] == 2_000
    old = json.loads(model.to_json())
    del old["population_profile"]
    legacy = ModelMetadata.from_dict(old)
    assert legacy.population_profile == {}
    # without a profile, a reason still needs a deviation (far from the training mean) and says so
    reasons = json.loads(score_windows(window(), legacy)["explanation"].iloc[0])
    assert reasons and all(r["population_percentile"] is None and "training average" in r["text"] for r in reasons)
    assert all("currency not recorded" in r["text"] for r in reasons if r["unit"] == "money")


def test_profile_percentiles_are_lower_bounds_of_the_share_below() -> None:
    values = np.array([1.0] * 60 + [2.0] * 30 + [3.0] * 9 + [10.0])
    profile = ex.population_profile(values[:, None], ("tx_count",), currency=None)
    for v in (1.0, 1.5, 2.0, 3.0, 4.0, 10.0, 11.0):
        assert ex.share_below(profile, "tx_count", v) <= (values < v).mean()
        assert ex.share_above(profile, "tx_count", v) <= (values > v).mean()
    assert ex.share_below(profile, "tx_count", 4.0) == 0.99 and ex.share_below(profile, "tx_count", 11.0) == 1.0


def test_with_cluster_spreads_the_contributions_are_the_features_terms_of_the_log_likelihood_ratio() -> None:
    from spark_apps.scoring import Gaussians

    base = tiny_model("v1")
    per_feature = ((0.3, 0.5, 0.2, 0.4, 0.6, 0.1, 0.5, 0.2), (2.0, 1.0, 3.0, 1.5, 0.8, 2.5, 1.0, 0.7))
    spread = tuple(values[:len(base.feature_names)] for values in per_feature)
    model = dataclasses.replace(base, cluster_spread=spread, cluster_weight=(0.98, 0.02))
    frame = window()
    result = score_matrix(frame[list(model.feature_names)].to_numpy(dtype=float), model)
    assert result["is_fraud"][0] and result["score"][0] >= model.threshold
    x = result["scaled"][0]
    c = ex.contributions(x, np.asarray(model.centroids[0]), np.asarray(model.centroids[1]),
                         np.asarray(spread[0]), np.asarray(spread[1]))
    ll = Gaussians(model).block(result["scaled"])[0]
    assert c.sum() + np.log(0.02 / 0.98) == pytest.approx(ll[1] - ll[0])
    reasons = json.loads(score_windows(frame, model)["explanation"].iloc[0])
    assert reasons and all(c[model.feature_names.index(r["feature"])] > 0 for r in reasons)


@pytest.mark.parametrize("pair_tx, expected", [
    (5, "€19,708.91 sent in this minute and the one before — 21x this sender's typical €960.00 in two minutes; "),
    (2, "€19,708.91 sent in the minute — 41x this sender's typical €480.00 a minute; "),  # no previous minute
])
def test_a_pair_feature_says_whether_the_previous_minute_took_part(pair_tx: int, expected: str) -> None:
    names = ("pair_total_amount_minor",)
    population = normal_population()["total_amount_minor"][:, None]
    model = dataclasses.replace(tiny_model("v1"), feature_names=names, scaler_mean=(0.0,), scaler_std=(50_000.0,),
                                centroids=((0.07,), (40.0,)), fraud_clusters=(1,),
                                population_profile=ex.population_profile(population, names, currency="EUR"))
    values = {"pair_total_amount_minor": 1_970_891.0, "pair_tx_count": float(pair_tx), "tx_count": 2.0,
              "typical_tx": 1.2, "typical_amount_minor": 48_000.0, "history_windows": 30.0}
    reasons = ex.explain_window(values, np.array([1_970_891 / 50_000]), 0, 1, model)
    assert len(reasons) == 1 and reasons[0]["text"].startswith(expected)

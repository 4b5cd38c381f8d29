"""Scoring from metadata alone: scaling, nearest centroid, fraud clusters, explanations."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fraudpipe.errors import ModelError
from spark_apps import scoring
from spark_apps.scoring import ModelMetadata, load_metadata, nearest, score_matrix, score_windows, transform, untransform

FEATURES = ("tx_count", "failed_count", "max_amount_minor")


def model(centroids, fraud_clusters, **overrides) -> ModelMetadata:
    values = dict(
        version="v1",
        trained_at="2026-11-21T10:00:00+00:00",
        feature_names=FEATURES,
        log_features=("max_amount_minor",),
        scaler_mean=(2.0, 1.0, 5.0),
        scaler_std=(1.0, 2.0, 1.0),
        centroids=centroids,
        fraud_clusters=fraud_clusters,
    )
    values.update(overrides)
    return ModelMetadata(**values)


NORMAL = (0.0, 0.0, 0.0)
FRAUD = (10.0, 10.0, 0.0)


def windows() -> pd.DataFrame:
    # raw rows: a quiet sender and a card-testing burst (many failures)
    return pd.DataFrame(
        {
            "sender_account": ["quiet", "burst"],
            "tx_count": [2, 12],
            "failed_count": [1, 23],
            "max_amount_minor": [np.expm1(5.0), np.expm1(5.0)],
        }
    )


def test_transform_applies_log_then_scaler_and_inverts() -> None:
    m = model((NORMAL, FRAUD), (1,))
    raw = np.array([[4.0, 5.0, np.expm1(6.0)]])
    scaled = transform(raw, m)
    assert scaled[0].tolist() == pytest.approx([2.0, 2.0, 1.0])
    assert untransform(scaled[0], m)[0].tolist() == pytest.approx(raw[0].tolist())


def test_zero_variance_feature_scales_to_zero_like_spark() -> None:
    m = model((NORMAL, FRAUD), (1,), scaler_std=(1.0, 0.0, 1.0))
    assert transform(np.array([[2.0, 99.0, np.expm1(5.0)]]), m)[0, 1] == 0.0


@pytest.mark.parametrize("order", ["fraud_second", "fraud_first"])
def test_fraud_follows_metadata_clusters_not_an_index(order: str) -> None:
    # the same model with centroid indexes swapped must flag the same window
    m = model((NORMAL, FRAUD), (1,)) if order == "fraud_second" else model((FRAUD, NORMAL), (0,))
    scored = score_windows(windows(), m)
    assert scored["is_fraud"].tolist() == [False, True]
    assert scored["cluster"].tolist() == ([0, 1] if order == "fraud_second" else [1, 0])
    assert scored["score"].iloc[0] < 0.5 < scored["score"].iloc[1]
    assert set(scored["model_version"]) == {"v1"}


def test_score_is_relative_closeness_to_fraud() -> None:
    m = model((NORMAL, FRAUD), (1,))
    # scaled (5, 5, 0): equidistant from both centroids
    scored = score_windows(pd.DataFrame({"tx_count": [7], "failed_count": [11], "max_amount_minor": [np.expm1(5.0)]}), m)
    assert scored["score"].iloc[0] == pytest.approx(0.5)


@pytest.mark.parametrize("block", [1, 2, 1024])
def test_nearest_centroid_and_squared_distance_in_blocks(monkeypatch, block: int) -> None:
    monkeypatch.setattr(scoring, "ROW_BLOCK", block)  # blocks of 1 and 2 rows cut the 3 rows apart
    points = np.array([[0.0, 1.0], [3.0, 4.0], [10.0, 0.0]])
    index, d2 = nearest(points, np.array([[0.0, 0.0], [6.0, 8.0]]))
    # (3, 4) is 25 from both: the lower index wins, as one argmin would pick; (10, 0): 100 vs 16 + 64
    assert index.tolist() == [0, 0, 1] and d2.tolist() == pytest.approx([1.0, 25.0, 80.0])


@pytest.mark.parametrize("fraud_index", [0, 1])
def test_cluster_is_the_nearest_of_all_centroids_lower_index_on_a_tie(fraud_index: int) -> None:
    centroids = (FRAUD, NORMAL) if fraud_index == 0 else (NORMAL, FRAUD)
    m = model(centroids, (fraud_index,))
    # scaled (5, 5, 0) is sqrt(50) from both, (9, 9, 0) nearer fraud, (1, 0, 0) nearer normal
    raw = np.array([[7.0, 11.0, np.expm1(5.0)], [11.0, 19.0, np.expm1(5.0)], [3.0, 1.0, np.expm1(5.0)]])
    result = score_matrix(raw, m)
    normal_index = 1 - fraud_index
    assert result["cluster"].tolist() == [0, fraud_index, normal_index]
    assert result["nearest_normal"].tolist() == [normal_index] * 3
    assert result["score"].tolist() == pytest.approx([0.5, 0.9, 1 / (1 + np.sqrt(181))])


def test_a_tail_centroid_keeps_a_busy_honest_window_normal_and_fraud_still_fraud() -> None:
    # scaled space, first feature only: quiet mass at 0, fraud at 10, and a tail centroid at 6
    # for the busiest honest windows (a normal centroid: fraud_clusters names the fraud one)
    quiet, tail, fraud = (0.0, 0.0, 0.0), (6.0, 0.0, 0.0), (10.0, 0.0, 0.0)
    raw = np.array([[8.5, 1.0, np.expm1(5.0)], [11.0, 1.0, np.expm1(5.0)]])  # scaled (6.5, 0, 0) and (9, 0, 0)
    without = score_matrix(raw, model((quiet, fraud), (1,), score_threshold=0.5))
    with_tail = score_matrix(raw, model((quiet, tail, fraud), (2,), score_threshold=0.5))
    # busy honest: 6.5 / (6.5 + 3.5) = 0.65, flagged; with the tail 0.5 / (0.5 + 3.5) = 0.125
    # fraud: 9 / (9 + 1) = 0.9; with the tail 3 / (3 + 1) = 0.75, still flagged
    assert without["score"].tolist() == pytest.approx([0.65, 0.9]) and without["is_fraud"].tolist() == [True, True]
    assert with_tail["score"].tolist() == pytest.approx([0.125, 0.75]) and with_tail["is_fraud"].tolist() == [False, True]
    assert with_tail["nearest_normal"].tolist() == [1, 1] and with_tail["cluster"].tolist() == [1, 2]


def test_outlier_distance_flags_windows_far_from_every_normal_centroid_through_the_score() -> None:
    m = model((NORMAL, FRAUD), (1,), outlier_distance=3.0)
    far = pd.DataFrame({"tx_count": [2.0], "failed_count": [1.0], "max_amount_minor": [np.expm1(9.0)]})  # scaled (0,0,4)
    scored = score_windows(far, m)
    assert scored["cluster"].iloc[0] == 0 and bool(scored["is_fraud"].iloc[0])
    # nearer normal (4 / (4 + sqrt(216)) = 0.21), raised to 0.5 + 0.5 * (1 - 3/4): flagged by its score
    assert scored["score"].iloc[0] == pytest.approx(0.625)


def test_score_threshold_decides_instead_of_the_nearest_centroid() -> None:
    # scaled (4, 4, 0): nearer the normal centroid (score 0.4), flagged only when the threshold is below 0.4
    between = pd.DataFrame({"tx_count": [6.0], "failed_count": [9.0], "max_amount_minor": [np.expm1(5.0)]})
    for threshold, flagged in ((0.3, True), (0.4, True), (0.5, False)):
        scored = score_windows(between, model((NORMAL, FRAUD), (1,), score_threshold=threshold))
        assert scored["cluster"].iloc[0] == 0 and scored["score"].iloc[0] == pytest.approx(0.4)
        assert bool(scored["is_fraud"].iloc[0]) is flagged
    assert ModelMetadata.from_dict(json.loads(model((NORMAL, FRAUD), (1,), score_threshold=0.3).to_json())).score_threshold == 0.3


def test_explanation_names_reasons_by_contribution_in_own_units() -> None:
    m = model((NORMAL, FRAUD), (1,))
    scored = score_windows(windows(), m)
    explanation = json.loads(scored["explanation"].iloc[1])
    # failed_count pulls (23 - 1) / 2 = 11 scaled units toward fraud, tx_count 10; max_amount_minor not at all
    assert [e["feature"] for e in explanation] == ["failed_count", "tx_count"]
    assert explanation[0]["value"] == 23 and explanation[0]["text"].startswith("23 failed or declined transactions")
    assert explanation[1]["value"] == 12 and explanation[0]["contribution"] > explanation[1]["contribution"] > 0


def test_metadata_round_trips_through_json(tmp_path) -> None:
    m = model((NORMAL, FRAUD), (1,), metrics={"f1": 0.97}, cluster_sizes=(10, 2))
    (tmp_path / "metadata.json").write_text(m.to_json())
    assert load_metadata(tmp_path) == m


def test_empty_batch_gets_typed_score_columns() -> None:
    scored = score_windows(windows().iloc[0:0], model((NORMAL, FRAUD), (1,)))
    assert list(scored.columns[-5:]) == ["is_fraud", "score", "cluster", "explanation", "model_version"]
    assert scored.empty


def test_bad_metadata_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="out of range"):
        model((NORMAL, FRAUD), (2,))
    with pytest.raises(ModelError, match="lack feature"):
        score_windows(pd.DataFrame({"tx_count": [1]}), model((NORMAL, FRAUD), (1,)))
    (tmp_path / "metadata.json").write_text(json.dumps({"version": "x"}))
    with pytest.raises(ModelError, match="malformed"):
        load_metadata(tmp_path)

"""Fraud-cluster choice and evaluation numbers, checked against values worked out by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spark_apps.training.evaluation import (
    choose_fraud_clusters, choose_score_threshold, evaluate_windows, format_report, labelled_fraud_clusters, plot_clusters,
    silhouette,
)

CENTROIDS = ((0.0, 0.0), (8.0, 8.0), (1.0, 0.0))  # A (mostly fraud), B (a little), C (normal mass)


def clusters_and_labels(a: int, b: int, c: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """10 windows in A (9 fraud), 100 in B (2 fraud), 1000 in C (none), at cluster indexes a, b, c."""
    clusters = np.array([a] * 10 + [b] * 100 + [c] * 1000)
    labels = np.array([True] * 9 + [False] + [True] * 2 + [False] * 98 + [False] * 1000)
    centroids = [None, None, None]
    centroids[a], centroids[b], centroids[c] = CENTROIDS
    return clusters, labels, tuple(centroids)


@pytest.mark.parametrize("a,b,c", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_fraud_clusters_follow_labelled_shares_whatever_the_indexes(a: int, b: int, c: int) -> None:
    clusters, labels, centroids = clusters_and_labels(a, b, c)
    choice = choose_fraud_clusters(clusters, centroids, labels)
    # {A}: F1 = 2*9/(10+11) = 0.857; {A, B}: 2*11/(110+11) = 0.18 -> A alone
    assert choice.fraud_clusters == (a,)
    assert choice.method == "labels"
    assert choice.fraud_share[a] == pytest.approx(0.9) and choice.fraud_share[b] == pytest.approx(0.02)
    assert choice.sizes[c] == 1000
    assert choice.centroid_distance[c] == 0.0  # C is the dominant cluster


def test_a_cluster_is_added_when_it_raises_f1() -> None:
    clusters = np.array([0] * 10 + [1] * 10 + [2] * 100)
    labels = np.array([True] * 10 + [True] * 6 + [False] * 4 + [False] * 100)
    # {0}: 2*10/(10+16) = 0.77; {0, 1}: 2*16/(20+16) = 0.89
    assert choose_fraud_clusters(clusters, ((0, 0), (1, 1), (2, 2)), labels).fraud_clusters == (0, 1)


def test_clusters_fitted_on_fraud_stay_fraud_and_mostly_fraud_ones_join() -> None:
    # 5 clusters, 3 and 4 fitted on fraud; 1 holds 3 fraud of 4 windows, 2 exactly half, 0 none,
    # and 4 (fitted on fraud) drew no train window at all
    assert labelled_fraud_clusters((3, 4), (0.0, 0.75, 0.5, 1.0, None)) == (1, 3, 4)
    assert labelled_fraud_clusters((), (0.0, 0.6)) == (1,)


def test_without_labels_rare_far_clusters_are_fraud() -> None:
    clusters = np.array([0] * 5 + [1] * 2000 + [2] * 5 + [3] * 300)
    centroids = ((10.0, 0.0), (0.0, 0.0), (1.0, 1.0), (0.0, 4.0))
    choice = choose_fraud_clusters(clusters, centroids, None)
    # 0: rare and 10 away -> fraud; 2: rare but near; 3: far but 13% of windows
    assert choice.fraud_clusters == (0,) and choice.method == "centroids"


def hand_made_windows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tx_count": [4, 2, 3, 5, 1, 1],
            "fraud_tx": [4, 0, 1, 2, 0, 0],
            "pattern": ["card_testing", None, "account_takeover", "account_takeover", None, None],
            "is_fraud": [True, True, False, True, False, False],
            "cluster": [1, 1, 0, 2, 0, 0],
        }
    )


def test_evaluation_numbers_match_the_hand_computation() -> None:
    report = evaluate_windows(hand_made_windows(), k=3, silhouette=0.5)
    # windows: TP w1 w4, FP w2, FN w3, TN w5 w6
    assert report["window"] == {
        "precision": pytest.approx(2 / 3, abs=1e-6), "recall": pytest.approx(2 / 3, abs=1e-6),
        "f1": pytest.approx(2 / 3, abs=1e-6), "confusion": {"tp": 2, "fp": 1, "fn": 1, "tn": 2},
    }
    # transactions: TP 4+2, FP 0+2+3 (normal ones in flagged windows), FN 1, TN 2+1+1
    assert report["transaction"]["confusion"] == {"tp": 6, "fp": 5, "fn": 1, "tn": 4}
    assert report["transaction"]["precision"] == pytest.approx(6 / 11, abs=1e-6)
    assert report["transaction"]["recall"] == pytest.approx(6 / 7, abs=1e-6)
    assert report["transaction"]["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert report["per_pattern"] == {
        "account_takeover": {"windows": 2, "window_recall": 0.5, "transactions": 3, "transaction_recall": pytest.approx(2 / 3, abs=1e-6)},
        "card_testing": {"windows": 1, "window_recall": 1.0, "transactions": 4, "transaction_recall": 1.0},
    }
    assert report["cluster_sizes"] == (3, 2, 1) and report["cluster_fraud_windows"] == (1, 1, 1)
    assert (report["windows"], report["transactions"], report["fraud_windows"], report["fraud_transactions"]) == (6, 16, 3, 7)
    assert report["silhouette"] == 0.5
    json.dumps(report)  # the report is written as JSON


def test_nothing_flagged_gives_zero_not_a_division_error() -> None:
    windows = hand_made_windows().assign(is_fraud=False)
    report = evaluate_windows(windows, k=3)
    assert report["window"]["precision"] == 0.0 and report["window"]["f1"] == 0.0
    assert report["window"]["confusion"] == {"tp": 0, "fp": 0, "fn": 3, "tn": 3}


def test_report_text_and_plot(tmp_path: Path) -> None:
    report = evaluate_windows(hand_made_windows(), k=3, silhouette=0.5)
    text = format_report(report, fraud_clusters=(1, 2))
    assert "window       precision 0.6667  recall 0.6667  F1 0.6667" in text
    assert "account_takeover" in text and text.count("<- fraud") == 2
    # clusters without fraud windows that flag nothing are summed up in one line
    quiet = evaluate_windows(hand_made_windows().assign(cluster=[1, 1, 1, 2, 0, 3]), k=4)
    text = format_report(quiet, fraud_clusters=(1,))
    assert text.count("<- fraud") == 1 and "\n      2        1              1\n" in text
    assert text.endswith("and 2 normal clusters of 2 windows without fraud")
    rng = np.random.default_rng(0)
    scaled = np.column_stack([rng.normal(size=60), np.repeat([0.0, 5.0, 10.0], 20), rng.normal(size=60)])
    clusters = np.repeat([0, 1, 2], 20)
    axes = plot_clusters(str(tmp_path / "c.png"), scaled, clusters, clusters == 2,
                         feature_names=("noise", "signal", "noise2"), fraud_clusters=(2,), k=3)
    assert axes[0] == "signal"
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_threshold_is_the_f1_best_cut_between_distinct_scores() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.7, 0.4, 0.2])
    labels = np.array([True, True, False, True, False, False])
    # cuts: keep 1 -> F1 2/4; 2 -> 4/5; 4 (the tied 0.7s go together) -> 6/7; 5 -> 6/8
    threshold, f1 = choose_score_threshold(scores, labels)
    assert threshold == pytest.approx(0.55) and f1 == pytest.approx(6 / 7)


@pytest.mark.parametrize("block", [1, 4096])
def test_silhouette_matches_the_hand_computation(block: int) -> None:
    # two clusters on a line, squared distances: point 0 -> a = 1, b = (16 + 25) / 2
    points = np.array([[0.0], [1.0], [4.0], [5.0]])
    s = silhouette(points, np.array([0, 0, 1, 1]), block=block)
    expected_0 = 1 - 1 / 20.5  # point 0: a 1, b 20.5; point 1 by symmetry: a 1, b (9 + 16) / 2
    expected_1 = 1 - 1 / 12.5
    assert s == pytest.approx((expected_0 + expected_1) / 2)
    assert silhouette(points, np.zeros(4, dtype=int)) is None


def test_silhouette_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(60, 3)) + np.repeat(np.eye(3) * 4, 20, axis=0)
    clusters = np.repeat([0, 1, 2], 20)
    clusters[7] = 5  # a cluster of one point: its silhouette is 0
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    expected = []
    for i, own in enumerate(clusters):
        mates = (clusters == own) & (np.arange(60) != i)
        if not mates.any():
            expected.append(0.0)
            continue
        a = d2[i, mates].mean()
        b = min(d2[i, clusters == other].mean() for other in set(clusters) - {own})
        expected.append((b - a) / max(a, b))
    assert silhouette(points, clusters, block=7) == pytest.approx(np.mean(expected))

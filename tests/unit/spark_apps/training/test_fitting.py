"""Centroid fitting without Spark: the model's features, the tail selection, the centroid order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudpipe.config import ModelConfig
from fraudpipe.errors import ModelError
from spark_apps.training.fitting import FittedModel, log_features, model_features, tail_windows
from spark_apps.scoring import ModelMetadata


def test_model_features_follow_the_window_feature_order_and_reject_unknown_names() -> None:
    config = ModelConfig(features=("transfer_count", "tx_count"), log_features=("tx_count", "failed_count"))
    assert model_features(config) == ("tx_count", "transfer_count")
    assert log_features(config) == ("tx_count",)  # failed_count is not a model feature
    with pytest.raises(ModelError, match=r"receiver_prefix, pair_tx_cnt not known; window features: tx_count.*context features: pair_tx_count"):
        model_features(ModelConfig(features=("tx_count", "receiver_prefix"), log_features=("pair_tx_cnt",)))
    # context features (spark_apps.history) come after the window features
    both = ModelConfig(features=("new_receivers", "pair_tx_count", "tx_count"), log_features=("pair_tx_count",))
    assert model_features(both) == ("tx_count", "pair_tx_count", "new_receivers")
    assert log_features(both) == ("pair_tx_count",)
    with pytest.raises(ModelError, match="empty"):
        model_features(ModelConfig(features=()))


def test_the_tail_is_the_share_of_normal_train_windows_farthest_from_the_normal_centroids() -> None:
    # one feature, no log, identity scaler, normal centroids at 0 and 10
    normal = ModelMetadata(version="draft", trained_at="", feature_names=("tx_count",), log_features=(),
                           scaler_mean=(0.0,), scaler_std=(1.0,), centroids=((0.0,), (10.0,)), fraud_clusters=())
    windows = pd.DataFrame({"tx_count": [1.0, 5.0, 9.0, 4.0, 30.0, 50.0, 6.0]})
    # distances to the nearer centroid: 1, 5, 1, 4, 20 (fraud), 40 (held out), 4
    normal_train = np.array([True, True, True, True, False, False, True])
    # 2 of the 5 normal train windows (40 %): the one 5 away, then of the two 4 away the first
    assert tail_windows(windows, normal_train, normal, 0.4).tolist() == [1, 3]
    assert tail_windows(windows, normal_train, normal, 0.6).tolist() == [1, 3, 6]
    assert tail_windows(windows, normal_train, normal, 0.0).tolist() == []


def test_centroids_are_normal_then_tail_then_fraud() -> None:
    fitted = FittedModel(
        pipeline_model=None, features=("tx_count",), log_features=(), scaler_mean=(0.0,), scaler_std=(1.0,),
        normal=((0.0,), (1.0,)), tail=((5.0,),), fraud=((9.0,), (12.0,)), tail_windows=3,
    )
    assert fitted.centroids == ((0.0,), (1.0,), (5.0,), (9.0,), (12.0,))
    assert fitted.fraud_clusters == (3, 4)

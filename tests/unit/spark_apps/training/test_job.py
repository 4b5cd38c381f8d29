"""The training job end to end on a small generated dataset, with the shared SparkSession."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fraudpipe.config import Config, ModelConfig, ProducerConfig, StoreConfig
from fraudpipe.store.sqlite import SqliteStore
from spark_apps.training.fitting import KNOWN_FEATURES
from spark_apps.training.data import generated_dataset_path, read_transactions
from spark_apps.training.job import PLOT_FILE, REPORT_FILE, run_training
from spark_apps.training.run import train
from spark_apps.model_registry import ModelRegistry, load_latest
from spark_apps.scoring import nearest, score_windows, transform

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("training")
    config = Config(
        model=ModelConfig(dir=str(root / "models"), dataset_dir=str(root / "data"), k=8, tail_k=12, fraud_k=6,
                          train_transactions=40_000, transfer_transactions=20_000, max_iter=10, train_fraction=0.6,
                          # ~8 train minutes hold too few fraud windows to give half of them to a
                          # warm-up (windows.warmup_mask has its own tests)
                          history_warmup_minutes=0),
        store=StoreConfig(sqlite_path=str(root / "store.db")),
        # 20,000 accounts: the 40,000 transactions span ~30 minutes, enough for a time split
        # before the generated tail (whole minutes, no new burst) that ends the test range
        producer=ProducerConfig(seed=3, accounts=20_000),
    )
    lines: list[str] = []
    run, directory = run_training(config, progress=lines.append, spark=spark)
    return config, run, directory, lines


def test_a_version_is_published_whole_and_recorded(trained) -> None:
    config, run, directory, lines = trained
    assert load_latest(config.path(config.model.dir)) == run.metadata
    assert ModelRegistry(config.path(config.model.dir)).versions() == [run.metadata.version]
    assert {p.name for p in directory.iterdir()} == {"spark_model", "metadata.json", REPORT_FILE, PLOT_FILE}
    assert (directory / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    report = json.loads((directory / REPORT_FILE).read_text())
    assert report["windows"] == run.metadata.data_range["test_windows"] > 0
    assert -1.0 <= report["silhouette"] <= 1.0
    with SqliteStore(config.path(config.store.sqlite_path)) as store:
        row = store.latest_model()
    assert row["version"] == run.metadata.version and json.loads(row["metrics"])["window"] == report["window"]
    assert any("fitting KMeans" in line for line in lines)  # progress was reported


def test_metadata_describes_the_run(trained) -> None:
    config, run, _directory, _lines = trained
    meta = run.metadata
    # the model's features are the configured subset of the window features, in their order
    assert meta.feature_names == tuple(n for n in KNOWN_FEATURES if n in config.model.features)  # known order
    # the clusters as Gaussians: a spread per centroid and feature, weights summing to 1
    assert len(meta.cluster_spread) == len(meta.centroids) and abs(sum(meta.cluster_weight) - 1.0) < 1e-9
    assert meta.params["k"] == 8 and meta.params["tail_k"] == 12 and meta.params["fraud_k"] == 6
    assert len(meta.centroids) == 8 + 12 + 6 and meta.params["tail_windows"] > 12
    # normal, tail, then fraud centroids, plus any other cluster whose train windows are mostly fraud;
    # a window is fraud above the chosen score
    others = set(meta.fraud_clusters) - set(range(20, 26))
    assert set(range(20, 26)) <= set(meta.fraud_clusters) and all(meta.cluster_fraud_share[c] > 0.5 for c in others)
    assert 0.0 < meta.score_threshold < 1.0
    # whole minutes: the dataset runs past 40,000 until no burst is cut (the longest default span is
    # 10 minutes: a shopping spree of 10 at 1 a minute) and to the end of that minute: at most
    # eleven minutes' worth (12,000 a minute) more
    assert 40_000 <= meta.data_range["transactions"] < 40_000 + 11 * 12_000 and meta.data_range["labelled"] is True
    assert meta.params["fraud_cluster_choice"] == "labels"
    assert meta.params["history_warmup_minutes"] == 0 and meta.data_range["warmup_windows_left_out"] == 0
    assert meta.fraud_clusters  # labelled fraud exists, so some cluster holds it
    assert len(meta.cluster_sizes) == len(meta.centroids)
    # the test windows' confusion counts every window once and every labelled fraud window as caught or missed
    window = meta.metrics["window"]
    confusion = window["confusion"]
    assert sum(confusion.values()) == meta.data_range["test_windows"] == len(run.test_windows)
    assert confusion["tp"] + confusion["fn"] == int((run.test_windows["fraud_tx"] > 0).sum()) > 0
    # 40,000 transactions and a time split leave a dozen fraud windows to test, so the figures
    # belong to benchmarks/detection; here: the score ranks the fraud above the honest windows,
    # and false alarms stay rare
    test = run.test_windows
    fraud = test["fraud_tx"].to_numpy() > 0
    scores = test["score"].to_numpy()
    ranked_above = (scores[fraud][:, None] > scores[~fraud][None, :]).mean()  # ROC AUC
    assert ranked_above > 0.85
    assert confusion["fp"] <= 0.01 * (confusion["fp"] + confusion["tn"])


def test_numpy_scoring_assigns_the_clusters_spark_predicts(trained, spark) -> None:
    from pyspark.ml import PipelineModel

    _config, run, directory, _lines = trained
    test = run.test_windows
    meta = run.metadata
    model = PipelineModel.load(str(directory / "spark_model"))
    predicted = model.transform(spark.createDataFrame(test[list(meta.feature_names)].astype(float)))
    spark_clusters = np.array([r["cluster"] for r in predicted.select("cluster").collect()])
    # The Spark pipeline holds the normal KMeans, the metadata's first k centroids: numpy's
    # nearest of those must be Spark's prediction.
    scaled = transform(test[list(meta.feature_names)].to_numpy(dtype=float), meta)
    numpy_clusters, _d2 = nearest(scaled, np.asarray(meta.centroids[: meta.params["k"]]))
    assert (spark_clusters == numpy_clusters).mean() > 0.999  # float ties aside, identical
    # what the stream flags (score_windows) is the model's own decision; is_fraud adds the
    # earlier minutes its flagged pairs cover (bursts.predicted)
    features = test[list(meta.feature_names)]
    assert (score_windows(features, run.metadata)["is_fraud"].to_numpy() == test["flagged"].to_numpy()).all()
    assert (test["is_fraud"] >= test["flagged"]).all()


def test_the_split_is_by_time_and_the_report_has_both_evaluations(trained) -> None:
    _config, run, directory, _lines = trained
    meta, test = run.metadata, run.test_windows
    cut = dt.datetime.fromisoformat(meta.data_range["first_test_window"])
    # every tested window is at or after the first test minute, which is after the first window
    assert test["window_start"].min() == int(cut.timestamp() * 1000)
    # and the test range ends at the last labelled minute (the generated tail has no new bursts)
    last = dt.datetime.fromisoformat(meta.data_range["last_test_window"])
    assert test["window_start"].max() == int(last.timestamp() * 1000)
    assert (test.loc[test["window_start"] == test["window_start"].max(), "fraud_tx"] > 0).any()
    assert cut > dt.datetime.fromisoformat(meta.data_range["first_window"])
    assert meta.params["split"] == "time" and meta.data_range["fragments_left_out"] >= 0
    metrics = meta.metrics
    # the old top-level keys are the in-distribution evaluation
    assert metrics["window"] == metrics["in_distribution"]["window"] == run.report["window"]
    assert metrics["per_pattern"] == metrics["in_distribution"]["per_pattern"]
    bursts = metrics["in_distribution"]["bursts"]
    assert 0 < bursts["instances"] and bursts["caught"] <= bursts["instances"]
    assert sum(f["instances"] for f in bursts["per_family"].values()) == bursts["instances"]
    # transfer: the generated shifted dataset (model.transfer_config), its later minutes
    transfer = metrics["transfer"]
    # (20,000 shifted transactions span a few minutes: its test range may hold few windows)
    assert sum(transfer["window"]["confusion"].values()) == transfer["windows"]
    assert run.transfer_report["split"].startswith("time: later minutes")
    report = json.loads((directory / REPORT_FILE).read_text())
    assert report["transfer"]["window"] == transfer["window"] and report["bursts"] == bursts


def test_the_test_minutes_labels_change_nothing_in_the_model(trained, spark, tmp_path) -> None:
    """Threshold, fraud clusters and centroids come from the train minutes only."""
    config, run, _directory, _lines = trained
    source = generated_dataset_path(config, config.model.train_transactions)
    frame = pd.read_parquet(source)
    cut = pd.Timestamp(run.metadata.data_range["first_test_window"])
    later = frame["event_time"] >= cut
    assert frame.loc[later, "pattern"].notna().any()  # there is something to take away
    for column in ("pattern", "fraud_instance", "fraud_variant"):
        frame.loc[later, column] = None
    relabelled = tmp_path / "relabelled.parquet"
    frame.to_parquet(relabelled, index=False)
    again = train(spark, read_transactions(spark, relabelled, require_labels=True), config.model, progress=lambda _m: None)
    for name in ("score_threshold", "fraud_clusters", "centroids", "scaler_mean", "scaler_std", "cluster_fraud_share"):
        assert getattr(again.metadata, name) == getattr(run.metadata, name), name
    assert again.metadata.params["train_f1"] == run.metadata.params["train_f1"]
    assert again.report["fraud_windows"] == 0  # the test side did lose its labels


def test_the_trained_models_alerts_score_at_or_above_its_threshold_with_deviating_reasons(trained) -> None:
    import re

    import pandas as pd

    from spark_apps.scoring import score_matrix, untransform
    from spark_apps.stream.outputs import score_all

    _config, run, _directory, _lines = trained
    meta = run.metadata
    profile = meta.population_profile  # normal train windows of the run, amounts in the data's currency
    assert profile["currency"] == "USD" and 0 < profile["windows"] <= meta.data_range["train_windows"]
    assert set(profile["quantiles"]) == set(meta.feature_names)
    held_out = run.test_windows.drop(columns=["is_fraud", "score", "cluster"])
    # the held-out windows (few alerts), and 5,000 windows drawn around the model's fraud centroids
    # (scaled space, back to raw units, counts whole): many alerts of a real trained model to check
    rng = np.random.default_rng(5)
    fraud_centroids = np.asarray(meta.centroids)[list(meta.fraud_clusters)]
    scaled = fraud_centroids[rng.integers(0, len(fraud_centroids), 5_000)] + rng.normal(0.0, 0.7, (5_000, len(meta.feature_names)))
    near = held_out.sample(5_000, replace=True, random_state=5).reset_index(drop=True)
    for name, values in zip(meta.feature_names, untransform(scaled, meta).T):
        near[name] = np.maximum(values if name in ("avg_amount_minor", "failed_ratio") else np.round(values), 0.0)
    windows = pd.concat([held_out, near], ignore_index=True)
    result = score_matrix(windows[list(meta.feature_names)].to_numpy(dtype=float), meta)
    assert result["is_fraud"].tolist() == (result["score"] >= meta.threshold).tolist()
    # the stream's scoring of windows that already carry their context (the stream adds it per batch)
    scored = score_all(windows, meta)
    alerts = [{"score": row["score"], "explanation": row["explanation"],
               "features": json.dumps({name: float(row[name]) for name in meta.feature_names})}
              for row in scored[scored["is_fraud"]].to_dict("records")]
    assert len(alerts) == int(result["is_fraud"].sum()) > 20
    assert min(a["score"] for a in alerts) >= meta.threshold == meta.score_threshold
    level = {p: profile["levels"].index(p) for p in (0.1, 0.9)}
    explained = 0
    for alert in alerts:
        features = json.loads(alert["features"])
        reasons = json.loads(alert["explanation"])
        explained += bool(reasons)
        for r in reasons:
            q = profile["quantiles"][r["feature"]]
            beyond = features[r["feature"]] > q[level[0.9]] if r["direction"] == "high" else features[r["feature"]] < q[level[0.1]]
            assert beyond and r["contribution"] > 0
            if r["unit"] == "money":
                assert re.match(r"^\$\d{1,3}(,\d{3})*\.\d{2} ", r["text"])
            elif r["unit"] == "count":
                assert re.match(r"^\d{1,3}(,\d{3})* ", r["text"])
    assert explained >= 0.8 * len(alerts)  # most alerts name at least one reason


def test_a_hand_written_copy_of_the_input_trains_the_same_model(trained, spark, tmp_path) -> None:
    """`train --input` reads the layout `fraudpipe evaluate` documents, as evaluate does: epoch-ms
    times, int32 amounts, pandas' float instance ids, only the documented columns."""
    config, run, _directory, _lines = trained
    frame = pd.read_parquet(generated_dataset_path(config, config.model.train_transactions))
    frame = frame[["event_time", "sender_account", "receiver_account", "amount_minor", "transaction_type", "status",
                   "channel", "pattern", "fraud_instance"]].assign(
        event_time=lambda f: f["event_time"].astype("datetime64[ms, UTC]").astype("int64"),
        amount_minor=lambda f: f["amount_minor"].astype("int32"),
        fraud_instance=lambda f: f["fraud_instance"].astype("float64"))
    by_hand = tmp_path / "by_hand.parquet"
    frame.to_parquet(by_hand, index=False)
    again, _ = run_training(replace(config, model=replace(config.model, dir=str(tmp_path / "models"))),
                            input_path=by_hand, record=False, progress=lambda _m: None, spark=spark)
    for name in ("score_threshold", "fraud_clusters", "centroids", "scaler_mean", "scaler_std"):
        assert getattr(again.metadata, name) == getattr(run.metadata, name), name
    assert again.report["window"] == run.report["window"]


def test_train_refuses_a_malformed_input_naming_the_problem(tmp_path) -> None:
    from click.testing import CliRunner

    from fraudpipe.cli import main

    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"event_time": [1, 2], "sender_account": ["a", "b"], "amount_minor": ["1.00", "2.00"]}).to_parquet(bad)
    result = CliRunner().invoke(main, ["train", "--input", str(bad), "--no-store"])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "missing column(s) receiver_account" in result.output
    assert "Traceback" not in result.output

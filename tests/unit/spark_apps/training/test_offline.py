"""`fraudpipe evaluate`: a hand-written labelled file, its malformed variants, and the report."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fraudpipe.cli import main
from fraudpipe.config import Config, ModelConfig
from fraudpipe.errors import DatasetError
from spark_apps.history import MINUTE_MS
from spark_apps.model_registry import ModelRegistry
from spark_apps.scoring import ModelMetadata
from spark_apps.training.labelled_input import read_labelled
from spark_apps.training.offline import EVALUATIONS_DIR, run_evaluation

T0 = 1_795_000_020_000 - 1_795_000_020_000 % MINUTE_MS


def _tx(sender: str, ms: int, *, amount: int = 2_500, pattern: str | None = None, instance: int | None = None) -> dict:
    return {"event_time": ms, "sender_account": sender, "receiver_account": f"R-{sender}-{ms % 7}", "amount_minor": amount,
            "transaction_type": "PURCHASE", "status": "APPROVED", "channel": "ONLINE", "pattern": pattern,
            "fraud_instance": instance}


def hand_written() -> pd.DataFrame:
    """The documented columns only, event_time as pandas writes datetimes (ns, no zone)."""
    rows = [
        # a card test of 8 cut by the minute boundary: 4 at 0:50-0:56, 4 at 1:01-1:07
        *[_tx("A", T0 + 50_000 + 2_000 * i, amount=100, pattern="card_testing", instance=1) for i in range(4)],
        *[_tx("A", T0 + MINUTE_MS + 1_000 + 2_000 * i, amount=100, pattern="card_testing", instance=1) for i in range(4)],
        _tx("B", T0 + 3 * MINUTE_MS + 5_000, amount=900_000, pattern="account_takeover", instance=2),  # one quiet transfer
        *[_tx("C", T0 + 2 * MINUTE_MS + 3_000 * i) for i in range(10)],  # a busy honest minute
        *[_tx(f"N{i}", T0 + i * MINUTE_MS + 30_000) for i in range(5)],
    ]
    frame = pd.DataFrame(rows)
    frame["event_time"] = pd.to_datetime(frame["event_time"], unit="ms")
    frame["fraud_instance"] = frame["fraud_instance"].astype("Int64")
    return frame


def model() -> ModelMetadata:
    """Flags a window near (10, 10) in (tx_count, pair_tx_count): a normal centroid at (1, 1), a fraud one at (10, 10)."""
    return ModelMetadata(version="20261130T000000000Z", trained_at="2026-11-30T00:00:00+00:00",
                         feature_names=("tx_count", "pair_tx_count"), log_features=(), scaler_mean=(0.0, 0.0),
                         scaler_std=(1.0, 1.0), centroids=((1.0, 1.0), (10.0, 10.0)), fraud_clusters=(1,),
                         score_threshold=0.5)


@pytest.fixture
def published(tmp_path: Path) -> Config:
    config = Config(model=ModelConfig(dir=str(tmp_path / "models")))
    registry = ModelRegistry(config.path(config.model.dir))
    registry.publish(registry.begin(), model())
    return config


@pytest.mark.spark
@pytest.mark.parametrize("time_as", ["datetime", "epoch_ms"])
def test_a_hand_written_file_is_evaluated_with_the_streams_features_and_pairs(spark, published, tmp_path, time_as) -> None:
    frame = hand_written()
    if time_as == "epoch_ms":
        frame["event_time"] = frame["event_time"].astype("datetime64[ms]").astype("int64")
    path = tmp_path / "mine.parquet"
    frame.to_parquet(path, index=False)
    report, written = run_evaluation(published, path, progress=lambda _m: None, spark=spark)
    assert written == ModelRegistry(published.path(published.model.dir)).version_dir(model().version) / EVALUATIONS_DIR / "mine.json"
    assert json.loads(written.read_text()) == json.loads(json.dumps(report))
    # A's later minute pairs with the earlier one (4 + 4 = 8 of the burst) and is flagged; its
    # alert covers the earlier minute. B's quiet takeover is missed, C's busy minute is a false alarm.
    assert report["window"]["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 5}
    assert report["flagged_windows"] == 2 and report["covered_windows"] == 1
    assert report["transaction"]["confusion"] == {"tp": 8, "fp": 10, "fn": 1, "tn": 5}
    assert report["window"]["precision"] == pytest.approx(2 / 3, abs=1e-6) and report["window"]["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert report["per_pattern"]["card_testing"]["window_recall"] == 1.0
    assert report["per_pattern"]["account_takeover"]["window_recall"] == 0.0
    assert report["bursts"]["instances"] == 2 and report["bursts"]["caught"] == 1
    assert report["bursts"]["per_family"]["card_testing"] == {"instances": 1, "caught": 1, "recall": 1.0}
    assert report["model_version"] == model().version and report["input"] == str(path)


@pytest.mark.spark
def test_the_warmup_minutes_build_history_but_are_not_scored(spark, published, tmp_path) -> None:
    path = tmp_path / "mine.parquet"
    hand_written().to_parquet(path, index=False)
    # 5 minutes: a 2-minute warm-up leaves minutes 2..4 (C's busy minute, B's takeover, N2..N4)
    report, _ = run_evaluation(published, path, progress=lambda _m: None, spark=spark, warmup_minutes=2)
    assert report["window"]["confusion"] == {"tp": 0, "fp": 1, "fn": 1, "tn": 3}
    assert report["warmup_minutes"] == 2 and report["warmup_windows"] == 4  # A's two windows, N0, N1
    # a warm-up longer than the file keeps its later half
    report, _ = run_evaluation(published, path, progress=lambda _m: None, spark=spark, warmup_minutes=600)
    assert report["warmup_windows"] == 4


def test_labels_beside_the_file_are_joined(tmp_path: Path) -> None:
    frame = hand_written().drop(columns=["pattern", "fraud_instance"])
    frame["transaction_id"] = [f"t{i}" for i in range(len(frame))]
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path, index=False)
    pd.DataFrame({"transaction_id": ["t0", "t8"], "pattern": ["card_testing", "account_takeover"]}).to_parquet(
        tmp_path / "tx.labels.parquet", index=False)
    table = read_labelled(path)
    assert table.schema.field("event_time").type == pa.timestamp("ms", tz="UTC")
    labelled = {s: p for s, p in zip(table.column("sender_account").to_pylist(), table.column("pattern").to_pylist()) if p}
    assert labelled == {"A": "card_testing", "B": "account_takeover"}  # t0 is A's first, t8 B's transfer
    assert table.column("pattern").null_count == len(frame) - 2 and table.num_rows == len(frame)


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    return path


MALFORMED = {
    "missing column": (lambda f: f.drop(columns=["channel"]), r"missing column\(s\) channel"),
    "no label": (lambda f: f.drop(columns=["pattern"]), r"no `pattern` column and no labels file bad.labels.parquet"),
    "amount as text": (lambda f: f.assign(amount_minor=f["amount_minor"].astype(str)),
                       r"amount_minor is string, expected an integer"),
    "time as text": (lambda f: f.assign(event_time=f["event_time"].astype(str)), r"event_time is string, expected a timestamp"),
    "no rows": (lambda f: f.iloc[:0], r"no rows"),
    "null sender": (lambda f: f.assign(sender_account=[None] + list(f["sender_account"][1:])), r"null values in sender_account \(1 rows\)"),
    "fractional instance": (lambda f: f.assign(fraud_instance=f["fraud_instance"].astype("float64") + 0.5),
                            r"fraud_instance has values that are not whole numbers"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_refused_naming_the_problem(tmp_path: Path, case: str) -> None:
    change, message = MALFORMED[case]
    path = _write(tmp_path, change(hand_written()))
    with pytest.raises(DatasetError, match=message):
        read_labelled(path)


def test_an_unreadable_or_absent_file_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.parquet"
    text.write_text("event_time,sender_account\n")
    with pytest.raises(DatasetError, match="not a readable Parquet transactions file"):
        read_labelled(text)
    with pytest.raises(DatasetError, match="no such file"):
        read_labelled(tmp_path / "absent.parquet")


def test_the_command_refuses_a_malformed_file_with_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, hand_written().drop(columns=["receiver_account", "status"]))
    result = CliRunner().invoke(main, ["evaluate", "--input", str(path)])
    assert result.exit_code == 1
    assert "error:" in result.output and "missing column(s) receiver_account, status" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, DatasetError)


def test_the_written_file_has_a_typed_schema_for_spark(tmp_path: Path) -> None:
    # what to_spark receives: the documented columns cast to the window features' types
    path = _write(tmp_path, hand_written().assign(amount_minor=lambda f: f["amount_minor"].astype("int32")))
    table = read_labelled(path)
    assert table.schema.field("amount_minor").type == pa.int64()
    assert table.schema.field("fraud_instance").type == pa.int64()
    assert pq.read_schema(path).field("event_time").type == pa.timestamp("ns")
    assert np.array_equal(table.column("event_time").cast(pa.int64()).to_numpy()[:2], [T0 + 50_000, T0 + 52_000])


def test_pandas_float_instance_ids_and_an_unlabelled_file_for_training(tmp_path: Path) -> None:
    # pandas writes an integer column with missing values as float64 with NaN
    path = _write(tmp_path, hand_written().assign(fraud_instance=lambda f: f["fraud_instance"].astype("float64")))
    ids = read_labelled(path).column("fraud_instance")
    assert ids.type == pa.int64() and ids.to_pylist()[:9] == [1] * 8 + [2] and ids.null_count == 15
    # training may fit unlabelled traffic; evaluation may not
    unlabelled = _write(tmp_path, hand_written().drop(columns=["pattern"]))
    assert read_labelled(unlabelled, require_labels=False).column("pattern").null_count == len(hand_written())
    with pytest.raises(DatasetError, match="no `pattern` column"):
        read_labelled(unlabelled)

"""The model registry: immutable versions, atomic LATEST, hot-reload cache, store record."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fraudpipe.errors import ModelError
from fraudpipe.model_pointer import published_version
from fraudpipe.store.sqlite import SqliteStore
from spark_apps.model_registry import ModelRegistry, load_latest, new_version
from spark_apps.scoring import ModelMetadata

PAYLOAD_FILES = 12


def metadata(version: str) -> ModelMetadata:
    return ModelMetadata(
        version=version,
        trained_at="2026-11-21T10:00:00+00:00",
        feature_names=("tx_count", "failed_count"),
        log_features=(),
        scaler_mean=(1.0, 0.0),
        scaler_std=(1.0, 1.0),
        centroids=((0.0, 0.0), (5.0, 5.0)),
        fraud_clusters=(1,),
        metrics={"window": {"f1": 0.97}},
    )


def build_version(registry: ModelRegistry, version: str, *, store=None) -> Path:
    staging = registry.begin()
    for i in range(PAYLOAD_FILES):  # stands in for the Spark model's many files
        (staging / f"part-{i}").write_text(version)
    return registry.publish(staging, metadata(version), store=store)


def test_no_model_before_first_publish(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "models") is None
    assert ModelRegistry(tmp_path / "models").versions() == []


def test_publish_moves_latest_and_load_latest_reloads(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    build_version(registry, "v001")
    first = load_latest(tmp_path)
    assert first is not None and first.version == "v001"
    assert load_latest(tmp_path) is first  # unchanged pointer: served from the cache
    build_version(registry, "v002")
    assert load_latest(tmp_path).version == "v002"
    assert published_version(tmp_path) == "v002"  # what `fraudpipe up` reads to skip training
    assert registry.versions() == ["v001", "v002"]
    assert registry.load("v001") == metadata("v001")  # old versions stay readable


def test_versions_are_immutable(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    build_version(registry, "v001")
    with pytest.raises(ModelError, match="immutable"):
        build_version(registry, "v001")
    assert registry.latest_version() == "v001"


def test_discarded_staging_leaves_nothing_visible(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    staging = registry.begin()
    (staging / "half").write_text("x")
    registry.discard(staging)
    assert registry.versions() == [] and load_latest(tmp_path) is None and not staging.exists()


def test_new_versions_sort_by_time_as_text() -> None:
    a = new_version(dt.datetime(2026, 11, 21, 9, 59, 59, 999000, tzinfo=dt.timezone.utc))
    b = new_version(dt.datetime(2026, 11, 21, 10, 0, 0, 1000, tzinfo=dt.timezone.utc))
    assert a < b and a == "20261121T095959999Z"


def test_publish_records_the_version_in_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    store.ensure_schema()
    try:
        path = build_version(ModelRegistry(tmp_path / "models"), "v001", store=store)
        row = store.latest_model()
    finally:
        store.close()
    assert row["version"] == "v001" and row["path"] == str(path)
    assert row["trained_at"] == int(dt.datetime(2026, 11, 21, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert json.loads(row["metrics"]) == {"window": {"f1": 0.97}}
    assert ModelMetadata.from_dict(json.loads(row["metadata"])) == metadata("v001")


def test_concurrent_reader_never_sees_a_half_written_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    build_version(registry, "v000")
    done = threading.Event()
    seen: list[str] = []
    problems: list[str] = []

    def reader() -> None:
        while not done.is_set():
            model = load_latest(tmp_path)
            directory = registry.version_dir(model.version)
            files = sorted(p.name for p in directory.iterdir())
            if len(files) != PAYLOAD_FILES + 1 or any(
                (directory / f"part-{i}").read_text() != model.version for i in range(PAYLOAD_FILES)
            ):
                problems.append(f"{model.version}: {files}")
            seen.append(model.version)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 40):
            build_version(registry, f"v{n:03d}")
    finally:
        done.set()
        thread.join(timeout=30)
    assert problems == []
    assert len(set(seen)) > 1  # the reader really followed LATEST through several versions
    assert seen == sorted(seen)  # and never went backwards
    assert load_latest(tmp_path).version == "v039"


def test_unreadable_metadata_is_a_model_error(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    build_version(registry, "v001")
    (registry.version_dir("v001") / "metadata.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read model metadata"):
        load_latest(tmp_path)


def test_checking_for_a_model_does_not_import_pandas():
    # `fraudpipe up` asks whether a model exists before it starts anything; pandas there
    # cost the supervisor ~70 MB of RSS for the life of the stack.
    code = ("import sys; from spark_apps.model_registry import load_latest; load_latest('nowhere'); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

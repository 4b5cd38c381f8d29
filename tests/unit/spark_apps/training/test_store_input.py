"""`fraudpipe train --from-store`: training input read from a SQLite store filled through the port."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fraudpipe.config import Config, ModelConfig, ProducerConfig, StoreConfig
from fraudpipe.store.sqlite import SqliteStore
from producer.files import write_files
from producer.generator import TransactionGenerator
from spark_apps.features import OUTPUT_COLUMNS
from spark_apps.training.job import run_training, train_command
from spark_apps.training.windows import transform_windows
from spark_apps.model_registry import load_latest
from spark_apps.training.data import extract_store_transactions, parse_time, read_transactions

START_MS = 1_795_000_000_000
MINUTE = 60_000
TRANSACTIONS = 12_000


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory):
    """One generated dataset, written both into a SQLite store (through the port) and as producer Parquet."""
    root = tmp_path_factory.mktemp("from-store")
    producer = ProducerConfig(seed=5, event_rate=40.0)  # 12k transactions span 5 minutes
    batches = list(TransactionGenerator(producer, start_ms=START_MS, clock="simulated").batches(TRANSACTIONS))
    with SqliteStore(root / "store.db") as store:
        for batch in batches:
            store.upsert_transactions(batch.records())
            store.upsert_labels(batch.labels())
    write_files(batches, root / "tx.parquet")
    last_ms = max(int(b.event_time.max()) for b in batches)
    return root, producer, last_ms


def _rows(frame) -> list[tuple]:
    columns = [*OUTPUT_COLUMNS, "fraud_tx", "pattern"]
    # collect_set (receiver_hashes) has no order: compare the sets sorted
    return sorted(tuple(sorted(v) if isinstance(v, list) else v for v in r) for r in frame.select(*columns).collect())


@pytest.mark.spark
def test_store_input_gives_the_windows_of_the_same_data_read_from_parquet(spark, filled) -> None:
    root, _producer, _last = filled
    with SqliteStore(root / "store.db") as store:
        from_store = transform_windows(extract_store_transactions(spark, store, chunk_size=1000, progress=lambda _m: None))
    from_file = transform_windows(read_transactions(spark, root / "tx.parquet", require_labels=True))
    store_rows = _rows(from_store)
    assert store_rows == _rows(from_file)
    assert sum(r[OUTPUT_COLUMNS.index("tx_count")] for r in store_rows) == TRANSACTIONS
    assert any(r[-2] > 0 for r in store_rows)  # labels were joined on


@pytest.mark.spark
def test_train_from_store_within_a_time_range(spark, filled) -> None:
    root, producer, last_ms = filled
    config = Config(
        model=ModelConfig(dir=str(root / "models"), dataset_dir=str(root / "data"), k=4, tail_k=4, fraud_k=2, max_iter=5,
                          fit_sample=5_000, plot_points=500),
        store=StoreConfig(sqlite_path=str(root / "store.db")),
        producer=producer,
    )
    since, until = (START_MS // MINUTE + 2) * MINUTE, last_ms - last_ms % MINUTE  # whole minutes inside the data
    run, _directory = run_training(config, from_store=True, since_ms=since, until_ms=until,
                                   progress=lambda _m: None, spark=spark)
    assert load_latest(config.path(config.model.dir)) == run.metadata
    data = run.metadata.data_range
    assert data["labelled"] is True and 0 < data["transactions"] < TRANSACTIONS
    assert parse_time(data["first_window"]) == since and parse_time(data["last_window"]) == until - MINUTE
    assert not (root / "data").exists()  # nothing generated


def test_cli_time_options() -> None:
    assert parse_time("1795000000000") == 1_795_000_000_000
    assert parse_time("2026-11-18T11:06:40Z") == parse_time("2026-11-18T11:06:40") == 1_795_000_000_000
    runner = CliRunner()
    assert "add --from-store" in runner.invoke(train_command, ["--since", "0"]).output
    assert "give one" in runner.invoke(train_command, ["--from-store", "--input", str(Path(__file__))]).output
    assert "not a time" in runner.invoke(train_command, ["--from-store", "--until", "yesterday"]).output

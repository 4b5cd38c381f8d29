"""--to-file: Parquet and Avro container files hold the stream and its labels."""
from __future__ import annotations

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest

from fraudpipe import contracts
from fraudpipe.config import ProducerConfig, load_config
from fraudpipe.errors import ProducerError
from producer.files import labels_path, write_files
from producer.generator import TransactionGenerator

START = 1_700_000_000_000


def batches(count: int):
    return list(TransactionGenerator(ProducerConfig(), seed=3, start_ms=START, clock="simulated").batches(count))


def expected(count: int, version: int = 1):
    records, labels = [], []
    for batch in batches(count):
        records += batch.records(version)
        labels += batch.labels()
    return records, labels


def test_parquet_holds_schema_columns_a_pattern_column_and_a_labels_file(tmp_path):
    target = tmp_path / "train.parquet"
    summary = write_files(batches(30_000), target)
    records, labels = expected(30_000)
    assert (summary.transactions, summary.labels) == (30_000, len(labels)) and labels
    table = pq.read_table(target)
    assert table.column_names == [*contracts.transaction_field_names(1), contracts.PATTERN_COLUMN,
                                  contracts.FRAUD_INSTANCE_COLUMN, contracts.FRAUD_VARIANT_COLUMN]
    rows = table.to_pylist()
    for row, record in zip(rows, records):
        assert int(row.pop("event_time").timestamp() * 1000) == record.pop("event_time")
        pattern, instance, variant = row.pop("pattern"), row.pop("fraud_instance"), row.pop("fraud_variant")
        assert (pattern is None) == (instance is None) == (variant is None)
        assert variant is None or variant.startswith(pattern + ".")
        assert row == record
    instances = np.concatenate([b.instance for b in batches(30_000)])
    assert (instances >= 0).sum() > 0
    assert np.array_equal(table.column("fraud_instance").fill_null(-1).to_numpy(), instances)
    patterned = {r["transaction_id"]: r["pattern"] for r in table.select(["transaction_id", "pattern"]).to_pylist() if r["pattern"]}
    label_rows = pq.read_table(labels_path(target)).to_pylist()
    assert {r["transaction_id"]: r["pattern"] for r in label_rows} == patterned == {l["transaction_id"]: l["pattern"] for l in labels}
    assert [int(r["labeled_at"].timestamp() * 1000) for r in label_rows] == [l["labeled_at"] for l in labels]


def test_avro_container_is_exactly_the_v2_schema_without_labels(tmp_path):
    target = tmp_path / "train.avro"
    write_files(batches(5_000), target, schema_version=2)
    records, labels = expected(5_000, version=2)
    with open(target, "rb") as handle:
        reader = fastavro.reader(handle)
        assert reader.writer_schema["name"].endswith("Transaction")
        got = list(reader)
    assert [int(r["event_time"].timestamp() * 1000) for r in got] == [r["event_time"] for r in records]
    assert [r["device_id"] for r in got] == [r["device_id"] for r in records]
    with open(labels_path(target), "rb") as handle:
        assert [r["transaction_id"] for r in fastavro.reader(handle)] == [l["transaction_id"] for l in labels]


def test_unknown_extension_is_a_clear_error(tmp_path):
    with pytest.raises(ProducerError, match=r"\.csv"):
        write_files(batches(10), tmp_path / "x.csv")


def test_produce_to_file_with_another_config_and_whole_minutes(tmp_path):
    from click.testing import CliRunner

    from fraudpipe.cli import main

    target = tmp_path / "shifted.parquet"
    shifted = contracts.PROJECT_ROOT / "benchmarks" / "detection" / "shifted.yml"
    result = CliRunner().invoke(main, ["produce", "--config", str(shifted), "--to-file", str(target), "--count", "20000",
                                       "--start", "2026-01-01T00:00:00", "--whole-minutes"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.num_rows > 20_000
    # the file is the shifted config's stream with whole minutes: every instance complete
    config = load_config(shifted).producer
    expected = TransactionGenerator(config, start_ms=1_767_225_600_000, clock="simulated").batches(20_000, whole_minutes=True)
    instances = np.concatenate([b.instance for b in expected])
    assert np.array_equal(table.column("fraud_instance").fill_null(-1).to_numpy(), instances)
    fraud = table.filter(table.column("pattern").is_valid())
    assert set(fraud.column("pattern").to_pylist()) <= set(load_config(shifted).producer.patterns)
    assert fraud.num_rows and fraud.column("fraud_instance").null_count == 0

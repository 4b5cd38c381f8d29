"""The independent traffic mix: a file that evaluate and train read, labelled per transaction."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.detection import independent
from spark_apps.history import MINUTE_MS
from spark_apps.training.labelled_input import read_labelled


def test_the_mix_is_a_labelled_file_evaluate_and_train_read(tmp_path: Path) -> None:
    table = independent.generate(seed=3, minutes=12)
    path = tmp_path / "independent.parquet"
    pq.write_table(table, path)
    checked = read_labelled(path)
    assert checked.num_rows == table.num_rows > 50_000
    labelled = table.filter(pc.is_valid(table.column("pattern")))
    assert set(labelled.column("pattern").to_pylist()) <= set(independent.FAMILY_WEIGHTS)
    assert labelled.column("fraud_instance").null_count == 0 and labelled.column("fraud_variant").null_count == 0
    assert table.filter(pc.is_null(table.column("pattern"))).column("fraud_instance").drop_null().length() == 0
    # bursts start at any moment: their first transactions do not sit on minute boundaries
    times = labelled.column("event_time").cast("int64").to_numpy()
    instances = labelled.column("fraud_instance").to_numpy()
    firsts = np.array([times[instances == i].min() for i in np.unique(instances)])
    assert len(firsts) >= 20 and len(np.unique(firsts % MINUTE_MS // 1000)) > len(firsts) // 2
    times = table.column("event_time").cast("int64").to_numpy()
    assert np.all(np.diff(times) >= 0)  # written in event-time order


def test_the_same_seed_gives_the_same_mix_and_another_seed_another() -> None:
    a, b, c = (independent.generate(seed=s, minutes=3) for s in (5, 5, 6))
    assert a.equals(b)
    assert not a.equals(c)

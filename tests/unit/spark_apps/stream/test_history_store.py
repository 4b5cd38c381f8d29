"""The sender history beside the checkpoint: crash at any point + rerun = an uninterrupted run, exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudpipe.errors import HistoryStoreError
from spark_apps.history import CONTEXT_FEATURES, MINUTE_MS, HistoryParams, SenderHistory
from spark_apps.stream.context import ALERT_START, BatchWindows, add_context, chain_alerts
from spark_apps.stream.history_store import HistoryStore
from tests.unit.spark_apps.stream.test_context import batch
from tests.unit.spark_apps.test_history import window

PARAMS = HistoryParams(half_life_minutes=30.0, max_idle_minutes=12.0)
BATCHES = 14


def stream(seed: int = 5) -> list[BatchWindows]:
    """Batches of closed windows as the aggregation emits them: 1-3 minutes per batch, in minute order."""
    rng = np.random.default_rng(seed)
    batches, minute = [], 0
    for _ in range(BATCHES):
        rows = []
        for _ in range(int(rng.integers(1, 4))):
            # early senders go quiet, so the history has senders to evict
            senders = [f"S{i}" for i in rng.choice(12, 4, replace=False)] if minute < 10 else \
                [f"S{6 + i}" for i in rng.choice(6, 3, replace=False)]
            rows += [window(s, minute, tx=int(rng.integers(1, 9)), amount=int(rng.integers(1, 10**5)),
                            receivers=tuple(int(r) for r in rng.choice(30, int(rng.integers(1, 4)), replace=False)),
                            first_s=float(rng.uniform(0, 30)), last_s=float(rng.uniform(30, 59.9)))
                     for s in senders]
            minute += 1
        batches.append(batch(rows))
    return batches


def process(history: SenderHistory, windows: BatchWindows) -> tuple[pd.DataFrame, np.ndarray, int | None]:
    """What the writer does between restore and commit (a fixed rule stands in for the model)."""
    real, prior = add_context(history, windows)
    scored = chain_alerts(history, real.assign(is_fraud=real["pair_tx_count"].to_numpy() >= 9), prior)
    return scored[[*CONTEXT_FEATURES, ALERT_START, "alert_tx"]], prior.slots, prior.newest_start


def state(history: SenderHistory) -> dict:
    table = history.export(history.live_slots()).sort_by("sender_account")
    return table.to_pydict()


def run(store: HistoryStore, batches: list[BatchWindows], first: int = 0):
    """Batches first.. as the writer runs them: restore on the first, then keep the state in memory."""
    history = store.restore(first)
    outputs = {}
    for batch_id in range(first, len(batches)):
        outputs[batch_id], slots, newest = process(history, batches[batch_id])
        store.commit(batch_id, history, slots, evict_before=newest)
    return history, outputs


@pytest.fixture(scope="module")
def batches() -> list[BatchWindows]:
    return stream()


@pytest.fixture(scope="module")
def reference(batches, tmp_path_factory):
    store = HistoryStore(tmp_path_factory.mktemp("ref"), snapshot_every=4, params=PARAMS)
    return run(store, batches)


@pytest.mark.parametrize("crash_in", range(BATCHES))
@pytest.mark.parametrize("point", ["before_commit", "after_commit", "torn_temp_file", "garbage_delta"])
def test_a_crash_anywhere_then_rerun_equals_the_uninterrupted_run(batches, reference, tmp_path, crash_in, point):
    store = HistoryStore(tmp_path, snapshot_every=4, params=PARAMS)
    history, _ = run(store, batches[:crash_in])
    _, slots, newest = process(history, batches[crash_in])  # the crashed attempt changes the in-memory state
    if point == "after_commit":  # sink and history written, Spark's commit not
        store.commit(crash_in, history, slots, evict_before=newest)
    elif point == "torn_temp_file":
        (tmp_path / f".delta-{crash_in:012d}.arrow.tmp999").write_bytes(b"ARROW1\x00partial")
    elif point == "garbage_delta":
        (tmp_path / f"delta-{crash_in:012d}.arrow").write_bytes(b"not arrow")
    # a new process: the state as of crash_in - 1 from the files, then the rest of the stream
    rerun, outputs = run(HistoryStore(tmp_path, snapshot_every=4, params=PARAMS), batches, first=crash_in)
    ref_history, ref_outputs = reference
    assert state(rerun) == state(ref_history)
    for batch_id, frame in outputs.items():
        pd.testing.assert_frame_equal(frame, ref_outputs[batch_id])


@pytest.mark.parametrize("batch_id", [0, 5, 8, BATCHES - 1])  # snapshot batches, deltas, the last one
def test_replaying_the_newest_batch_gives_the_same_features(batches, reference, tmp_path, batch_id):
    store = HistoryStore(tmp_path, snapshot_every=4, params=PARAMS)
    run(store, batches[:batch_id + 1])  # written and recorded; Spark runs it again (commit lost)
    replay, _, _ = process(store.restore(batch_id), batches[batch_id])
    pd.testing.assert_frame_equal(replay, reference[1][batch_id])
    again, _, _ = process(store.restore(batch_id), batches[batch_id])  # and again
    pd.testing.assert_frame_equal(again, reference[1][batch_id])


def test_restore_from_snapshot_and_deltas_is_exact_at_every_batch(batches, tmp_path):
    store = HistoryStore(tmp_path, snapshot_every=3, params=PARAMS)
    history = SenderHistory(PARAMS)
    for batch_id, windows in enumerate(batches):
        _, slots, newest = process(history, windows)
        store.commit(batch_id, history, slots, evict_before=newest)
        restored = HistoryStore(tmp_path, snapshot_every=3, params=PARAMS).restore(batch_id + 1)
        assert state(restored) == state(history)


def test_idle_senders_are_evicted_and_files_are_bounded(batches, tmp_path):
    store = HistoryStore(tmp_path, snapshot_every=3, params=PARAMS)
    history, _ = run(store, batches)
    newest = max(int(w.real["window_start"].max()) for w in batches)
    live = history.last_start[history.live_slots()]
    assert len(history) < 12  # senders 0..5 went quiet after minute 10 and are gone
    assert (newest - live <= PARAMS.max_idle_minutes * MINUTE_MS).all()
    assert len(history.slots([f"S{i}" for i in range(12)])) == 12  # freed slots are reused
    snapshots = [kind for kind, _ in store.files() if kind == "snapshot"]
    assert len(snapshots) <= 2 and len(store.files()) <= 2 + 2 * 3


def test_a_broken_file_of_a_committed_batch_is_an_error_naming_it(batches, tmp_path):
    store = HistoryStore(tmp_path, snapshot_every=100, params=PARAMS)
    run(store, batches[:4])
    broken = tmp_path / f"delta-{2:012d}.arrow"
    broken.write_bytes(b"truncated")
    with pytest.raises(HistoryStoreError, match=str(broken)):
        store.restore(4)

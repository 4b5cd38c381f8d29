"""kill -9 of the stream driver mid-batch, restart from the checkpoint: same alerts, metrics and sender
history as an uninterrupted run."""
from __future__ import annotations

import dataclasses

import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from tests.fixtures.crash import crash_and_recover, sqlite_batches, stable_alerts, stable_totals
from tests.fixtures.stream import (
    InProcessRun,
    assert_matches_input,
    publish_transactions,
    stored_alerts,
    stored_history,
)

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration]

COUNT = 2400
PER_TRIGGER = 300  # 8+ batches: the kill lands in one >= 2, between history snapshots and deltas


def test_kill_9_mid_batch_then_restart_equals_an_uninterrupted_run(spark, stream_config, topic, tmp_path):
    # small batches, and history snapshots every 3 of them, so the kill lands between snapshots and deltas
    config = dataclasses.replace(stream_config, spark=dataclasses.replace(
        stream_config.spark, max_records_per_trigger=PER_TRIGGER, history_snapshot_batches=3))
    # the same generated records on two topics: one for the crashed run, one for the uninterrupted run
    clean_topic = topic + "-clean"
    ensure_topics(config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1, clean_topic: 2})
    batches = publish_transactions(config, topic, count=COUNT)
    publish_transactions(config, clean_topic, count=COUNT)
    last_ms = max(int(b.event_time.max()) for b in batches)

    clean = dataclasses.replace(config, store=dataclasses.replace(config.store, sqlite_path=str(tmp_path / "clean.db")),
                                spark=dataclasses.replace(config.spark, checkpoint_dir=str(tmp_path / "clean-ck")))
    uninterrupted = InProcessRun(spark, clean, clean_topic)  # runs alongside the crashed one
    try:
        _, crashed_totals = crash_and_recover(config, topic, count=COUNT, last_ms=last_ms,
                                              log=tmp_path / "stream.log", written=sqlite_batches(config), timeout=300)
    except BaseException:
        uninterrupted.stop()
        raise
    clean_totals = uninterrupted.settle(COUNT, last_ms)
    assert crashed_totals["transactions"] + crashed_totals["late_records"] == COUNT
    assert_matches_input(spark, config, topic, crashed_totals)
    crashed_alerts = stored_alerts(config)
    crashed_history = stored_history(config)

    assert stable_totals(crashed_totals) == stable_totals(clean_totals)
    clean_alerts = stored_alerts(clean)
    assert clean_alerts and stable_alerts(crashed_alerts) == stable_alerts(clean_alerts)
    assert len(crashed_history["sender_account"]) > 1000  # of the input's 1,516 senders
    assert crashed_history == stored_history(clean)  # every sender's profile, exactly

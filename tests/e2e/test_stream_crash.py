"""kill -9 of the stream driver mid-batch, restart from the checkpoint: same alerts, metrics and sender
history as an uninterrupted run."""
from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics
from tests.e2e.test_stream_pipeline import assert_matches_input, close_windows_and_settle, run_until_settled
from tests.fixtures.stream import publish_transactions, stored_alerts, stored_history

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.integration]

COUNT = 6000
STABLE_ALERT_COLUMNS = ("tx_count", "total_amount_minor", "failed_count", "distinct_receivers", "max_amount_minor",
                        "features", "score", "cluster", "model_version", "explanation", "window_end")


def job_env(config) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": config.kafka.bootstrap_servers,
            "FRAUDPIPE_SCHEMA_REGISTRY__URL": config.schema_registry.url,
            "FRAUDPIPE_STORE__BACKEND": "sqlite",
            "FRAUDPIPE_STORE__SQLITE_PATH": config.store.sqlite_path,
            "FRAUDPIPE_MODEL__DIR": config.model.dir,
            "FRAUDPIPE_SPARK__CHECKPOINT_DIR": config.spark.checkpoint_dir,
            "FRAUDPIPE_SPARK__TRIGGER_SECONDS": str(config.spark.trigger_seconds),
            "FRAUDPIPE_SPARK__WATERMARK_SECONDS": str(config.spark.watermark_seconds),
            "FRAUDPIPE_SPARK__MAX_RECORDS_PER_TRIGGER": str(config.spark.max_records_per_trigger),
            "FRAUDPIPE_SPARK__KAFKA_SOURCE": config.spark.kafka_source,
            **({"FRAUDPIPE_SPARK__KAFKA_JARS_DIR": config.spark.kafka_jars_dir} if config.spark.kafka_jars_dir else {}),
            "FRAUDPIPE_SPARK__HISTORY_SNAPSHOT_BATCHES": str(config.spark.history_snapshot_batches)}


def start_job(config, topic: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "stream", "--topic", topic],
                            env=job_env(config), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own group: kill -9 reaches the JVM too


def batch_in_flight(config) -> int | None:
    """A batch >= 2 whose sink rows are (partly) written but which Spark has not committed yet."""
    checkpoint = Path(config.spark.checkpoint_dir)
    try:
        offsets = {int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit()}
        commits = {int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit()}
    except FileNotFoundError:
        return None
    open_batches = sorted(b for b in offsets - commits if b >= 2)
    if not open_batches or not Path(config.store.sqlite_path).exists():
        return None
    try:
        with sqlite3.connect(config.store.sqlite_path, timeout=1) as conn:
            written = {row[0] for row in conn.execute("SELECT DISTINCT batch_id FROM metrics")}
    except sqlite3.Error:
        return None
    hits = [b for b in open_batches if b in written]
    return hits[0] if hits else None


def test_kill_9_mid_batch_then_restart_equals_an_uninterrupted_run(spark, stream_config, topic, tmp_path):
    # small batches, and history snapshots every 3 of them, so the kill lands between snapshots and deltas
    config = dataclasses.replace(stream_config, spark=dataclasses.replace(
        stream_config.spark, max_records_per_trigger=800, history_snapshot_batches=3))
    # the same generated records on two topics: one for the crashed run, one for the uninterrupted run
    clean_topic = topic + "-clean"
    ensure_topics(config.kafka.bootstrap_servers, {contracts.STREAM_DLQ_TOPIC: 1, clean_topic: 2})
    batches = publish_transactions(config, topic, count=COUNT)
    publish_transactions(config, clean_topic, count=COUNT)
    last_ms = max(int(b.event_time.max()) for b in batches)
    log = tmp_path / "stream.log"

    job = start_job(config, topic, log)
    killed_in = None
    deadline = time.monotonic() + 300
    try:
        while killed_in is None and time.monotonic() < deadline and job.poll() is None:
            killed_in = batch_in_flight(config)
            if killed_in is None:
                time.sleep(0.002)
        assert killed_in is not None, f"no batch caught between sink write and commit; log:\n{log.read_text()[-3000:]}"
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert not (Path(config.spark.checkpoint_dir) / "commits" / str(killed_in)).exists()

    job = start_job(config, topic, log)
    try:
        crashed_totals = close_windows_and_settle(config, topic, COUNT, last_ms, alive=lambda: job.poll() is None,
                                                  timeout=300)
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
    assert crashed_totals["transactions"] + crashed_totals["late_records"] == COUNT
    assert_matches_input(spark, config, topic, crashed_totals)
    crashed_alerts = stored_alerts(config)
    crashed_history = stored_history(config)

    clean = dataclasses.replace(config, store=dataclasses.replace(config.store, sqlite_path=str(tmp_path / "clean.db")),
                                spark=dataclasses.replace(config.spark, checkpoint_dir=str(tmp_path / "clean-ck")))
    _, clean_totals = run_until_settled(spark, clean, clean_topic, COUNT, last_ms)
    ignore = ("latency_ms_sum",)  # wall-clock dependent
    assert {k: v for k, v in crashed_totals.items() if k not in ignore} == \
           {k: v for k, v in clean_totals.items() if k not in ignore}
    clean_alerts = stored_alerts(clean)
    assert set(crashed_alerts) == set(clean_alerts)
    assert len(crashed_history["sender_account"]) > 1000
    assert crashed_history == stored_history(clean)  # every sender's profile, exactly
    for key, alert in clean_alerts.items():
        assert {c: crashed_alerts[key][c] for c in STABLE_ALERT_COLUMNS} == {c: alert[c] for c in STABLE_ALERT_COLUMNS}

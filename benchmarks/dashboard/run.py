"""Dashboard API latency: p50/p95 of every JSON API over HTTP (waitress), SQLite store with
1M raw transactions and 100k alerts.

    .venv/bin/python benchmarks/dashboard/run.py [--requests 200] [--fresh]

The data set (24 hours: 1M transactions from 20k senders, 100k alerts, one metrics row
per 2-second micro-batch and minute, 50k labels, 20 model versions) is written once
through the Store port to .fraudpipe/bench/dashboard.db and reused; queries are anchored
to the data set's own clock so a reused file measures the same thing. Target: p95 <= 50 ms.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from fraudpipe.broker import free_port  # noqa: E402
from fraudpipe.config import Config, ConnectConfig, DashboardConfig, KafkaConfig, SchemaRegistryConfig, StoreConfig  # noqa: E402
from fraudpipe.store.sqlite import SqliteStore  # noqa: E402

MINUTE = 60_000
DAY_MINUTES = 24 * 60
TRANSACTIONS = 1_000_000
ALERTS = 100_000
SENDERS = 20_000
LABELS = 50_000
BATCHES_PER_MINUTE = 30  # a 2-second trigger
TARGET_P95_MS = 50.0
PATTERNS = ("card_testing", "account_takeover", "money_mule")


def build(path: Path, anchor: int) -> None:
    """Write the data set through the Store port, in batches."""
    rng = random.Random(8)
    store = SqliteStore(path)
    start = anchor - DAY_MINUTES * MINUTE
    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for i in range(TRANSACTIONS):
        sender = f"acct-{rng.randrange(SENDERS):05d}"
        batch.append({
            "transaction_id": f"tx-{i:08d}", "event_time": start + rng.randrange(DAY_MINUTES * MINUTE),
            "sender_account": sender, "receiver_account": f"acct-{rng.randrange(SENDERS):05d}",
            "amount_minor": rng.randrange(100, 500_000), "currency": "EUR", "transaction_type": "PURCHASE",
            "status": "APPROVED" if rng.random() > 0.02 else "DECLINED", "channel": "ONLINE",
        })
        if len(batch) == 50_000:
            store.upsert_transactions(batch)
            batch = []
    store.upsert_transactions(batch)
    print(f"  {TRANSACTIONS:,} transactions written in {time.perf_counter() - t0:.1f} s")
    explanation = json.dumps([{"feature": "failed_count", "value": 7, "normal": 0.1, "deviation": 6.2},
                              {"feature": "tx_count", "value": 14, "normal": 1.8, "deviation": 3.3}])
    features = json.dumps({"tx_count": 14, "failed_count": 7, "distinct_receivers": 9})
    keys: set[tuple[str, int]] = set()
    while len(keys) < ALERTS:
        keys.add((f"acct-{rng.randrange(SENDERS):05d}", start + rng.randrange(DAY_MINUTES) * MINUTE))
    alerts = [{
        "window_start": ws, "window_end": ws + MINUTE, "sender_account": s, "tx_count": 14, "total_amount_minor": 700_000,
        "failed_count": 7, "distinct_receivers": 9, "max_amount_minor": 90_000, "features": features,
        "score": round(rng.uniform(1.0, 10.0), 3), "cluster": 5, "model_version": "v-bench",
        "explanation": explanation, "created_at": ws + MINUTE + 1_500, "latency_ms": 1_500,
    } for s, ws in keys]
    for i in range(0, len(alerts), 20_000):
        store.upsert_alerts(alerts[i:i + 20_000])
    metrics = [{
        "minute": start + m * MINUTE, "batch_id": m * BATCHES_PER_MINUTE + b, "transactions": 23, "windows": 20,
        "flagged_windows": 2, "flagged_transactions": 3, "amount_normal_minor": 50_000, "amount_flagged_minor": 9_000,
        "failed_transactions": 1, "late_records": 0, "dlq_records": 0, "latency_ms_sum": 3_000, "latency_ms_max": 1_800,
        "updated_at": start + m * MINUTE + b * 2_000,
    } for m in range(DAY_MINUTES) for b in range(BATCHES_PER_MINUTE)]
    store.upsert_metrics(metrics)
    alert_list = sorted(keys)
    labels = []
    for i in range(LABELS):
        s, ws = alert_list[rng.randrange(len(alert_list))] if rng.random() < 0.8 else (f"acct-{rng.randrange(SENDERS):05d}", start + rng.randrange(DAY_MINUTES) * MINUTE)
        labels.append({"transaction_id": f"lab-{i:06d}", "pattern": PATTERNS[i % 3], "sender_account": s,
                       "event_time": ws + rng.randrange(MINUTE), "labeled_at": ws + MINUTE * rng.randrange(5, 60)})
    store.upsert_labels(labels)
    for v in range(20):
        centroids = [[rng.uniform(-2, 2) for _ in range(9)] for _ in range(8)]
        store.record_model({"version": f"v{v:04d}", "trained_at": start + v * 3_600_000, "path": f"models/v{v:04d}",
                            "metrics": json.dumps({"silhouette": 0.6, "f1": 0.9}),
                            "metadata": json.dumps({"feature_names": [f"f{i}" for i in range(9)], "centroids": centroids,
                                                    "fraud_clusters": [7]})})
    store.close()
    print(f"  data set written in {time.perf_counter() - t0:.1f} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def measure(session: requests.Session, base: str, make_path: Callable[[int], str], n: int) -> list[float]:
    timings = []
    for i in range(n):
        path = make_path(i)
        t = time.perf_counter()
        response = session.get(base + path, timeout=30)
        timings.append((time.perf_counter() - t) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per API (bounded: at most 2000)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the data set")
    args = parser.parse_args()
    n = max(10, min(args.requests, 2000))
    data_dir = ROOT / ".fraudpipe" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    db, meta_file = data_dir / "dashboard.db", data_dir / "dashboard.json"
    if args.fresh or not meta_file.exists() or not db.exists():
        for leftover in data_dir.glob("dashboard.db*"):
            leftover.unlink()
        anchor = int(time.time() * 1000)
        anchor -= anchor % MINUTE
        print(f"building the data set in {db} (once; --fresh rebuilds)")
        build(db, anchor)
        meta_file.write_text(json.dumps({"anchor": anchor}))
    anchor = json.loads(meta_file.read_text())["anchor"]

    from waitress import create_server

    from dashboard.app import create_app

    config = Config(
        kafka=KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        schema_registry=SchemaRegistryConfig(url=f"http://127.0.0.1:{free_port()}"),
        connect=ConnectConfig(url=f"http://127.0.0.1:{free_port()}"),
        store=StoreConfig(sqlite_path=str(db)),
        dashboard=DashboardConfig(probe_timeout_seconds=0.5),
    )
    server = create_server(create_app(config), host="127.0.0.1", port=free_port(), threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    rng = random.Random(1)
    day = f"since={anchor - DAY_MINUTES * MINUTE}&until={anchor + MINUTE}"
    hour = f"since={anchor - 59 * MINUTE}&until={anchor + MINUTE}"

    session = requests.Session()
    # cursors of deep pages, walked once up front
    cursors = []
    cursor = None
    for _ in range(20):
        body = session.get(f"{base}/api/alerts?{day}&limit=50" + (f"&cursor={cursor}" if cursor else "")).json()
        cursor = body["next_cursor"]
        cursors.append(cursor)
    apis: list[tuple[str, Callable[[int], str]]] = [
        ("health", lambda i: "/api/health"),
        ("overview (1 h)", lambda i: f"/api/overview?{hour}"),
        ("overview (24 h)", lambda i: f"/api/overview?{day}"),
        ("alerts (page 1)", lambda i: f"/api/alerts?{day}"),
        ("alerts (pages 2-21)", lambda i: f"/api/alerts?{day}&limit=50&cursor={cursors[i % len(cursors)]}"),
        ("alerts (min_score 9.5)", lambda i: f"/api/alerts?{day}&min_score=9.5"),
        ("alerts (sender)", lambda i: f"/api/alerts?{day}&sender=acct-{rng.randrange(SENDERS):05d}"),
        ("senders/<sender>", lambda i: f"/api/senders/acct-{rng.randrange(SENDERS):05d}?{day}"),
        ("models", lambda i: "/api/models"),
        ("quality (1000 labels)", lambda i: "/api/quality"),
        ("pipeline (probe cached 2 s)", lambda i: "/api/pipeline"),
    ]
    print(f"\n{n} requests per API over HTTP (waitress, 4 threads, keep-alive); target p95 <= {TARGET_P95_MS:.0f} ms")
    print(f"{'API':30} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    worst = 0.0
    for name, make_path in apis:
        measure(session, base, make_path, 5)  # warm-up: connection, statement cache, page cache
        timings = measure(session, base, make_path, n)
        p50, p95 = statistics.median(timings), percentile(timings, 95)
        worst = max(worst, p95)
        print(f"{name:30} {p50:8.2f} {p95:8.2f} {max(timings):8.2f}  {'ok' if p95 <= TARGET_P95_MS else 'MISSED'}")
    session.close()
    server.close()
    print(f"\nworst p95 {worst:.2f} ms; ratio to target {worst / TARGET_P95_MS:.2f}")


if __name__ == "__main__":
    main()

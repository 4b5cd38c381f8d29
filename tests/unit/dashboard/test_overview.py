"""The Overview's figures: a rate over full minutes, amounts with their currency, a data span never in the future."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time

import pytest

from dashboard.app import create_app
from dashboard.overview import EDGE_MINUTES, edge_trim
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.dashboard import MINUTE, fill_run, metrics_row


def now_ms() -> int:
    return int(time.time() * 1000)


def minutes(*counts: int, start: int = 1_000 * MINUTE) -> list[dict]:
    return [{"minute": start + i * MINUTE, "transactions": tx} for i, tx in enumerate(counts)]


@pytest.mark.parametrize("range_minutes", [60, 1440, 10080])  # per minute, 5-minute and 30-minute buckets
def test_transactions_per_minute_leaves_out_the_partial_minutes_of_a_run(dashboard_client, dashboard_store, range_minutes):
    run = fill_run(dashboard_store, now_ms=now_ms(), full_minutes=12, rate=12_000)
    body = dashboard_client.get(f"/api/overview?minutes={range_minutes}").get_json()
    summary = body["summary"]
    # 70 + 110 late records and 5,000 of a partial first minute would pull 15 minutes down to 10,012 / min
    assert summary["transactions_per_minute"] == 12_000
    assert summary["alerts_per_minute"] == pytest.approx(sum(2 + m % 2 for m in range(12)) / 12)
    assert summary["minutes_with_data"] == 15 and summary["full_minutes"] == 12
    assert body["totals"]["transactions"] == sum(row["transactions"] for row in run["rows"])  # totals keep every minute
    assert summary["data_since"] == run["first_minute"] and summary["data_until"] == run["last_minute"] + MINUTE


def test_a_run_that_stopped_mid_minute_and_a_dip_inside_a_run(dashboard_client, dashboard_store):
    last = now_ms() - now_ms() % MINUTE - MINUTE
    # 10 minutes at 6,000 / min, slowed to 1,500 for one minute in the middle, stopped 10 s into the last
    counts = [6_000] * 5 + [1_500] + [6_000] * 4 + [1_000]
    dashboard_store.upsert_metrics([metrics_row(last - (len(counts) - 1 - i) * MINUTE, i, transactions=tx, flagged=0)
                                    for i, tx in enumerate(counts)])
    summary = dashboard_client.get("/api/overview?minutes=60").get_json()["summary"]
    # the dip is traffic and stays in; the stopped minute at the end is partial and is left out
    assert summary["full_minutes"] == 10
    assert summary["transactions_per_minute"] == pytest.approx((9 * 6_000 + 1_500) / 10)


@pytest.mark.parametrize("counts, trimmed", [
    ((), ()),
    ((100, 100, 100), ()),
    ((5, 100, 100, 100, 100, 3), (5, 3)),
    ((5, 7, 100, 100, 100), (5, 7)),
    ((0, 0, 0), ()),  # no traffic: nothing is "partial" of nothing
    ((1, 100), (1,)),
    ((100, 1), (1,)),
])
def test_edge_trim(counts, trimmed):
    assert tuple(row["transactions"] for row in edge_trim(minutes(*counts))) == trimmed


def test_edge_trim_looks_only_at_the_edges():
    steady = [100] * 20
    quiet_start = minutes(*([1] * (EDGE_MINUTES + 2) + steady))
    assert len(edge_trim(quiet_start)) == EDGE_MINUTES  # at most EDGE_MINUTES at one end


def test_amounts_carry_the_configured_currency(dashboard_store, dashboard_config):
    traffic = dataclasses.replace(dashboard_config.producer.traffic, currency="EUR")
    config = dataclasses.replace(dashboard_config, producer=dataclasses.replace(dashboard_config.producer, traffic=traffic))
    client = create_app(config).test_client()
    fill_run(dashboard_store, now_ms=now_ms(), full_minutes=3)
    body = client.get("/api/overview").get_json()
    assert body["currency"] == "EUR"
    html = client.get("/").get_data(as_text=True)
    normal = f"{body['totals']['amount_normal_minor'] / 100:,.2f} EUR"
    assert re.search(r'id="amount-normal">' + re.escape(normal) + "<", html)
    assert re.search(r'id="amount-flagged">[\d,.]+ EUR<', html)


def test_data_span_ends_with_the_last_minute_and_never_after_now(dashboard_client, dashboard_store: SqliteStore):
    # a metrics row for the minute that is still open (a simulated clock runs ahead; a clock skew)
    dashboard_store.upsert_metrics([metrics_row(now_ms() - now_ms() % MINUTE, 1, transactions=100, flagged=0)])
    html = dashboard_client.get("/").get_data(as_text=True)
    served = now_ms()
    match = re.search(r"between (\S+ \S+) and (\S+ \S+) UTC", html)
    assert match, html
    until = dt.datetime.strptime(match.group(2), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
    assert until.timestamp() * 1000 <= served


def test_the_data_span_of_closed_minutes_is_their_first_start_and_last_end(dashboard_client, dashboard_store):
    run = fill_run(dashboard_store, now_ms=now_ms(), full_minutes=4)
    html = dashboard_client.get("/").get_data(as_text=True)
    stamp = lambda ms: dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    assert f"7 minute(s) with data between {stamp(run['first_minute'])} and {stamp(run['last_minute'] + MINUTE)} UTC" in html
    assert "rates over the 4 full one(s)" in html


def test_an_empty_range_says_so(dashboard_client):
    html = dashboard_client.get("/").get_data(as_text=True)
    assert "No data since" in html and 'id="tx-per-min">—<' in html

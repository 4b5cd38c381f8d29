"""Headless Chromium (Debian's package) against `fraudpipe dashboard` served by waitress.

The store is filled through the Store port with rows shaped as the pipeline writes them.
The tests check the Overview's figures against the store, that the Plotly charts drew the
data and drew it readably (no tick label outside its chart, no negative counts, the
average freshness drawn over the maximum), that the live refresh picks up a new alert
without a reload, and write a screenshot of every page to the test's output dir.
"""
from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.dashboard import MINUTE, DashboardProcess, alert, fill_run, fill_store

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
OVERVIEW_CHARTS = ("chart-volume", "chart-amounts", "chart-shares", "chart-latency", "chart-late")

# Tick labels and axis titles of a chart whose box reaches outside the chart's own SVG: clipped on screen.
CLIPPED_LABELS = """
const el = document.getElementById(arguments[0]);
const svg = el.querySelector('.main-svg').getBoundingClientRect();
return [...el.querySelectorAll('g.xtick text, g.ytick text, g.y2tick text, g.g-xtitle text, g.g-ytitle text, g.g-y2title text')]
  .filter((t) => { const r = t.getBoundingClientRect();
    return r.width > 0 && (r.left < svg.left - 1 || r.right > svg.right + 1 || r.top < svg.top - 1 || r.bottom > svg.bottom + 1); })
  .map((t) => t.textContent);
"""
TICKS = "return [...document.querySelectorAll('#' + arguments[0] + ' g.' + arguments[1] + 'tick text')].map((t) => t.textContent);"


@pytest.fixture()
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1700"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver: object, script: str, timeout: float = 30.0) -> object:
    """Poll a JS expression until it is truthy (bounded)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(f"return {script};"))


def points_drawn(driver: object, chart: str) -> int:
    """Data points Plotly drew as SVG in one chart: markers and bars."""
    return driver.execute_script(
        "return document.querySelectorAll(arguments[0] + ' g.points path').length;", f"#{chart}"
    )


def wait_for_charts(driver: object, *charts: str) -> None:
    for chart in charts:
        wait_for(driver, f"document.querySelector('#{chart} .main-svg') !== null && document.getElementById('{chart}').dataset.points")


def assert_readable(driver: object, chart: str, *, count_axes: tuple[str, ...] = ()) -> None:
    """No label of `chart` is clipped, and its count axes (y, y2) tick at zero or above."""
    assert driver.execute_script(CLIPPED_LABELS, chart) == [], f"{chart}: clipped labels"
    for axis in count_axes:
        ticks = driver.execute_script(TICKS, chart, axis)
        assert ticks, f"{chart}: no {axis} ticks"
        assert not [t for t in ticks if t.startswith(("−", "-"))], f"{chart}: negative {axis} ticks {ticks}"
        # round steps: a right axis synced to the left one's grid ticked 3.391, 3.873, 4.355
        assert not [t for t in ticks if len(t.rpartition(".")[2]) > 2 and "." in t], f"{chart}: odd {axis} ticks {ticks}"


def text(driver: object, selector: str) -> str:
    """The rendered text of the first element matching `selector`, read in one script: the live refresh
    replaces sections every second here, so an element found first and read later can be gone."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;", selector)


def card(driver: object, element_id: str) -> str:
    return text(driver, f"#{element_id}")


def screenshot(driver: object, path: Path) -> None:
    """The whole page, not only the window: the window grows to the page's height for the shot."""
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight);")
    driver.set_window_size(1400, max(900, min(int(height) + 140, 6000)))
    time.sleep(0.3)  # Plotly's responsive charts redraw on the resize; nothing is asserted on this pause
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1700)


def utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def test_overview_figures_match_the_store(browser, dashboard_store: SqliteStore, tmp_path: Path, output_dir: Path):
    now = int(time.time() * 1000)
    run = fill_run(dashboard_store, now_ms=now, full_minutes=20, rate=12_000)
    # what the store holds, read through the Store port: the witness the page is checked against
    minutes = dashboard_store.metrics_by_minute(since_ms=now - 60 * MINUTE, until_ms=now + MINUTE)
    totals = {c: sum(m[c] for m in minutes) for c in minutes[0] if c != "minute"}
    full = [m for m in minutes if m["minute"] not in run["ramp_minutes"]]
    with DashboardProcess(dashboard_store.path, tmp_path / "dashboard.log") as server:
        browser.get(f"{server.url}/?minutes=60")
        wait_for_charts(browser, *OVERVIEW_CHARTS)
        assert card(browser, "tx-per-min") == f"{sum(m['transactions'] for m in full) / len(full):,.1f}" == "12,000.0"
        assert card(browser, "alerts-per-min") == f"{sum(m['flagged_windows'] for m in full) / len(full):,.2f}"
        assert card(browser, "flagged-share") == f"{100 * totals['flagged_transactions'] / totals['transactions']:.2f} %"
        assert card(browser, "failed-share") == f"{100 * totals['failed_transactions'] / totals['transactions']:.2f} %"
        assert card(browser, "amount-normal") == f"{totals['amount_normal_minor'] / 100:,.2f} USD"
        assert card(browser, "amount-flagged") == f"{totals['amount_flagged_minor'] / 100:,.2f} USD"
        latency_max = max(m["latency_ms_max"] for m in minutes)
        assert card(browser, "freshness") == f"{totals['latency_ms_sum'] / totals['flagged_windows']:,.0f} / {latency_max:,} ms"
        assert card(browser, "late-dlq") == f"{totals['late_records']:,} · {totals['dlq_records']:,}"
        span = card(browser, "data-span")
        assert f"{len(minutes)} minute(s) with data between {utc(minutes[0]['minute'])} and {utc(minutes[-1]['minute'] + MINUTE)} UTC" in span
        assert f"rates over the {len(full)} full one(s)" in span

        assert points_drawn(browser, "chart-volume") == 2 * len(minutes)  # a marker per minute on both lines
        assert points_drawn(browser, "chart-amounts") == 2 * len(minutes)
        assert "USD / min" in text(browser, "#chart-amounts")
        assert_readable(browser, "chart-volume", count_axes=("y", "y2"))
        for chart in ("chart-amounts", "chart-late", "chart-latency"):
            assert_readable(browser, chart, count_axes=("y",))
        assert_readable(browser, "chart-shares")
        # the average is drawn last, over the maximum's band, and thicker: never hidden behind it
        traces = browser.execute_script(
            "return [...document.querySelectorAll('#chart-latency g.scatterlayer g.trace')].map((g) => "
            "Number.parseFloat(getComputedStyle(g.querySelector('path.js-line')).strokeWidth));")
        names = browser.execute_script("return document.getElementById('chart-latency').data.map((t) => t.name);")
        assert names == ["max", "avg"] and traces[1] > traces[0]
        screenshot(browser, output_dir / "overview.png")

        # the ramp minutes alone: transactions, no alert yet; the alerts axis must not go below zero
        browser.get(f"{server.url}/?since={run['first_minute']}&until={run['first_full']}")
        wait_for_charts(browser, *OVERVIEW_CHARTS)
        assert_readable(browser, "chart-volume", count_axes=("y", "y2"))
        for chart in ("chart-amounts", "chart-late", "chart-latency"):
            assert_readable(browser, chart, count_axes=("y",))
        assert browser.execute_script(TICKS, "chart-volume", "y2")[0] == "0"
        assert "no alerts in this range" in text(browser, "#chart-latency")
        screenshot(browser, output_dir / "overview-no-alerts.png")
    for name in ("overview.png", "overview-no-alerts.png"):
        assert (output_dir / name).stat().st_size > 10_000


def test_every_page_renders_its_charts_with_data(browser, dashboard_store: SqliteStore, tmp_path: Path, output_dir: Path):
    now = int(time.time() * 1000)
    facts = fill_store(dashboard_store, now_ms=now)
    with DashboardProcess(dashboard_store.path, tmp_path / "dashboard.log") as server:
        browser.get(f"{server.url}/?minutes=60")
        wait_for_charts(browser, *OVERVIEW_CHARTS)
        for chart in OVERVIEW_CHARTS:
            assert int(browser.execute_script(f"return document.getElementById('{chart}').dataset.points;")) > 0
        # 30 minutes, two line traces with markers: every minute drew a marker
        assert points_drawn(browser, "chart-volume") == 2 * 30
        assert points_drawn(browser, "chart-amounts") == 2 * 30  # normal and flagged bars per minute
        assert "transactions / min" in text(browser, "#chart-volume")
        assert card(browser, "tx-per-min") not in ("", "—")

        browser.get(f"{server.url}/alerts?minutes=60")
        wait_for_charts(browser, "chart-scores")
        assert int(browser.execute_script("return document.getElementById('chart-scores').dataset.points;")) == facts["alerts"]
        assert points_drawn(browser, "chart-scores") == facts["alerts"]
        rows = browser.execute_script("return [...document.querySelectorAll('#alerts-table tbody tr')].map((r) => r.innerText);")
        assert len(rows) == facts["alerts"]
        # the reasons column states why in words, not feature names
        assert "failed or declined transactions" in rows[0] and "v20261121-0001" in rows[0] and "900.00 USD" in rows[0]

        # the live refresh (every second here) shows a new alert without reloading the page
        newest = now - now % 60_000
        dashboard_store.upsert_alerts([alert("live-sender-9", newest, score=9.9)])
        wait_for(browser, "document.querySelectorAll('#alerts-table tbody tr').length === %d" % (facts["alerts"] + 1), timeout=20)
        assert "live-sender-9" in text(browser, "#alerts-table tbody tr")
        wait_for(browser, "Number(document.getElementById('chart-scores').dataset.points) === %d" % (facts["alerts"] + 1), timeout=20)
        assert_readable(browser, "chart-scores")
        screenshot(browser, output_dir / "alerts.png")

        browser.get(f"{server.url}/senders/{facts['fraud_sender']}")
        wait_for_charts(browser, "chart-windows", "chart-transactions")
        assert_readable(browser, "chart-windows", count_axes=("y", "y2"))
        assert_readable(browser, "chart-transactions")
        screenshot(browser, output_dir / "sender.png")

        browser.get(f"{server.url}/model")
        wait_for_charts(browser, "chart-centroids")
        assert browser.execute_script("return document.getElementById('chart-centroids').data[0].z.length;") == 176
        assert browser.execute_script(TICKS, "chart-centroids", "y") == ["normal (16)", "tail (128)", "fraud (32)"]
        assert_readable(browser, "chart-centroids")
        assert text(browser, "#cluster-groups").count("\n") == 3  # header + three groups
        screenshot(browser, output_dir / "model.png")

        browser.get(f"{server.url}/quality")
        wait_for_charts(browser, "chart-quality")
        assert_readable(browser, "chart-quality")
        assert card(browser, "precision") == "66.67 %"
        screenshot(browser, output_dir / "quality.png")

        browser.get(f"{server.url}/pipeline")
        wait_for(browser, "document.getElementById('down-components') !== null")
        screenshot(browser, output_dir / "pipeline.png")
    for name in ("alerts", "sender", "model", "quality", "pipeline"):
        assert (output_dir / f"{name}.png").stat().st_size > 10_000


def test_an_empty_store_draws_notes_not_made_up_axes(browser, dashboard_store: SqliteStore, tmp_path: Path, output_dir: Path):
    with DashboardProcess(dashboard_store.path, tmp_path / "dashboard.log") as server:
        browser.get(f"{server.url}/")
        wait_for_charts(browser, *OVERVIEW_CHARTS)
        for chart in OVERVIEW_CHARTS:
            # Plotly's default axes for no data tick -1 … 6 (and 0 … 400 % for shares)
            assert browser.execute_script(TICKS, chart, "x") == [] and browser.execute_script(TICKS, chart, "y") == []
            assert "no data in this range" in text(browser, f"#{chart}")
        assert card(browser, "tx-per-min") == "—" and card(browser, "amount-normal") == "0.00 USD"
        screenshot(browser, output_dir / "overview-empty.png")
        browser.get(f"{server.url}/model")
        wait_for_charts(browser, "chart-centroids")
        assert "no model version yet" in text(browser, "#chart-centroids")
        screenshot(browser, output_dir / "model-empty.png")

"""Headless Chromium (Debian's package) against `fraudpipe dashboard` served by waitress.

The store is filled through the Store port with rows shaped as the pipeline writes them;
the test checks that the Plotly charts drew the data (in the DOM), that the live refresh
picks up a new alert without a reload, and writes screenshots to the test's output dir.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.dashboard import DashboardProcess, alert, fill_store

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


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


def test_overview_and_alerts_render_charts_with_data(browser, dashboard_store: SqliteStore, tmp_path: Path, output_dir: Path):
    now = int(time.time() * 1000)
    facts = fill_store(dashboard_store, now_ms=now)
    with DashboardProcess(dashboard_store.path, tmp_path / "dashboard.log") as server:
        browser.get(f"{server.url}/?minutes=60")
        wait_for(browser, "document.querySelector('#chart-volume .main-svg') !== null")
        for chart in ("chart-volume", "chart-amounts", "chart-shares", "chart-latency", "chart-late"):
            assert int(wait_for(browser, f"document.getElementById('{chart}').dataset.points")) > 0
        # 30 minutes, two line traces with markers: every minute drew a marker
        assert points_drawn(browser, "chart-volume") == 2 * 30
        assert points_drawn(browser, "chart-amounts") == 2 * 30  # normal and flagged bars per minute
        assert "transactions / min" in browser.find_element("css selector", "#chart-volume").text
        assert browser.find_element("id", "tx-per-min").text not in ("", "—")
        browser.save_screenshot(str(output_dir / "overview.png"))

        browser.get(f"{server.url}/alerts")
        wait_for(browser, "document.querySelector('#chart-scores .main-svg') !== null")
        assert int(wait_for(browser, "document.getElementById('chart-scores').dataset.points")) == facts["alerts"]
        assert points_drawn(browser, "chart-scores") == facts["alerts"]
        rows = browser.find_elements("css selector", "#alerts-table tbody tr")
        assert len(rows) == facts["alerts"]
        assert "failed_count" in rows[0].text and "v20261121-0001" in rows[0].text

        # the live refresh (every second here) shows a new alert without reloading the page
        newest = now - now % 60_000
        dashboard_store.upsert_alerts([alert("live-sender-9", newest, score=9.9)])
        wait_for(browser, "document.querySelectorAll('#alerts-table tbody tr').length === %d" % (facts["alerts"] + 1), timeout=20)
        assert "live-sender-9" in browser.find_element("css selector", "#alerts-table tbody tr").text
        wait_for(browser, "Number(document.getElementById('chart-scores').dataset.points) === %d" % (facts["alerts"] + 1), timeout=20)
        browser.save_screenshot(str(output_dir / "alerts.png"))
    assert (output_dir / "overview.png").stat().st_size > 10_000
    assert (output_dir / "alerts.png").stat().st_size > 10_000

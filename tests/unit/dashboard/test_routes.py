"""Every page and API route through Flask's test client, on an empty and on a filled store."""
from __future__ import annotations

import json
import re
import time

import pytest

from fraudpipe.store.sqlite import SqliteStore
from dashboard.app import create_app
from tests.fixtures.dashboard import MINUTE, alert, dashboard_test_config, fill_store, model_row

PAGES = ["/", "/alerts", "/senders/acct-1", "/model", "/quality", "/pipeline"]
APIS = ["/api/health", "/api/overview", "/api/alerts", "/api/senders/acct-1", "/api/models", "/api/quality", "/api/pipeline"]


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture()
def filled(dashboard_store: SqliteStore) -> dict:
    return fill_store(dashboard_store, now_ms=now_ms())


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_on_an_empty_store(dashboard_client, path: str):
    response = dashboard_client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/vendor/plotly.min.js" in html and 'id="page-data"' in html
    assert "cdn" not in html.lower() and "https://" not in html  # every asset is served locally


@pytest.mark.parametrize("path", APIS)
def test_apis_answer_json_on_an_empty_store(dashboard_client, path: str):
    response = dashboard_client.get(path)
    assert response.status_code == 200 and response.is_json


def test_empty_store_payloads(dashboard_client):
    overview = dashboard_client.get("/api/overview").get_json()
    assert overview["series"] == [] and overview["totals"]["transactions"] == 0
    assert overview["summary"]["flagged_share"] is None
    assert dashboard_client.get("/api/alerts").get_json()["alerts"] == []
    assert dashboard_client.get("/api/models").get_json() == {"current": None, "models": []}
    quality = dashboard_client.get("/api/quality").get_json()
    assert quality["labels_considered"] == 0 and quality["overall"]["precision"] is None
    sender = dashboard_client.get("/api/senders/nobody").get_json()
    assert sender["transactions"] == [] and sender["windows"] == []
    assert "No alerts in this range." in dashboard_client.get("/alerts").get_data(as_text=True)
    assert "No labels have arrived yet." in dashboard_client.get("/quality").get_data(as_text=True)


def test_overview_sums_batches_per_minute(dashboard_client, filled):
    body = dashboard_client.get("/api/overview?minutes=60").get_json()
    assert len(body["series"]) == 30
    first = body["series"][0]
    assert first["minute"] == filled["start"]
    assert first["transactions"] == 120 + 80 and first["alerts"] == 0 + 1  # two batches summed
    assert body["totals"]["transactions"] == sum(120 + m + 80 for m in range(30))
    summary = body["summary"]
    assert summary["flagged_share"] == pytest.approx(body["totals"]["flagged_transactions"] / body["totals"]["transactions"])
    assert summary["latency_ms_avg"] == 1_800 and summary["latency_ms_max"] == 2_400
    short = dashboard_client.get("/api/overview?minutes=5").get_json()
    assert len(short["series"]) < len(body["series"])
    html = dashboard_client.get("/?minutes=60").get_data(as_text=True)
    assert 'id="chart-volume"' in html and 'data-live="summary"' in html


def test_overview_of_a_long_range_sums_whole_minutes_into_buckets(dashboard_client, filled):
    minutes = dashboard_client.get("/api/overview?minutes=60").get_json()
    day = dashboard_client.get("/api/overview?minutes=1440").get_json()
    assert minutes["bucket_minutes"] == 1 and day["bucket_minutes"] == 5
    assert day["totals"] == minutes["totals"] and day["summary"] == minutes["summary"]  # exact, not sampled
    by_minute = {row["minute"]: row for row in minutes["series"]}
    assert len(day["series"]) == len({m - m % (5 * MINUTE) for m in by_minute})
    for bucket in day["series"]:
        assert bucket["minute"] % (5 * MINUTE) == 0
        inside = [row for m, row in by_minute.items() if bucket["minute"] <= m < bucket["minute"] + 5 * MINUTE]
        assert bucket["transactions"] == sum(row["transactions"] for row in inside)
        assert bucket["alerts"] == sum(row["alerts"] for row in inside)
        assert bucket["latency_ms_max"] == max(row["latency_ms_max"] for row in inside)
    week = dashboard_client.get("/api/overview?minutes=10080").get_json()
    assert week["bucket_minutes"] == 30 and sum(b["transactions"] for b in week["series"]) == minutes["totals"]["transactions"]


def test_alerts_newest_first_with_explanation_and_model_version(dashboard_client, filled):
    body = dashboard_client.get("/api/alerts").get_json()
    starts = [a["window_start"] for a in body["alerts"]]
    assert len(starts) == filled["alerts"] and starts == sorted(starts, reverse=True)
    first = body["alerts"][0]
    assert first["model_version"] == "v20261121-0001"
    assert first["explanation"][0]["feature"] == "failed_count" and first["explanation"][0]["value"] == 7
    assert first["features"]["tx_count"] == 12 and "day" not in first
    html = dashboard_client.get("/alerts").get_data(as_text=True).split('id="page-data"')[0]  # the visible page
    assert "v20261121-0001" in html and 'id="alerts-table"' in html
    # the reasons' sentences are shown, strongest first, not feature names and sigma
    assert html.count("7 failed or declined transactions; higher than 99.8% of normal windows") == filled["alerts"]
    assert "€900.00 sent in the minute — 19x this sender&#39;s typical €48.00" in html and "σ" not in html
    assert html.index("7 failed or declined") < html.index("€900.00 sent")


def test_an_alert_page_shows_its_reasons_and_its_models_threshold(dashboard_client, dashboard_store, filled):
    model = model_row("v20261121-0001", filled["start"] - 3_600_000, k=5)
    metadata = {**json.loads(model["metadata"]), "score_threshold": 0.612,
                "population_profile": {"currency": "EUR", "windows": 41_234, "levels": [], "quantiles": {}}}
    dashboard_store.record_model({**model, "metadata": json.dumps(metadata)})
    sender, start = filled["fraud_sender"], filled["fraud_windows"][1]
    row = alert(sender, start, score=4.5)
    row["features"] = json.dumps({"tx_count": 12, "total_amount_minor": 90_000, "failed_count": 7})
    dashboard_store.upsert_alerts([row])  # features as the stream writes them (FEATURE_NAMES)
    body = dashboard_client.get(f"/api/alerts/{sender}/{start}").get_json()
    assert body["alert"]["score"] == 4.5 and body["model"]["score_threshold"] == 0.612
    assert body["model"]["currency"] == "EUR" and body["alert"]["score"] >= body["model"]["score_threshold"]
    assert [r["feature"] for r in body["alert"]["explanation"]] == ["failed_count", "total_amount_minor", "tx_count"]
    html = dashboard_client.get(f"/alerts/{sender}/{start}").get_data(as_text=True)
    assert "at or above the threshold <b>0.612</b>" in html and "41,234 normal training windows" in html
    assert "7 failed or declined transactions; higher than 99.8% of normal windows" in html
    # money in the model's currency, never the raw minor units; matched as a standalone number, since
    # the page's links hold now-based epoch ms that may contain it (CI met 1796052900000)
    visible = html.split('id="page-data"')[0]
    assert "900.00 EUR" in html and not re.search(r"(?<!\d)90000(?!\d)", visible)
    listing = dashboard_client.get("/alerts").get_data(as_text=True)
    assert f'href="/alerts/{sender}/{start}"' in listing  # each alert links to its page


def test_an_alert_page_of_an_unknown_window_is_404_and_a_bad_one_400(dashboard_client, filled):
    missing = dashboard_client.get(f"/api/alerts/{filled['fraud_sender']}/{filled['false_positive']}")
    assert missing.status_code == 404 and "no alert" in missing.get_json()["message"]
    assert dashboard_client.get("/alerts/acct-1/12:00").status_code == 400
    assert dashboard_client.get(f"/alerts/acct-3/{filled['false_positive']}").status_code == 200


def test_alerts_written_before_reasons_existed_still_render(dashboard_client, dashboard_store, filled):
    old = alert("acct-4", filled["start"], score=2.0)
    old["explanation"] = json.dumps([{"feature": "failed_count", "value": 7, "normal": 0.1, "deviation": 6.2}])
    empty = alert("acct-2", filled["start"], score=2.0)
    empty["explanation"] = "[]"
    dashboard_store.upsert_alerts([old, empty])
    html = dashboard_client.get("/alerts").get_data(as_text=True)
    assert "<b>failed_count</b> 7" in html and "no single feature is unusual" in html


def test_alerts_default_to_the_overviews_range(dashboard_store):
    """Both pages show the same span by default: dashboard.default_range_minutes (here 15)."""
    client = create_app(dashboard_test_config(dashboard_store.path, default_range_minutes=15)).test_client()
    overview, alerts = client.get("/api/overview").get_json()["range"], client.get("/api/alerts").get_json()["range"]
    assert overview["until"] - overview["since"] == alerts["until"] - alerts["since"] == 15 * MINUTE
    html = client.get("/alerts").get_data(as_text=True)
    assert re.search(r'<option value="15"\s+selected>', html)


def test_alerts_filters(dashboard_client, filled):
    by_sender = dashboard_client.get(f"/api/alerts?sender={filled['fraud_sender']}").get_json()["alerts"]
    assert {a["sender_account"] for a in by_sender} == {filled["fraud_sender"]} and len(by_sender) == 2
    high = dashboard_client.get("/api/alerts?min_score=4").get_json()["alerts"]
    assert [a["score"] for a in high] == [4.5]
    fp = filled["false_positive"]
    ranged = dashboard_client.get(f"/api/alerts?since={fp}&until={fp + MINUTE}").get_json()["alerts"]
    assert [(a["sender_account"], a["window_start"]) for a in ranged] == [("acct-3", fp)]
    sender_high = dashboard_client.get(f"/api/alerts?sender={filled['fraud_sender']}&min_score=4").get_json()["alerts"]
    assert [a["score"] for a in sender_high] == [4.5]


@pytest.mark.parametrize("sender", [None, "fraud-1"])
def test_alerts_pagination_walks_every_alert_once(dashboard_client, filled, sender):
    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "") + (f"&sender={sender}" if sender else "")
        body = dashboard_client.get(f"/api/alerts?{query}").get_json()
        seen += [(a["sender_account"], a["window_start"]) for a in body["alerts"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = 2 if sender else filled["alerts"]
    assert len(seen) == len(set(seen)) == expected and pages == expected
    first = dashboard_client.get("/alerts?limit=1").get_data(as_text=True)
    assert 'id="next-page"' in first and 'data-live-refresh="true"' in first
    cursor = dashboard_client.get("/api/alerts?limit=1").get_json()["next_cursor"]
    older = dashboard_client.get(f"/alerts?limit=1&cursor={cursor}").get_data(as_text=True)
    assert 'data-live-refresh="false"' in older  # an older page stays put while the reader looks at it


def test_sender_page_windows_and_transactions(dashboard_client, filled):
    body = dashboard_client.get(f"/api/senders/{filled['fraud_sender']}").get_json()
    assert len(body["transactions"]) == 36 and len(body["alerts"]) == 2
    flagged = [w for w in body["windows"] if w["flagged"]]
    assert [w["window_start"] for w in flagged] == filled["fraud_windows"][:2]
    assert all(w["tx_count"] == 12 and w["failed_count"] == 6 for w in body["windows"])
    html = dashboard_client.get(f"/senders/{filled['fraud_sender']}").get_data(as_text=True)
    assert 'id="sender-transactions"' in html and "chart-windows" in html


def test_sender_form_redirects_to_the_sender_page(dashboard_client):
    response = dashboard_client.get("/senders?sender=acct-1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/senders/acct-1")


def test_models_newest_first_with_metrics_and_centroids(dashboard_client, filled):
    body = dashboard_client.get("/api/models").get_json()
    assert body["current"] == "v20261121-0001"
    assert [m["version"] for m in body["models"]] == ["v20261121-0001", "v20261120-0001"]
    current, older = body["models"]
    assert len(current["centroids"]) == 16 + 128 + 32 and len(current["fraud_clusters"]) == 33
    assert [(g["name"], g["clusters"]) for g in current["groups"]] == [("normal", 16), ("tail", 128), ("fraud", 32)]
    assert current["metrics"]["window"]["f1"] == current["evaluations"][0]["levels"][0]["f1"] == 0.96
    assert older["metrics"]["f1"] == 0.899 and older["evaluations"] == [] and older["other_metrics"]["f1"] == 0.899
    html = dashboard_client.get("/model").get_data(as_text=True)
    assert 'id="cluster-groups"' in html and 'class="eval-levels"' in html and "chart-centroids" in html


def test_quality_precision_recall_per_pattern(dashboard_client, filled):
    body = dashboard_client.get("/api/quality").get_json()
    overall = body["overall"]
    # 4 labelled windows (3 card_testing, 1 money_mule); 2 detected; 3 alerts in span, 1 false positive
    assert (overall["windows"], overall["detected"], overall["alerts"], overall["false_positives"]) == (4, 2, 3, 1)
    assert overall["precision"] == pytest.approx(2 / 3) and overall["recall"] == pytest.approx(0.5)
    patterns = {p["pattern"]: p for p in body["patterns"]}
    assert patterns["card_testing"]["recall"] == pytest.approx(2 / 3)
    assert patterns["money_mule"]["recall"] == 0 and patterns["money_mule"]["f1"] == 0
    assert 'id="quality-patterns"' in dashboard_client.get("/quality").get_data(as_text=True)


def test_pipeline_names_every_component_that_is_down(dashboard_client):
    body = dashboard_client.get("/api/pipeline").get_json()
    assert set(body["down"]) == {"schema registry", "kafka connect", "kafka", "stream job"}
    assert body["stream"]["status"] == "not running"
    html = dashboard_client.get("/pipeline").get_data(as_text=True)
    for name in ("schema registry is down", "kafka connect is down", "kafka is down", "stream job:"):
        assert name in html


def test_vendored_plotly_is_served_locally(dashboard_client):
    response = dashboard_client.get("/vendor/plotly.min.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert b"plotly" in response.get_data()[:2000].lower()
    response.close()
    assert dashboard_client.get("/static/dashboard.js").status_code == 200


BAD = [
    ("/api/overview?minutes=0", "minutes"),
    ("/api/overview?minutes=99999999", "minutes"),
    ("/api/overview?since=tomorrow", "since"),
    ("/api/overview?since=2000&until=1000", "before"),
    ("/api/overview?minuts=5", "minuts"),
    ("/api/alerts?min_score=high", "min_score"),
    ("/api/alerts?min_score=nan", "min_score"),
    ("/api/alerts?limit=0", "limit"),
    ("/api/alerts?limit=100000", "limit"),
    ("/api/alerts?limit=-1", "limit"),
    ("/api/alerts?sender=%3Cscript%3E", "sender"),
    ("/api/alerts?cursor=garbage!", "cursor"),
    ("/api/alerts?since=0&until=99999999999999", "range"),
    ("/api/senders/a%20b", "sender"),
    ("/api/senders/acct-1?minutes=x", "minutes"),
    ("/api/models?limit=1000", "limit"),
    ("/api/quality?labels=abc", "labels"),
    ("/api/quality?labels=5000", "labels"),
    ("/api/pipeline?x=1", "'x'"),
]


@pytest.mark.parametrize("path, word", BAD)
def test_bad_api_parameters_are_400_with_a_message(dashboard_client, path: str, word: str):
    response = dashboard_client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error_code"] == 400 and word in body["message"]


@pytest.mark.parametrize("path", ["/?minutes=-3", "/alerts?min_score=x", "/senders/%3Cx%3E", "/model?limit=a",
                                  "/quality?labels=0", "/pipeline?x=1", "/senders?sender="])
def test_bad_page_parameters_are_an_html_400(dashboard_client, path: str):
    response = dashboard_client.get(path)
    assert response.status_code == 400
    assert 'id="error-message"' in response.get_data(as_text=True)


def test_unknown_routes_and_methods(dashboard_client):
    assert dashboard_client.get("/api/nope").get_json()["error_code"] == 404
    response = dashboard_client.post("/api/alerts")
    assert response.status_code == 405 and response.get_json()["error_code"] == 405
    assert dashboard_client.get("/nope").status_code == 404

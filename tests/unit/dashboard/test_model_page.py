"""The Model page: version, training data, evaluation tables, cluster groups and sizes; never a raw dict."""
from __future__ import annotations

import json

import pytest

from dashboard.models import cluster_groups, evaluation_sections
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.dashboard import evaluation_report, html_table, html_tables, model_row, trained_model_row, visible_text

TRAINED = 1_795_248_000_000  # 2026-11-21 08:00:00 UTC


@pytest.fixture()
def page(dashboard_client, dashboard_store: SqliteStore):
    """The Model page with an older version (flat figures, 4 clusters) and a current one as `fraudpipe train` writes it."""
    dashboard_store.record_model(model_row("v20261120-0001", TRAINED - 86_400_000))
    dashboard_store.record_model(trained_model_row("v20261121-0001", TRAINED))
    return dashboard_client.get("/model").get_data(as_text=True)


def test_version_when_and_on_what_data(page):
    assert '<b id="current-version">v20261121-0001</b>, trained 2026-11-21 08:00:00 UTC' in page
    assert "a window is flagged when its score reaches <b>0.610</b>" in page
    rows = html_table(page, id="model-data")
    data = dict(rows)
    assert [key for key, _ in rows][:2] == ["first window", "last window"]  # stored with sorted keys, shown in reading order
    assert data == {"first window": "2026-11-21 06:00:00", "last window": "2026-11-21 07:23:00", "transactions": "1,000,123",
                    "windows": "200,480", "train windows": "160,384", "test windows": "40,096", "labelled": "yes"}


def test_evaluation_figures_are_tables(page):
    report = evaluation_report(0.956)
    levels = html_table(page, class_="eval-levels")
    assert levels == [["", "precision", "recall", "F1"],
                      ["windows", "0.960", "0.960", "0.960"],  # 120 of 125 fraud windows, 5 false alarms
                      ["transactions", "0.951", "0.962", "0.956"]]
    windows = [rows for attrs, rows in html_tables(page) if attrs.get("data-level") == "window"]
    c = report["window"]["confusion"]
    assert windows == [[["", "flagged", "not flagged"], ["fraud", str(c["tp"]), str(c["fn"])], ["normal", str(c["fp"]), f"{c['tn']:,}"]]]
    transactions = [rows for attrs, rows in html_tables(page) if attrs.get("data-level") == "transaction"]
    assert transactions[0][1:] == [["fraud", "2,405", "95"], ["normal", "124", "997,376"]]
    patterns = html_table(page, class_="per-pattern")
    assert patterns == [["pattern", "windows", "window recall", "transactions", "transaction recall"],
                        ["account_takeover", "31", "0.935", "104", "0.942"], ["card_testing", "38", "1.000", "1,021", "1.000"]]


def test_cluster_groups_with_their_sizes_and_no_centroid_table(page):
    groups = html_table(page, id="cluster-groups")
    assert groups == [["group", "clusters", "centroids", "train windows", "clusters that flag"],
                      ["normal", "16", "#0–15", "32,000", "0"],
                      ["tail", "128", "#16–143", "2,560", "1"],  # fixture: tail cluster #19 is mostly fraud
                      ["fraud", "32", "#144–175", "128", "32"]]
    assert 'id="centroids"' not in page
    assert sum(len(rows) for _, rows in html_tables(page)) < 40  # tables a person reads, not 176 centroid rows
    typical = html_table(page, id="typical-windows")
    assert [row[0] for row in typical] == ["group", "normal", "tail", "fraud"]
    assert typical[0][1:4] == ["tx count", "total amount", "distinct receivers"]
    assert all(cell.endswith(" USD") for row in typical[1:] for cell in (row[2], row[4], row[5], row[7]))


def test_no_raw_python_or_json_dicts_on_the_page(page):
    text = visible_text(page)
    assert "{'" not in text and '{"' not in text and "[{" not in text
    assert "<dt>silhouette</dt><dd>0.412</dd>" in page  # a figure beside the tables, by name


def test_every_named_evaluation_section_is_rendered(dashboard_client, dashboard_store: SqliteStore, page):
    metrics = {"in_distribution": evaluation_report(0.962), "transfer": evaluation_report(0.871),
               "transfer_config": {"seed": 11, "segments": {"business": 0.2}}}
    dashboard_store.record_model(trained_model_row("v20261122-0001", TRAINED, metrics=metrics))
    page = dashboard_client.get("/model").get_data(as_text=True)
    assert 'id="evaluation-in-distribution"' in page and 'id="evaluation-transfer"' in page
    f1s = [rows[1][3] for attrs, rows in html_tables(page) if "eval-levels" in attrs.get("class", "")]
    assert f1s == ["0.960", "0.872"]  # 120 and 109 of 125 fraud windows
    assert "{'" not in visible_text(page) and '{"' not in visible_text(page)
    assert "<dt>segments</dt><dd><dl" in page.replace("\n", "")  # a nested figure is a nested list, not a dict
    versions = html_table(page, id="model-versions")
    assert versions[3][2] == "0.920 · 0.880 · 0.899"  # the oldest version's flat figures
    assert versions[1][2] == "in distribution: 0.960 · 0.960 · 0.960transfer: 0.872 · 0.872 · 0.872"


@pytest.mark.parametrize("metrics, names", [
    (evaluation_report(0.9), ["held-out split"]),
    ({**evaluation_report(0.9), "in_distribution": evaluation_report(0.95), "transfer": evaluation_report(0.8)},
     ["held-out split", "in distribution", "transfer"]),
    ({"silhouette": 0.5, "f1": 0.9}, []),
])
def test_evaluation_sections(metrics, names):
    sections, rest = evaluation_sections(metrics)
    assert [s["name"] for s in sections] == names
    if not names:
        assert rest == metrics
    else:
        assert all("window" not in s["other"] and "in_distribution" not in s["other"] for s in sections)


def test_groups_of_an_older_model_are_normal_and_fraud():
    metadata = json.loads(model_row("v1", 0, k=4)["metadata"])
    groups = cluster_groups(metadata, 4)
    assert [(g["name"], g["indexes"], g["windows"], g["flagging"]) for g in groups] == [
        ("normal", "#0–2", 6_000, 0), ("fraud", "#3", 4_000, 1)]


def test_the_empty_model_page_says_how_to_train(dashboard_client):
    assert "Train one with <code>fraudpipe train</code>" in dashboard_client.get("/model").get_data(as_text=True)


def test_a_typical_window_is_the_weighted_centre_in_the_features_own_units():
    from dashboard.models import typical_windows

    metadata = {"feature_names": ["tx_count", "failed_ratio"], "log_features": ["tx_count"],
                "scaler_mean": [0.8, 0.1], "scaler_std": [0.4, 0.05],
                "centroids": [[0.0, 0.0], [3.0, 2.0]], "cluster_sizes": [3, 1]}
    groups = [{"name": "normal", "members": [0, 1]}]
    # weighted centre in the scaled space: (0.75, 0.5); tx_count went through log1p, failed_ratio did not
    assert typical_windows(metadata, groups) == [
        {"group": "normal", "values": {"tx_count": pytest.approx(2.00416602), "failed_ratio": pytest.approx(0.125)}}]
    assert typical_windows({**metadata, "scaler_std": [0.4]}, groups) == []  # stats that do not fit: no guess

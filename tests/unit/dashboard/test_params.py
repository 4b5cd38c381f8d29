"""Query-parameter rules: every bad value is a 400 DashboardError naming the parameter."""
from __future__ import annotations

import pytest

from dashboard.params import (
    MAX_RANGE_MS,
    MINUTE_MS,
    check_known,
    decode_cursor,
    encode_cursor,
    parse_float,
    parse_int,
    parse_range,
    parse_sender,
    parse_time,
)
from fraudpipe.errors import DashboardError

NOW = 1_795_000_000_000


def test_time_accepts_epoch_millis_and_iso():
    assert parse_time("since", "1795000000000") == 1_795_000_000_000
    assert parse_time("since", "2026-11-18T11:06:40Z") == 1_795_000_000_000
    assert parse_time("since", "2026-11-18T12:06:40+01:00") == 1_795_000_000_000
    assert parse_time("since", "2026-11-18T11:06:40") == 1_795_000_000_000  # naive means UTC


@pytest.mark.parametrize("raw", ["yesterday", "", "12:00", "-5", "99999999999999999", "2026-13-01"])
def test_time_rejects_garbage(raw: str):
    with pytest.raises(DashboardError, match="since") as info:
        parse_time("since", raw)
    assert info.value.http_status == 400


def test_range_defaults_to_minutes_back_from_now_including_the_open_minute():
    window = parse_range({}, default_minutes=60, now=NOW)
    assert (window.since_ms, window.until_ms) == (NOW + MINUTE_MS - 60 * MINUTE_MS, NOW + MINUTE_MS)
    window = parse_range({"minutes": "15"}, default_minutes=60, now=NOW)
    assert window.until_ms - window.since_ms == 15 * MINUTE_MS


@pytest.mark.parametrize(
    "args, message",
    [
        ({"minutes": "0"}, "minutes must be between"),
        ({"minutes": "abc"}, "minutes must be an integer"),
        ({"minutes": "10", "since": "1"}, "either minutes or since/until"),
        ({"since": "2000", "until": "1000"}, "must be before"),
        ({"since": "0", "until": str(MAX_RANGE_MS + 1)}, "at most"),
    ],
)
def test_range_rejects(args: dict, message: str):
    with pytest.raises(DashboardError, match=message):
        parse_range(args, default_minutes=60, now=NOW)


def test_ints_and_floats_are_bounded_and_finite():
    assert parse_int({"limit": "5"}, "limit", 50, low=1, high=200) == 5
    assert parse_int({}, "limit", 50, low=1, high=200) == 50
    for raw in ("0", "201", "1.5", "1e3", "9" * 12):
        with pytest.raises(DashboardError, match="limit"):
            parse_int({"limit": raw}, "limit", 50, low=1, high=200)
    assert parse_float({"min_score": "2.5"}, "min_score") == 2.5
    assert parse_float({}, "min_score") is None
    for raw in ("nan", "inf", "x"):
        with pytest.raises(DashboardError, match="min_score"):
            parse_float({"min_score": raw}, "min_score")


def test_sender_pattern():
    assert parse_sender("acct-00042") == "acct-00042"
    assert parse_sender("") is None
    for raw in ("a b", "x" * 65, "<script>", "a/b"):
        with pytest.raises(DashboardError, match="sender"):
            parse_sender(raw)
    with pytest.raises(DashboardError, match="required"):
        parse_sender(None, required=True)


def test_cursor_round_trip_and_tampering():
    cursor = encode_cursor(1_795_000_020_000, "acct-7")
    assert decode_cursor(cursor) == (1_795_000_020_000, "acct-7")
    assert decode_cursor(None) is None
    for raw in ("!!!", "bm90IGpzb24", encode_cursor(1, "a")[:-3] + "xyz", "WzEsMiwzXQ", "WyJhIiwiYiJd"):
        with pytest.raises(DashboardError, match="cursor"):
            decode_cursor(raw)


def test_unknown_parameters_are_rejected_by_name():
    check_known({"minutes": "5"}, ("minutes",))
    with pytest.raises(DashboardError, match="'minuts'"):
        check_known({"minuts": "5"}, ("minutes",))

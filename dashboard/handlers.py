"""One handler per page: parse and check the query parameters, then build the payload.

The JSON API returns these payloads as they are and the HTML pages render them, so a
page and its API always agree and share one set of parameter rules.
"""
from __future__ import annotations

from typing import Any, Mapping

from fraudpipe.store.base import MAX_LIMIT
from dashboard import context, data, models as model_data, overview as overview_data, quality
from dashboard.params import (
    bad,
    MAX_PAGE_SIZE,
    MAX_RANGE_MINUTES,
    MINUTE_MS,
    check_known,
    decode_cursor,
    parse_float,
    parse_int,
    parse_range,
    parse_sender,
    now_ms,
)

RANGE_PARAMS = ("minutes", "since", "until")


def overview(args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, RANGE_PARAMS)
    config = context.config()
    now = now_ms()
    window = parse_range(args, default_minutes=config.dashboard.default_range_minutes, max_ms=MAX_RANGE_MINUTES * MINUTE_MS, now=now)
    return overview_data.overview(context.store(), window, now_ms=now, currency=config.producer.traffic.currency)


def alerts(args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, (*RANGE_PARAMS, "sender", "min_score", "limit", "cursor"))
    settings = context.config().dashboard
    # the same default range as the overview's, so that both pages show the same span
    window = parse_range(args, default_minutes=settings.default_range_minutes)
    page_size = parse_int(args, "limit", min(settings.page_size, MAX_PAGE_SIZE), low=1, high=MAX_PAGE_SIZE)
    return data.alerts_page(
        context.store(),
        window,
        page_size=page_size,
        sender=parse_sender(args.get("sender")),
        min_score=parse_float(args, "min_score"),
        after=decode_cursor(args.get("cursor")),
    )


def alert(sender_account: str, window_start: str, args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, ())
    account = parse_sender(sender_account, required=True)
    assert account is not None
    if not window_start.isdigit() or len(window_start) > 15:
        raise bad(f"window_start must be epoch milliseconds, got {window_start!r}")
    start = int(window_start)
    return data.alert_detail(context.store(), account, start)


def sender(sender_account: str, args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, RANGE_PARAMS)
    account = parse_sender(sender_account, required=True)
    assert account is not None
    window = parse_range(args, default_minutes=24 * 60)
    return data.sender_view(context.store(), account, window)


def models(args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, ("limit",))
    return model_data.models_view(context.store(), limit=parse_int(args, "limit", 20, low=1, high=100))


def quality_view(args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, ("labels",))
    default = min(context.config().dashboard.quality_labels, MAX_LIMIT)
    labels = parse_int(args, "labels", default, low=1, high=MAX_LIMIT)
    return quality.quality(context.store(), label_limit=labels)


def pipeline(args: Mapping[str, str]) -> dict[str, Any]:
    check_known(args, ())
    return context.state().probe.snapshot()

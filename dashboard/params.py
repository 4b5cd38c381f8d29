"""Query-parameter parsing for pages and the JSON API: strict, bounded, and 400 on bad input.

Every reader takes the request's args mapping and returns typed values or raises
DashboardError(http_status=400) naming the parameter, so no user input reaches a query
unchecked and none can cause a 500.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

from fraudpipe.errors import DashboardError

MINUTE_MS = 60_000
MAX_RANGE_MS = 31 * 24 * 60 * MINUTE_MS  # Cassandra reads walk one day partition per day
MAX_RANGE_MINUTES = 7 * 24 * 60  # overview charts: one point per minute
MAX_PAGE_SIZE = 200
SENDER_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


def now_ms() -> int:
    return int(time.time() * 1000)


def bad(message: str) -> DashboardError:
    return DashboardError(message, http_status=400)


def check_known(args: Mapping[str, str], known: Iterable[str]) -> None:
    """Reject parameters the endpoint does not know, so a typo never silently means 'no filter'."""
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise bad(f"unknown query parameter {unknown[0]!r}; known: {', '.join(sorted(known)) or 'none'}")


def parse_time(name: str, raw: str) -> int:
    """Epoch milliseconds, or an ISO-8601 date-time (UTC unless it carries an offset)."""
    text = raw.strip()
    if re.fullmatch(r"-?\d{1,15}", text):
        value = int(text)
    else:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise bad(f"{name} must be epoch milliseconds or an ISO-8601 time, got {raw!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        value = int(parsed.timestamp() * 1000)
    if not 0 <= value <= 253_402_300_799_000:  # year 9999: beyond it dates cannot be bucketed
        raise bad(f"{name} is out of range: {raw!r}")
    return value


def parse_int(args: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,9}", raw.strip()):
        raise bad(f"{name} must be an integer, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise bad(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_float(args: Mapping[str, str], name: str) -> float | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise bad(f"{name} must be a finite number, got {raw!r}")
    return value


def parse_sender(raw: str | None, *, required: bool = False) -> str | None:
    if raw is None or raw == "":
        if required:
            raise bad("sender is required")
        return None
    if not SENDER_PATTERN.fullmatch(raw):
        raise bad(f"sender must be 1-64 characters of letters, digits and _.:@-, got {raw[:80]!r}")
    return raw


@dataclass(frozen=True)
class TimeRange:
    since_ms: int
    until_ms: int

    @property
    def minutes(self) -> int:
        return math.ceil((self.until_ms - self.since_ms) / MINUTE_MS)

    def as_dict(self) -> dict[str, int]:
        return {"since": self.since_ms, "until": self.until_ms}


def parse_range(
    args: Mapping[str, str], *, default_minutes: int, max_ms: int = MAX_RANGE_MS, now: int | None = None
) -> TimeRange:
    """since/until (epoch ms or ISO) or minutes back from now; since < until, bounded length.

    `until` defaults to one minute past now so that the current, still open minute is in.
    """
    now = now_ms() if now is None else now
    if args.get("minutes") and (args.get("since") or args.get("until")):
        raise bad("give either minutes or since/until, not both")
    until = parse_time("until", args["until"]) if args.get("until") else now + MINUTE_MS
    if args.get("since"):
        since = parse_time("since", args["since"])
    else:
        minutes = parse_int(args, "minutes", default_minutes, low=1, high=max_ms // MINUTE_MS)
        since = max(0, until - minutes * MINUTE_MS)
    if since >= until:
        raise bad(f"since ({since}) must be before until ({until})")
    if until - since > max_ms:
        raise bad(f"the time range may span at most {max_ms // MINUTE_MS} minutes")
    return TimeRange(since, until)


def encode_cursor(window_start: int, sender: str) -> str:
    """An opaque page cursor: the keyset position of the last row served."""
    return base64.urlsafe_b64encode(json.dumps([window_start, sender]).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> tuple[int, str] | None:
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad("cursor is not a cursor this API returned") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], str)
    ):
        raise bad("cursor is not a cursor this API returned")
    return value[0], value[1]

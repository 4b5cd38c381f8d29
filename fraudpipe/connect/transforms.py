"""The Kafka Connect single message transforms this worker runs: those fraudpipe's connector JSON uses.

The real worker runs any SMT on its plugin path; this one runs only what the shipped
connectors need, under the real class names and option names, so the same JSON works on
both: TimestampConverter$Value turning a timestamp field into epoch numbers (the DataStax
Cassandra sink picks its codec from a field's base type and cannot take a Connect
Timestamp; docs/production.md). Anything else is a config error naming the key.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

TIMESTAMP_CONVERTER_VALUE = "org.apache.kafka.connect.transforms.TimestampConverter$Value"
UNIX_PER_SECOND = {"seconds": 1, "milliseconds": 1_000, "microseconds": 1_000_000, "nanoseconds": 1_000_000_000}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

Transform = Callable[[Any], Any]


@dataclass(frozen=True)
class TimestampToUnix:
    """TimestampConverter$Value with target.type=unix on one field of a struct value."""

    field: str
    per_second: int = 1_000

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, dict) or value.get(self.field) is None:
            return value  # as Kafka's: a record without the field passes unchanged
        raw = value[self.field]
        if isinstance(raw, dt.datetime):
            moment = raw if raw.tzinfo else raw.replace(tzinfo=dt.timezone.utc)
            micros = (moment - _EPOCH) // dt.timedelta(microseconds=1)
            number = micros * self.per_second // 1_000_000
        elif isinstance(raw, int):  # already unix at this precision (a plain long field)
            number = raw
        else:
            raise ValueError(f"TimestampConverter: field {self.field} is a {type(raw).__name__}, not a timestamp")
        return {**value, self.field: number}


def parse_transforms(config: Mapping[str, str]) -> list[Transform]:
    """The `transforms` chain of a connector config; ValueError naming the key when unsupported."""
    aliases = [a.strip() for a in str(config.get("transforms") or "").split(",") if a.strip()]
    chain: list[Transform] = []
    for alias in aliases:
        prefix = f"transforms.{alias}."
        kind = config.get(prefix + "type")
        if kind != TIMESTAMP_CONVERTER_VALUE:
            raise ValueError(f"{prefix}type: {kind or 'missing'}; this worker runs only {TIMESTAMP_CONVERTER_VALUE}")
        target = config.get(prefix + "target.type", "")
        if target != "unix":
            raise ValueError(f"{prefix}target.type: {target or 'missing'}; this worker converts only to unix")
        precision = config.get(prefix + "unix.precision", "milliseconds")
        if precision not in UNIX_PER_SECOND:
            raise ValueError(f"{prefix}unix.precision: {precision}; one of {', '.join(UNIX_PER_SECOND)}")
        field = config.get(prefix + "field", "")
        if not field:
            raise ValueError(f"{prefix}field: missing; this worker converts a field of a struct value")
        chain.append(TimestampToUnix(field, UNIX_PER_SECOND[precision]))
    return chain


def apply_all(chain: Sequence[Transform], value: Any) -> Any:
    for transform in chain:
        value = transform(value)
    return value

"""The single message transforms the embedded worker runs: TimestampConverter$Value to unix."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from fraudpipe import contracts
from fraudpipe.connect.cassandra_sink import CassandraSinkConnector
from fraudpipe.connect.plugin import effective_config
from fraudpipe.connect.transforms import TIMESTAMP_CONVERTER_VALUE, apply_all, parse_transforms

EVENT = dt.datetime(2026, 11, 30, 0, 1, 2, 345_000, tzinfo=dt.timezone.utc)
EVENT_MS = 1_795_996_862_345


def converter(field: str, **extra: str) -> dict[str, str]:
    return {"transforms": "t", "transforms.t.type": TIMESTAMP_CONVERTER_VALUE, "transforms.t.field": field,
            "transforms.t.target.type": "unix", **{f"transforms.t.{k}": v for k, v in extra.items()}}


def test_a_timestamp_field_becomes_epoch_milliseconds_and_the_rest_stays() -> None:
    assert EVENT.timestamp() * 1000 == EVENT_MS
    chain = parse_transforms(converter("event_time"))
    assert apply_all(chain, {"event_time": EVENT, "amount_minor": 5}) == {"event_time": EVENT_MS, "amount_minor": 5}
    assert apply_all(chain, {"amount_minor": 5}) == {"amount_minor": 5}  # no such field: unchanged, as Kafka's
    assert apply_all(chain, {"event_time": None}) == {"event_time": None}


@pytest.mark.parametrize("precision, expected", [("seconds", EVENT_MS // 1000), ("microseconds", EVENT_MS * 1000)])
def test_unix_precision(precision: str, expected: int) -> None:
    assert apply_all(parse_transforms(converter("e", **{"unix.precision": precision})), {"e": EVENT}) == {"e": expected}


@pytest.mark.parametrize("config, key", [
    ({"transforms": "route"}, "transforms.route.type"),
    ({**converter("e"), "transforms.t.type": "org.apache.kafka.connect.transforms.RegexRouter"}, "transforms.t.type"),
    ({**converter("e"), "transforms.t.target.type": "string"}, "transforms.t.target.type"),
    ({**converter("e"), "transforms.t.field": ""}, "transforms.t.field"),
])
def test_what_the_worker_cannot_run_is_an_error_naming_the_key(config: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_transforms(config)


def test_the_shipped_cassandra_sink_validates_with_its_transforms() -> None:
    document = json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())
    config = {**document["config"], "name": document["name"]}
    assert CassandraSinkConnector.validate(effective_config(config, {})).errors == {}
    chain = parse_transforms(config)
    label = {"transaction_id": "t1", "event_time": EVENT, "labeled_at": EVENT + dt.timedelta(seconds=30)}
    assert apply_all(chain, label) == {"transaction_id": "t1", "event_time": EVENT_MS, "labeled_at": EVENT_MS + 30_000}

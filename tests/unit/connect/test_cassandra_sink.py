"""DataStax sink config parsing and mapping into CQL: pure functions, no cluster."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from fraudpipe import contracts
from fraudpipe.connect.cassandra_sink import (
    CassandraSinkConnector,
    ColumnSource,
    parse_mapping,
    parse_mappings,
)
from fraudpipe.connect.plugin import BadRecordError, SinkRecord, effective_config
from fraudpipe.store.cql import table_specs

UNSET = object()


def record(value: dict, key: str | None = "k", topic: str = "transactions") -> SinkRecord:
    return SinkRecord(topic, 0, 5, key, value)


def test_mapping_parses_fields_key_quoted_names_and_specials() -> None:
    entries = parse_mapping(' sender_account = value.sender_account, id=key, "Odd Col"=value."a b", '
                            '__ttl=value.ttl,__timestamp = value.ts, seen=now(), nested=value.a.b')
    assert entries == [
        ("sender_account", ColumnSource("value", ("sender_account",))), ("id", ColumnSource("key")),
        ('"Odd Col"', ColumnSource("value", ("a b",))), ("__ttl", ColumnSource("value", ("ttl",))),
        ("__timestamp", ColumnSource("value", ("ts",))), ("seen", ColumnSource("now")),
        ("nested", ColumnSource("value", ("a", "b"))),
    ]


@pytest.mark.parametrize("text, problem", [
    ("", "empty"), ("a=", "cannot parse"), ("a=valu.x", "is not key"), ("a=value.x, a=value.y", "mapped twice"),
    ("=value.x", "cannot parse"),
])
def test_bad_mappings_say_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_mapping(text)


def test_mapping_to_cql_with_ttl_and_timestamp_and_consistency() -> None:
    config = {
        "topic.tx.ks.t1.mapping": "a=value.a, b=key, __ttl=value.ttl, __timestamp=value.ts",
        "topic.tx.ks.t1.consistencyLevel": "local_quorum", "topic.tx.ks.t1.ttlTimeUnit": "MINUTES",
        "topic.tx.ks.t1.timestampTimeUnit": "MILLISECONDS",
        "topic.tx.ks.t2.mapping": "a=value.a", "topic.tx.ks.t2.ttl": "3600",
        "topic.my.dotted.topic.ks.t3.mapping": "c=value.c",
    }
    mappings = {m.table: m for m in parse_mappings(config, ["tx", "my.dotted.topic"])}
    t1, t2, t3 = mappings["t1"], mappings["t2"], mappings["t3"]
    assert t1.cql() == "INSERT INTO ks.t1 (a, b) VALUES (?, ?) USING TTL ? AND TIMESTAMP ?"
    assert t1.consistency == "LOCAL_QUORUM"
    assert t1.bind(record({"a": 1, "ttl": 2, "ts": 1500})) == (1, "k", 120, 1_500_000)
    assert t2.cql() == "INSERT INTO ks.t2 (a) VALUES (?) USING TTL 3600"
    assert t3.topic == "my.dotted.topic" and t3.cql() == "INSERT INTO ks.t3 (c) VALUES (?)"


def test_null_values_become_unset_unless_disabled() -> None:
    on, off = parse_mappings({"topic.tx.ks.t.mapping": "a=value.a, b=value.b",
                              "topic.tx.ks.u.mapping": "a=value.a, b=value.b", "topic.tx.ks.u.nullToUnset": "false"},
                             ["tx"])
    assert on.bind(record({"a": 1, "b": None}), unset=UNSET) == (1, UNSET)
    assert off.bind(record({"a": 1, "b": None}), unset=UNSET) == (1, None)
    with pytest.raises(BadRecordError, match="value.b"):
        on.bind(record({"a": 1}))


@pytest.mark.parametrize("config, problem", [
    ({}, "mapping is missing for topic tx"),
    ({"topic.tx.ks.t.mapping": "a=value.a", "topic.other.ks.t.mapping": "a=value.a"}, "not in `topics`"),
    ({"topic.tx.ks.t.mapping": "a=value.a", "topic.tx.ks.t.consistencyLevel": "SOME"}, "consistencyLevel"),
    ({"topic.tx.ks.t.mapping": "a=value.a", "topic.tx.ks.t.ttl": "soon"}, "ttl: not an integer"),
    ({"topic.tx.ks.t.mapping": "a=value.a", "topic.tx.ks.t.bogus": "1"}, "expected topic.tx"),
    ({"topic.tx.ks.t.consistencyLevel": "ONE"}, "mapping is missing"),
])
def test_bad_table_settings_name_the_key(config: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_mappings(config, ["tx"])


def test_shipped_cassandra_sink_json_is_valid_and_maps_every_column_of_init_cql() -> None:
    document = json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())
    config = document["config"]
    assert config["connector.class"] == CassandraSinkConnector.class_name
    result = CassandraSinkConnector.validate(effective_config({**config, "name": document["name"]}, {}))
    assert result.errors == {}
    topics = [t.strip() for t in config["topics"].split(",")]
    assert topics == [contracts.TRANSACTIONS_TOPIC, contracts.LABELS_TOPIC]
    specs = table_specs()
    mappings = {(m.topic, m.keyspace, m.table): m for m in parse_mappings(config, topics)}
    for topic, table, schema in [(contracts.TRANSACTIONS_TOPIC, contracts.TRANSACTIONS_TABLE, contracts.transaction_schema()),
                                 (contracts.LABELS_TOPIC, contracts.LABELS_TABLE, contracts.label_schema())]:
        mapping = mappings[(topic, contracts.KEYSPACE, table)]
        assert {c for c, _ in mapping.columns} == set(specs[table].column_names)
        assert all(source.root == "value" and source.path == (column,) for column, source in mapping.columns)
        assert {f["name"] for f in schema["fields"]} >= set(specs[table].column_names)
    tx = mappings[(contracts.TRANSACTIONS_TOPIC, contracts.KEYSPACE, contracts.TRANSACTIONS_TABLE)]
    event = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    row = tx.bind(record({c: (event if c == "event_time" else c) for c in specs["transactions"].column_names}))
    assert row[[c for c, _ in tx.columns].index("event_time")] == event


def test_shipped_label_day_tables_are_written_by_queries_that_bind_by_name() -> None:
    config = json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())["config"]
    mappings = {m.table: m for m in parse_mappings(config, [contracts.TRANSACTIONS_TOPIC, contracts.LABELS_TOPIC])}
    specs = table_specs()
    labeled = dt.datetime(2026, 11, 21, 23, 59, tzinfo=dt.timezone.utc)
    value = {"transaction_id": "t1", "pattern": "card_testing", "sender_account": "s1", "event_time": labeled, "labeled_at": labeled}
    by_day = mappings[contracts.LABELS_BY_DAY_TABLE]
    assert by_day.cql().startswith(f"INSERT INTO {contracts.KEYSPACE}.{contracts.LABELS_BY_DAY_TABLE} (")
    assert "toDate((timestamp) :labeled_at)" in by_day.cql()
    assert by_day.bind(record(value)) == value  # by name: the query uses :labeled_at twice
    assert {c for c, _ in by_day.columns} | {"day"} == set(specs[contracts.LABELS_BY_DAY_TABLE].column_names)
    days = mappings[contracts.LABEL_DAYS_TABLE]
    assert f"'{contracts.LABEL_DAYS_PARTITION}'" in days.cql() and days.bind(record(value)) == {"labeled_at": labeled}


@pytest.mark.parametrize("settings, problem", [
    ({"query": "INSERT INTO ks.t (a, b) VALUES (:a, :b)", "mapping": "a=value.a"}, r"unmapped: b; not in the query: -"),
    ({"query": "INSERT INTO ks.t (a) VALUES (:a)", "mapping": "a=value.a, c=value.c"}, r"unmapped: -; not in the query: c"),
    ({"query": "INSERT INTO ks.t (a) VALUES (?)", "mapping": "a=value.a"}, "no named bind variables"),
    ({"query": "INSERT INTO ks.t (a) VALUES (:a)", "mapping": "a=value.a, __ttl=value.t"}, "USING clause"),
    ({"query": "INSERT INTO ks.t (a) VALUES (:a)", "mapping": "a=value.a", "ttl": "60"}, "USING clause"),
])
def test_custom_query_must_bind_exactly_the_mapping(settings: dict, problem: str) -> None:
    config = {f"topic.tx.ks.t.{key}": value for key, value in settings.items()}
    with pytest.raises(ValueError, match=problem):
        parse_mappings(config, ["tx"])


def test_validation_reports_cassandra_specific_errors() -> None:
    base = {"name": "c", "connector.class": CassandraSinkConnector.class_name, "topics": "tx",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter"}
    missing_dc = CassandraSinkConnector.validate({**base, "contactPoints": "db", "topic.tx.ks.t.mapping": "a=value.a"})
    assert list(missing_dc.errors) == ["loadBalancing.localDc"]
    bad_mapping = CassandraSinkConnector.validate({**base, "topic.tx.ks.t.mapping": "a=val.a"})
    assert list(bad_mapping.errors) == ["topic.tx.ks.t.mapping"]
    bad_port = CassandraSinkConnector.validate({**base, "port": "many", "topic.tx.ks.t.mapping": "a=value.a"})
    assert "port" in bad_port.errors

"""The JDBC-style SQLite sink: config rules, record -> row mapping and durable upserts on a real SQLite file."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from fraudpipe import contracts
from fraudpipe.connect.jdbc_sqlite import JdbcSinkConnector, JdbcSqliteWriter, sql_value, sqlite_path
from fraudpipe.connect.plugin import BadRecordError, SinkRecord, effective_config
from fraudpipe.errors import StoreError
from fraudpipe.store.sqlite import SqliteStore

CONVERTERS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
              "value.converter": "org.apache.kafka.connect.json.JsonConverter"}


def values_for(db: Path, **overrides: str) -> dict:
    config = {"name": "s", "connector.class": "JdbcSinkConnector", "topics": "t", "connection.url": f"jdbc:sqlite:{db}",
              **CONVERTERS, **overrides}
    result = JdbcSinkConnector.validate(config)
    assert result.errors == {}
    return result.values


def tx(i: int, **extra: object) -> dict:
    return {"transaction_id": f"t{i}", "event_time": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i),
            "sender_account": "s", "receiver_account": "r", "amount_minor": i, "currency": "USD",
            "transaction_type": "PURCHASE", "status": "APPROVED", "channel": "POS", **extra}


def test_sql_values_follow_the_store_conventions() -> None:
    moment = dt.datetime(2026, 11, 21, 1, 2, 3, 456000, tzinfo=dt.timezone.utc)
    assert sql_value(moment) == 1795222923456
    assert sql_value(moment.replace(tzinfo=None)) == 1795222923456  # naive means UTC (db.timezone)
    assert sql_value(True) == 1 and sql_value(dt.date(2026, 1, 2)) == "2026-01-02"
    assert json.loads(sql_value({"b": [1, 2]})) == {"b": [1, 2]}
    assert sqlite_path("jdbc:sqlite:/a/b.db?mode=x") == "/a/b.db"
    with pytest.raises(ValueError, match="jdbc:sqlite:"):
        sqlite_path("jdbc:postgresql://h/db")


def test_shipped_sqlite_connectors_target_the_store_tables() -> None:
    for file, topic, table in [("sqlite-sink.json", contracts.TRANSACTIONS_TOPIC, contracts.TRANSACTIONS_TABLE),
                               ("sqlite-labels-sink.json", contracts.LABELS_TOPIC, contracts.LABELS_TABLE)]:
        document = json.loads((contracts.CONNECTORS_DIR / file).read_text())
        config = {**document["config"], "name": document["name"]}
        assert JdbcSinkConnector.validate(effective_config(config, {})).errors == {}
        assert config["topics"] == topic and config["table.name.format"] == table
        assert config["errors.deadletterqueue.topic.name"] == contracts.CONNECT_DLQ_TOPIC
        from fraudpipe.store.cql import table_specs

        spec = table_specs()[table]
        assert set(config["fields.whitelist"].split(",")) == set(spec.column_names)
        assert config["pk.fields"].split(",") == list(spec.primary_key)


@pytest.mark.parametrize("overrides, key", [
    ({"insert.mode": "upsert"}, "pk.mode"),
    ({"pk.mode": "kafka", "pk.fields": "a,b"}, "pk.fields"),
    ({"delete.enabled": "true", "pk.mode": "record_value"}, "delete.enabled"),
    ({"connection.url": "jdbc:mysql://x"}, "connection.url"),
    ({"insert.mode": "merge"}, "insert.mode"),
    ({"tasks.max": "0"}, "tasks.max"),
    ({"transforms": "route"}, "transforms"),
    ({"auto.create": "yes"}, "auto.create"),
])
def test_invalid_configs_name_the_key(tmp_path: Path, overrides: dict, key: str) -> None:
    config = {"name": "s", "connector.class": "JdbcSinkConnector", "topics": "t",
              "connection.url": f"jdbc:sqlite:{tmp_path / 'x.db'}", **CONVERTERS, **overrides}
    assert key in JdbcSinkConnector.validate(config).errors


def test_upserts_into_the_store_table_and_drops_fields_it_lacks(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    SqliteStore(db).close()
    writer = JdbcSqliteWriter(values_for(db, **{"insert.mode": "upsert", "pk.mode": "record_value",
                                                "pk.fields": "sender_account,event_time,transaction_id",
                                                "table.name.format": "transactions"}))
    rows = [r for i in range(3) for r in writer.prepare(SinkRecord("t", 0, i, "s", tx(i, device_id="d")))]
    writer.write(rows)
    writer.write(writer.prepare(SinkRecord("t", 0, 9, "s", {**tx(1), "amount_minor": 999})))  # replay with a change
    writer.close()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT transaction_id, amount_minor, event_time FROM transactions ORDER BY transaction_id").fetchall()
    assert stored == [("t0", 0, 1767225600000), ("t1", 999, 1767225601000), ("t2", 2, 1767225602000)]


def test_auto_create_with_kafka_keys_and_whitelist(tmp_path: Path) -> None:
    db = tmp_path / "auto.db"
    writer = JdbcSqliteWriter(values_for(db, **{"auto.create": "true", "pk.mode": "kafka", "insert.mode": "upsert",
                                                "fields.whitelist": "amount_minor", "table.name.format": "raw_${topic}"}))
    writer.write([r for i in range(2) for r in writer.prepare(SinkRecord("t", 1, i, None, tx(i)))])
    writer.write(writer.prepare(SinkRecord("t", 1, 1, None, tx(1))))  # same coordinates: one row
    writer.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute('SELECT * FROM "raw_t" ORDER BY __connect_offset').fetchall() == [(0, "t", 1, 0), (1, "t", 1, 1)]


def test_bad_records_and_missing_tables(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    writer = JdbcSqliteWriter(values_for(db, **{"pk.mode": "record_value", "pk.fields": "transaction_id"}))
    with pytest.raises(BadRecordError, match="null value"):
        writer.prepare(SinkRecord("t", 0, 0, None, None))
    with pytest.raises(BadRecordError, match="struct"):
        writer.prepare(SinkRecord("t", 0, 0, None, "text"))
    with pytest.raises(BadRecordError, match="pk.fields"):
        writer.prepare(SinkRecord("t", 0, 0, None, {"other": 1}))
    with pytest.raises(StoreError, match="auto.create is disabled"):
        writer.prepare(SinkRecord("t", 0, 0, None, tx(0)))
    writer.close()


def test_update_and_delete_modes(tmp_path: Path) -> None:
    db = tmp_path / "ud.db"
    upsert = JdbcSqliteWriter(values_for(db, **{"auto.create": "true", "pk.mode": "record_key", "pk.fields": "id",
                                                "insert.mode": "upsert", "delete.enabled": "true"}))
    upsert.write(upsert.prepare(SinkRecord("t", 0, 0, "a", {"v": 1})) + upsert.prepare(SinkRecord("t", 0, 1, "b", {"v": 2})))
    upsert.write(upsert.prepare(SinkRecord("t", 0, 2, "a", None)))  # tombstone deletes
    upsert.close()
    update = JdbcSqliteWriter(values_for(db, **{"pk.mode": "record_key", "pk.fields": "id", "insert.mode": "update"}))
    update.write(update.prepare(SinkRecord("t", 0, 3, "b", {"v": 7})))
    update.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute('SELECT id, v FROM "t"').fetchall() == [("b", 7)]

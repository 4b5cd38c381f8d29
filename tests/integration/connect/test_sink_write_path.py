"""Both sinks' write paths against a real store, with the shipped connector JSON: a batch and its
replay leave exactly one row per record, in SQLite and in Cassandra 5.0 on the real-stack bench."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from fraudpipe import contracts
from fraudpipe.connect.cassandra_sink import CassandraSinkConnector
from fraudpipe.connect.jdbc_sqlite import JdbcSinkConnector
from fraudpipe.config import StoreConfig
from fraudpipe.connect.plugin import SinkRecord, SinkWriter, effective_config
from fraudpipe.store.base import Store
from fraudpipe.store.sqlite import SqliteStore
from tests.fixtures.connect import transaction
from tests.fixtures.realstack import CassandraEndpoint, table_counts

TARGETS = ["sqlite", pytest.param("cassandra", marks=pytest.mark.realstack)]


def shipped(file: str) -> dict[str, str]:
    document = json.loads((contracts.CONNECTORS_DIR / file).read_text())
    return {**document["config"], "name": document["name"]}


def cassandra_sink_config(keyspace: str, host: str, port: int) -> dict[str, str]:
    """connectors/cassandra-sink.json writing into `keyspace` (in keys and in custom queries) at host:port."""
    config = {key.replace(f".{contracts.KEYSPACE}.", f".{keyspace}."): value.replace(f"{contracts.KEYSPACE}.", f"{keyspace}.")
              for key, value in shipped("cassandra-sink.json").items()}
    config.update({"contactPoints": host, "port": str(port)})
    return config


def open_target(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Store, SinkWriter]:
    if target == "sqlite":
        db = tmp_path / "store.db"
        store: Store = SqliteStore(db)
        config = {**shipped("sqlite-sink.json"), "connection.url": f"jdbc:sqlite:{db}"}
        plugin: Any = JdbcSinkConnector
    else:
        from fraudpipe.store.cassandra import CassandraStore

        store_config = request.getfixturevalue("cassandra_store_config")
        store = CassandraStore(store_config)
        host, port = store_config.cassandra_contact_points[0], store_config.cassandra_port
        config = cassandra_sink_config(store_config.keyspace, host, port)
        plugin = CassandraSinkConnector
    result = plugin.validate(effective_config(config, {}))
    assert result.errors == {}
    return store, plugin.open_writer(result.values, config)


@pytest.mark.integration
@pytest.mark.parametrize("target", TARGETS)
def test_a_batch_and_its_replay_leave_one_row_per_record(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store, writer = open_target(target, tmp_path, request)
    records = [{**transaction(i, run=target), "sender_account": "acct-write-path"} for i in range(300)]
    batch = [row for offset, value in enumerate(records)
             for row in writer.prepare(SinkRecord(contracts.TRANSACTIONS_TOPIC, 0, offset, value["sender_account"], value))]
    writer.write(batch)
    writer.write(batch)  # a replay after a crash before the offset commit
    writer.close()
    found = []
    for start in range(0, len(records), 100):  # reads are bounded; page by event time
        chunk = records[start:start + 100]
        found += store.transactions_for_sender(sender="acct-write-path", since_ms=int(chunk[0]["event_time"].timestamp() * 1000),
                                               until_ms=int(chunk[-1]["event_time"].timestamp() * 1000) + 1, limit=1000)
    store.close()
    assert sorted(row["transaction_id"] for row in found) == sorted(r["transaction_id"] for r in records)
    by_id = {row["transaction_id"]: row for row in found}
    assert by_id[records[7]["transaction_id"]]["amount_minor"] == records[7]["amount_minor"]
    assert by_id[records[7]["transaction_id"]]["event_time"] == int(records[7]["event_time"].timestamp() * 1000)


@pytest.mark.integration
def test_labels_and_their_replay_fill_the_three_label_tables_exactly(cassandra_store_config: StoreConfig,
                                                                    real_cassandra: CassandraEndpoint) -> None:
    from fraudpipe.store.cassandra import CassandraStore

    config = cassandra_sink_config(cassandra_store_config.keyspace, cassandra_store_config.cassandra_contact_points[0],
                                   cassandra_store_config.cassandra_port)
    result = CassandraSinkConnector.validate(effective_config(config, {}))
    assert result.errors == {}
    writer = CassandraSinkConnector.open_writer(result.values, config)
    start = dt.datetime(2026, 11, 21, 23, 58, tzinfo=dt.timezone.utc)  # the labels cross midnight UTC
    labels = [{"transaction_id": f"wp-{i:04d}", "pattern": "card_testing", "sender_account": f"s{i % 5}",
               "event_time": start, "labeled_at": start + dt.timedelta(seconds=i)} for i in range(300)]
    batch = [row for offset, value in enumerate(labels)
             for row in writer.prepare(SinkRecord(contracts.LABELS_TOPIC, 0, offset, value["transaction_id"], value))]
    assert len(batch) == 3 * len(labels)  # labels, labels_by_day, label_days
    writer.write(batch)
    writer.write(batch)  # a replay after a crash before the offset commit
    writer.close()
    with CassandraStore(cassandra_store_config) as store:
        newest = store.recent_labels(limit=1000)
        by_id = store.labels_for([label["transaction_id"] for label in labels])
    counts = table_counts(real_cassandra, cassandra_store_config.keyspace,
                          (contracts.LABELS_TABLE, contracts.LABELS_BY_DAY_TABLE, contracts.LABEL_DAYS_TABLE))
    assert counts == {contracts.LABELS_TABLE: 300, contracts.LABELS_BY_DAY_TABLE: 300, contracts.LABEL_DAYS_TABLE: 2}
    assert [row["transaction_id"] for row in newest] == [f"wp-{i:04d}" for i in reversed(range(300))]
    assert newest[0]["labeled_at"] == int(labels[-1]["labeled_at"].timestamp() * 1000) and len(by_id) == 300

"""The Cassandra sink a bring-your-own run registers: connectors/cassandra-sink.json pointed at store.*."""
from __future__ import annotations

import dataclasses

from fraudpipe import contracts
from fraudpipe.config import load_config
from fraudpipe.connect.cassandra_sink import CassandraSinkConnector
from fraudpipe.connect.plugin import effective_config
from fraudpipe.provisioning import cassandra_sink_config


def test_the_sink_writes_the_configured_keyspace_at_the_configured_cassandra() -> None:
    config = load_config(contracts.PROJECT_ROOT / "examples" / "byo.yml", environ={})
    assert (config.kafka.embedded, config.store.backend) == (False, "cassandra")
    config = dataclasses.replace(config, store=dataclasses.replace(
        config.store, keyspace="byo_ks", cassandra_contact_points=("10.0.0.1", "10.0.0.2"), cassandra_port=9142,
        consistency="ONE"))
    name, sink = cassandra_sink_config(config)
    assert name == "cassandra-sink"
    assert CassandraSinkConnector.validate(effective_config({**sink, "name": name}, {})).errors == {}
    assert (sink["contactPoints"], sink["port"], sink["loadBalancing.localDc"]) == ("10.0.0.1,10.0.0.2", "9142", "datacenter1")
    assert sink["value.converter.schema.registry.url"] == config.schema_registry.url
    table_keys = [key for key in sink if key.startswith("topic.")]
    assert table_keys and all(".byo_ks." in key and f".{contracts.KEYSPACE}." not in key for key in table_keys)
    queries = [value for key, value in sink.items() if key.endswith(".query")]
    assert queries and all("byo_ks." in q and f"{contracts.KEYSPACE}." not in q for q in queries)
    assert {value for key, value in sink.items() if key.endswith(".consistencyLevel")} == {"ONE"}

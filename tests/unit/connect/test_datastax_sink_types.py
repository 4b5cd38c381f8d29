"""connectors/cassandra-sink.json, checked against what the real DataStax sink does with each field type.

No Kafka Connect JVM runs here, so the path a record takes in docker compose is modelled
from the sources, step by step, and the shipped connector config is fed through it:

1. Confluent's AvroConverter (AvroData.toConnectSchema) turns each Avro field of
   schema.avsc / label.avsc into a Connect schema: a base type, maybe a logical name, and
   the Java class of its values (timestamp-millis -> INT64 named
   org.apache.kafka.connect.data.Timestamp, values java.util.Date; enum -> STRING).
2. The connector's `transforms` run (Kafka's TimestampConverter$Value: target.type=unix
   makes the field a plain INT64 holding epoch numbers at unix.precision).
3. kafka-sink 1.4.0 picks the Java type of its codec from the field's *base* type alone
   (sink/.../record/StructDataMetadataSupport.java, TYPE_MAP: INT64 -> GenericType.LONG;
   the logical name is never read), and the driver's codec casts the value to that class:
   a java.util.Date under a Long codec is a ClassCastException.
4. dsbulk's converting codecs must turn that Java type into the CQL column's type
   (Long -> timestamp is NumberToInstantCodec with the topic's codec.unit, MILLISECONDS by
   default, from the Unix epoch).
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from fraudpipe import contracts
from fraudpipe.store.cql import table_specs

TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
TIMESTAMP_CONVERTER = "org.apache.kafka.connect.transforms.TimestampConverter$Value"

# (Connect base type, logical name, Java class of the values) for an Avro type (step 1)
_AVRO_PRIMITIVES = {"string": ("STRING", "java.lang.String"), "long": ("INT64", "java.lang.Long"),
                    "int": ("INT32", "java.lang.Integer"), "double": ("FLOAT64", "java.lang.Double"),
                    "float": ("FLOAT32", "java.lang.Float"), "boolean": ("BOOLEAN", "java.lang.Boolean"),
                    "bytes": ("BYTES", "java.nio.ByteBuffer")}
_AVRO_LOGICAL = {"timestamp-millis": ("INT64", TIMESTAMP, "java.util.Date"),
                 "date": ("INT32", "org.apache.kafka.connect.data.Date", "java.util.Date"),
                 "time-millis": ("INT32", "org.apache.kafka.connect.data.Time", "java.util.Date")}
# kafka-sink 1.4.0 StructDataMetadataSupport.TYPE_MAP: base type -> codec Java type (step 3)
SINK_CODEC_JAVA_TYPE = {"BOOLEAN": "java.lang.Boolean", "FLOAT64": "java.lang.Double", "INT64": "java.lang.Long",
                        "FLOAT32": "java.lang.Float", "INT8": "java.lang.Byte", "INT16": "java.lang.Short",
                        "INT32": "java.lang.Integer", "STRING": "java.lang.String", "BYTES": "java.nio.ByteBuffer"}
# dsbulk converting codecs for the CQL types of init.cql's sink tables (step 4)
CODECS = {("java.lang.String", "text"), ("java.lang.Long", "bigint"), ("java.lang.Long", "timestamp"),
          ("java.lang.Integer", "int"), ("java.lang.Double", "double"), ("java.lang.Boolean", "boolean")}
UNIX_PRECISION_TO_CODEC_UNIT = {"seconds": "SECONDS", "milliseconds": "MILLISECONDS",
                                "microseconds": "MICROSECONDS", "nanoseconds": "NANOSECONDS"}


def avro_to_connect(avro_type: Any) -> tuple[str, str | None, str]:
    if isinstance(avro_type, list):  # ["null", X]: an optional X
        (inner,) = [t for t in avro_type if t != "null"]
        return avro_to_connect(inner)
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in _AVRO_LOGICAL:
            return _AVRO_LOGICAL[avro_type["logicalType"]]
        if avro_type["type"] == "enum":
            return "STRING", None, "java.lang.String"
        return avro_to_connect(avro_type["type"])
    base, java = _AVRO_PRIMITIVES[avro_type]
    return base, None, java


def apply_transforms(config: dict[str, str], fields: dict[str, tuple[str, str | None, str]]) -> dict:
    """Step 2 on the field schemas; an SMT this model does not know fails the test."""
    fields = dict(fields)
    for alias in [a.strip() for a in config.get("transforms", "").split(",") if a.strip()]:
        prefix = f"transforms.{alias}."
        assert config[prefix + "type"] == TIMESTAMP_CONVERTER, f"no model of {config[prefix + 'type']}"
        assert config[prefix + "target.type"] == "unix", "only target.type=unix is modelled"
        name = config[prefix + "field"]
        if name in fields:  # a struct without the field passes unchanged
            assert fields[name][1] == TIMESTAMP, f"{alias}: {name} is not a Connect Timestamp"
            fields[name] = ("INT64", None, "java.lang.Long")
    return fields


def unix_precisions(config: dict[str, str]) -> set[str]:
    aliases = [a.strip() for a in config.get("transforms", "").split(",") if a.strip()]
    return {config.get(f"transforms.{a}.unix.precision", "milliseconds") for a in aliases}


def shipped_config() -> dict[str, str]:
    return json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())["config"]


SINKS = [(contracts.TRANSACTIONS_TOPIC, contracts.TRANSACTIONS_TABLE, contracts.transaction_schema(1)),
         (contracts.TRANSACTIONS_TOPIC, contracts.TRANSACTIONS_TABLE, contracts.transaction_schema(2)),
         (contracts.LABELS_TOPIC, contracts.LABELS_TABLE, contracts.label_schema())]


@pytest.mark.parametrize("topic, table, schema", SINKS, ids=["transactions-v1", "transactions-v2", "labels"])
def test_every_mapped_field_has_a_codec_for_its_column(topic: str, table: str, schema: dict) -> None:
    config = shipped_config()
    fields = apply_transforms(config, {f["name"]: avro_to_connect(f["type"]) for f in schema["fields"]})
    columns = dict(table_specs()[table].columns)
    mapping = config[f"topic.{topic}.{contracts.KEYSPACE}.{table}.mapping"]
    problems = []
    for entry in mapping.split(","):
        column, source = (part.strip() for part in entry.split("="))
        assert source.startswith("value."), f"{column}={source}: only value fields are modelled"
        base, logical, java_value = fields[source.removeprefix("value.")]
        codec_java = SINK_CODEC_JAVA_TYPE[base]
        if java_value != codec_java:
            problems.append(f"{column}: a {logical or base} field holds {java_value}, but kafka-sink picks a "
                            f"{codec_java} codec from base type {base}: ClassCastException, the record never written")
        elif (codec_java, columns[column]) not in CODECS:
            problems.append(f"{column}: no codec {codec_java} -> CQL {columns[column]}")
    assert not problems, "\n".join(problems)


def test_epoch_numbers_are_read_in_the_unit_they_are_written_in() -> None:
    # TimestampConverter writes unix.precision; the sink reads numbers in codec.unit (per topic)
    config = shipped_config()
    for topic in (contracts.TRANSACTIONS_TOPIC, contracts.LABELS_TOPIC):
        unit = config.get(f"topic.{topic}.codec.unit", "MILLISECONDS")
        assert {UNIX_PRECISION_TO_CODEC_UNIT[p] for p in unix_precisions(config)} == {unit}, topic


def test_a_failing_record_is_retried_not_skipped_by_the_sink() -> None:
    # kafka-sink 1.4.0 has no errant-record reporter: a write it cannot do never reaches
    # errors.tolerance or the DLQ. With ignoreErrors=None it rewinds and retries (a Cassandra
    # outage heals); All or Driver would drop rows. The mapping test above is what keeps a
    # deterministic failure (a retry forever) out.
    assert shipped_config().get("ignoreErrors", "None") == "None"

"""Names shared across the pipeline, defined once: topics, subjects, tables, schema files.

Every component imports its names from here; nothing else spells a topic, subject or
table as a string literal.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from fraudpipe.errors import SchemaError

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
TRANSACTION_SCHEMA_FILE: Final = PROJECT_ROOT / "schema.avsc"
LABEL_SCHEMA_FILE: Final = PROJECT_ROOT / "label.avsc"
CQL_FILE: Final = PROJECT_ROOT / "cassandra" / "init.cql"
CONNECTORS_DIR: Final = PROJECT_ROOT / "connectors"

# Columns a `produce --to-file` Parquet file carries beside schema.avsc's (docs/producer.md)
PATTERN_COLUMN: Final = "pattern"  # fraud family of the row (label.avsc `pattern`), null = not fraud
FRAUD_INSTANCE_COLUMN: Final = "fraud_instance"  # id of the fraud instance (one burst), null = not fraud
FRAUD_VARIANT_COLUMN: Final = "fraud_variant"  # "family.variant" of the instance, null = not fraud

# Topics
TRANSACTIONS_TOPIC: Final = "transactions"
LABELS_TOPIC: Final = "transaction-labels"
STREAM_DLQ_TOPIC: Final = "transactions-dlq"
CONNECT_DLQ_TOPIC: Final = "connect-dlq"
# A sink connector's consumer group, as Kafka Connect names it.
CONNECT_GROUP_PREFIX: Final = "connect-"


def connect_group(connector: str) -> str:
    return f"{CONNECT_GROUP_PREFIX}{connector}"


def value_subject(topic: str) -> str:
    """Subject name under Confluent's default TopicNameStrategy."""
    return f"{topic}-value"


TRANSACTIONS_SUBJECT: Final = value_subject(TRANSACTIONS_TOPIC)
LABELS_SUBJECT: Final = value_subject(LABELS_TOPIC)

# Store tables; their columns are defined in cassandra/init.cql only.
KEYSPACE: Final = "fraudpipe"
TRANSACTIONS_TABLE: Final = "transactions"
LABELS_TABLE: Final = "labels"
LABELS_BY_DAY_TABLE: Final = "labels_by_day"
LABEL_DAYS_TABLE: Final = "label_days"
ALERTS_TABLE: Final = "alerts"
ALERTS_BY_SENDER_TABLE: Final = "alerts_by_sender"
METRICS_TABLE: Final = "metrics"
METRICS_BY_MINUTE_TABLE: Final = "metrics_by_minute"
MODELS_TABLE: Final = "models"
STREAM_PROGRESS_TABLE: Final = "stream_progress"
ALL_TABLES: Final = (
    TRANSACTIONS_TABLE,
    LABELS_TABLE,
    LABELS_BY_DAY_TABLE,
    LABEL_DAYS_TABLE,
    ALERTS_TABLE,
    ALERTS_BY_SENDER_TABLE,
    METRICS_TABLE,
    METRICS_BY_MINUTE_TABLE,
    MODELS_TABLE,
    STREAM_PROGRESS_TABLE,
)
# The streaming detection query's name: Spark's queryName and its stream_progress row.
STREAM_QUERY_NAME: Final = "fraud_detection"
# The one partition of label_days: which day buckets of labels_by_day hold labels.
LABEL_DAYS_PARTITION: Final = "labels"

# Status symbols that count as a failed transaction in window features.
FAILED_STATUSES: Final = frozenset({"DECLINED", "FAILED"})
# Transaction types that move money to another account (mule and takeover fraud use them).
TRANSFER_TYPES: Final = frozenset({"TRANSFER"})
# Channels where neither card nor holder is present at a counter or machine: a taken-over
# account is emptied from a laptop or a phone, while big honest spending is often at a till.
REMOTE_CHANNELS: Final = frozenset({"ONLINE", "MOBILE"})

# The field schema v2 adds; v2 is derived from schema.avsc so the schema has one source.
DEVICE_ID_FIELD: Final = "device_id"
V2_EXTRA_FIELDS: Final = (
    {
        "name": DEVICE_ID_FIELD,
        "type": ["null", "string"],
        "default": None,
        "doc": "Added in v2: fingerprint of the device that initiated the payment.",
    },
)


# What each version adds to the one before it (v1 is schema.avsc): the one place that decides
# "v2 adds device_id". The generator, the file writer, the encoder and config read it here.
SCHEMA_ADDITIONS: Final = {2: V2_EXTRA_FIELDS}
TRANSACTION_SCHEMA_VERSIONS: Final = (1, *SCHEMA_ADDITIONS)


def added_field_names(version: int) -> tuple[str, ...]:
    """The fields transaction schema `version` has beyond schema.avsc, in schema order."""
    check_schema_version(version)
    return tuple(f["name"] for v in TRANSACTION_SCHEMA_VERSIONS[1:] if v <= version for f in SCHEMA_ADDITIONS[v])


def check_schema_version(version: int) -> None:
    """Raise SchemaError naming the known versions unless `version` is one of them."""
    if version not in TRANSACTION_SCHEMA_VERSIONS:
        known = ", ".join(map(str, TRANSACTION_SCHEMA_VERSIONS))
        raise SchemaError(f"unknown transaction schema version {version}; known: {known}")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SchemaError(f"cannot read Avro schema {path}: {exc}") from exc


@lru_cache(maxsize=None)
def _transaction_schema_text(version: int) -> str:
    check_schema_version(version)
    schema = _load_json(TRANSACTION_SCHEMA_FILE)
    added = [f for v in TRANSACTION_SCHEMA_VERSIONS[1:] if v <= version for f in SCHEMA_ADDITIONS[v]]
    return json.dumps(dict(schema, fields=[*schema["fields"], *added]) if added else schema)


def transaction_schema(version: int = 1) -> dict[str, Any]:
    """The transaction schema as a dict: v1 is schema.avsc, later versions add SCHEMA_ADDITIONS."""
    return json.loads(_transaction_schema_text(version))


def transaction_schema_str(version: int = 1) -> str:
    """The transaction schema as JSON text, ready to register."""
    return _transaction_schema_text(version)


def label_schema() -> dict[str, Any]:
    """The fraud label schema (label.avsc)."""
    return _load_json(LABEL_SCHEMA_FILE)


def label_schema_str() -> str:
    return json.dumps(label_schema())


def transaction_field_names(version: int = 1) -> tuple[str, ...]:
    return tuple(field["name"] for field in transaction_schema(version)["fields"])


def enum_symbols(field_name: str, version: int = 1) -> tuple[str, ...]:
    """Symbols of an enum field of the transaction schema."""
    for field in transaction_schema(version)["fields"]:
        if field["name"] == field_name and isinstance(field["type"], dict):
            return tuple(field["type"]["symbols"])
    raise SchemaError(f"transaction schema has no enum field {field_name!r}")

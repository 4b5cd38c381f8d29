"""The sink plugin port and the config keys every sink shares (the shipped plugins: plugins.py).

A plugin is a connector class (named as the real one, so configs port both ways): it
declares its config keys, checks cross-key rules, and opens a SinkWriter per task. The
task runtime (task.py) owns consuming, converting, dead-lettering and offsets; the
writer only turns records into rows and makes a batch durable.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

from fraudpipe.connect.configdef import BOOLEAN, CLASS, INT, LIST, LONG, NO_DEFAULT, ConfigDef, ConfigKey, Validation
from fraudpipe.connect.converters import converter_problem
from fraudpipe.connect.transforms import parse_transforms
from fraudpipe.errors import ConnectError

TOLERANCE_NONE, TOLERANCE_ALL = "none", "all"
CONVERTER_PREFIXES = ("key.converter", "value.converter", "header.converter")


class BadRecordError(ConnectError):
    """One record cannot be written (missing key field, wrong shape): tolerable per errors.tolerance."""

    def __init__(self, message: str) -> None:
        super().__init__(message, http_status=400)


class SinkRecord(NamedTuple):
    """A consumed record after its key and value went through the converters (a tuple: built per record)."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    timestamp: int | None = None


class SinkWriter(ABC):
    """Per-task writer: rows from records (pure, may raise BadRecordError), then durable batches."""

    @abstractmethod
    def prepare(self, record: SinkRecord) -> Sequence[tuple[Any, tuple[Any, ...]]]:
        """(target, row) pairs for one record; a target is whatever write() groups by."""

    @abstractmethod
    def write(self, rows: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
        """Write a batch durably; raise StoreError(retriable=...) on failure."""

    def close(self) -> None:
        """Release connections."""


COMMON_KEYS = (
    ConfigKey("name", default=NO_DEFAULT, doc="Globally unique name of the connector."),
    ConfigKey("connector.class", CLASS, NO_DEFAULT, "Name or alias of the connector class."),
    ConfigKey("tasks.max", INT, 1, "Maximum number of tasks (consumers in group connect-<name>).", minimum=1),
    ConfigKey("topics", LIST, [], "Topics to consume; exactly one of topics and topics.regex."),
    ConfigKey("topics.regex", default="", doc="Regular expression of topics to consume."),
    ConfigKey("key.converter", CLASS, None, "Converter of record keys; the worker's default when unset."),
    ConfigKey("value.converter", CLASS, None, "Converter of record values; the worker's default when unset."),
    ConfigKey("header.converter", CLASS, None, "Accepted for compatibility; headers are passed to the DLQ as bytes."),
    ConfigKey("errors.tolerance", default=TOLERANCE_NONE, group="Error Handling", choices=(TOLERANCE_NONE, TOLERANCE_ALL),
              doc="none: the first bad record fails the task; all: bad records are skipped (and dead-lettered)."),
    ConfigKey("errors.deadletterqueue.topic.name", default="", group="Error Handling",
              doc="Topic for records that failed conversion or mapping (with errors.tolerance=all)."),
    ConfigKey("errors.deadletterqueue.topic.replication.factor", INT, 3, group="Error Handling", minimum=1,
              doc="Replication factor of the DLQ topic when the worker creates it (capped by the brokers)."),
    ConfigKey("errors.deadletterqueue.context.headers.enable", BOOLEAN, False, group="Error Handling",
              doc="Add __connect.errors.* headers describing the failure to each DLQ record."),
    ConfigKey("errors.log.enable", BOOLEAN, False, group="Error Handling", doc="Log every tolerated error."),
    ConfigKey("errors.log.include.messages", BOOLEAN, False, group="Error Handling", doc="Include record coordinates in logs."),
    ConfigKey("errors.retry.timeout", LONG, 0, group="Error Handling", doc="Accepted; retriable store errors are retried until they succeed."),
    ConfigKey("errors.retry.delay.max.ms", LONG, 60000, group="Error Handling", doc="Cap of the retry back-off."),
    ConfigKey("transforms", LIST, [], group="Transforms",
              doc="Aliases of single message transforms; this worker runs TimestampConverter$Value to unix."),
    ConfigKey("predicates", LIST, [], group="Predicates", doc="Accepted for compatibility."),
    ConfigKey("config.action.reload", default="restart", choices=("none", "restart"), doc="Accepted for compatibility."),
)
COMMON_DEF = ConfigDef(
    COMMON_KEYS,
    prefixes=tuple(f"{p}." for p in CONVERTER_PREFIXES) + ("consumer.override.", "transforms.", "predicates."),
)


def converter_settings(config: Mapping[str, str], prefix: str) -> dict[str, str]:
    """`<prefix>.*` keys of a config with the prefix stripped (what a converter is configured with)."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in config.items() if k.startswith(start)}


def effective_config(config: Mapping[str, str], worker_defaults: Mapping[str, str]) -> dict[str, str]:
    """The connector config with the worker's converter defaults filled in where it sets none."""
    merged = dict(config)
    for prefix in CONVERTER_PREFIXES:
        if prefix not in config and prefix in worker_defaults:
            merged[prefix] = worker_defaults[prefix]
            for key, value in worker_defaults.items():
                if key.startswith(prefix + "."):
                    merged.setdefault(key, value)
    return merged


class SinkPlugin(ABC):
    """A sink connector class; subclasses add keys, cross-key checks and their writer."""

    class_name: ClassVar[str]
    version: ClassVar[str]
    keys: ClassVar[tuple[ConfigKey, ...]] = ()
    patterns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def config_def(cls) -> ConfigDef:
        return COMMON_DEF.merged(ConfigDef(cls.keys, patterns=cls.patterns))

    @classmethod
    def validate(cls, config: Mapping[str, str]) -> Validation:
        """Every error of a config (after worker defaults), per key."""
        result = cls.config_def().validate(config)
        values = result.values
        topics, regex = values.get("topics") or [], values.get("topics.regex") or ""
        if bool(topics) == bool(regex):
            result.add_error("topics", "Must configure one of topics or topics.regex, and not both")
        if regex:
            try:
                re.compile(regex)
            except re.error as exc:
                result.add_error("topics.regex", f"Invalid regular expression: {exc}")
        dlq = values.get("errors.deadletterqueue.topic.name") or ""
        if dlq and dlq in topics:
            result.add_error("errors.deadletterqueue.topic.name", f"The DLQ topic '{dlq}' may not be included in the list of topics")
        for prefix in ("key.converter", "value.converter"):
            class_name = config.get(prefix)
            if class_name is None:
                result.add_error(prefix, "No converter configured and the worker has no default")
            elif (problem := converter_problem(class_name, converter_settings(config, prefix))) is not None:
                result.add_error(prefix, problem)
        try:
            parse_transforms(config)
        except ValueError as exc:
            result.add_error("transforms", str(exc))
        if not result.errors:
            cls.check(values, config, result)
        return result

    @classmethod
    def check(cls, values: Mapping[str, Any], raw: Mapping[str, str], result: Validation) -> None:
        """Cross-key rules of this connector; add errors to `result`."""

    @classmethod
    @abstractmethod
    def open_writer(cls, values: Mapping[str, Any], raw: Mapping[str, str]) -> SinkWriter:
        """A writer for one task; may raise StoreError when the target cannot be opened."""


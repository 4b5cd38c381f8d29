"""Typed, frozen settings loaded once from config.yml plus FRAUDPIPE_<SECTION>__<KEY> overrides.

Each section is a frozen dataclass; the loader checks every key and type against the
annotations, so a typo or a wrong type fails at start naming the key and the file.
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from fraudpipe.contracts import PROJECT_ROOT, TRANSACTION_SCHEMA_VERSIONS
from fraudpipe.errors import ConfigError
from fraudpipe.producer_config import (  # noqa: F401  (re-exported: the producer's section lives there)
    AmountConfig, BusinessConfig, DormantConfig, FamilyConfig, IntRange, ProducerConfig, Range, SegmentsConfig,
    TrafficConfig, VariantConfig,
)

DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config.yml"
CONFIG_FILE_ENV = "FRAUDPIPE_CONFIG"
ENV_PREFIX = "FRAUDPIPE_"
STACK_SERVICES = ("broker", "registry", "connect", "dashboard")  # what listens on a port in `fraudpipe up`


def port_overrides(ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, str]:
    """The environment overrides that put the embedded stack's services (keys of STACK_SERVICES,
    any subset) on `ports` of `host`, listeners and client addresses alike."""
    unknown = set(ports) - set(STACK_SERVICES)
    if unknown:
        raise ConfigError(f"port_overrides: {sorted(unknown)} are not services of the stack ({', '.join(STACK_SERVICES)})")
    names = {
        "broker": {"KAFKA__BROKER_PORT": "{port}", "KAFKA__BOOTSTRAP_SERVERS": "{host}:{port}"},
        "registry": {"SCHEMA_REGISTRY__PORT": "{port}", "SCHEMA_REGISTRY__URL": "http://{host}:{port}"},
        "connect": {"CONNECT__PORT": "{port}", "CONNECT__URL": "http://{host}:{port}"},
        "dashboard": {"DASHBOARD__PORT": "{port}"},
    }
    return {ENV_PREFIX + key: value.format(host=host, port=port)
            for service, port in ports.items() for key, value in names[service].items()}


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:19092"
    embedded: bool = True
    broker_port: int = 19092
    partitions: int = 2
    session_timeout_ms: int = 6000


@dataclass(frozen=True)
class SchemaRegistryConfig:
    url: str = "http://127.0.0.1:18081"
    port: int = 18081
    data_dir: str = ".fraudpipe/registry"


@dataclass(frozen=True)
class ConnectConfig:
    url: str = "http://127.0.0.1:18083"
    port: int = 18083
    data_dir: str = ".fraudpipe/connect"
    batch_size: int = 5000
    host: str = "127.0.0.1"
    threads: int = 4                      # waitress request threads
    poll_timeout_ms: int = 500            # consume() wait when a topic is idle
    retry_backoff_ms: int = 500           # first back-off of a retriable store error (doubles, capped)
    retry_backoff_max_ms: int = 10000


@dataclass(frozen=True)
class StoreConfig:
    backend: str = "sqlite"
    sqlite_path: str = ".fraudpipe/fraudpipe.db"
    cassandra_contact_points: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 9042
    cassandra_local_dc: str = "datacenter1"
    keyspace: str = "fraudpipe"
    consistency: str = "LOCAL_QUORUM"
    concurrency: int = 64

    def __post_init__(self) -> None:
        if self.backend not in ("sqlite", "cassandra"):
            raise ConfigError(f"store.backend must be 'sqlite' or 'cassandra', got {self.backend!r}")


KAFKA_SOURCES = ("python", "jvm")


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[2]"
    shuffle_partitions: int = 2
    driver_memory: str = "2g"
    # JVM flags of a driver this process launches (spark-submit takes --driver-java-options)
    driver_java_options: str = "-XX:+UseParallelGC"
    # added to those for the driver `fraudpipe train` launches: a short-lived, cold JVM
    train_java_options: str = "-XX:FreqInlineSize=50 -XX:InlineSmallCode=500"
    # the streaming job's long-running driver: its own heap limit, a small initial heap and young generation
    # (ParallelGC otherwise grows a 2g heap towards the limit around a ~70 MB live set)
    stream_driver_memory: str = "1g"
    stream_java_options: str = "-Xms256m -XX:MaxNewSize=64m"
    checkpoint_dir: str = ".fraudpipe/checkpoints/fraud_detection"
    trigger_seconds: float = 2.0
    watermark_seconds: int = 10
    max_records_per_trigger: int = 200000
    reader_schema_version: int = 1  # the transaction schema version the job reads as (2 adds device_id)
    # python: the jar-free Python data source (spark_apps/stream/kafka_source.py); jvm: Spark's
    # spark-sql-kafka-0-10 source with spark-avro's from_avro (spark_apps/stream/jvm_source.py)
    kafka_source: str = "python"
    # jvm only: a directory with the spark-sql-kafka-0-10 and spark-avro jars (at the pyspark
    # version) and their dependencies; "" = spark.jars.packages, resolved from Maven Central
    kafka_jars_dir: str = ""
    # the sender history beside the checkpoint: a full snapshot every this many batches, deltas between
    history_snapshot_batches: int = 50

    def __post_init__(self) -> None:
        if self.watermark_seconds < 0 or self.trigger_seconds < 0 or self.max_records_per_trigger < 0:
            raise ConfigError("spark.watermark_seconds, trigger_seconds and max_records_per_trigger must be >= 0")
        if self.reader_schema_version not in TRANSACTION_SCHEMA_VERSIONS:
            raise ConfigError(f"spark.reader_schema_version must be one of {TRANSACTION_SCHEMA_VERSIONS}, "
                              f"got {self.reader_schema_version}")
        if self.kafka_source not in KAFKA_SOURCES:
            raise ConfigError(f"spark.kafka_source must be one of {', '.join(KAFKA_SOURCES)}, got {self.kafka_source!r}")
        if self.history_snapshot_batches < 1:
            raise ConfigError(f"spark.history_snapshot_batches must be >= 1, got {self.history_snapshot_batches}")


@dataclass(frozen=True)
class DashboardConfig:
    host: str = "127.0.0.1"
    port: int = 18050
    refresh_seconds: int = 5
    threads: int = 4  # waitress worker threads
    default_range_minutes: int = 60
    page_size: int = 50  # alerts per page unless the request asks for another size
    probe_timeout_seconds: float = 1.0  # per request to the registry, Connect or Kafka
    probe_cache_seconds: float = 2.0  # the pipeline page reuses one probe for this long
    stream_stale_seconds: int = 60  # no metrics batch for this long: the stream job is stalled
    quality_labels: int = 1000  # newest labels the quality view evaluates


@dataclass(frozen=True)
class ModelConfig:
    """`fraudpipe train`: KMeans parameters, the evaluation split and where versions live."""

    dir: str = ".fraudpipe/models"
    k: int = 16
    seed: int = 7
    train_transactions: int = 1000000  # `fraudpipe train`: ~125 held-out fraud windows to evaluate on (docs/training.md)
    first_model_transactions: int = 300000  # `fraudpipe up` with no model yet: a first model in about half a minute
    dataset_dir: str = ".fraudpipe/datasets"  # generated training datasets (deterministic, reused)
    max_iter: int = 20
    train_fraction: float = 0.8  # of the minutes: train on the earlier ones, evaluate on the later ones
    # the first minutes of the data only build the sender history: no window of theirs is fitted
    # on, nor chosen the threshold on (at most half of the train minutes; docs/detection.md)
    history_warmup_minutes: float = 30.0
    # `fraudpipe train` (generated data) also evaluates the model on a dataset generated from this
    # shifted producer configuration (its later minutes): metrics.transfer. "" = none.
    transfer_config: str = "benchmarks/detection/shifted.yml"
    transfer_transactions: int = 300000  # size of that shifted dataset
    # the features the model is fitted on: window features (spark_apps.features.FEATURE_NAMES) and
    # per-sender context features (spark_apps.history.CONTEXT_FEATURES). The default is the
    # sender's minute together with the minute before when one burst spans both (pair_*), plus
    # its history: receivers it never paid, its baseline, idle time, the last few minutes (docs/detection.md)
    features: tuple[str, ...] = (
        "pair_tx_count", "pair_total_amount_minor", "pair_distinct_receivers", "pair_max_amount_minor",
        "pair_transfer_count", "pair_remote_amount_minor", "new_receivers", "history_windows", "typical_tx",
        "typical_amount_minor", "idle_minutes", "recent_tx", "recent_amount_minor", "run_tx", "run_amount_minor",
    )
    # fed through log1p before scaling: counts, amounts and durations are heavy-tailed
    log_features: tuple[str, ...] = (
        "pair_tx_count", "pair_total_amount_minor", "pair_distinct_receivers", "pair_max_amount_minor",
        "pair_transfer_count", "pair_remote_amount_minor", "new_receivers", "history_windows", "typical_tx",
        "typical_amount_minor", "idle_minutes", "recent_tx", "recent_amount_minor", "run_tx", "run_amount_minor",
    )
    outlier_distance: float = 0.0  # > 0: also flag windows this far (scaled) from every normal centroid
    tail_k: int = 128  # KMeans clusters fitted on the normal tail (0 = none)
    tail_share: float = 0.05  # the normal train windows farthest from the k normal centroids that form the tail
    fraud_k: int = 32  # KMeans clusters fitted on the labelled fraud windows
    fit_sample: int = 20000  # normal train windows the normal KMeans is fitted on (a uniform sample)
    plot_points: int = 20000  # normal windows sampled into the cluster plot

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ConfigError(f"model.k must be at least 2, got {self.k}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"model.train_fraction must be between 0 and 1, got {self.train_fraction}")
        if self.fraud_k < 1 or self.fit_sample < self.k:
            raise ConfigError(f"model.fraud_k must be >= 1 and model.fit_sample >= model.k, got {self.fraud_k}, {self.fit_sample}")
        if self.history_warmup_minutes < 0:
            raise ConfigError(f"model.history_warmup_minutes must be >= 0, got {self.history_warmup_minutes}")
        if self.transfer_transactions < 1:
            raise ConfigError(f"model.transfer_transactions must be at least 1, got {self.transfer_transactions}")
        if self.tail_k < 0 or not 0.0 <= self.tail_share < 1.0:
            raise ConfigError(f"model.tail_k must be >= 0 and model.tail_share in [0, 1), got {self.tail_k}, {self.tail_share}")


@dataclass(frozen=True)
class StackConfig:
    run_dir: str = ".fraudpipe/run"
    stop_grace_seconds: float = 15.0


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    schema_registry: SchemaRegistryConfig = field(default_factory=SchemaRegistryConfig)
    connect: ConnectConfig = field(default_factory=ConnectConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    producer: ProducerConfig = field(default_factory=ProducerConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    source: str = "<defaults>"

    def path(self, relative: str) -> Path:
        """Resolve a configured path: relative paths are taken from the project root."""
        return project_path(relative)


def project_path(relative: str) -> Path:
    """A configured path resolved against the project root unless it is absolute."""
    candidate = Path(relative).expanduser()
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Parse config.yml (or `path`, or $FRAUDPIPE_CONFIG) and apply env overrides, once."""
    environ = os.environ if environ is None else environ
    file = Path(path or environ.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: top level must be a mapping of sections")
    overrides = _apply_env_overrides(raw, environ, file)
    _check_override_keys(overrides)
    raw.pop("source", None)
    try:
        return _build(Config, {**raw, "source": str(file)}, prefix="", file=file)
    except ConfigError as exc:
        raise _naming_override(exc, overrides) from None
    except (TypeError, ValueError) as exc:  # a __post_init__ check
        raise ConfigError(f"{file}: {exc}") from exc


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str], file: Path) -> dict[str, str]:
    """Set every FRAUDPIPE_<SECTION>__<KEY> variable into `raw`; {dotted key: variable name} of those set."""
    overrides: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == CONFIG_FILE_ENV:
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment override {name}: {key} is not a section in {file}")
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment override {name}: not a valid value: {exc}") from exc
        overrides[".".join(keys)] = name
    return overrides


def _check_override_keys(overrides: Mapping[str, str]) -> None:
    """An override naming no config key is the variable's mistake, not config.yml's: name the variable."""
    for dotted, name in sorted(overrides.items()):
        keys, cls, i = dotted.split("."), Config, 0
        while i < len(keys):
            if typing.get_origin(cls) is dict:  # a free key (e.g. a pattern's name), then the value's type
                cls, i = typing.get_args(cls)[1], i + 1
                continue
            if not dataclasses.is_dataclass(cls):
                break
            fields = {f.name for f in dataclasses.fields(cls)}
            if keys[i] not in fields:
                where = ".".join(keys[:i]) or "top level"
                raise ConfigError(f"environment variable {name}: unknown key {dotted}; "
                                  f"known keys in {where}: {', '.join(sorted(fields))}")
            cls, i = typing.get_type_hints(cls)[keys[i]], i + 1


def _naming_override(exc: ConfigError, overrides: Mapping[str, str]) -> ConfigError:
    """`exc`, naming the environment variable when the key it is about was set by one."""
    message = str(exc)
    for dotted, name in overrides.items():
        if re.search(rf"(?<![\w.]){re.escape(dotted)}(?![\w.])", message):
            return ConfigError(f"{message} (set by environment variable {name})")
    return exc


def _build(cls: type, data: Any, *, prefix: str, file: Path) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: {where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{file}: unknown key {prefix}{unknown[0]!s}"
            + (f" (and {', '.join(prefix + u for u in unknown[1:])})" if len(unknown) > 1 else "")
            + f"; known keys in {where}: {', '.join(sorted(known))}"
        )
    values = {name: _coerce(hints[name], value, key=f"{prefix}{name}", file=file) for name, value in data.items()}
    return cls(**values)


def _range(hint: type, value: Any, *, key: str, file: Path) -> Any:
    """A scalar (a fixed value) or a [lo, hi] list, as a Range/IntRange."""
    item = int if hint is IntRange else float
    values = value if isinstance(value, list) else [value, value]
    if len(values) != 2:
        raise ConfigError(f"{file}: {key} must be a number or a [lo, hi] list, got {value!r}")
    lo, hi = (_coerce(item, v, key=key, file=file) for v in values)
    if lo > hi:
        raise ConfigError(f"{file}: {key} must be [lo, hi] with lo <= hi, got {value!r}")
    return hint(lo, hi)


def _coerce(hint: Any, value: Any, *, key: str, file: Path) -> Any:
    if hint in (Range, IntRange):
        return _range(hint, value, key=key, file=file)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=f"{key}.", file=file)
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{file}: {key} must be a list, got {value!r}")
        return tuple(_coerce(item_type, item, key=f"{key}[{i}]", file=file) for i, item in enumerate(value))
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {key} must be a mapping, got {value!r}")
        return types.MappingProxyType(
            {str(k): _coerce(value_type, v, key=f"{key}.{k}", file=file) for k, v in value.items()}
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{file}: {key} must be {hint.__name__}, got {value!r}")

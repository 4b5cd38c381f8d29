"""`com.datastax.oss.kafka.sink.CassandraSinkConnector` semantics, written with cassandra-driver.

Config keys are the DataStax connector's: `contactPoints`, `port`, `loadBalancing.localDc`,
and per topic and table `topic.<topic>.<keyspace>.<table>.mapping` (`col=value.field,
col=key, __ttl=value.f, __timestamp=value.f`), `.consistencyLevel`, `.ttl`,
`.ttlTimeUnit`, `.timestampTimeUnit`, `.nullToUnset`, and `.query`: a CQL statement of
your own whose named bind variables (`:name`) are the mapping's names (for example a day
bucket computed by `toDate((timestamp) :labeled_at)`). A topic may feed several tables.
Parsing and mapping into CQL are pure functions; only CassandraWriter needs a cluster.
Null values (deletes) are not supported: such records are bad records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from fraudpipe.connect.configdef import BOOLEAN, INT, LIST, PASSWORD, ConfigKey, Validation
from fraudpipe.connect.plugin import BadRecordError, SinkPlugin, SinkRecord, SinkWriter
from fraudpipe.errors import ConnectError, StoreError

CONSISTENCY_LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
                      "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE")
TIME_UNITS = {"NANOSECONDS": 1e-9, "MICROSECONDS": 1e-6, "MILLISECONDS": 1e-3, "SECONDS": 1.0,
              "MINUTES": 60.0, "HOURS": 3600.0, "DAYS": 86400.0}
TABLE_SETTINGS = {"mapping", "consistencyLevel", "ttl", "ttlTimeUnit", "timestampTimeUnit", "nullToUnset",
                  "deletesEnabled", "query"}
TTL_COLUMN, TIMESTAMP_COLUMN = "__ttl", "__timestamp"
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w]*)'
_ENTRY = re.compile(rf'\s*(?P<col>{_IDENT})\s*=\s*(?P<expr>[^,]+?)\s*(?:,|$)')
_EXPR = re.compile(r'(?P<root>key|value|header)(?:\.(?P<path>.+))?|(?P<now>now\(\))')


@dataclass(frozen=True)
class ColumnSource:
    """Where a column's value comes from: root key|value|header|now, and a field path."""

    root: str
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableMapping:
    """One `topic.<topic>.<keyspace>.<table>.*` group: the columns and how the row is written."""

    topic: str
    keyspace: str
    table: str
    columns: tuple[tuple[str, ColumnSource], ...]  # regular columns, in mapping order
    ttl_source: ColumnSource | None = None
    timestamp_source: ColumnSource | None = None
    consistency: str = "LOCAL_ONE"
    ttl: int = -1
    ttl_unit: str = "SECONDS"
    timestamp_unit: str = "MICROSECONDS"
    null_to_unset: bool = True
    query: str | None = None  # a custom statement with named bind variables, instead of the INSERT

    def cql(self) -> str:
        """The prepared INSERT (an upsert in Cassandra) this mapping writes with, or its custom query."""
        if self.query is not None:
            return self.query
        names = [name for name, _ in self.columns]
        using = []
        if self.ttl_source is not None:
            using.append("TTL ?")
        elif self.ttl >= 0:
            using.append(f"TTL {self.ttl}")
        if self.timestamp_source is not None:
            using.append("TIMESTAMP ?")
        text = (f"INSERT INTO {self.keyspace}.{self.table} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})")
        return text + (f" USING {' AND '.join(using)}" if using else "")

    def bind(self, record: SinkRecord, *, unset: Any = None) -> tuple[Any, ...] | dict[str, Any]:
        """The values bound to cql() for one record; None becomes `unset` when nullToUnset.

        A custom query binds by name (a variable may occur twice in it); the INSERT by position.
        """
        values = [resolve(source, record) for _, source in self.columns]
        if self.null_to_unset:
            values = [unset if v is None else v for v in values]
        if self.query is not None:
            return {_unquote(name): value for (name, _), value in zip(self.columns, values)}
        if self.ttl_source is not None:
            raw = resolve(self.ttl_source, record)
            values.append(None if raw is None else int(float(raw) * TIME_UNITS[self.ttl_unit]))
        if self.timestamp_source is not None:
            raw = resolve(self.timestamp_source, record)
            values.append(None if raw is None else _micros(raw, self.timestamp_unit))
        return tuple(values)


def _micros(raw: Any, unit: str) -> int:
    if hasattr(raw, "timestamp"):
        return int(raw.timestamp() * 1_000_000)
    return int(float(raw) * TIME_UNITS[unit] * 1_000_000)


def resolve(source: ColumnSource, record: SinkRecord) -> Any:
    """A column's value from a record; BadRecordError when a mapped field is absent."""
    if source.root == "now":
        import uuid

        return uuid.uuid1()
    node: Any = record.key if source.root == "key" else record.value
    for part in source.path:
        if not isinstance(node, dict) or part not in node:
            raise BadRecordError(f"{source.root}.{'.'.join(source.path)} is not in the record (topic {record.topic})")
        node = node[part]
    return node


def _unquote(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def parse_mapping(text: str) -> list[tuple[str, ColumnSource]]:
    """`col=value.f, col2=key, "Odd col"=header.h` into (column, source) pairs; ValueError says why not."""
    entries: list[tuple[str, ColumnSource]] = []
    position, text = 0, text.strip()
    if not text:
        raise ValueError("mapping is empty")
    while position < len(text):
        match = _ENTRY.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot parse mapping at character {position}: {text[position:position + 30]!r}")
        position = match.end()
        column, expr = match["col"], match["expr"].strip()
        parsed = _EXPR.fullmatch(expr)
        if parsed is None:
            raise ValueError(f"column {column}: {expr!r} is not key, key.<field>, value, value.<field>, header.<name> or now()")
        if parsed["now"]:
            source = ColumnSource("now")
        else:
            path = tuple(_unquote(p) for p in re.findall(_IDENT, parsed["path"])) if parsed["path"] else ()
            source = ColumnSource(parsed["root"], path)
        entries.append((column if column.startswith('"') else column.lower(), source))
    names = [c for c, _ in entries]
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise ValueError(f"columns mapped twice: {', '.join(duplicates)}")
    return entries


def table_settings(config: Mapping[str, str], topics: Sequence[str]) -> dict[tuple[str, str, str], dict[str, str]]:
    """`topic.<topic>.<ks>.<table>.<setting>` keys grouped by (topic, ks, table); ValueError for strays."""
    groups: dict[tuple[str, str, str], dict[str, str]] = {}
    ordered = sorted(topics, key=len, reverse=True)  # topic names may contain dots: longest match wins
    for key, value in config.items():
        if not key.startswith("topic."):
            continue
        rest = key[len("topic."):]
        topic = next((t for t in ordered if rest.startswith(t + ".")), None)
        if topic is None:
            raise ValueError(f"{key}: names a topic that is not in `topics`")
        parts = rest[len(topic) + 1:].split(".")
        if parts[0] == "codec":
            continue  # codec.* settings are accepted; values are written as the converters typed them
        if len(parts) != 3 or parts[2] not in TABLE_SETTINGS:
            raise ValueError(f"{key}: expected topic.{topic}.<keyspace>.<table>.<{'|'.join(sorted(TABLE_SETTINGS))}>")
        groups.setdefault((topic, parts[0], parts[1]), {})[parts[2]] = str(value)
    return groups


def parse_mappings(config: Mapping[str, str], topics: Sequence[str]) -> list[TableMapping]:
    """Every TableMapping of a connector config; ValueError names the offending key."""
    mappings = []
    groups = table_settings(config, topics)
    for (topic, keyspace, table), settings in groups.items():
        prefix = f"topic.{topic}.{keyspace}.{table}"
        if "mapping" not in settings:
            raise ValueError(f"{prefix}.mapping is missing")
        try:
            entries = parse_mapping(settings["mapping"])
        except ValueError as exc:
            raise ValueError(f"{prefix}.mapping: {exc}") from None
        query = settings.get("query")
        if query is not None:
            check_query(prefix, query, entries, settings)
        consistency = settings.get("consistencyLevel", "LOCAL_ONE").upper()
        if consistency not in CONSISTENCY_LEVELS:
            raise ValueError(f"{prefix}.consistencyLevel: {consistency} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        units = {k: settings.get(k, d).upper() for k, d in (("ttlTimeUnit", "SECONDS"), ("timestampTimeUnit", "MICROSECONDS"))}
        for name, unit in units.items():
            if unit not in TIME_UNITS:
                raise ValueError(f"{prefix}.{name}: {unit} is not a time unit")
        try:
            ttl = int(settings.get("ttl", "-1"))
        except ValueError:
            raise ValueError(f"{prefix}.ttl: not an integer: {settings['ttl']!r}") from None
        null_to_unset = settings.get("nullToUnset", "true").strip().lower()
        if null_to_unset not in ("true", "false"):
            raise ValueError(f"{prefix}.nullToUnset: expected true or false")
        specials = dict(entries)
        mappings.append(TableMapping(
            topic=topic, keyspace=keyspace, table=table,
            columns=tuple((c, s) for c, s in entries if c not in (TTL_COLUMN, TIMESTAMP_COLUMN)),
            ttl_source=specials.get(TTL_COLUMN), timestamp_source=specials.get(TIMESTAMP_COLUMN),
            consistency=consistency, ttl=ttl, ttl_unit=units["ttlTimeUnit"],
            timestamp_unit=units["timestampTimeUnit"], null_to_unset=null_to_unset == "true",
            query=query.strip().rstrip(";") if query is not None else None,
        ))
    unmapped = [t for t in topics if not any(m.topic == t for m in mappings)]
    if unmapped:
        raise ValueError(f"topic.{unmapped[0]}.<keyspace>.<table>.mapping is missing for topic {unmapped[0]}")
    return mappings


_BIND_VARIABLE = re.compile(r"(?<![:\w]):(\w+)")


def check_query(prefix: str, query: str, entries: list[tuple[str, ColumnSource]], settings: Mapping[str, str]) -> None:
    """A custom query binds exactly the mapping's names; TTL and timestamp go in its USING clause."""
    names = {_unquote(name) for name, _ in entries}
    if names & {TTL_COLUMN, TIMESTAMP_COLUMN} or "ttl" in settings:
        raise ValueError(f"{prefix}.query: with a query, set TTL and TIMESTAMP in its USING clause, not in the mapping or .ttl")
    variables = set(_BIND_VARIABLE.findall(query))
    if not variables:
        raise ValueError(f"{prefix}.query: no named bind variables (:name) in {query!r}")
    if variables != names:
        missing, extra = sorted(variables - names), sorted(names - variables)
        raise ValueError(f"{prefix}.query: bind variables and mapping differ (unmapped: {', '.join(missing) or '-'}; "
                         f"not in the query: {', '.join(extra) or '-'})")


class CassandraWriter(SinkWriter):
    """Prepared INSERTs per mapping, written concurrently; a batch is durable when all succeed."""

    def __init__(self, values: Mapping[str, Any], mappings: list[TableMapping]) -> None:
        try:
            import cassandra.cluster
            import cassandra.concurrent
            import cassandra.policies
            import cassandra.query
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConnectError("the Cassandra sink needs cassandra-driver: pip install 'fraudpipe[cassandra]'") from exc
        self._driver = cassandra
        self._unset = cassandra.query.UNSET_VALUE
        self._concurrency = max(1, min(values["maxConcurrentRequests"], 512))
        points = values["contactPoints"] or ["127.0.0.1"]
        policy = cassandra.policies.DCAwareRoundRobinPolicy(local_dc=values["loadBalancing.localDc"] or None)
        try:
            self._cluster = cassandra.cluster.Cluster(points, port=values["port"], protocol_version=5,
                                                      load_balancing_policy=cassandra.policies.TokenAwarePolicy(policy))
            self._session = self._cluster.connect()
            self._by_topic: dict[str, list[tuple[TableMapping, Any]]] = {}
            for mapping in mappings:
                statement = self._session.prepare(mapping.cql())
                statement.consistency_level = cassandra.ConsistencyLevel.name_to_value[mapping.consistency]
                self._by_topic.setdefault(mapping.topic, []).append((mapping, statement))
        except Exception as exc:  # driver errors: NoHostAvailable, InvalidRequest (unknown table) ...
            raise StoreError(f"Cassandra sink cannot start against {points}:{values['port']}: {exc}", retriable=True) from exc

    def prepare(self, record: SinkRecord) -> Sequence[tuple[Any, tuple[Any, ...]]]:
        if record.value is None:
            raise BadRecordError(f"null value on {record.topic}: deletes are not supported by this worker")
        return [(statement, mapping.bind(record, unset=self._unset)) for mapping, statement in self._by_topic.get(record.topic, [])]

    def write(self, rows: Sequence[tuple[Any, tuple[Any, ...]]]) -> None:
        if not rows:
            return
        results = self._driver.concurrent.execute_concurrent(
            self._session, list(rows), concurrency=self._concurrency, raise_on_first_error=False)
        failures = [result for ok, result in results if not ok]
        if failures:
            invalid = isinstance(failures[0], self._driver.InvalidRequest)
            raise StoreError(f"{len(failures)} of {len(rows)} Cassandra writes failed, first: {failures[0]!r}",
                             retriable=not invalid)

    def close(self) -> None:
        self._cluster.shutdown()


class CassandraSinkConnector(SinkPlugin):
    """The DataStax Apache Kafka Connector's config and semantics."""

    class_name = "com.datastax.oss.kafka.sink.CassandraSinkConnector"
    version = "1.4.0-fraudpipe"
    keys = (
        ConfigKey("contactPoints", LIST, [], group="Connection", doc="Cassandra hosts; empty = 127.0.0.1."),
        ConfigKey("port", INT, 9042, group="Connection", minimum=1),
        ConfigKey("loadBalancing.localDc", default="", group="Connection", doc="Required with contactPoints."),
        ConfigKey("maxConcurrentRequests", INT, 500, group="Performance", minimum=1),
        ConfigKey("maxNumberOfRecordsInBatch", INT, 32, group="Performance", minimum=1),
        ConfigKey("queryExecutionTimeout", INT, 30, group="Performance", minimum=1),
        ConfigKey("connectionPoolLocalSize", INT, 4, group="Performance", minimum=1),
        ConfigKey("jmx", BOOLEAN, True),
        ConfigKey("compression", default="None", choices=("None", "LZ4", "Snappy")),
        ConfigKey("ignoreErrors", default="None", choices=("None", "Driver", "All", "true", "false")),
        ConfigKey("auth.provider", default="None", group="Auth", choices=("None", "PLAIN", "GSSAPI")),
        ConfigKey("auth.username", default="", group="Auth"),
        ConfigKey("auth.password", PASSWORD, "", group="Auth"),
        ConfigKey("ssl.provider", default="None", group="SSL", choices=("None", "JDK", "OpenSSL")),
        ConfigKey("cloud.secureConnectBundle", default="", group="Connection"),
    )
    patterns = (r"topic\..+", r"datastax-java-driver\..+", r"ssl\..+", r"auth\.gssapi\..+")

    @classmethod
    def check(cls, values: Mapping[str, Any], raw: Mapping[str, str], result: Validation) -> None:
        if values["contactPoints"] and not values["loadBalancing.localDc"]:
            result.add_error("loadBalancing.localDc", "required when contactPoints is set")
        if values["auth.provider"] != "None":
            result.add_error("auth.provider", "authentication is not supported by this worker")
        if values["topics.regex"]:
            result.add_error("topics.regex", "the Cassandra sink maps named topics: use topics")
            return
        try:
            parse_mappings(raw, values["topics"])
        except ValueError as exc:
            key = str(exc).split(":", 1)[0].split(" ", 1)[0]
            result.add_error(key if key.startswith("topic.") else "topics", str(exc))

    @classmethod
    def open_writer(cls, values: Mapping[str, Any], raw: Mapping[str, str]) -> SinkWriter:
        return CassandraWriter(values, parse_mappings(raw, values["topics"]))

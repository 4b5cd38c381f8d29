"""Reads cassandra/init.cql, the one definition of the tables, into table/column specs.

Only the subset of CQL that init.cql uses is understood: CREATE TABLE with scalar
columns, a PRIMARY KEY of partition and clustering columns, and CLUSTERING ORDER.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fraudpipe.contracts import CQL_FILE
from fraudpipe.errors import StoreError

_TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS\s+(?P<ks>\w+)\.(?P<name>\w+)\s*\((?P<body>.*?)\)\s*(?:WITH (?P<opts>[^;]*))?;",
    re.S | re.I,
)
_PRIMARY_KEY = re.compile(r"PRIMARY KEY\s*\(\s*\((?P<partition>[^)]*)\)\s*(?:,(?P<clustering>[^)]*))?\)", re.I)
_ORDER = re.compile(r"CLUSTERING ORDER BY\s*\((?P<order>[^)]*)\)", re.I)


@dataclass(frozen=True)
class TableSpec:
    keyspace: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, CQL type) in declaration order
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...]
    descending: frozenset[str]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def parse_cql(text: str) -> dict[str, TableSpec]:
    tables: dict[str, TableSpec] = {}
    for match in _TABLE.finditer(_strip_comments(text)):
        body = match["body"]
        key = _PRIMARY_KEY.search(body)
        if key is None:
            raise StoreError(f"init.cql: table {match['name']} has no PRIMARY KEY ((...), ...) clause")
        columns = []
        for line in body[: key.start()].split(","):
            parts = line.split()
            if len(parts) == 2:
                columns.append((parts[0], parts[1].lower()))
        order = _ORDER.search(match["opts"] or "")
        descending = frozenset(
            part.split()[0] for part in (order["order"].split(",") if order else []) if part.split()[1].upper() == "DESC"
        )
        split = lambda names: tuple(n.strip() for n in (names or "").split(",") if n.strip())  # noqa: E731
        tables[match["name"]] = TableSpec(
            keyspace=match["ks"],
            name=match["name"],
            columns=tuple(columns),
            partition_key=split(key["partition"]),
            clustering=split(key["clustering"]),
            descending=descending,
        )
    return tables


@lru_cache(maxsize=None)
def table_specs(path: Path = CQL_FILE) -> dict[str, TableSpec]:
    """Table specs from init.cql, parsed once."""
    try:
        return parse_cql(path.read_text())
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc

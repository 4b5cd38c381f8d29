"""SQLite tables are derived from cassandra/init.cql; check the result, table by table."""
import sqlite3
from pathlib import Path

from fraudpipe import contracts
from fraudpipe.store.cql import table_specs
from fraudpipe.store.sqlite import SqliteStore


def test_sqlite_declares_the_same_tables_and_columns_as_init_cql(tmp_path: Path):
    SqliteStore(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    sqlite_tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    specs = table_specs()
    assert sqlite_tables == set(specs) == set(contracts.ALL_TABLES)
    for name, spec in specs.items():
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({name})")]
        key = [row[1] for row in sorted(conn.execute(f"PRAGMA table_info({name})"), key=lambda r: r[5]) if row[5]]
        assert columns == list(spec.column_names), name
        assert key == list(spec.primary_key), name


def test_raw_table_columns_cover_the_avro_schema():
    columns = set(table_specs()[contracts.TRANSACTIONS_TABLE].column_names)
    assert set(contracts.transaction_field_names(1)) <= columns


def test_label_table_columns_are_the_label_schema():
    columns = set(table_specs()[contracts.LABELS_TABLE].column_names)
    assert {f["name"] for f in contracts.label_schema()["fields"]} == columns


def test_every_cassandra_read_names_its_partition_key():
    """Each SELECT in CassandraStore's source filters on the whole partition key first; none needs ALLOW FILTERING.

    A static first line; tests/integration/dashboard/test_cassandra_partition_reads.py checks
    the statements really prepared on Cassandra for every dashboard query."""
    import inspect
    import re

    from fraudpipe.store import cassandra

    source = inspect.getsource(cassandra)
    selects = re.findall(r'SELECT \* FROM \{(\w+)\}( WHERE (\w+) = \?)?', source)
    assert len(selects) >= 7
    constants = vars(contracts)
    specs = table_specs()
    for constant, where, column in selects:
        if constant == "table" and not where:
            continue  # _scan: the paged full-table scan behind scan_transactions/scan_labels (training input)
        spec = specs[constants[constant]]
        assert (column,) == spec.partition_key, (spec.name, column)
    assert "ALLOW FILTERING" not in source.upper()

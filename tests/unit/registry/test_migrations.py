"""The registry's SQLite migrations: a data dir from before references opens, keeps its data and gains them."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fraudpipe.errors import RegistryError
from fraudpipe.registry.migrations import LATEST, MIGRATIONS, migrate, user_version
from fraudpipe.registry.service import Registry, SchemaRequest
from fraudpipe.registry.storage import DB_FILE, RegistryStorage


def first_release_data_dir(path: Path) -> None:
    """A data dir as the registry wrote it before migrations: the tables of migration 1, user_version 0."""
    db = sqlite3.connect(path / DB_FILE, isolation_level=None)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO schemas (id, schema_type, schema) VALUES (7, 'AVRO', ?)",
               (json.dumps({"type": "record", "name": "Address", "fields": [{"name": "street", "type": "string"}]},
                           separators=(",", ":")),))
    db.execute("INSERT INTO versions (subject, version, schema_id, deleted) VALUES ('address', 1, 7, 0)")
    db.execute("INSERT INTO settings (kind, subject, value) VALUES ('compatibility', '', 'FULL')")
    assert user_version(db) == 0
    db.close()


def test_a_first_release_data_dir_keeps_its_data_and_gains_references(tmp_path: Path) -> None:
    first_release_data_dir(tmp_path)
    registry = Registry(RegistryStorage(tmp_path))
    assert registry.get_version("address", 1).schema_id == 7
    assert registry.compatibility() == "FULL"
    customer = {"type": "record", "name": "Customer", "fields": [{"name": "home", "type": "Address"}]}
    body = {"schema": json.dumps(customer), "references": [{"name": "Address", "subject": "address", "version": 1}]}
    new_id = registry.register("customer", SchemaRequest.from_body(body))
    assert new_id > 7 and registry.referenced_by("address", 1) == [new_id]
    registry.storage.close()
    db = sqlite3.connect(tmp_path / DB_FILE)
    assert user_version(db) == LATEST == 2
    db.close()


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    assert migrate(db, tmp_path) == LATEST
    tables = db.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(db, tmp_path) == LATEST
    assert db.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall() == tables
    db.close()


def test_a_data_dir_from_a_newer_release_is_refused_not_touched(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    with pytest.raises(RegistryError, match="newer than the 2 this fraudpipe knows"):
        RegistryStorage(tmp_path)
    db = sqlite3.connect(tmp_path / DB_FILE)
    assert user_version(db) == LATEST + 1
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    db.close()

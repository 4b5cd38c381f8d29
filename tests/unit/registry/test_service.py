"""Registry rules over a real SQLite file, without HTTP: versions, names, ids across reopening."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudpipe.errors import RegistryError
from fraudpipe.registry.service import LATEST, Registry, SchemaRequest, check_subject_name, parse_version
from fraudpipe.registry.storage import RegistryStorage


def request(schema: object) -> SchemaRequest:
    return SchemaRequest.from_body({"schema": json.dumps(schema)})


@pytest.mark.parametrize(("raw", "parsed"), [("latest", LATEST), ("-1", LATEST), ("1", 1), ("2147483647", 2**31 - 1)])
def test_valid_versions(raw: str, parsed: object) -> None:
    assert parse_version(raw) == parsed


@pytest.mark.parametrize("raw", ["0", "-2", "2147483648", "Latest", "1.0", "", "one"])
def test_invalid_versions_are_42202(raw: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_version(raw)
    assert info.value.error_code == 42202


@pytest.mark.parametrize("name", ["", " ", "a\nb", "tab\there", "nul\x00"])
def test_subject_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        check_subject_name(name)
    assert info.value.error_code == 42208


@pytest.mark.parametrize("references", [
    "x", {"name": "x"}, [None], [{"name": "x", "subject": "y"}], [{"name": "", "subject": "y", "version": 1}],
    [{"name": "x", "subject": "y", "version": "1"}], [{"name": "x", "subject": "y", "version": True}],
])
def test_malformed_references_are_42201(references: object) -> None:
    with pytest.raises(RegistryError) as info:
        SchemaRequest.from_body({"schema": '"string"', "references": references})
    assert info.value.error_code == 42201


def test_bad_ids_are_refused() -> None:
    with pytest.raises(RegistryError) as info:
        SchemaRequest.from_body({"schema": '"string"', "id": "seven"})
    assert info.value.error_code == 422


def test_ids_and_versions_survive_reopening_and_are_not_reused(tmp_path: Path) -> None:
    registry = Registry(RegistryStorage(tmp_path))
    first = registry.register("s-value", request("string"))
    second = registry.register("s-value", request(["null", "string"]))
    registry.delete_subject("s-value", permanent=False)
    registry.delete_subject("s-value", permanent=True)
    registry.storage.close()

    reopened = Registry(RegistryStorage(tmp_path))
    assert reopened.subjects(deleted=True) == []
    third = reopened.register("t-value", request("long"))
    assert third > max(first, second)
    assert reopened.register("t-value", request("long")) == third
    assert reopened.versions("t-value") == [1]

import fastavro
import pytest

from fraudpipe import contracts
from fraudpipe.errors import SchemaError


def test_schemas_parse_and_carry_no_label():
    for schema in (contracts.transaction_schema(1), contracts.transaction_schema(2), contracts.label_schema()):
        fastavro.parse_schema(schema)
    names = contracts.transaction_field_names(1)
    assert not any("fraud" in n or "label" in n for n in names)


def test_v2_only_adds_optional_fields():
    v1, v2 = contracts.transaction_field_names(1), contracts.transaction_field_names(2)
    assert v2[: len(v1)] == v1
    for field in contracts.transaction_schema(2)["fields"][len(v1):]:
        assert "default" in field


def test_money_is_exact():
    types = {f["name"]: f["type"] for f in contracts.transaction_schema(1)["fields"]}
    assert types["amount_minor"] == "long"


def test_failed_statuses_exist_in_schema():
    assert contracts.FAILED_STATUSES <= set(contracts.enum_symbols("status"))


def test_each_version_adds_its_fields_to_schema_avsc_once():
    v1 = [f["name"] for f in contracts.transaction_schema(1)["fields"]]
    assert contracts.added_field_names(1) == ()
    assert contracts.added_field_names(2) == ("device_id",)
    assert [f["name"] for f in contracts.transaction_schema(2)["fields"]] == [*v1, "device_id"]


def test_an_unknown_schema_version_names_the_known_ones():
    with pytest.raises(SchemaError, match="unknown transaction schema version 3; known: 1, 2"):
        contracts.added_field_names(3)

"""Schema references over a real SQLite file, without HTTP: resolution, identity, compatibility, deletes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from fraudpipe.errors import RegistryError
from fraudpipe.registry.records import Reference
from fraudpipe.registry.service import Registry, SchemaRequest
from fraudpipe.registry.storage import RegistryStorage

NS = "com.example.shared"


def record(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": NS, "fields": list(fields)}


ADDRESS = record("Address", {"name": "street", "type": "string"})
ADDRESS_WITH_CITY = record("Address", {"name": "street", "type": "string"}, {"name": "city", "type": "string"})
ADDRESS_WITH_ZIP = record("Address", {"name": "street", "type": "string"},
                          {"name": "zip", "type": ["null", "string"], "default": None})
CUSTOMER = record("Customer", {"name": "id", "type": "string"}, {"name": "home", "type": "Address"})


def request(schema: Any, *references: tuple[str, str, int]) -> SchemaRequest:
    return SchemaRequest.from_body({
        "schema": json.dumps(schema),
        "references": [{"name": name, "subject": subject, "version": version} for name, subject, version in references],
    })


def error_code(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(RegistryError) as info:
        call(*args, **kwargs)
    return info.value.error_code


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(RegistryStorage(tmp_path))
    yield registry
    registry.storage.close()


def test_a_schema_uses_a_type_defined_in_another_subject(registry: Registry) -> None:
    registry.register("address", request(ADDRESS))
    customer = registry.register("customer-value", request(CUSTOMER, (f"{NS}.Address", "address", 1)))
    row = registry.get_version("customer-value", 1)
    assert row.schema_id == customer and row.references == (Reference(f"{NS}.Address", "address", 1),)
    assert registry.references_of_id(customer) == row.references
    assert registry.referenced_by("address", 1) == [customer]
    # Without the reference the same text names a type nobody defined.
    assert error_code(registry.register, "other-value", request(CUSTOMER)) == 42201


def test_references_resolve_transitively_and_latest_is_pinned(registry: Registry) -> None:
    registry.register("address", request(ADDRESS))
    registry.register("address", request(ADDRESS_WITH_ZIP))
    customer = registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", -1)))
    assert registry.get_version("customer", 1).references == (Reference(f"{NS}.Address", "address", 2),)
    # Order refers to Customer only; Customer's own reference brings Address along.
    order = record("Order", {"name": "buyer", "type": "Customer"})
    order_id = registry.register("order-value", request(order, (f"{NS}.Customer", "customer", 1)))
    assert registry.referenced_by("customer", 1) == [order_id]
    assert registry.referenced_by("address", 2) == [customer] and registry.referenced_by("address", 1) == []


def test_a_missing_target_is_42201_naming_it(registry: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "nowhere", 3)))
    assert info.value.error_code == 42201
    assert 'No schema reference found for subject "nowhere" and version 3' in str(info.value)


def test_same_text_with_other_references_is_another_schema(registry: Registry) -> None:
    registry.register("address-a", request(ADDRESS))
    registry.register("address-b", request(ADDRESS))
    via_a = registry.register("customer-1", request(CUSTOMER, (f"{NS}.Address", "address-a", 1)))
    via_b = registry.register("customer-2", request(CUSTOMER, (f"{NS}.Address", "address-b", 1)))
    assert via_a != via_b
    # Same text and references: the same id in any subject, and no new version in its own.
    assert registry.register("customer-3", request(CUSTOMER, (f"{NS}.Address", "address-a", 1))) == via_a
    assert registry.register("customer-1", request(CUSTOMER, (f"{NS}.Address", "address-a", 1))) == via_a
    assert registry.versions("customer-1") == [1]
    # A new reference under the same text is a new version of the subject.
    assert registry.register("customer-1", request(CUSTOMER, (f"{NS}.Address", "address-b", 1))) == via_b
    assert registry.versions("customer-1") == [1, 2]
    # Lookup matches text and references.
    found = registry.lookup("customer-1", request(CUSTOMER, (f"{NS}.Address", "address-b", 1)))
    assert (found.version, found.schema_id) == (2, via_b)
    assert error_code(registry.lookup, "customer-3", request(CUSTOMER, (f"{NS}.Address", "address-b", 1))) == 40403


def test_compatibility_checks_see_the_referenced_types(registry: Registry) -> None:
    registry.register("address", request(ADDRESS))
    registry.register("address", request(ADDRESS_WITH_ZIP))  # v2: an optional field, compatible
    registry.set_compatibility("NONE", "address")
    registry.register("address", request(ADDRESS_WITH_CITY))  # v3: a required field
    registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", 1)))
    # Same Customer text, but its Address gains a required field: old data has no city (BACKWARD).
    assert registry.test_compatibility("customer", request(CUSTOMER, (f"{NS}.Address", "address", 3)), None)
    assert error_code(registry.register, "customer", request(CUSTOMER, (f"{NS}.Address", "address", 3))) == 409
    assert registry.test_compatibility("customer", request(CUSTOMER, (f"{NS}.Address", "address", 2)), None) == []
    assert registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", 2))) > 0
    assert registry.versions("customer") == [1, 2]


def test_a_referenced_version_cannot_be_deleted_until_its_referrers_are(registry: Registry) -> None:
    registry.register("address", request(ADDRESS))
    customer = registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", 1)))
    assert error_code(registry.delete_version, "address", 1, permanent=False) == 42206
    assert error_code(registry.delete_subject, "address", permanent=False) == 42206
    registry.delete_subject("customer", permanent=False)
    assert registry.referenced_by("address", 1) == [] and registry.referenced_by("address", 1, deleted=True) == [customer]
    # No live referrer: a soft delete goes through, but the soft-deleted referrer can still be
    # read, so what it references stays until it is gone for good.
    assert registry.delete_version("address", 1, permanent=False) == 1
    assert error_code(registry.delete_version, "address", 1, permanent=True) == 42206
    assert error_code(registry.delete_subject, "address", permanent=True) == 42206
    # A new schema may not reference a soft-deleted version; reading and checks still resolve it.
    assert error_code(registry.register, "customer-2", request(CUSTOMER, (f"{NS}.Address", "address", 1))) == 42201
    assert registry.lookup("customer", request(CUSTOMER, (f"{NS}.Address", "address", 1)), deleted=True).version == 1
    registry.delete_subject("customer", permanent=True)
    assert registry.delete_subject("address", permanent=True) == [1]


def test_references_within_one_subject_do_not_block_deleting_it(registry: Registry) -> None:
    registry.register("both", request(ADDRESS))
    registry.set_compatibility("NONE", "both")
    registry.register("both", request(CUSTOMER, (f"{NS}.Address", "both", 1)))
    assert error_code(registry.delete_version, "both", 1, permanent=False) == 42206
    assert registry.delete_subject("both", permanent=False) == [1, 2]
    assert registry.delete_subject("both", permanent=True) == [1, 2]


def test_references_survive_reopening(tmp_path: Path) -> None:
    registry = Registry(RegistryStorage(tmp_path))
    registry.register("address", request(ADDRESS))
    customer = registry.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", 1)))
    registry.storage.close()
    reopened = Registry(RegistryStorage(tmp_path))
    assert reopened.references_of_id(customer) == (Reference(f"{NS}.Address", "address", 1),)
    assert reopened.referenced_by("address", 1) == [customer]
    assert reopened.register("customer", request(CUSTOMER, (f"{NS}.Address", "address", 1))) == customer
    reopened.storage.close()


def test_import_keeps_ids_and_refuses_other_references_under_a_taken_id(registry: Registry) -> None:
    registry.register("address-a", request(ADDRESS))
    registry.register("address-b", request(ADDRESS))
    registry.set_mode("IMPORT", "customer", force=True)
    body = {"schema": json.dumps(CUSTOMER), "id": 100, "version": 5,
            "references": [{"name": f"{NS}.Address", "subject": "address-a", "version": 1}]}
    assert registry.register("customer", SchemaRequest.from_body(body)) == 100
    assert registry.get_version("customer", 5).references == (Reference(f"{NS}.Address", "address-a", 1),)
    other = {**body, "version": 6, "references": [{"name": f"{NS}.Address", "subject": "address-b", "version": 1}]}
    assert error_code(registry.register, "customer", SchemaRequest.from_body(other)) == 42205


def test_a_short_name_falls_back_to_the_null_namespace_as_in_java(registry: Registry) -> None:
    plain = {"type": "record", "name": "Money", "fields": [{"name": "cents", "type": "long"}]}
    registry.register("money", request(plain))
    payment = record("Payment", {"name": "amount", "type": "Money"})  # in NS; Money has no namespace
    assert registry.register("payment", request(payment, ("Money", "money", 1))) > 0

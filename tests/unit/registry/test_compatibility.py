"""Compatibility levels over the avro package's reader/writer checker: directions, transitivity, Avro rules."""
from __future__ import annotations

import json
from typing import Any

import pytest

from fraudpipe.errors import RegistryError
from fraudpipe.registry.compatibility import LEVELS, Version, check, normalize_level, reader_writer_problems
from fraudpipe.registry.schemas import canonical_schema


def record(*fields: dict[str, Any], name: str = "R", **extra: Any) -> str:
    return canonical_schema(json.dumps({"type": "record", "name": name, "fields": list(fields), **extra}))


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


V1 = record(field("a", "string"))
V2_OPTIONAL = record(field("a", "string"), field("b", ["null", "string"], default=None))
V2_REQUIRED = record(field("a", "string"), field("b", "string"))
V_DROP_A = record(field("b", ["null", "string"], default=None))


def versions(*schemas: str) -> list[Version]:
    return [Version(i, text) for i, text in enumerate(schemas, start=1)]


# What each level says about one step: (candidate, previous) -> compatible?
@pytest.mark.parametrize(
    ("level", "candidate", "expected"),
    [
        ("NONE", V2_REQUIRED, True),
        ("BACKWARD", V2_OPTIONAL, True),      # new reader fills b from the default
        ("BACKWARD", V2_REQUIRED, False),     # new reader has no value for b in old data
        ("FORWARD", V2_REQUIRED, True),       # old reader ignores b
        ("FORWARD", V_DROP_A, False),         # old reader needs a, new data lacks it
        ("FULL", V2_OPTIONAL, True),
        ("FULL", V2_REQUIRED, False),
        ("BACKWARD_TRANSITIVE", V2_OPTIONAL, True),
        ("FORWARD_TRANSITIVE", V_DROP_A, False),
        ("FULL_TRANSITIVE", V2_REQUIRED, False),
    ],
)
def test_each_level_checks_its_direction(level: str, candidate: str, expected: bool) -> None:
    reasons = check(level, candidate, versions(V1))
    assert (not reasons) is expected
    if not expected:
        assert any("oldSchemaVersion: 1" in r for r in reasons) and f"{{compatibility: '{level}'}}" in reasons


def test_forward_transitive_differs_from_forward() -> None:
    first = record(field("a", "int"))                                            # v1 readers need "a"
    second = record(field("a", "int", default=1), field("c", "int", default=0))  # v2 readers can default it
    candidate = record(field("c", "int", default=0), field("d", "int", default=0))  # drops "a"
    history = versions(first, second)
    assert check("FORWARD", candidate, history) == []  # only the latest reader (v2) is asked
    transitive = check("FORWARD_TRANSITIVE", candidate, history)
    assert "{oldSchemaVersion: 1}" in transitive and "{oldSchemaVersion: 2}" not in transitive
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in reason for reason in transitive)


def test_backward_transitive_differs_from_backward() -> None:
    first = record(field("a", "string"))
    second = record(field("a", "int"), field("z", "int", default=0))  # an incompatible step registered under NONE
    candidate = record(field("a", "long"), field("z", "int", default=0))  # reads int, cannot read string
    history = versions(first, second)
    assert check("BACKWARD", candidate, history) == []
    assert "{oldSchemaVersion: 1}" in check("BACKWARD_TRANSITIVE", candidate, history)
    assert check("FULL", candidate, history) != []  # int reader cannot read long data


def test_nothing_to_check_against_is_compatible() -> None:
    for level in LEVELS:
        assert check(level, V2_REQUIRED, []) == []


@pytest.mark.parametrize(
    ("writer", "reader", "ok"),
    [
        ("int", "long", True), ("int", "float", True), ("int", "double", True),
        ("long", "float", True), ("long", "double", True), ("float", "double", True),
        ("string", "bytes", True), ("bytes", "string", True),
        ("long", "int", False), ("double", "float", False), ("string", "int", False), ("boolean", "int", False),
    ],
)
def test_type_promotions(writer: str, reader: str, ok: bool) -> None:
    problems = reader_writer_problems(record(field("x", reader)), record(field("x", writer)))
    assert (problems == []) is ok
    if not ok:
        assert "TYPE_MISMATCH" in problems[0]


def enum(symbols: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "E", "symbols": symbols, **extra}


def test_enum_reader_needs_every_writer_symbol_unless_it_has_a_default() -> None:
    writer = record(field("e", enum(["A", "B", "C"])))
    without_default = record(field("e", enum(["A", "B"])))
    with_default = record(field("e", enum(["A", "B"], default="A")))
    problems = reader_writer_problems(without_default, writer)
    assert problems and "MISSING_ENUM_SYMBOLS" in problems[0] and "C" in problems[0]
    assert reader_writer_problems(with_default, writer) == []
    # Adding a symbol is backward compatible, and forward compatible only with a default in the old reader.
    assert check("BACKWARD", writer, versions(without_default)) == []
    assert check("FORWARD", writer, versions(without_default)) != []
    assert check("FORWARD", writer, versions(with_default)) == []


def test_unions() -> None:
    plain = record(field("x", "string"))
    nullable = record(field("x", ["null", "string"], default=None))
    widened = record(field("x", ["null", "string", "long"], default=None))
    assert reader_writer_problems(nullable, plain) == []          # reader union holds the writer type
    problems = reader_writer_problems(plain, nullable)            # writer may write null
    assert problems and "TYPE_MISMATCH" in problems[0]
    assert reader_writer_problems(widened, nullable) == []
    problems = reader_writer_problems(nullable, widened)
    assert problems and "MISSING_UNION_BRANCH" in problems[0]
    assert reader_writer_problems(record(field("x", ["null", "long"], default=None)),
                                  record(field("x", ["null", "int"], default=None))) == []  # promotion in a branch


def test_field_and_record_aliases() -> None:
    old = record(field("amount", "long"), name="Payment", namespace="io.x")
    renamed_field = record(field("amount_minor", "long", aliases=["amount"]), name="Payment", namespace="io.x")
    renamed_field_no_alias = record(field("amount_minor", "long"), name="Payment", namespace="io.x")
    renamed_record = record(field("amount", "long"), name="Transfer", namespace="io.x", aliases=["io.x.Payment"])
    renamed_record_no_alias = record(field("amount", "long"), name="Transfer", namespace="io.x")
    assert check("BACKWARD", renamed_field, versions(old)) == []
    assert check("BACKWARD", renamed_field_no_alias, versions(old)) != []
    assert check("BACKWARD", renamed_record, versions(old)) == []
    problems = check("BACKWARD", renamed_record_no_alias, versions(old))
    assert problems and "NAME_MISMATCH" in problems[0]


def test_levels_are_case_insensitive_and_checked() -> None:
    assert normalize_level("full_transitive") == "FULL_TRANSITIVE"
    for bad in ("FULLY", "", None, 3):
        with pytest.raises(RegistryError) as info:
            normalize_level(bad)
        assert info.value.error_code == 42203

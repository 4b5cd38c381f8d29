"""Compatibility levels and the reader/writer check, delegated to the avro package's checker.

Pure logic: no HTTP, no storage. A level says which direction to check (can the new
schema read old data, can old readers read new data, or both) and against which of
the existing versions (the latest, or every one for the transitive levels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from fraudpipe.registry import codes
from fraudpipe.registry.schemas import parse

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"


@dataclass(frozen=True)
class Version:
    """One stored version of a subject: what the candidate is checked against."""

    version: int
    schema: str  # canonical text
    named: tuple[str, ...] = ()  # its referenced schemas, dependencies first (see schemas.parse)


def normalize_level(level: object) -> str:
    """The level in upper case, or the 42203 error for anything that is not a level."""
    if isinstance(level, str) and level.upper() in LEVELS:
        return level.upper()
    raise codes.invalid_compatibility(level)


def reader_writer_problems(
    reader: str, writer: str, *, roles: tuple[str, str] = ("reader", "writer"),
    reader_named: tuple[str, ...] = (), writer_named: tuple[str, ...] = (),
) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty when it can).

    `roles` names the two schemas in the messages, e.g. ("new", "old") for a BACKWARD check;
    `*_named` are the schemas each one's references resolve to.
    """
    # The checker memoizes by object identity, so each pair gets a fresh checker.
    try:
        result = ReaderWriterCompatibilityChecker().get_compatibility(parse(reader, reader_named),
                                                                      parse(writer, writer_named))
    except RecursionError as exc:
        raise codes.invalid_schema("schema nests too deeply to check") from exc
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({kind.name.upper() for kind in result.incompatibilities}))
    locations = ", ".join(sorted(result.locations))
    return [
        f"{{errorType:'{kinds}', description:'The {roles[0]} schema (reader) cannot read data written with "
        f"the {roles[1]} schema (writer) at path {locations}: {message}', additionalInfo:'{message}'}}"
        for message in sorted(result.messages)
    ]


def check(level: str, candidate: str, existing: Sequence[Version], *, named: tuple[str, ...] = ()) -> list[str]:
    """Reasons the candidate breaks `level` against the existing live versions (oldest first).

    Empty means compatible. Non-transitive levels look at the newest version only; `named` are
    the schemas the candidate's references resolve to.
    """
    level = normalize_level(level)
    if level == "NONE" or not existing:
        return []
    targets = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    base = level.removesuffix("_TRANSITIVE")
    reasons: list[str] = []
    for old in reversed(targets):
        problems: list[str] = []
        if base in ("BACKWARD", "FULL"):  # the new schema reads old data
            problems += reader_writer_problems(candidate, old.schema, roles=("new", "old"),
                                               reader_named=named, writer_named=old.named)
        if base in ("FORWARD", "FULL"):  # old readers read new data
            problems += reader_writer_problems(old.schema, candidate, roles=("old", "new"),
                                               reader_named=old.named, writer_named=named)
        if problems:
            reasons += [*problems, f"{{oldSchemaVersion: {old.version}}}", f"{{oldSchema: '{old.schema}'}}"]
    if reasons:
        reasons.append(f"{{compatibility: '{level}'}}")
    return reasons


"""Schema references: a schema naming types that other subjects' versions define.

A reference is {name, subject, version}: `name` is the fully qualified name of the Avro type
the referencing schema uses, (`subject`, `version`) the registered version whose schema
defines it. Resolving a schema's references yields the texts of the referenced schemas and,
recursively, of theirs, dependencies first and each name once, as Confluent's registry
resolves them; those texts are parsed into one namespace before the schema itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from fraudpipe.registry import codes
from fraudpipe.registry.records import Reference

if TYPE_CHECKING:  # storage stores References; the resolver only reads it
    from fraudpipe.registry.storage import RegistryStorage

LATEST_VERSION = -1  # a reference to "the latest version", pinned to a number when registered
MAX_DEPTH = 64  # references to references; deeper chains are refused rather than recursed


@dataclass(frozen=True)
class Resolved:
    """A schema's references with "latest" pinned, and the schemas they resolve to."""

    references: tuple[Reference, ...]
    named: tuple[str, ...]  # canonical texts, dependencies first (see schemas.parse)


def parse_references(raw: Any) -> tuple[Reference, ...]:
    """The `references` of a request body; a malformed one is 42201, as Confluent answers it."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise codes.invalid_schema(f"'references' must be a list of {{name, subject, version}} objects, got {raw!r}")
    return tuple(_parse_reference(item) for item in raw)


def _parse_reference(item: Any) -> Reference:
    if not isinstance(item, dict):
        raise codes.invalid_schema(f"Invalid reference: {item!r}")
    name, subject, version = item.get("name"), item.get("subject"), item.get("version")
    if (not isinstance(name, str) or not name or not isinstance(subject, str) or not subject
            or isinstance(version, bool) or not isinstance(version, int)):
        raise codes.invalid_schema(f"Invalid reference: {item!r} (name and subject must be non-empty strings, "
                                   "version an integer: a version number or -1 for the latest)")
    return Reference(name, subject, version)


def resolve(storage: RegistryStorage, references: Iterable[Reference], *, deleted: bool) -> Resolved:
    """Pin and resolve references; a version that is not there is 42201, as in Confluent.

    `deleted` lets references point at soft-deleted versions: true when reading or checking,
    false when registering a new schema (Confluent validates new schemas against live
    versions only).
    """
    named: dict[str, str] = {}
    pinned = _collect(storage, tuple(references), named, deleted=deleted, depth=0)
    return Resolved(pinned, tuple(named.values()))


def named_types(storage: RegistryStorage, references: Iterable[Reference]) -> tuple[str, ...]:
    """The schemas a stored schema's references resolve to (soft-deleted targets included)."""
    return resolve(storage, references, deleted=True).named


def _collect(storage: RegistryStorage, references: tuple[Reference, ...], named: dict[str, str], *,
             deleted: bool, depth: int) -> tuple[Reference, ...]:
    """Add the texts `references` resolve to into `named` (dependencies first); return them pinned."""
    if depth > MAX_DEPTH:
        raise codes.invalid_schema(f"references nest deeper than {MAX_DEPTH} levels")
    pinned: list[Reference] = []
    for reference in references:
        text, version, nested = _target(storage, reference, deleted=deleted)
        pinned.append(Reference(reference.name, reference.subject, version))
        if reference.name not in named:  # each name once: the first binding wins, as in Confluent
            _collect(storage, nested, named, deleted=deleted, depth=depth + 1)
            named.setdefault(reference.name, text)
    return tuple(pinned)


def _target(storage: RegistryStorage, reference: Reference, *, deleted: bool) -> tuple[str, int, tuple[Reference, ...]]:
    """(schema text, version, its own references) of the version a reference points at."""
    rows = storage.versions(reference.subject, deleted=deleted)
    if reference.version == LATEST_VERSION:
        live = [row for row in rows if not row.deleted]
        rows = (live or rows)[-1:]
    else:
        rows = [row for row in rows if row.version == reference.version]
    if not rows:
        raise codes.invalid_schema(f'No schema reference found for subject "{reference.subject}" '
                                   f"and version {reference.version}")
    return rows[0].schema, rows[0].version, rows[0].references


def referrers(storage: RegistryStorage, subject: str, version: int, *, deleted: bool) -> list[int]:
    """Ids of the schemas that reference (subject, version), sorted.

    A referrer counts while some version holds it: a live one, or with `deleted` also a
    soft-deleted one (it can still be read, so what it references must stay).
    """
    return [schema_id for schema_id in storage.referrers(subject, version)
            if storage.schema_in_use(schema_id, live_only=not deleted)]


def referrer_subjects(storage: RegistryStorage, subject: str, version: int, *, deleted: bool) -> set[str]:
    """The subjects holding a schema that references (subject, version)."""
    return {row.subject for schema_id in storage.referrers(subject, version)
            for row in storage.versions_of_schema(schema_id, deleted=deleted)}

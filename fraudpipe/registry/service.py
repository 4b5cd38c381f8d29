"""The registry's rules, as Confluent Schema Registry 7.5 applies them, over RegistryStorage.

No HTTP here: the app parses requests and calls these methods; every client mistake is
raised as a RegistryError from `codes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudpipe.registry import codes
from fraudpipe.registry.compatibility import DEFAULT_LEVEL, Version, check, normalize_level
from fraudpipe.registry.records import Reference, StoredVersion
from fraudpipe.registry.references import Resolved, named_types, parse_references, referrer_subjects, referrers, \
    resolve
from fraudpipe.registry.schemas import canonical_text, validate
from fraudpipe.registry.storage import COMPATIBILITY, GLOBAL, MODE, RegistryStorage

MODES = ("READWRITE", "READONLY", "IMPORT")
DEFAULT_MODE = "READWRITE"
LATEST = "latest"


@dataclass(frozen=True)
class SchemaRequest:
    """The body of a register / lookup / compatibility request.

    The schema is checked as JSON here and as Avro by the Registry, once its references
    are resolved against the stored versions.
    """

    schema: str  # canonical text
    schema_id: int | None = None
    version: int | None = None
    references: tuple[Reference, ...] = ()

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> "SchemaRequest":
        schema = canonical_text(body.get("schema"), body.get("schemaType"))
        references = parse_references(body.get("references"))
        return cls(schema, _optional_int(body, "id"), _optional_int(body, "version"), references)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or (key == "id" and value == -1) or (key == "version" and value in (0, -1)):
        return None  # what clients send when they mean "not given"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= codes.MAX_VERSION:
        raise codes.unprocessable(f"'{key}' must be a positive 32-bit integer, got {value!r}")
    return value


def parse_version(raw: str) -> int | str:
    """A version path segment: a positive int, or LATEST for "latest" and -1; else 42202."""
    if raw == LATEST or raw == "-1":
        return LATEST
    try:
        version = int(raw)
    except ValueError:
        raise codes.invalid_version(raw) from None
    if not 1 <= version <= codes.MAX_VERSION:
        raise codes.invalid_version(raw)
    return version


def _same(row: StoredVersion, request: SchemaRequest, resolved: Resolved) -> bool:
    """One schema: the same text with the same references (the text alone is not the identity)."""
    return row.schema == request.schema and row.references == resolved.references


def check_subject_name(subject: str) -> None:
    """Names a client may create: non-empty, no control characters."""
    if not subject or subject.isspace() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in subject):
        raise codes.invalid_subject(subject)


class Registry:
    """Subjects, versions, ids, compatibility and modes over one RegistryStorage."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage

    # schemas by id ---------------------------------------------------------------------------
    def schema_by_id(self, schema_id: int) -> str:
        text = self.storage.schema_text(schema_id)
        if text is None or not self.storage.schema_in_use(schema_id):
            raise codes.schema_not_found(f"Schema {schema_id} not found")
        return text

    def references_of_id(self, schema_id: int) -> tuple[Reference, ...]:
        self.schema_by_id(schema_id)
        return self.storage.references(schema_id)

    def versions_of_id(self, schema_id: int, *, deleted: bool = False) -> list[StoredVersion]:
        self.schema_by_id(schema_id)
        return self.storage.versions_of_schema(schema_id, deleted=deleted)

    # subjects and versions -------------------------------------------------------------------
    def subjects(self, *, prefix: str = "", deleted: bool = False, deleted_only: bool = False) -> list[str]:
        names = self.storage.subjects(deleted=deleted, deleted_only=deleted_only)
        return [name for name in names if name.startswith(prefix)]

    def versions(self, subject: str, *, deleted: bool = False, deleted_only: bool = False) -> list[int]:
        rows = self.storage.versions(subject, deleted=deleted or deleted_only)
        if deleted_only:
            rows = [row for row in rows if row.deleted]
        if not rows:
            raise codes.subject_not_found(subject)
        return [row.version for row in rows]

    def get_version(self, subject: str, version: int | str, *, deleted: bool = False) -> StoredVersion:
        rows = self.storage.versions(subject, deleted=deleted)
        if not rows:
            raise codes.subject_not_found(subject)
        if version == LATEST:
            return rows[-1]
        for row in rows:
            if row.version == version:
                return row
        raise codes.version_not_found(version)

    def lookup(self, subject: str, request: SchemaRequest, *, deleted: bool = False) -> StoredVersion:
        resolved = self._resolve(request, deleted=True)
        rows = self.storage.versions(subject, deleted=deleted)
        if not rows:
            raise codes.subject_not_found(subject)
        matches = [row for row in rows if _same(row, request, resolved)]
        if not matches:
            raise codes.schema_not_found()
        live = [row for row in matches if not row.deleted]
        return (live or matches)[-1]

    def register(self, subject: str, request: SchemaRequest) -> int:
        """The schema's id in `subject`: an existing version's, or a new version's (checked first)."""
        with self.storage.transaction():
            # A new schema's references must point at live versions, as in Confluent (imports may not).
            resolved = self._resolve(request, deleted=request.schema_id is not None)
            check_subject_name(subject)
            mode = self.mode(subject)
            if mode == "READONLY":
                raise codes.not_permitted(f"Subject {subject} is in read-only mode")
            live = self.storage.versions(subject)
            if request.schema_id is not None or request.version is not None:
                if mode != "IMPORT":
                    raise codes.not_permitted(f"Subject {subject} is not in import mode; ids and versions "
                                              "may only be given in IMPORT mode")
                return self._import(subject, request, resolved)
            for row in reversed(live):
                if _same(row, request, resolved):
                    return row.schema_id
            if mode != "IMPORT":
                reasons = check(self.compatibility(subject), request.schema, [self._version(row) for row in live],
                                named=resolved.named)
                if reasons:
                    raise codes.incompatible(subject, reasons)
            schema_id = self._schema_id(request, resolved)
            self.storage.add_version(subject, self.storage.next_version(subject), schema_id)
            return schema_id

    def _resolve(self, request: SchemaRequest, *, deleted: bool) -> Resolved:
        """The request's references pinned and resolved, and its schema checked as Avro with them (42201)."""
        resolved = resolve(self.storage, request.references, deleted=deleted)
        validate(request.schema, resolved.named)
        return resolved

    def _version(self, row: StoredVersion) -> Version:
        return Version(row.version, row.schema, named_types(self.storage, row.references))

    def _schema_id(self, request: SchemaRequest, resolved: Resolved) -> int:
        """The id of this text with these references, a new one if the registry has not seen the pair."""
        return (self.storage.schema_id(request.schema, resolved.references)
                or self.storage.add_schema(request.schema, references=resolved.references))

    def _import(self, subject: str, request: SchemaRequest, resolved: Resolved) -> int:
        schema_id = request.schema_id
        if schema_id is None:
            schema_id = self._schema_id(request, resolved)
        else:
            existing = self.storage.schema_text(schema_id)
            if existing is None:
                self.storage.add_schema(request.schema, schema_id=schema_id, references=resolved.references)
            elif existing != request.schema or self.storage.references(schema_id) != resolved.references:
                raise codes.not_permitted(f"Overwrite new schema with id {schema_id} is not permitted.")
        version = request.version or self.storage.next_version(subject)
        taken = [row for row in self.storage.versions(subject, deleted=True) if row.version == version]
        if taken and taken[0].schema_id != schema_id:
            raise codes.not_permitted(f"Overwrite of version {version} of subject {subject} is not permitted.")
        self.storage.add_version(subject, version, schema_id)
        return schema_id

    def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        with self.storage.transaction():
            self._check_writable(subject)
            rows = self.storage.versions(subject, deleted=True)
            if not rows:
                raise codes.subject_not_found(subject)
            live = [row.version for row in rows if not row.deleted]
            if not permanent and not live:
                raise codes.subject_soft_deleted(subject)
            for row in rows if permanent else [row for row in rows if not row.deleted]:
                # References from the subject's own versions go with it; any other subject's block it.
                if referrer_subjects(self.storage, subject, row.version, deleted=permanent) - {subject}:
                    raise codes.reference_exists(subject, row.version)
                if permanent and not row.deleted:
                    raise codes.subject_not_soft_deleted(subject)
            if permanent:
                versions = [row.version for row in rows]
                self.storage.purge(subject, versions)
                return versions
            self.storage.soft_delete(subject, live)
            # A soft-deleted subject forgets its own settings, as Confluent's does.
            self.storage.delete_setting(COMPATIBILITY, subject)
            self.storage.delete_setting(MODE, subject)
            return live

    def delete_version(self, subject: str, version: int | str, *, permanent: bool) -> int:
        with self.storage.transaction():
            self._check_writable(subject)
            row = self.get_version(subject, version, deleted=True)
            if not permanent and row.deleted:
                raise codes.version_soft_deleted(subject, row.version)
            # Live referrers block a soft delete; a hard delete also waits for soft-deleted ones,
            # which can still be read and restored.
            if referrers(self.storage, subject, row.version, deleted=permanent):
                raise codes.reference_exists(subject, row.version)
            if permanent and not row.deleted:
                raise codes.version_not_soft_deleted(subject, row.version)
            (self.storage.purge if permanent else self.storage.soft_delete)(subject, [row.version])
            return row.version

    def referenced_by(self, subject: str, version: int | str, *, deleted: bool = False) -> list[int]:
        """Ids of the schemas referencing a version (soft-deleted referrers too when `deleted`)."""
        row = self.get_version(subject, version, deleted=True)
        return referrers(self.storage, subject, row.version, deleted=deleted)

    def _check_writable(self, subject: str) -> None:
        if self.mode(subject) == "READONLY":
            raise codes.not_permitted(f"Subject {subject} is in read-only mode")

    # compatibility ---------------------------------------------------------------------------
    def test_compatibility(self, subject: str, request: SchemaRequest, version: int | str | None) -> list[str]:
        """Reasons the candidate is incompatible; `version` None means "all versions, per level"."""
        named = self._resolve(request, deleted=True).named
        level = self.compatibility(subject)
        if version is None:
            live = self.storage.versions(subject)
            return check(level, request.schema, [self._version(row) for row in live], named=named)
        if version == LATEST and not self.storage.versions(subject):
            return []  # nothing to be incompatible with
        row = self.get_version(subject, version)
        # One chosen version: the level's direction applies, transitivity has nothing more to add.
        return check(level, request.schema, [self._version(row)], named=named)

    # config ----------------------------------------------------------------------------------
    def compatibility(self, subject: str = GLOBAL) -> str:
        """The level in force for `subject`: its own, else the global one, else BACKWARD."""
        return (
            (subject and self.storage.setting(COMPATIBILITY, subject))
            or self.storage.setting(COMPATIBILITY)
            or DEFAULT_LEVEL
        )

    def subject_compatibility(self, subject: str, *, default_to_global: bool) -> str:
        level = self.storage.setting(COMPATIBILITY, subject)
        if level is None:
            if not default_to_global:
                raise codes.subject_config_not_found(subject)
            return self.compatibility()
        return level

    def set_compatibility(self, level: object, subject: str = GLOBAL) -> str:
        level = normalize_level(level)
        if subject:
            check_subject_name(subject)
        self.storage.set_setting(COMPATIBILITY, level, subject)
        return level

    def delete_compatibility(self, subject: str = GLOBAL) -> str:
        with self.storage.transaction():
            if subject:
                old = self.subject_compatibility(subject, default_to_global=False)
            else:
                old = self.compatibility()
            self.storage.delete_setting(COMPATIBILITY, subject)
            return old

    # modes -----------------------------------------------------------------------------------
    def mode(self, subject: str = GLOBAL) -> str:
        return (subject and self.storage.setting(MODE, subject)) or self.storage.setting(MODE) or DEFAULT_MODE

    def subject_mode(self, subject: str, *, default_to_global: bool) -> str:
        mode = self.storage.setting(MODE, subject)
        if mode is None:
            if not default_to_global:
                raise codes.subject_mode_not_found(subject)
            return self.mode()
        return mode

    def set_mode(self, mode: object, subject: str = GLOBAL, *, force: bool = False) -> str:
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise codes.invalid_mode(mode)
        mode = mode.upper()
        if subject:
            check_subject_name(subject)
        with self.storage.transaction():
            if mode == "IMPORT" and not force:
                # Importing next to live schemas could clash ids; Confluent asks for force=true.
                existing = self.storage.versions(subject) if subject else self.storage.subjects()
                if existing:
                    raise codes.not_permitted("Cannot import since found existing subjects")
            self.storage.set_setting(MODE, mode, subject)
        return mode

    def delete_mode(self, subject: str) -> str:
        with self.storage.transaction():
            old = self.subject_mode(subject, default_to_global=False)
            self.storage.delete_setting(MODE, subject)
            return old

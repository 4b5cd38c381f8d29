"""The registry's errors with the HTTP status, error code and wording Confluent Schema Registry uses.

Every client mistake is one of these; the app turns them into `{"error_code", "message"}`.
"""
from __future__ import annotations

from fraudpipe.errors import RegistryError

__all__ = ["RegistryError"]

MAX_VERSION = 2**31 - 1


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(f"Subject '{subject}' not found.", error_code=40401, http_status=404)


def version_not_found(version: object) -> RegistryError:
    return RegistryError(f"Version {version} not found.", error_code=40402, http_status=404)


def schema_not_found(detail: str = "Schema not found") -> RegistryError:
    return RegistryError(detail, error_code=40403, http_status=404)


def subject_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
        error_code=40404, http_status=404,
    )


def subject_not_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' was not deleted first before being permanently deleted",
        error_code=40405, http_status=404,
    )


def version_soft_deleted(subject: str, version: int) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently",
        error_code=40406, http_status=404,
    )


def version_not_soft_deleted(subject: str, version: int) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' Version {version} was not deleted first before being permanently deleted",
        error_code=40407, http_status=404,
    )


def subject_config_not_found(subject: str) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' does not have subject-level compatibility configured",
        error_code=40408, http_status=404,
    )


def subject_mode_not_found(subject: str) -> RegistryError:
    return RegistryError(
        f"Subject '{subject}' does not have subject-level mode configured", error_code=40409, http_status=404
    )


def incompatible(subject: str, reasons: list[str]) -> RegistryError:
    return RegistryError(
        f"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", "
        f"details: [{', '.join(reasons)}]",
        error_code=409, http_status=409,
    )


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(f"Invalid schema: {detail}", error_code=42201, http_status=422)


def invalid_version(version: object) -> RegistryError:
    return RegistryError(
        f"The specified version '{version}' is not a valid version id. Allowed values are between "
        f"[1, {MAX_VERSION}] and the string \"latest\"",
        error_code=42202, http_status=422,
    )


def invalid_compatibility(level: object) -> RegistryError:
    return RegistryError(
        f"Invalid compatibility level {level!r}. Valid values are none, backward, forward, full, "
        "backward_transitive, forward_transitive, and full_transitive",
        error_code=42203, http_status=422,
    )


def invalid_mode(mode: object) -> RegistryError:
    return RegistryError(
        f"Invalid mode {mode!r}. Valid values are READWRITE, READONLY and IMPORT", error_code=42204, http_status=422
    )


def not_permitted(detail: str) -> RegistryError:
    return RegistryError(detail, error_code=42205, http_status=422)


def reference_exists(subject: str, version: int) -> RegistryError:
    """A version other schemas reference cannot be deleted; the key is written as Confluent's SchemaKey prints."""
    return RegistryError(
        f"One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}.",
        error_code=42206, http_status=422,
    )


def invalid_subject(subject: str) -> RegistryError:
    return RegistryError(f"The specified subject {subject!r} is not a valid subject name", error_code=42208,
                         http_status=422)


def bad_request(detail: str) -> RegistryError:
    return RegistryError(detail, error_code=400, http_status=400)


def unprocessable(detail: str) -> RegistryError:
    return RegistryError(detail, error_code=422, http_status=422)

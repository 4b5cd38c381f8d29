"""The registry's stored values: a schema's references and a subject's versions.

They sit below both `storage` (which reads and writes them) and `references` (which
resolves them through storage), so neither of those has to import the other for its types.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reference:
    """One entry of a schema's `references`."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class StoredVersion:
    """One row of a subject's history."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool
    references: tuple[Reference, ...] = ()

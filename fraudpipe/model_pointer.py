"""The pointer to the published model: `model.dir/LATEST` names the current version.

spark_apps/model_registry.py writes it (atomically, once the version directory is whole)
and reads it; this module holds the one reader, so `fraudpipe up` can ask "is there a
model?" without importing the Spark apps.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from fraudpipe.errors import ModelError

LATEST_FILE: Final = "LATEST"


def published_version(directory: str | os.PathLike[str]) -> str | None:
    """The version LATEST names under `directory`, or None before the first published model."""
    path = Path(directory) / LATEST_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    return text or None

"""The file-based model registry: immutable version directories and an atomic LATEST pointer.

Layout under `model.dir`:

    versions/<version>/metadata.json    what the version is and how to score with it
    versions/<version>/spark_model/     the fitted Spark PipelineModel
    versions/<version>/report.json ...  evaluation artefacts
    LATEST                              the name of the published version

A version is built in a hidden staging directory and renamed into place only when
complete; LATEST is replaced (temp file + os.replace) only after that. A reader that
follows LATEST therefore always finds a whole version, and `load_latest` costs one tiny
file read per call while nothing changes, cheap enough for every micro-batch.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from fraudpipe.errors import ModelError
from fraudpipe.model_pointer import LATEST_FILE, published_version
from fraudpipe.store.base import Store
from spark_apps.scoring import METADATA_FILE, ModelMetadata, load_metadata

VERSIONS_DIR = "versions"
SPARK_MODEL_DIR = "spark_model"
STAGING_PREFIX = ".staging-"


def new_version(now: dt.datetime | None = None) -> str:
    """A version name that sorts by time as text (the store orders versions as text)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; rename is still atomic
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old content or the new, never a mix."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


class ModelRegistry:
    """Versions of the KMeans model under one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.versions_dir = self.dir / VERSIONS_DIR

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / version

    def spark_model_dir(self, version: str) -> Path:
        return self.version_dir(version) / SPARK_MODEL_DIR

    def begin(self) -> Path:
        """A fresh staging directory; fill it, then hand it to `publish`."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = self.versions_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        return staging

    def publish(self, staging: Path, metadata: ModelMetadata, *, store: Store | None = None) -> Path:
        """Seal `staging` as version `metadata.version`, point LATEST at it, record it in `store`."""
        target = self.version_dir(metadata.version)
        if target.exists():
            raise ModelError(f"model version {metadata.version} already exists at {target}; versions are immutable")
        try:
            write_atomic(staging / METADATA_FILE, metadata.to_json())
            _fsync_dir(staging)
            # rename is atomic within a filesystem: the version appears whole or not at all
            os.rename(staging, target)
            _fsync_dir(self.versions_dir)
            write_atomic(self.dir / LATEST_FILE, metadata.version + "\n")
        except OSError as exc:
            raise ModelError(f"cannot publish model version {metadata.version} under {self.dir}: {exc}") from exc
        if store is not None:
            store.record_model(registry_row(metadata, target))
        return target

    def discard(self, staging: Path) -> None:
        """Remove an unfinished staging directory (a failed run leaves nothing visible)."""
        if staging.name.startswith(STAGING_PREFIX):
            shutil.rmtree(staging, ignore_errors=True)

    def latest_version(self) -> str | None:
        return published_version(self.dir)

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load(self, version: str) -> ModelMetadata:
        return load_metadata(self.version_dir(version))


def registry_row(metadata: ModelMetadata, path: Path) -> dict[str, Any]:
    """The models-table row for a version (columns as in cassandra/init.cql)."""
    trained = dt.datetime.fromisoformat(metadata.trained_at)
    return {
        "version": metadata.version,
        "trained_at": int(trained.timestamp() * 1000),
        "path": str(path),
        "metrics": json.dumps(dict(metadata.metrics), sort_keys=True, default=str),
        "metadata": metadata.to_json(),
    }


_cache_lock = threading.Lock()
_cache: dict[Path, ModelMetadata] = {}


def load_latest(directory: str | os.PathLike[str]) -> ModelMetadata | None:
    """The published model's metadata, or None before the first training run.

    Reads only the few bytes of LATEST while it names the cached version (versions are
    immutable, so the name is a safe cache key; a stat-based key could be fooled by a
    reused inode within one mtime tick), so the stream may call it every micro-batch and
    picks up a new version on the next one.
    """
    registry = ModelRegistry(directory)
    version = registry.latest_version()
    if version is None:
        return None
    with _cache_lock:
        cached = _cache.get(registry.dir)
    if cached is not None and cached.version == version:
        return cached
    metadata = registry.load(version)
    if metadata.version != version:
        raise ModelError(f"{registry.version_dir(version)} holds metadata of version {metadata.version}")
    with _cache_lock:
        _cache[registry.dir] = metadata
    return metadata

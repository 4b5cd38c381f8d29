"""The compose trainer's command, run here the way its container runs it: as the image's
unprivileged user, in a root-owned project directory, with the compose environment.

There is no Docker engine, so the container is rebuilt from what it is made of: the
environment is docker/app.Dockerfile's ENV plus the trainer's compose environment; the
working directory is this checkout, which (like /app in the image) belongs to root and is
read-only to the app user; each named volume and each directory the image makes for the
app user becomes a fresh directory owned by that user, and absolute paths in the
environment are mapped onto them. `fraudpipe train` then runs under setpriv with the
image's uid. Only the size of the run and the store differ from compose: a small dataset
and a SQLite file on a volume, because no Cassandra runs here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterator

import pytest
import yaml

from fraudpipe.contracts import PROJECT_ROOT
from tests.fixtures.app_image import app_image

pytestmark = [pytest.mark.integration, pytest.mark.spark]

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICE = "trainer"
# a run small enough for a test; the model's settings only shrink with it
SIZE = {"FRAUDPIPE_MODEL__TRAIN_TRANSACTIONS": "40000", "FRAUDPIPE_MODEL__K": "8", "FRAUDPIPE_MODEL__TAIL_K": "12",
        "FRAUDPIPE_MODEL__FRAUD_K": "6", "FRAUDPIPE_MODEL__MAX_ITER": "5", "FRAUDPIPE_MODEL__PLOT_POINTS": "2000"}


@pytest.fixture
def container_root() -> Iterator[Path]:
    """A directory standing for the container's filesystem root (traversable by any uid)."""
    root = Path(tempfile.mkdtemp(prefix="fraudpipe-container-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _make_dir(root: Path, path: str, *, uid: int) -> Path:
    target = root / path.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    for part in [target, *target.parents]:
        if part == root:
            break
        part.chmod(0o755)
    os.chown(target, uid, uid)
    return target


def _account_files(root: Path, user: str, uid: int, home: str) -> tuple[Path, Path]:
    """/etc/passwd and /etc/group of this host plus the entry the image's useradd makes."""
    passwd, group = root / "passwd", root / "group"
    passwd.write_text(Path("/etc/passwd").read_text() + f"{user}:x:{uid}:{uid}::{home}:/bin/sh\n")
    group.write_text(Path("/etc/group").read_text() + f"{user}:x:{uid}:\n")
    for path in (passwd, group):
        path.chmod(0o644)
    return passwd, group


def test_compose_trainer_runs_as_the_image_user(container_root: Path) -> None:
    image = app_image()
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("needs root, unshare and setpriv to run the command as the image's user")
    service = COMPOSE["services"][SERVICE]
    volumes = [v.split(":")[1] for v in service.get("volumes", []) if not v.startswith((".", "/"))]
    # what the container can write: its app-owned directories and volumes (a volume takes the
    # ownership of its mount point: root's when the image does not create it for the app)
    for path in {*image.app_owned_dirs, image.home, "/tmp"}:
        _make_dir(container_root, path, uid=image.uid)
    for target in volumes:
        _make_dir(container_root, target, uid=image.uid if target in image.app_owned_dirs else 0)
    environment = {**image.env, **{k: str(v) for k, v in service["environment"].items()}}
    mapped = {k: (str(container_root / v.lstrip("/")) if v.startswith("/") else v) for k, v in environment.items()}
    store = container_root / volumes[0].lstrip("/") / "store.db"
    venv_bin = str(Path(sys.executable).parent)
    mapped.update(SIZE, FRAUDPIPE_STORE__BACKEND="sqlite", FRAUDPIPE_STORE__SQLITE_PATH=str(store),
                  HOME=str(container_root / image.home.lstrip("/")), TMPDIR=str(container_root / "tmp"),
                  # in the image `python3` is the interpreter fraudpipe is installed in; here, the venv's
                  PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
                  PATH=f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", PYTHONDONTWRITEBYTECODE="1")
    if "JAVA_HOME" in os.environ:
        mapped["JAVA_HOME"] = os.environ["JAVA_HOME"]
    command = [str(c) for c in service["command"]]
    assert command == ["fraudpipe", "train"]
    passwd, group = _account_files(container_root, image.user, image.uid, mapped["HOME"])
    # In a private mount namespace: the image's passwd entry (Java and Hadoop look the user
    # up by uid) and the project directory read-only, as /app is to the app user.
    inside = (f"mount --bind {passwd} /etc/passwd && mount --bind {group} /etc/group"
              f" && mount --bind {PROJECT_ROOT} {PROJECT_ROOT} && mount -o remount,bind,ro {PROJECT_ROOT}"
              f" && exec setpriv --reuid={image.uid} --regid={image.uid} --clear-groups \"$@\"")
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", inside, "sh", f"{venv_bin}/{command[0]}",
         *command[1:]],
        cwd=PROJECT_ROOT, env=mapped, capture_output=True, text=True, timeout=540, check=False,
    )
    output = result.stdout[-2000:] + result.stderr[:3000] + result.stderr[-2000:]
    assert result.returncode == 0, f"`fraudpipe train` as uid {image.uid} failed:\n{output}"
    models = container_root / environment["FRAUDPIPE_MODEL__DIR"].lstrip("/")
    datasets = container_root / environment["FRAUDPIPE_MODEL__DATASET_DIR"].lstrip("/")
    assert (models / "LATEST").is_file(), output
    assert any(datasets.glob("*.parquet")), f"no dataset under {datasets}"
    assert all(any(PurePosixPath("/" + str(p.relative_to(container_root))).is_relative_to(t) for t in volumes)
               for p in (models, datasets)), "what the trainer keeps must be on its volumes"

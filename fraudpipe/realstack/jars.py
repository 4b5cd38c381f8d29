"""The bench's jars: fetched once by Maven from realstack/pom.xml into a git-ignored cache.

Each runtime (Kafka broker, Cassandra server, Spark's Kafka source) is a profile of the
pom, resolved on its own into .fraudpipe/realstack/lib/<profile>/. A stamp holding the
pom's digest makes the fetch a no-op until the pom changes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from fraudpipe.errors import RealstackError

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "realstack" / "pom.xml"
LIB_DIR = Path(os.environ.get("FRAUDPIPE_REALSTACK_LIB", REPO_ROOT / ".fraudpipe" / "realstack" / "lib"))
PROFILES = ("kafka", "cassandra", "spark-kafka")
STAMP = LIB_DIR / ".pom-sha256"
FETCH_TIMEOUT_S = 900.0  # a cold ~/.m2 downloads ~180 MB


def missing_tools() -> str | None:
    """Why the bench cannot run here (no Java 17+, no Maven, no pom), or None when it can."""
    if shutil.which("java") is None:
        return "the real-stack bench needs Java 17+ (`java` is not on PATH)"
    if not POM.exists():
        return f"the real-stack bench needs {POM} (run from a clone of the fraudpipe repository)"
    if not fetched() and shutil.which("mvn") is None:
        return "the real-stack bench needs Maven to fetch its jars once (`mvn` is not on PATH)"
    return None


def pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def fetched() -> bool:
    """True when every profile's jars are in the cache for the current pom."""
    try:
        return STAMP.read_text().strip() == pom_digest() and all(any((LIB_DIR / p).glob("*.jar")) for p in PROFILES)
    except OSError:
        return False


def fetch(*, quiet: bool = True) -> None:
    """Copy every profile's jars into LIB_DIR with Maven, unless the stamp says they are there."""
    reason = missing_tools()
    if reason:
        raise RealstackError(reason)
    if fetched():
        return
    for profile in PROFILES:
        shutil.rmtree(LIB_DIR / profile, ignore_errors=True)  # no stale jars from an older pom
        command = ["mvn", "-B", *(["-q"] if quiet else []), "-f", str(POM), f"-P{profile}",
                   f"-Dlib.dir={LIB_DIR}", "dependency:copy-dependencies"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise RealstackError(f"mvn -P{profile} did not finish within {FETCH_TIMEOUT_S:.0f}s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise RealstackError(f"mvn -P{profile} dependency:copy-dependencies failed (exit {done.returncode}):\n{tail}")
    STAMP.write_text(pom_digest() + "\n")


def jar_paths(profile: str) -> list[str]:
    """One profile's jars (for Spark: `",".join(jar_paths("spark-kafka"))` as spark.jars)."""
    jars = sorted((LIB_DIR / profile).glob("*.jar"))
    if not jars:
        raise RealstackError(f"no {profile} jars in {LIB_DIR / profile}: run `fraudpipe realstack fetch` (needs Maven)")
    return [str(jar) for jar in jars]


def classpath(profile: str) -> str:
    """The JVM classpath of one profile's jars; fails naming the fetch command when they are missing."""
    return os.pathsep.join(jar_paths(profile))


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise RealstackError("the real-stack bench needs Java 17+ (`java` is not on PATH)")
    return found

"""pyproject.toml against the code: the pyspark the source needs, and the extras error messages name."""
from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

from fraudpipe.contracts import PROJECT_ROOT
from spark_apps.stream.kafka_source import MIN_PYSPARK

PROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
EXTRA_IN_MESSAGE = re.compile(r"pip install '?fraudpipe\[(\w+)\]")


def requirement(name: str, requirements: list[str]) -> Requirement | None:
    return next((r for r in map(Requirement, requirements) if r.name == name), None)


def lowest_allowed(req: Requirement) -> Version:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert floors, f"{req} has no lower bound"
    return max(floors)


def test_pyspark_floor_has_the_streaming_api_the_kafka_source_uses() -> None:
    pyspark = requirement("pyspark", PROJECT["dependencies"])
    assert pyspark is not None
    assert lowest_allowed(pyspark) >= Version(".".join(map(str, MIN_PYSPARK))), (
        f"pyproject allows {pyspark}, but spark_apps/stream/kafka_source.py needs pyspark >= {MIN_PYSPARK}")


def test_every_extra_an_error_message_names_exists() -> None:
    extras = PROJECT.get("optional-dependencies", {})
    named = {}
    for path in [*PROJECT_ROOT.glob("fraudpipe/**/*.py"), *PROJECT_ROOT.glob("spark_apps/**/*.py"),
                 *PROJECT_ROOT.glob("dashboard/**/*.py"), *PROJECT_ROOT.glob("producer/**/*.py")]:
        for extra in EXTRA_IN_MESSAGE.findall(path.read_text()):
            named.setdefault(extra, []).append(str(path.relative_to(PROJECT_ROOT)))
    assert named, "no error message names an extra: update this test"
    missing = {extra: files for extra, files in named.items() if extra not in extras}
    assert not missing, f"messages name extras pyproject.toml does not define: {missing}"


def test_the_cassandra_driver_is_the_cassandra_extra_not_a_base_dependency() -> None:
    assert requirement("cassandra-driver", PROJECT["dependencies"]) is None
    assert requirement("cassandra-driver", PROJECT["optional-dependencies"]["cassandra"]) is not None

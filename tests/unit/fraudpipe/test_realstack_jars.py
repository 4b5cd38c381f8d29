"""Without Java or Maven the bench says why: skipped outside CI, a failure under CI=true."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fraudpipe.cli import main as fraudpipe_cli
from fraudpipe.errors import RealstackError
from fraudpipe.realstack import jars


@pytest.fixture()
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn
    monkeypatch.setattr(jars, "LIB_DIR", tmp_path / "lib")
    monkeypatch.setattr(jars, "STAMP", tmp_path / "lib" / ".pom-sha256")


def test_missing_java_is_named(no_tools: None) -> None:
    assert jars.missing_tools() == "the real-stack bench needs Java 17+ (`java` is not on PATH)"


def test_fetch_if_possible_only_warns_outside_ci(no_tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = CliRunner().invoke(fraudpipe_cli, ["realstack", "fetch", "--if-possible"])
    assert result.exit_code == 0 and "its tests will be skipped: the real-stack bench needs Java 17+" in result.output


def test_fetch_fails_under_ci(no_tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = CliRunner().invoke(fraudpipe_cli, ["realstack", "fetch", "--if-possible"])
    assert result.exit_code == 1 and "needs Java 17+" in result.output


def test_the_stamp_is_the_pom_digest() -> None:
    if jars.fetched():
        assert jars.STAMP.read_text().strip() == jars.pom_digest()
    assert len(jars.pom_digest()) == 64 and jars.POM.name == "pom.xml"


def test_missing_jars_name_the_fetch_command(no_tools: None) -> None:
    with pytest.raises(RealstackError, match="run `fraudpipe realstack fetch`"):
        jars.jar_paths("spark-kafka")

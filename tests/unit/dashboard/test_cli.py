"""`fraudpipe dashboard` is wired and documents its flags (serving is covered by the browser test)."""
from __future__ import annotations

from click.testing import CliRunner

from fraudpipe.cli import main


def test_dashboard_command_help():
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


def test_dashboard_command_rejects_a_bad_port():
    result = CliRunner().invoke(main, ["dashboard", "--port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output

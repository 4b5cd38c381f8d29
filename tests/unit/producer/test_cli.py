"""`fraudpipe produce`'s argument errors, which come before any connection is made."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from producer.cli import produce_command


@pytest.mark.parametrize("clock", ["realtime", "simulated"])
def test_a_negative_rate_is_refused_naming_what_was_typed(clock: str):
    result = CliRunner().invoke(produce_command, ["--rate", "-5", "--clock", clock, "--count", "1"])
    assert result.exit_code == 2
    assert "Invalid value for '--rate': -5 is negative" in result.output
    assert "--rate 0" not in result.output


def test_a_negative_event_rate_is_refused():
    result = CliRunner().invoke(produce_command, ["--event-rate", "-2.5", "--clock", "simulated", "--count", "1"])
    assert result.exit_code == 2 and "Invalid value for '--event-rate': -2.5 is negative" in result.output


def test_rate_zero_in_real_time_names_the_flag_given():
    result = CliRunner().invoke(produce_command, ["--rate", "0", "--clock", "realtime", "--count", "1"])
    assert result.exit_code == 2
    assert "--rate 0 means as fast as possible, which needs --clock simulated" in result.output

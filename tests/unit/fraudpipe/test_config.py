from pathlib import Path

import pytest

from fraudpipe.config import Config, load_config
from fraudpipe.errors import ConfigError


def test_shipped_config_matches_the_loader_defaults():
    loaded = load_config(environ={})
    defaults = Config()
    for section in ("kafka", "schema_registry", "connect", "store", "spark", "dashboard", "model"):
        assert getattr(loaded, section) == getattr(defaults, section), section


def test_config_is_frozen():
    config = load_config(environ={})
    with pytest.raises(AttributeError):
        config.kafka.partitions = 9  # type: ignore[misc]


def test_env_override_is_typed():
    config = load_config(environ={"FRAUDPIPE_KAFKA__PARTITIONS": "6", "FRAUDPIPE_STORE__BACKEND": "cassandra"})
    assert config.kafka.partitions == 6
    assert config.store.backend == "cassandra"


def test_env_override_of_a_list_accepts_commas():
    config = load_config(environ={"FRAUDPIPE_STORE__CASSANDRA_CONTACT_POINTS": "c1, c2"})
    assert config.store.cassandra_contact_points == ("c1", "c2")


def test_unknown_key_names_key_and_file(tmp_path: Path):
    file = tmp_path / "config.yml"
    file.write_text("kafka:\n  bootstrap_server: x:1\n")
    with pytest.raises(ConfigError, match=r"unknown key kafka\.bootstrap_server") as info:
        load_config(file, environ={})
    assert str(file) in str(info.value)


def test_unknown_section_is_an_error(tmp_path: Path):
    file = tmp_path / "config.yml"
    file.write_text("kafak: {}\n")
    with pytest.raises(ConfigError, match="unknown key kafak"):
        load_config(file, environ={})


def test_mistyped_value_names_key(tmp_path: Path):
    file = tmp_path / "config.yml"
    file.write_text("spark:\n  watermark_seconds: soon\n")
    with pytest.raises(ConfigError, match=r"spark\.watermark_seconds must be int"):
        load_config(file, environ={})


def test_unknown_env_override_key_fails():
    with pytest.raises(ConfigError, match=r"unknown key store\.bakend"):
        load_config(environ={"FRAUDPIPE_STORE__BAKEND": "sqlite"})


def test_invalid_backend_is_rejected():
    with pytest.raises(ConfigError, match="store.backend"):
        load_config(environ={"FRAUDPIPE_STORE__BACKEND": "postgres"})


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yml", environ={})


def test_a_mistyped_env_override_names_the_variable_not_the_file():
    with pytest.raises(ConfigError) as error:
        load_config(environ={"FRAUDPIPE_PRODUCER__RATTE": "5"})
    message = str(error.value)
    assert message.startswith("environment variable FRAUDPIPE_PRODUCER__RATTE: unknown key producer.ratte")
    assert "config.yml" not in message and "rate" in message.split("known keys in producer:")[1]


def test_a_mistyped_env_override_inside_a_pattern_names_the_variable():
    with pytest.raises(ConfigError, match=r"^environment variable FRAUDPIPE_PRODUCER__PATTERNS__CARD_TESTING__SHAREE: "
                                          r"unknown key producer\.patterns\.card_testing\.sharee"):
        load_config(environ={"FRAUDPIPE_PRODUCER__PATTERNS__CARD_TESTING__SHAREE": "0.1"})
    config = load_config(environ={"FRAUDPIPE_PRODUCER__PATTERNS__CARD_TESTING__SHARE": "0.01"})
    assert config.producer.patterns["card_testing"].share == 0.01


def test_a_badly_typed_env_override_names_the_variable():
    with pytest.raises(ConfigError, match=r"producer\.rate must be float, got 'fast' \(set by environment variable "
                                          r"FRAUDPIPE_PRODUCER__RATE\)"):
        load_config(environ={"FRAUDPIPE_PRODUCER__RATE": "fast"})


def test_a_negative_producer_rate_is_refused():
    with pytest.raises(ConfigError, match=r"producer\.rate .* got -5.*FRAUDPIPE_PRODUCER__RATE"):
        load_config(environ={"FRAUDPIPE_PRODUCER__RATE": "-5"})


def test_port_overrides_move_every_service_of_the_stack_and_nothing_else():
    from fraudpipe.config import STACK_SERVICES, port_overrides

    ports = dict(zip(STACK_SERVICES, (29092, 28081, 28083, 28050)))
    config = load_config(environ=port_overrides(ports))
    assert (config.kafka.broker_port, config.kafka.bootstrap_servers) == (29092, "127.0.0.1:29092")
    assert (config.schema_registry.port, config.schema_registry.url) == (28081, "http://127.0.0.1:28081")
    assert (config.connect.port, config.connect.url) == (28083, "http://127.0.0.1:28083")
    assert config.dashboard.port == 28050
    assert load_config(environ=port_overrides({"registry": 1})).kafka == load_config(environ={}).kafka
    with pytest.raises(ConfigError, match="spark"):
        port_overrides({"spark": 4040})

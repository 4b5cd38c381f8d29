"""Config definitions, worker defaults and converters."""
from __future__ import annotations

import pytest

from fraudpipe.avro import frame_header
from fraudpipe.connect.configdef import BOOLEAN, INT, LIST, ConfigDef, ConfigKey, NO_DEFAULT
from fraudpipe.connect.converters import AVRO_CONVERTER, JSON_CONVERTER, STRING_CONVERTER, converter_problem, make_converter
from fraudpipe.connect.plugin import effective_config
from fraudpipe.connect.plugins import find_plugin
from fraudpipe.connect.state import PAUSED, STARTED, WorkerState
from fraudpipe.connect.worker import check_name, normalize_config
from fraudpipe.errors import ConnectError, SerializationError


def test_configdef_types_defaults_and_unknown_keys() -> None:
    definition = ConfigDef([ConfigKey("a", INT, NO_DEFAULT, minimum=1), ConfigKey("b", BOOLEAN, False),
                            ConfigKey("c", LIST, []), ConfigKey("d", default="x", choices=("x", "Y"))], prefixes=("p.",))
    ok = definition.validate({"a": "3", "b": "TRUE", "c": "u, v,", "d": "y", "p.anything": "1"})
    assert ok.errors == {} and ok.values == {"a": 3, "b": True, "c": ["u", "v"], "d": "Y"}
    bad = definition.validate({"a": "0", "b": "maybe", "d": "z", "zz": "1"})
    assert set(bad.errors) == {"a", "b", "d", "zz"} and bad.error_count == 4
    assert "Missing required" in definition.validate({}).errors["a"][0]
    described = {c["definition"]["name"]: c for c in definition.describe(bad)}
    assert described["zz"]["value"]["errors"] and described["d"]["value"]["recommended_values"] == ["x", "Y"]


def test_plugins_are_found_by_class_simple_name_and_alias() -> None:
    for name in ("io.confluent.connect.jdbc.JdbcSinkConnector", "JdbcSinkConnector", "JdbcSink"):
        assert find_plugin(name).class_name == "io.confluent.connect.jdbc.JdbcSinkConnector"
    assert find_plugin("CassandraSink").class_name == "com.datastax.oss.kafka.sink.CassandraSinkConnector"
    assert find_plugin("Nope") is None


def test_worker_defaults_fill_only_unset_converters() -> None:
    defaults = {"key.converter": STRING_CONVERTER, "value.converter": AVRO_CONVERTER,
                "value.converter.schema.registry.url": "http://r"}
    assert effective_config({}, defaults) == defaults
    own = effective_config({"value.converter": JSON_CONVERTER}, defaults)
    assert own["value.converter"] == JSON_CONVERTER and "value.converter.schema.registry.url" not in own


def test_converters() -> None:
    assert make_converter(STRING_CONVERTER, {})(b"caf\xc3\xa9") == "café"
    with pytest.raises(SerializationError):
        make_converter(STRING_CONVERTER, {})(b"\xff")
    assert make_converter(JSON_CONVERTER, {"schemas.enable": "false"})(b'{"a": 1}') == {"a": 1}
    assert make_converter(JSON_CONVERTER, {})(b'{"schema": {}, "payload": 5}') == 5
    with pytest.raises(SerializationError):
        make_converter(JSON_CONVERTER, {})(b'{"a": 1}')
    avro = make_converter(AVRO_CONVERTER, {"schema.registry.url": "http://127.0.0.1:1"})
    assert avro(None) is None
    with pytest.raises(SerializationError, match="magic byte"):
        avro(b"\x01" + frame_header(1)[1:] + b"x")
    assert converter_problem(AVRO_CONVERTER, {}) and converter_problem("com.example.Nope", {})
    assert converter_problem(STRING_CONVERTER, {}) is None


def test_names_and_config_bodies() -> None:
    assert check_name("fine name.-_é") == "fine name.-_é"
    for bad in ("", "  ", "a/b", "tab\there", None, 5, "\ud800"):
        with pytest.raises(ConnectError) as caught:
            check_name(bad)
        assert caught.value.http_status == 400
    assert normalize_config({"a": 1, "b": True, "c": None, "d": "x"}) == {"a": "1", "b": "true", "d": "x"}
    for bad in ([], "x", {"a": [1]}, {"a": {"b": 1}}):
        with pytest.raises(ConnectError):
            normalize_config(bad)


def test_worker_state_survives_reopening(tmp_path) -> None:
    state = WorkerState(tmp_path)
    state.put_connector("a", {"k": "v"}, STARTED)
    state.put_connector("b", {"k": "w"}, STARTED)
    state.set_target("b", PAUSED)
    state.save_offsets("b", {("t", 0): 10, ("t", 1): 4})
    state.save_offsets("b", {("t", 0): 12})
    state.delete_connector("a")
    state.close()
    reopened = WorkerState(tmp_path)
    assert reopened.connectors() == [("b", {"k": "w"}, PAUSED)]
    assert reopened.offsets("b") == {("t", 0): 12, ("t", 1): 4}
    reopened.close()

"""Property: whatever a client sends to any endpoint (malformed JSON, wrong types, odd names and
parameters), the worker answers below 500 in the API's error format and stays alive."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudpipe.connect.server import ConnectServer

pytestmark = pytest.mark.integration

ENDPOINTS = [
    ("GET", "/"), ("GET", "/connectors"), ("POST", "/connectors"), ("GET", "/connectors/{n}"),
    ("GET", "/connectors/{n}/config"), ("PUT", "/connectors/{n}/config"), ("GET", "/connectors/{n}/status"),
    ("GET", "/connectors/{n}/tasks"), ("GET", "/connectors/{n}/tasks/{t}/status"),
    ("POST", "/connectors/{n}/tasks/{t}/restart"), ("GET", "/connectors/{n}/topics"),
    ("PUT", "/connectors/{n}/topics/reset"), ("GET", "/connectors/{n}/offsets"), ("PUT", "/connectors/{n}/pause"),
    ("PUT", "/connectors/{n}/resume"), ("PUT", "/connectors/{n}/stop"), ("POST", "/connectors/{n}/restart"),
    ("DELETE", "/connectors/{n}"), ("GET", "/connector-plugins"), ("PUT", "/connector-plugins/{n}/config/validate"),
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
CONFIG_KEYS = ["name", "connector.class", "topics", "topics.regex", "tasks.max", "connection.url", "pk.mode",
               "insert.mode", "errors.tolerance", "value.converter", "contactPoints", "topic.t.ks.tb.mapping", "x"]

odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["", " ", "..", "%", "a/b", "JdbcSinkConnector", "io.confluent.connect.jdbc.JdbcSinkConnector", "💥", "\u00e9t\u00e9"])
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
                           max_leaves=8)
configs = st.dictionaries(st.sampled_from(CONFIG_KEYS) | odd_text, json_values, max_size=6)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v).encode()),
    configs.map(lambda c: json.dumps(c).encode()),
    st.builds(lambda n, c: json.dumps({"name": n, "config": c}).encode(), json_values, configs),
    st.sampled_from([b"{", b"[[[[", b'{"name": "x", "config": ', b"\xff\xfe", ("[" * 5000).encode(),
                     b'{"name": "\\ud800", "config": {"connector.class": "JdbcSink"}}', b'{"\\udfff": "\\ud800"}']),
)
content_types = st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded", "garbage/;;"])
queries = st.dictionaries(st.sampled_from(["includeTasks", "onlyFailed", "expand", "forward"]) | odd_text, odd_text, max_size=3)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), method=st.none() | st.sampled_from(METHODS), name=odd_text,
       task=st.integers(-3, 5).map(str) | odd_text, body=bodies, content_type=content_types, query=queries)
def test_no_request_gets_a_5xx_or_kills_the_worker(connect_worker: ConnectServer, endpoint, method, name, task, body,
                                                  content_type, query) -> None:
    verb, template = endpoint
    path = template.replace("{n}", quote(name, safe="")).replace("{t}", quote(task, safe=""))
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.request(method or verb, connect_worker.url + path, params=query, data=body, headers=headers,
                                timeout=60)
    assert response.status_code < 500, (method or verb, path, body, response.text)
    if response.status_code >= 400:
        error = response.json()
        assert error["error_code"] == response.status_code and isinstance(error["message"], str)
    assert connect_worker.alive()


def test_worker_still_serves_after_the_fuzzing(connect_worker: ConnectServer) -> None:
    assert requests.get(connect_worker.url + "/", timeout=10).status_code == 200
    for name in requests.get(connect_worker.url + "/connectors", timeout=10).json():
        if not name.startswith("sink-"):  # anything the fuzzing created
            assert requests.delete(f"{connect_worker.url}/connectors/{quote(name, safe='')}", timeout=60).status_code == 204

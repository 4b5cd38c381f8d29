"""Property: whatever a client sends to any endpoint, the answer is never a 5xx, and every error
is a Confluent-style `{"error_code": int, "message": str}` body."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fraudpipe.contracts import transaction_schema, transaction_schema_str
from fraudpipe.registry.server import RegistryServer

pytestmark = pytest.mark.integration

KNOWN_SUBJECT = "fuzz-known-value"
ROUTES = (  # every route with its methods; a few wrong methods are mixed in below
    ("GET", "/"), ("GET", "/schemas/types"), ("GET", "/schemas/ids/{id}"), ("GET", "/schemas/ids/{id}/schema"),
    ("GET", "/schemas/ids/{id}/subjects"), ("GET", "/schemas/ids/{id}/versions"), ("GET", "/subjects"),
    ("POST", "/subjects/{s}"), ("DELETE", "/subjects/{s}"), ("GET", "/subjects/{s}/versions"),
    ("POST", "/subjects/{s}/versions"), ("GET", "/subjects/{s}/versions/{v}"),
    ("DELETE", "/subjects/{s}/versions/{v}"), ("GET", "/subjects/{s}/versions/{v}/schema"),
    ("GET", "/subjects/{s}/versions/{v}/referencedby"), ("GET", "/config"), ("PUT", "/config"),
    ("DELETE", "/config"), ("GET", "/config/{s}"), ("PUT", "/config/{s}"), ("DELETE", "/config/{s}"),
    ("POST", "/compatibility/subjects/{s}/versions/{v}"), ("POST", "/compatibility/subjects/{s}/versions"),
    ("GET", "/mode"), ("PUT", "/mode"), ("GET", "/mode/{s}"), ("PUT", "/mode/{s}"), ("DELETE", "/mode/{s}"),
)
routes = st.one_of(
    st.sampled_from(ROUTES),
    st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), st.sampled_from([p for _, p in ROUTES])),
)
PARAMS = ("deleted", "deletedOnly", "deleted_only", "permanent", "verbose", "defaultToGlobal", "force",
          "subjectPrefix", "offset", "limit", "subject", "normalize")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
odd_text = st.text(max_size=20)
segments = st.one_of(
    st.sampled_from([KNOWN_SUBJECT, "latest", "-1", "0", "1", "2", "abc", "%", "..", "9" * 30, " "]),
    odd_text.filter(bool),
    st.integers(min_value=-(2**63), max_value=2**70).map(str),
)
schema_texts = st.one_of(
    st.sampled_from([transaction_schema_str(1), transaction_schema_str(2), '"string"', '{"type": "int"}',
                     '"io.fraudpipe.events.Transaction"', '["null", "io.fraudpipe.events.Transaction"]',
                     '{"type": "record", "name": "R", "fields": []}', "{", "[]", '["null", "null"]']),
    json_values.map(json.dumps),
    odd_text,
    json_values,
)
references = st.fixed_dictionaries(  # well-formed ones too, so resolution runs, not only the shape check
    {"name": st.sampled_from(["io.fraudpipe.events.Transaction", "Transaction", "x"]),
     "subject": st.one_of(st.just(KNOWN_SUBJECT), odd_text),
     "version": st.one_of(st.sampled_from([1, -1, 2, 0]), json_values)},
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=40),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "schema": schema_texts,
            "schemaType": st.one_of(st.sampled_from(["AVRO", "JSON", "PROTOBUF"]), json_values),
            "references": st.one_of(st.just([]), json_values, st.lists(references, max_size=3)),
            "id": json_values,
            "version": json_values,
            "compatibility": st.one_of(st.sampled_from(["NONE", "full", "BACKWARD_TRANSITIVE"]), json_values),
            "compatibilityLevel": json_values,
            "mode": st.one_of(st.sampled_from(["READWRITE", "readonly", "IMPORT"]), json_values),
        },
    ).map(lambda body: json.dumps(body).encode()),
)


@pytest.fixture(scope="module")
def fuzz_registry(own_registry: RegistryServer) -> RegistryServer:
    """A private registry (the fuzzer changes global config and mode) with one known subject."""
    schema = transaction_schema(1)
    requests.post(f"{own_registry.url}/subjects/{KNOWN_SUBJECT}/versions",
                  json={"schema": json.dumps(schema)}).raise_for_status()
    return own_registry


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=routes,
    subject=segments,
    version=segments,
    schema_id=segments,
    params=st.dictionaries(st.sampled_from(PARAMS), odd_text | st.sampled_from(["true", "True", "FALSE"]), max_size=3),
    body=bodies,
    content_type=st.sampled_from(["application/vnd.schemaregistry.v1+json", "application/json", "text/plain", ""]),
)
def test_never_a_5xx_and_errors_are_confluent_shaped(
    fuzz_registry: RegistryServer, route: tuple[str, str], subject: str, version: str, schema_id: str,
    params: dict[str, str], body: bytes | None, content_type: str,
) -> None:
    method, path = route
    url = fuzz_registry.url + path.format(s=quote(subject, safe=""), v=quote(version, safe=""),
                                          id=quote(schema_id, safe=""))
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.request(method, url, params=params, data=body, headers=headers, timeout=30)
    event(f"HTTP {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code < 500, response.text
    payload: Any = response.json()
    if response.status_code >= 400:
        assert set(payload) == {"error_code", "message"}
        assert isinstance(payload["error_code"], int) and isinstance(payload["message"], str)
        assert str(payload["error_code"]).startswith(str(response.status_code)[:2])

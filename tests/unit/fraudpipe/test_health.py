"""http_ok and http_json against a real HTTP server on loopback (and a port nothing listens on)."""
from __future__ import annotations

import json
from typing import Iterator

import pytest

from fraudpipe.broker import free_port
from fraudpipe.health import http_json, http_ok
from tests.fixtures.core import QuietHandler, loopback_http


class Handler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        routes = {"/ok": (200, b'{"status": "ok"}'), "/empty": (204, b""), "/text": (502, b"bad gateway")}
        self.answer(*routes.get(self.path, (404, b'{"error_code": 404, "message": "not found"}')), content_type=None)

    def do_PUT(self) -> None:  # noqa: N802
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.answer(201, {"got": sent, "type": self.headers["Content-Type"]}, content_type=None)


@pytest.fixture
def base_url() -> Iterator[str]:
    with loopback_http(Handler) as url:
        yield url


def test_http_ok(base_url: str):
    assert http_ok(f"{base_url}/ok")
    assert not http_ok(f"{base_url}/missing")
    assert not http_ok(f"http://127.0.0.1:{free_port()}/")


def test_http_json_decodes_bodies_and_keeps_error_statuses(base_url: str):
    assert http_json(f"{base_url}/ok") == (200, {"status": "ok"})
    assert http_json(f"{base_url}/missing") == (404, {"error_code": 404, "message": "not found"})
    assert http_json(f"{base_url}/empty") == (204, None)
    assert http_json(f"{base_url}/text") == (502, "bad gateway")


def test_http_json_sends_json(base_url: str):
    assert http_json(f"{base_url}/x", method="PUT", body={"a": [1, 2]}) == (
        201, {"got": {"a": [1, 2]}, "type": "application/json"})


def test_http_json_unreachable_is_status_0():
    status, message = http_json(f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert status == 0 and "Connection refused" in message

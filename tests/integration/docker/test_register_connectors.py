"""docker/register-connectors.sh against a Kafka Connect REST endpoint that answers as a rebalancing worker does.

The embedded worker never rebalances, so a small stand-in for the real Kafka Connect REST
API plays the worker here: a scripted sequence of answers to PUT /connectors/<name>/config
(409 while the group rebalances, as the real worker answers during its first rebalance),
then RUNNING on /status. The script itself runs unchanged, with bash and curl.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from fraudpipe.contracts import PROJECT_ROOT

pytestmark = pytest.mark.integration

SCRIPT = PROJECT_ROOT / "docker" / "register-connectors.sh"
CONNECTOR = PROJECT_ROOT / "connectors" / "cassandra-sink.json"
NAME = json.loads(CONNECTOR.read_text())["name"]
REBALANCING = {"error_code": 409, "message": "Cannot complete request momentarily due to stale configuration "
                                            "(typically caused by a concurrent config change)"}


class Worker(ThreadingHTTPServer):
    def __init__(self, put_answers: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.put_answers = put_answers  # the status of each PUT in turn; the last one repeats
        self.puts = 0


class Handler(BaseHTTPRequestHandler):
    server: Worker

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/connector-plugins":
            self._send(200, [])
        elif self.path == f"/connectors/{NAME}/status":
            self._send(200, {"name": NAME, "connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]})
        else:
            self._send(404, {"error_code": 404, "message": "not found"})

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        code = self.server.put_answers[min(self.server.puts, len(self.server.put_answers) - 1)]
        self.server.puts += 1
        self._send(code, REBALANCING if code == 409 else {"error_code": code, "message": "answer"} if code >= 400
                   else {"name": NAME, "config": {}, "tasks": []})


@pytest.fixture
def worker(request: pytest.FixtureRequest) -> Iterator[Worker]:
    server = Worker(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def register(worker: Worker, wait_seconds: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRAUDPIPE_CONNECT__URL": f"http://127.0.0.1:{worker.server_address[1]}",
           "REGISTER_WAIT_SECONDS": str(wait_seconds)}
    return subprocess.run(["bash", str(SCRIPT), str(CONNECTOR)], env=env, capture_output=True, text=True,
                          timeout=wait_seconds + 30, check=False)


@pytest.mark.parametrize("worker", [[409, 409, 201]], indirect=True)
def test_a_409_during_the_rebalance_is_retried_until_accepted(worker: Worker) -> None:
    result = register(worker, wait_seconds=60)
    assert result.returncode == 0, result.stderr
    assert worker.puts == 3
    assert result.stderr.count("HTTP 409") == 2 and f"connector {NAME}: RUNNING" in result.stdout


@pytest.mark.parametrize("worker", [[409]], indirect=True)
def test_a_worker_that_never_settles_fails_the_registration_in_bounded_time(worker: Worker) -> None:
    started = time.monotonic()
    result = register(worker, wait_seconds=4)
    assert result.returncode == 1
    assert "still HTTP 409" in result.stderr and 2 <= worker.puts <= 4
    assert time.monotonic() - started < 30  # bounded by REGISTER_WAIT_SECONDS, not by the worker


@pytest.mark.parametrize("worker", [[400]], indirect=True)
def test_a_rejected_config_fails_at_once(worker: Worker) -> None:
    result = register(worker, wait_seconds=60)
    assert result.returncode == 1 and worker.puts == 1 and "HTTP 400" in result.stderr

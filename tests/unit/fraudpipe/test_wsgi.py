"""serve_wsgi in a real child process: it answers, a signal ends it cleanly after `after` ran,
and a port already taken is the caller's domain error."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import requests

from fraudpipe.broker import free_port
from fraudpipe.process import LOOPBACK

SERVER = """
import sys
from fraudpipe.errors import RegistryError
from fraudpipe.wsgi import serve_wsgi

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

try:
    serve_wsgi(app, host="127.0.0.1", port=int(sys.argv[1]), threads=1, ident="test", error=RegistryError,
               ready_message="ready", before=lambda: print("before", flush=True),
               after=lambda: print("after", flush=True))
except RegistryError as exc:
    print(f"error: {exc}", flush=True)
    sys.exit(3)
"""


def start(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_a_signal_then_runs_after(signum: int):
    port = free_port()
    process = start(port)
    try:
        assert process.stdout.readline() == "before\n"
        assert process.stdout.readline() == "ready\n"  # printed once the port is bound
        assert requests.get(f"http://{LOOPBACK}:{port}/", timeout=10).text == "hello"
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out == "after\n"


def test_a_port_in_use_is_the_domain_error_and_after_still_runs():
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start(port)
        try:
            out, _ = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 3
    assert out.splitlines()[0] == "after"
    assert out.splitlines()[1].startswith(f"error: cannot listen on 127.0.0.1:{port}")

"""Running the registry: in the foreground with waitress, or as a supervised child process.

`serve()` is what `fraudpipe registry` runs; `RegistryServer` starts that command as a
child on 127.0.0.1 and waits until it answers, for tests and anything else that needs a
registry up for a while (and restarts it over the same data dir to prove durability).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from fraudpipe.errors import RegistryError

LOOPBACK = "127.0.0.1"
THREADS = 8


def serve(port: int, data_dir: str | Path, *, host: str = LOOPBACK, threads: int = THREADS) -> None:
    """Serve the registry over `data_dir` until SIGINT/SIGTERM, with waitress (a production WSGI server)."""
    from waitress.server import create_server

    from fraudpipe.registry.app import create_app

    app = create_app(data_dir=data_dir)
    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="fraudpipe-registry")
    except OSError as exc:
        raise RegistryError(f"cannot listen on {host}:{port}: {exc}") from exc

    def stop(signum: int, frame: object) -> None:
        server.close()  # makes run() return; SQLite commits each write, so nothing is lost

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"schema registry listening on http://{host}:{port} (data in {data_dir})", flush=True)
    try:
        server.run()
    except (OSError, ValueError):
        pass  # the select loop ends with EBADF once close() runs inside it
    finally:
        app.extensions["fraudpipe.registry"].storage.close()


def wait_until_up(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until GET {url}/ answers 200, or raise RegistryError."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RegistryError(f"schema registry exited with code {process.returncode} before answering at {url}")
        try:
            if requests.get(url + "/", timeout=2).status_code == 200:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise RegistryError(f"schema registry at {url} did not answer within {timeout:.0f}s: {last}")


@dataclass
class RegistryServer:
    """A registry child process on 127.0.0.1:`port` keeping its state in `data_dir`."""

    port: int
    data_dir: Path
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 30.0) -> "RegistryServer":
        if self.process is not None:
            return self
        log: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraudpipe.cli", "registry", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        if not isinstance(log, int):
            log.close()  # the child holds its own descriptor
        try:
            wait_until_up(self.url, timeout=timeout, process=self.process)
        except RegistryError:
            self.stop()
            raise
        return self

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)

    def kill(self) -> None:
        """SIGKILL, no clean shutdown: what a crash looks like (used to prove durability)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self) -> "RegistryServer":
        self.stop()
        return self.start()

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

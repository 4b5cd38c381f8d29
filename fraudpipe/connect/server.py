"""Running the Connect worker: in the foreground under waitress, or as a supervised child process.

`serve()` is what `fraudpipe connect` runs; `ConnectServer` starts that command as a
child on 127.0.0.1 and waits until it answers, for `fraudpipe up` and for tests (which
also kill -9 it and start it again over the same data dir).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from fraudpipe.connect.task import TaskSettings
from fraudpipe.errors import ConnectError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class WorkerOptions:
    """Everything a worker process needs, after config.yml and the command-line flags are merged."""

    port: int
    data_dir: Path
    bootstrap_servers: str
    registry_url: str
    host: str = LOOPBACK
    threads: int = 4
    settings: TaskSettings | None = None


def serve(options: WorkerOptions) -> None:
    """Serve the worker until SIGINT/SIGTERM; connectors come back in their stored states."""
    from waitress.server import create_server

    from fraudpipe.connect.rest import create_app
    from fraudpipe.connect.worker import Worker

    settings = options.settings or TaskSettings(bootstrap_servers=options.bootstrap_servers)
    worker = Worker(data_dir=options.data_dir, settings=settings, registry_url=options.registry_url,
                    worker_id=f"{options.host}:{options.port}")
    try:
        server = create_server(create_app(worker), host=options.host, port=options.port, threads=options.threads,
                               ident="fraudpipe-connect")
    except OSError as exc:
        raise ConnectError(f"cannot listen on {options.host}:{options.port}: {exc}") from exc

    def stop(signum: int, frame: object) -> None:
        server.close()  # run() returns; the tasks are stopped below, committed offsets are on disk

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.start()
    print(f"connect worker listening on http://{options.host}:{options.port} (state in {options.data_dir}, "
          f"kafka {options.bootstrap_servers}, registry {options.registry_url})", flush=True)
    try:
        server.run()
    except (OSError, ValueError):
        pass  # the select loop ends with EBADF once close() runs inside it
    finally:
        worker.stop()


def wait_until_up(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until GET {url}/ answers 200, or raise ConnectError."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConnectError(f"connect worker exited with code {process.returncode} before answering at {url}")
        try:
            if requests.get(url + "/", timeout=2).status_code == 200:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise ConnectError(f"connect worker at {url} did not answer within {timeout:.0f}s: {last}")


@dataclass
class ConnectServer:
    """A `fraudpipe connect` child process on 127.0.0.1:`port` with its state in `data_dir`."""

    port: int
    data_dir: Path
    bootstrap_servers: str
    registry_url: str
    log_path: Path | None = None
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 30.0) -> "ConnectServer":
        if self.process is not None:
            return self
        log: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fraudpipe.cli", "connect", "--port", str(self.port), "--data-dir", str(self.data_dir),
             "--bootstrap", self.bootstrap_servers, "--registry", self.registry_url],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.cwd,
            env={**os.environ, **self.env},
        )
        if not isinstance(log, int):
            log.close()  # the child holds its own descriptor
        try:
            wait_until_up(self.url, timeout=timeout, process=self.process)
        except ConnectError:
            self.stop()
            raise
        return self

    def stop(self, *, grace: float = 20.0) -> None:
        """SIGTERM (tasks stop, consumers leave the group), then SIGKILL after `grace` seconds."""
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
        """SIGKILL, no goodbye: what a crash looks like to the broker and the store."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> "ConnectServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

"""Running the Connect worker: in the foreground under waitress, or as a supervised child process.

`serve()` is what `fraudpipe connect` runs; `ConnectServer` starts that command as a
child on 127.0.0.1 and waits until it answers, for `fraudpipe up` and for tests (which
also kill -9 it and start it again over the same data dir).
"""
from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


from fraudpipe.connect.task import TaskSettings
from fraudpipe.errors import ConnectError
from fraudpipe.health import http_ok
from fraudpipe.process import LOOPBACK, ChildService, wait_until
from fraudpipe.wsgi import serve_wsgi


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
    from fraudpipe.connect.rest import create_app
    from fraudpipe.connect.worker import Worker

    settings = options.settings or TaskSettings(bootstrap_servers=options.bootstrap_servers)
    worker = Worker(data_dir=options.data_dir, settings=settings, registry_url=options.registry_url,
                    worker_id=f"{options.host}:{options.port}")
    # on a signal the tasks stop after the last request; their committed offsets are on disk
    serve_wsgi(create_app(worker), host=options.host, port=options.port, threads=options.threads,
               ident="fraudpipe-connect", error=ConnectError, before=worker.start, after=worker.stop,
               ready_message=f"connect worker listening on http://{options.host}:{options.port} "
                             f"(state in {options.data_dir}, kafka {options.bootstrap_servers}, "
                             f"registry {options.registry_url})")


def wait_until_up(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until GET {url}/ answers 200, or raise ConnectError."""
    wait_until(lambda: http_ok(url + "/"), process=process, timeout=timeout, what=f"connect worker at {url}", error=ConnectError)


@dataclass
class ConnectServer(ChildService):
    """A `fraudpipe connect` child process on 127.0.0.1:`port` with its state in `data_dir`."""

    port: int
    data_dir: Path
    bootstrap_servers: str
    registry_url: str
    log_path: Path | None = None
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    stop_grace = 20.0  # tasks stop and consumers leave the group

    def command(self) -> list[str]:
        return ["connect", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--bootstrap", self.bootstrap_servers, "--registry", self.registry_url]

    def spawn_options(self) -> dict[str, object]:
        return {"cwd": self.cwd, "env": self.env}

    def wait_ready(self, *, timeout: float) -> None:
        wait_until_up(self.url, timeout=timeout, process=self.process)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

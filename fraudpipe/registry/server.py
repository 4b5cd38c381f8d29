"""Running the registry: in the foreground with waitress, or as a supervised child process.

`serve()` is what `fraudpipe registry` runs; `RegistryServer` starts that command as a
child on 127.0.0.1 and waits until it answers, for tests and anything else that needs a
registry up for a while (and restarts it over the same data dir to prove durability).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path


from fraudpipe.errors import RegistryError
from fraudpipe.health import http_ok
from fraudpipe.process import LOOPBACK, ChildService, wait_until
from fraudpipe.wsgi import serve_wsgi

THREADS = 8


def serve(port: int, data_dir: str | Path, *, host: str = LOOPBACK, threads: int = THREADS) -> None:
    """Serve the registry over `data_dir` until SIGINT/SIGTERM, with waitress (a production WSGI server)."""
    from fraudpipe.registry.app import create_app

    app = create_app(data_dir=data_dir)
    # SQLite commits each write, so closing the storage after the last request loses nothing
    serve_wsgi(app, host=host, port=port, threads=threads, ident="fraudpipe-registry", error=RegistryError,
               ready_message=f"schema registry listening on http://{host}:{port} (data in {data_dir})",
               after=app.extensions["fraudpipe.registry"].storage.close)


def wait_until_up(url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until GET {url}/ answers 200, or raise RegistryError."""
    wait_until(lambda: http_ok(url + "/"), process=process, timeout=timeout, what=f"schema registry at {url}", error=RegistryError)


@dataclass
class RegistryServer(ChildService):
    """A registry child process on 127.0.0.1:`port` keeping its state in `data_dir`."""

    port: int
    data_dir: Path
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        return ["registry", "--port", str(self.port), "--data-dir", str(self.data_dir)]

    def wait_ready(self, *, timeout: float) -> None:
        wait_until_up(self.url, timeout=timeout, process=self.process)

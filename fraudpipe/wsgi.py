"""Serving a WSGI app in the foreground with waitress until SIGTERM or SIGINT.

The registry and the Connect worker run this way (`fraudpipe registry`, `fraudpipe connect`):
a port that cannot be bound is their domain's error, a signal closes the server, and
`after` releases what the app holds (SQLite files, sink tasks) once it no longer answers.
"""
from __future__ import annotations

import signal
from typing import Any, Callable

from fraudpipe.errors import FraudpipeError


def serve_wsgi(app: Any, *, host: str, port: int, threads: int, ident: str, ready_message: str,
               error: type[FraudpipeError], before: Callable[[], None] | None = None,
               after: Callable[[], None] | None = None) -> None:
    """Bind `host:port`, run `before`, print `ready_message`, serve until SIGTERM/SIGINT, then run `after`.

    Must run in the main thread (it installs the signal handlers). `after` runs however
    serving ends, also when `before` fails.
    """
    from waitress.server import create_server

    try:
        server = create_server(app, host=host, port=port, threads=threads, ident=ident)
    except OSError as exc:
        if after is not None:
            after()
        raise error(f"cannot listen on {host}:{port}: {exc}") from exc

    def stop(signum: int, frame: object) -> None:
        server.close()  # makes run() return

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if before is not None:
            before()
        print(ready_message, flush=True)
        try:
            server.run()
        except (OSError, ValueError):
            pass  # the select loop ends with EBADF once close() runs inside it
    finally:
        if after is not None:
            after()

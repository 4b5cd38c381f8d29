"""`fraudpipe dashboard`: serve the dashboard with waitress (a production WSGI server)."""
from __future__ import annotations

import dataclasses

import click

from fraudpipe.config import load_config


@click.command(name="dashboard")
@click.option("--host", default=None, help="Interface to bind (default: dashboard.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port to bind (default: dashboard.port).")
def dashboard_command(host: str | None, port: int | None) -> None:
    """Serve the live fraud and pipeline dashboard (read-only) over HTTP."""
    import waitress

    from dashboard.app import create_app

    config = load_config()
    settings = dataclasses.replace(
        config.dashboard,
        host=host if host is not None else config.dashboard.host,
        port=port if port is not None else config.dashboard.port,
    )
    config = dataclasses.replace(config, dashboard=settings)
    app = create_app(config)
    click.echo(f"dashboard on http://{settings.host}:{settings.port}/ (store: {config.store.backend})")
    waitress.serve(app, host=settings.host, port=settings.port, threads=settings.threads, ident="fraudpipe-dashboard")

"""`fraudpipe connect`: the Kafka-Connect-compatible worker, flags overriding config.yml."""
from __future__ import annotations

import click

from fraudpipe.config import load_config


@click.command(name="connect")
@click.option("--port", type=int, default=None, help="REST port on 127.0.0.1 (default: connect.port).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where connector configs, states and offsets are kept (default: connect.data_dir).")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (default: kafka.bootstrap_servers).")
@click.option("--registry", default=None, help="Schema Registry URL for AvroConverter (default: schema_registry.url).")
def connect_command(port: int | None, data_dir: str | None, bootstrap: str | None, registry: str | None) -> None:
    """Run the Kafka-Connect-compatible worker (REST API of Kafka Connect 3.5) until Ctrl-C."""
    from pathlib import Path

    from fraudpipe.connect.server import WorkerOptions, configure_logging, serve
    from fraudpipe.connect.task import TaskSettings

    config = load_config()
    section = config.connect
    bootstrap_servers = bootstrap or config.kafka.bootstrap_servers
    settings = TaskSettings(
        bootstrap_servers=bootstrap_servers, session_timeout_ms=config.kafka.session_timeout_ms,
        batch_size=section.batch_size, poll_timeout_ms=section.poll_timeout_ms,
        retry_backoff_ms=section.retry_backoff_ms, retry_backoff_max_ms=section.retry_backoff_max_ms,
    )
    configure_logging()
    serve(WorkerOptions(
        port=port or section.port,
        data_dir=Path(data_dir) if data_dir else config.path(section.data_dir),
        bootstrap_servers=bootstrap_servers,
        registry_url=registry or config.schema_registry.url,
        host=section.host, threads=section.threads, settings=settings,
    ))

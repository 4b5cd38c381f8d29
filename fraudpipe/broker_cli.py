"""`fraudpipe broker`: run the embedded Kafka-protocol broker in the foreground."""
from __future__ import annotations

import signal
import threading

import click

from fraudpipe.broker import EmbeddedBroker
from fraudpipe.config import load_config


@click.command("broker")
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: kafka.broker_port).")
def broker_command(port: int | None) -> None:
    """Run the embedded Tansu broker (memory only) until Ctrl-C."""
    config = load_config()
    broker = EmbeddedBroker(port or config.kafka.broker_port).start()
    click.echo(f"broker listening on {broker.bootstrap_servers} (memory only: topics are lost when it stops)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if broker.process is not None and broker.process.poll() is not None:
            raise click.ClickException(f"broker exited with code {broker.process.returncode}")
    broker.stop()
    click.echo("broker stopped")

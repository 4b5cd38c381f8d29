"""The `fraudpipe` command. Each subcommand lives with its domain and is imported on use,
so `fraudpipe --help` stays fast and one component's heavy imports never slow another.
"""
from __future__ import annotations

import importlib
import sys

import click

from fraudpipe.errors import FraudpipeError

# name -> "module:attribute" of a click command
COMMANDS = {
    "up": "fraudpipe.stack:up_command",
    "status": "fraudpipe.stack:status_command",
    "down": "fraudpipe.stack:down_command",
    "broker": "fraudpipe.broker_cli:broker_command",
    "registry": "fraudpipe.registry.cli:registry_command",
    "schema": "fraudpipe.registry.cli:schema_group",
    "connect": "fraudpipe.connect.cli:connect_command",
    "produce": "producer.cli:produce_command",
    "stream": "spark_apps.stream.job:stream_command",
    "train": "spark_apps.training.job:train_command",
    "dashboard": "dashboard.cli:dashboard_command",
    "config": "fraudpipe.config_cli:config_group",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return _not_built(name)
            raise
        return getattr(module, attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FraudpipeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


def _not_built(name: str) -> click.Command:
    @click.command(name=name, help="(not available in this build yet)")
    def missing() -> None:
        raise click.ClickException(f"`fraudpipe {name}` is not part of this build yet")

    return missing


@click.group(cls=LazyGroup)
@click.version_option(package_name="fraudpipe")
def main() -> None:
    """fraudpipe: real-time fraud detection on Kafka, Schema Registry, Connect, Spark and Cassandra/SQLite."""


if __name__ == "__main__":
    main()

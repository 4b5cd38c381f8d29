"""The `fraudpipe` command. Each subcommand lives with its domain and is imported on use,
so `fraudpipe --help` stays fast and one component's heavy imports never slow another.

Subcommands are registered as `fraudpipe.commands` entry points in pyproject.toml, so the
apps (producer, Spark jobs, dashboard) add their commands without fraudpipe importing them.
"""
from __future__ import annotations

import importlib
import sys
from functools import lru_cache
from importlib.metadata import entry_points

import click

from fraudpipe.errors import FraudpipeError

COMMAND_GROUP = "fraudpipe.commands"


@lru_cache(maxsize=1)
def commands() -> dict[str, str]:
    """name -> "module:attribute" of each click command registered under COMMAND_GROUP."""
    return {entry.name: entry.value for entry in entry_points(group=COMMAND_GROUP)}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = commands().get(name)
        if target is None:
            if not commands():  # installed before the entry points existed
                raise click.ClickException(f"no {COMMAND_GROUP} entry points installed: run `pip install -e .` "
                                           "(./dev does it when pyproject.toml changes)")
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FraudpipeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=LazyGroup)
@click.version_option(package_name="fraudpipe")
def main() -> None:
    """fraudpipe: real-time fraud detection on Kafka, Schema Registry, Connect, Spark and Cassandra/SQLite."""


if __name__ == "__main__":
    main()

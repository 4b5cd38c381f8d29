"""`fraudpipe realstack fetch|up|status|down`: the real-stack bench by hand."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from fraudpipe.errors import RealstackError
from fraudpipe.realstack import jars
from fraudpipe.realstack.bench import DEFAULT_ROOT, SERVICES, Bench

_ROOT = click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True,
                     help="work dir of the bench: configs, data, logs, state.json")


@click.group("realstack")
def realstack_group() -> None:
    """A real Apache Kafka 4.4 (KRaft) and Apache Cassandra 5.0 on free loopback ports, from Maven jars."""


@realstack_group.command("fetch")
@click.option("--if-possible", is_flag=True,
              help="outside CI, only say why when Java or Maven is missing (tests then skip); under CI=true, fail")
def fetch_command(if_possible: bool) -> None:
    """Fetch the pinned jars of realstack/pom.xml once (a no-op while the pom is unchanged)."""
    reason = jars.missing_tools()
    if reason and if_possible and os.environ.get("CI", "").lower() != "true":
        click.echo(f"==> real-stack bench unavailable, its tests will be skipped: {reason}", err=True)
        return
    if not jars.fetched():
        click.echo(f"==> fetching the real-stack jars with Maven into {jars.LIB_DIR} (once)", err=True)
    jars.fetch()


@realstack_group.command("up")
@_ROOT
@click.option("--only", type=click.Choice(SERVICES), multiple=True, help="start only this server (repeatable)")
def up_command(root: Path, only: tuple[str, ...]) -> None:
    """Start Kafka and Cassandra in the background and print where they listen."""
    running = Bench.load(root)
    if running is not None and "ok" in running.health().values():
        raise RealstackError(f"a bench is already running under {root}: `fraudpipe realstack status` or `down`")
    bench = Bench(root, detached=True).start(only or SERVICES)
    _print(bench)


@realstack_group.command("status")
@_ROOT
def status_command(root: Path) -> None:
    """Print the bench's addresses and whether each server answers."""
    bench = Bench.load(root)
    if bench is None:
        raise RealstackError(f"no bench is running under {root} (start one with `fraudpipe realstack up`)")
    _print(bench)


@realstack_group.command("down")
@_ROOT
@click.option("--wipe", is_flag=True, help="also delete its data")
def down_command(root: Path, wipe: bool) -> None:
    """Stop the bench started by `up`."""
    bench = Bench.load(root) or Bench(root, detached=True)
    bench.stop()
    if wipe:
        bench.wipe()
    click.echo(f"stopped the bench under {root}" + (" and deleted its data" if wipe else ""))


def _print(bench: Bench) -> None:
    described = bench.describe()
    health = bench.health()
    if "kafka" in described:
        click.echo(f"kafka      bootstrap.servers={described['kafka']['bootstrap_servers']}  ({health['kafka']})")
    if "cassandra" in described:
        c = described["cassandra"]
        click.echo(f"cassandra  contact point {c['contact_point']} port {c['port']}  ({health['cassandra']})")
    click.echo(json.dumps(described, indent=2))

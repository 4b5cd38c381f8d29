"""`fraudpipe registry` (run the embedded Schema Registry) and `fraudpipe schema` (register/check/evolve).

The schema commands talk to any Confluent-compatible registry over its REST API, through
confluent-kafka's SchemaRegistryClient, so they work against the real one too.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import click

from fraudpipe.errors import RegistryError


@click.command("registry")
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: schema_registry.port).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the durable SQLite state (default: schema_registry.data_dir).")
def registry_command(port: int | None, data_dir: str | None) -> None:
    """Run the Confluent-compatible Schema Registry on 127.0.0.1 until Ctrl-C."""
    from fraudpipe.config import load_config
    from fraudpipe.registry.server import serve

    config = load_config()
    section = config.schema_registry
    serve(port or section.port, Path(data_dir) if data_dir else config.path(section.data_dir))


@click.group("schema")
def schema_group() -> None:
    """Register, check and evolve the transaction schema against a Schema Registry."""


def _client(url: str | None):  # type: ignore[no-untyped-def]
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from fraudpipe.config import load_config

    return SchemaRegistryClient({"url": url or load_config().schema_registry.url})


def _schema_text(path: str | None, version: int) -> str:
    from fraudpipe.contracts import transaction_schema_str

    if path is None:
        return transaction_schema_str(version)
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise RegistryError(f"cannot read schema file {path}: {exc}") from exc


def _subject(subject: str | None) -> str:
    from fraudpipe.contracts import TRANSACTIONS_SUBJECT

    return subject or TRANSACTIONS_SUBJECT


_url_option = click.option("--url", default=None, help="Registry URL (default: schema_registry.url).")
_subject_option = click.option("--subject", default=None, help="Subject (default: the transactions value subject).")
_file_option = click.option("--file", "path", type=click.Path(dir_okay=False), default=None,
                            help="Avro schema file (default: schema.avsc).")


def _call(action, *args):  # type: ignore[no-untyped-def]
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        return action(*args)
    except SchemaRegistryError as exc:
        raise RegistryError(f"registry refused: {exc.error_message}", error_code=exc.error_code,
                            http_status=exc.http_status_code) from exc


@schema_group.command("register")
@_url_option
@_subject_option
@_file_option
def register_command(url: str | None, subject: str | None, path: str | None) -> None:
    """Register a schema (default schema.avsc) under a subject and print its id."""
    from confluent_kafka.schema_registry import Schema

    subject = _subject(subject)
    schema_id = _call(_client(url).register_schema, subject, Schema(_schema_text(path, 1), "AVRO"))
    click.echo(json.dumps({"subject": subject, "id": schema_id}))


@schema_group.command("check")
@_url_option
@_subject_option
@_file_option
def check_command(url: str | None, subject: str | None, path: str | None) -> None:
    """Check a candidate schema against the subject's versions at its compatibility level."""
    from confluent_kafka.schema_registry import Schema

    subject = _subject(subject)
    client = _client(url)
    response = _call(client._rest_client.post,  # the client's own method drops the verbose messages
                     f"compatibility/subjects/{quote(subject, safe='')}/versions?verbose=true",
                     Schema(_schema_text(path, 1), "AVRO").to_dict())
    click.echo(json.dumps(response, indent=2))
    if not response.get("is_compatible"):
        raise SystemExit(1)


@schema_group.command("evolve")
@_url_option
@_subject_option
def evolve_command(url: str | None, subject: str | None) -> None:
    """Register the transaction schema v2 (schema.avsc plus an optional device_id) after checking it."""
    from confluent_kafka.schema_registry import Schema

    subject = _subject(subject)
    client = _client(url)
    candidate = Schema(_schema_text(None, 2), "AVRO")
    if not _call(client.test_compatibility, subject, candidate):
        raise RegistryError(f"schema v2 is not compatible with subject {subject}", error_code=409, http_status=409)
    _call(client.register_schema, subject, candidate)
    registered = _call(client.lookup_schema, subject, candidate)
    click.echo(json.dumps({"subject": subject, "id": registered.schema_id, "version": registered.version}))

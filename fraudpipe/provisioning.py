"""One-time preparation of a run: register schemas and connectors, make sure a model exists.

Everything here talks to the same REST APIs a user would drive with curl, so it works
against the embedded services and the real Confluent ones alike.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from fraudpipe import contracts
from fraudpipe.config import Config
from fraudpipe.errors import FraudpipeError
from fraudpipe.health import http_json
from fraudpipe.model_pointer import published_version

SCHEMA_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class ProvisioningError(FraudpipeError):
    """Preparing the pipeline (schemas, connectors, model) failed."""


def register_schemas(registry_url: str) -> dict[str, int]:
    """Register schema.avsc and label.avsc under their subjects; returns subject -> id."""
    ids = {}
    for subject, schema in ((contracts.TRANSACTIONS_SUBJECT, contracts.transaction_schema_str(1)),
                            (contracts.LABELS_SUBJECT, contracts.label_schema_str())):
        status, body = http_json(f"{registry_url}/subjects/{subject}/versions", method="POST", body={"schema": schema})
        if status != 200 or not isinstance(body, dict):
            raise ProvisioningError(f"registering {subject} at {registry_url} failed: HTTP {status} {body}")
        ids[subject] = body["id"]
    return ids


def connector_files(prefix: str) -> list[Path]:
    return sorted(contracts.CONNECTORS_DIR.glob(f"{prefix}*.json"))


def register_connectors(connect_url: str, *, prefix: str, overrides: dict[str, str] | None = None) -> list[str]:
    """PUT every connectors/<prefix>*.json to the Connect REST API (create or update).

    `overrides` replace keys the files already set (the registry URL, the SQLite path),
    so a run on other ports or paths than the shipped defaults still wires up.
    """
    names = []
    for path in connector_files(prefix):
        spec = json.loads(path.read_text())
        config = {k: (overrides or {}).get(k, v) for k, v in spec["config"].items()}
        status, body = http_json(f"{connect_url}/connectors/{spec['name']}/config", method="PUT", body=config)
        if status not in (200, 201):
            raise ProvisioningError(f"registering connector {path.name} at {connect_url} failed: HTTP {status} {body}")
        names.append(spec["name"])
    return names


def prepare_store(config: Config) -> None:
    """Create the store's tables when missing: on Cassandra the keyspace and every table of
    cassandra/init.cql (CREATE ... IF NOT EXISTS, so an existing keyspace is left as it is)."""
    from fraudpipe.store import open_store

    try:
        open_store(config.store).close()
    except FraudpipeError as exc:
        raise ProvisioningError(f"preparing the {config.store.backend} store failed: {exc}") from exc


def cassandra_sink_config(config: Config) -> tuple[str, dict[str, str]]:
    """connectors/cassandra-sink.json (name, config) pointed at the configured Cassandra and registry.

    The file names the keyspace `fraudpipe` in its per-table keys and in its queries; another
    `store.keyspace` is written into both, so the sink fills the keyspace the stream job and
    the dashboard use.
    """
    spec = json.loads((contracts.CONNECTORS_DIR / "cassandra-sink.json").read_text())
    store, keyspace = config.store, config.store.keyspace
    sink = {}
    for key, value in spec["config"].items():
        if key.startswith("topic.") and f".{contracts.KEYSPACE}." in key:
            key = key.replace(f".{contracts.KEYSPACE}.", f".{keyspace}.", 1)
            value = value.replace(f"{contracts.KEYSPACE}.", f"{keyspace}.")
        if key.endswith(".consistencyLevel"):
            value = store.consistency
        sink[key] = value
    sink.update({"contactPoints": ",".join(store.cassandra_contact_points), "port": str(store.cassandra_port),
                 "loadBalancing.localDc": store.cassandra_local_dc,
                 "value.converter.schema.registry.url": config.schema_registry.url})
    return spec["name"], sink


def register_sinks(config: Config) -> list[str]:
    """Register the sink connectors of the configured store backend with the Connect REST API."""
    if config.store.backend == "cassandra":
        name, sink = cassandra_sink_config(config)
        status, body = http_json(f"{config.connect.url}/connectors/{name}/config", method="PUT", body=sink)
        if status not in (200, 201):
            raise ProvisioningError(f"registering connector {name} at {config.connect.url} failed: HTTP {status} {body}")
        return [name]
    return register_connectors(config.connect.url, prefix="sqlite", overrides={
        "value.converter.schema.registry.url": config.schema_registry.url,
        "connection.url": f"jdbc:sqlite:{config.path(config.store.sqlite_path)}",
    })


def ensure_model(config: Config, *, log_path: Path) -> None:
    """Train a first model when none is published yet, streaming the trainer's progress."""
    if published_version(config.path(config.model.dir)) is not None:
        return
    click.echo("  no model yet: training one (progress below, full log in %s)" % log_path)
    with open(log_path, "ab") as log:
        # first_model_transactions, not train_transactions: a first alert sooner, from a smaller dataset
        # and no transfer evaluation (a second, shifted dataset): `fraudpipe train` reports it
        command = [sys.executable, "-m", "fraudpipe.cli", "train", "--transactions", str(config.model.first_model_transactions),
                   "--no-transfer"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=contracts.PROJECT_ROOT)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            click.echo("    " + line.decode(errors="replace").rstrip())
        if process.wait() != 0:
            raise ProvisioningError(f"training the first model failed (exit {process.returncode}); see {log_path}")

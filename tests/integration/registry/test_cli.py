"""`fraudpipe schema register|check|evolve` against the running registry."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import SchemaRegistryClient

from fraudpipe.cli import main
from fraudpipe.contracts import transaction_schema
from fraudpipe.registry.server import RegistryServer

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_register_check_evolve(registry: RegistryServer, subject: str, tmp_path: Path) -> None:
    common = ("--url", registry.url, "--subject", subject)
    code, out = run("schema", "register", *common)
    assert code == 0, out
    v1_id = json.loads(out)["id"]

    breaking = transaction_schema(1)
    breaking["fields"].append({"name": "merchant_id", "type": "string"})
    candidate = tmp_path / "breaking.avsc"
    candidate.write_text(json.dumps(breaking))
    code, out = run("schema", "check", *common, "--file", str(candidate))
    assert code == 1 and '"is_compatible": false' in out and "merchant_id" in out

    code, out = run("schema", "evolve", *common)
    assert code == 0, out
    evolved = json.loads(out)
    assert evolved["version"] == 2 and evolved["id"] != v1_id
    latest = SchemaRegistryClient({"url": registry.url}).get_latest_version(subject)
    assert json.loads(latest.schema.schema_str)["fields"][-1]["name"] == "device_id"

    code, out = run("schema", "register", *common, "--file", str(candidate))
    assert code == 1 and "409" in out

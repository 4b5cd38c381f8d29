"""The curl walk-through of docs/registry.md runs as written against a fresh registry and prints what it says."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.registry.server import RegistryServer

pytestmark = pytest.mark.integration


def readme_script() -> str:
    text = (PROJECT_ROOT / "docs" / "registry.md").read_text()
    section = text.split("## By hand, with `curl`", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_curl_commands(own_registry: RegistryServer, tmp_path: Path) -> None:
    script = readme_script().replace("http://127.0.0.1:18081", own_registry.url).replace("/tmp/", f"{tmp_path}/")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [json.loads(line) for line in lines[:4]] == [
        {"id": 1}, {"is_compatible": True, "messages": []}, {"id": 2}, [1, 2],
    ]
    body, status = lines[4].rsplit(" HTTP ", 1)
    rejected = json.loads(body)
    assert status == "409" and rejected["error_code"] == 409
    assert "merchant_id" in rejected["message"] and "READER_FIELD_MISSING_DEFAULT_VALUE" in rejected["message"]

"""The README's curl walk-through runs as written against a fresh registry and prints what it says."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from fraudpipe.contracts import PROJECT_ROOT, TRANSACTIONS_SUBJECT
from fraudpipe.registry.server import RegistryServer
from fraudpipe.provisioning import register_schemas

pytestmark = pytest.mark.integration


def readme_script() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("<!-- section:registry -->", 1)[1].split("<!-- section:", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def promised_answers(script: str) -> list[object]:
    """The JSON answers the walk-through's comments promise, in order (`# {...}` or `# [...]` lines)."""
    answers = []
    for line in script.splitlines():
        text = line.removeprefix("# ")
        if line.startswith("# ") and text[:1] in "{[" and not text.startswith('{"error_code"'):
            answers.append(json.JSONDecoder().raw_decode(text)[0])
    return answers


def test_readme_curl_commands_answer_what_they_promise_after_fraudpipe_up(own_registry: RegistryServer,
                                                                          tmp_path: Path) -> None:
    register_schemas(own_registry.url)  # what `fraudpipe up` registers before anyone follows the README
    script = readme_script().replace("http://127.0.0.1:18081", own_registry.url).replace("/tmp/", f"{tmp_path}/")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    promised = promised_answers(readme_script())
    assert [json.loads(line) for line in lines[:4]] == promised
    assert promised[0] == {"id": 1} and promised[3] == [1, 2]
    body, status = lines[4].rsplit(" HTTP ", 1)
    rejected = json.loads(body)
    assert status == "409" and rejected["error_code"] == 409
    assert "merchant_id" in rejected["message"] and "READER_FIELD_MISSING_DEFAULT_VALUE" in rejected["message"]

    # `fraudpipe schema evolve` after the README registers nothing new: it is the same v2
    evolve = subprocess.run([sys.executable, "-m", "fraudpipe.cli", "schema", "evolve", "--url", own_registry.url],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert evolve.returncode == 0, evolve.stderr
    versions = requests.get(f"{own_registry.url}/subjects/{TRANSACTIONS_SUBJECT}/versions", timeout=10).json()
    assert versions == [1, 2]

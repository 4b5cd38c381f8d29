"""The README's run command, as a newcomer runs it: a clean checkout, a fresh virtualenv,
`./dev up`, alerts visible through the dashboard API, then Ctrl-C and nothing left running."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from fraudpipe.broker import free_port
from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.process import descendants

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def _alerts(port: int) -> list[dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/alerts?limit=5", timeout=3) as response:
            return json.loads(response.read())["alerts"]
    except (OSError, ValueError, KeyError):
        return []


def _sender_transactions(port: int, sender: str) -> list[dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/senders/{sender}", timeout=3) as response:
            return json.loads(response.read())["transactions"]
    except (OSError, ValueError, KeyError):
        return []


def _processes_under(path: Path) -> list[str]:
    """Command lines of live processes that run from `path` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def test_dev_up_in_a_clean_checkout_reaches_alerts_and_stops_cleanly(tmp_path: Path):
    checkout = tmp_path / "fraudpipe"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(checkout)], check=True, timeout=120)
    ports = {name: free_port() for name in ("broker", "registry", "connect", "dashboard")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDPIPE_", "VIRTUAL_ENV", "PYSPARK_"))}
    env.update({
        "FRAUDPIPE_KAFKA__BROKER_PORT": str(ports["broker"]),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
        "FRAUDPIPE_SCHEMA_REGISTRY__PORT": str(ports["registry"]),
        "FRAUDPIPE_SCHEMA_REGISTRY__URL": f"http://127.0.0.1:{ports['registry']}",
        "FRAUDPIPE_CONNECT__PORT": str(ports["connect"]),
        "FRAUDPIPE_CONNECT__URL": f"http://127.0.0.1:{ports['connect']}",
        "FRAUDPIPE_DASHBOARD__PORT": str(ports["dashboard"]),
    })
    log = open(tmp_path / "dev-up.log", "wb")
    started = time.monotonic()
    dev = subprocess.Popen(["./dev", "up"], cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    first_alert_after = None
    try:
        deadline = started + 900
        while time.monotonic() < deadline and dev.poll() is None:
            if _alerts(ports["dashboard"]):
                first_alert_after = time.monotonic() - started
                break
            time.sleep(2)
        output = (tmp_path / "dev-up.log").read_text(errors="replace")
        assert first_alert_after is not None, f"no alert through the dashboard API; ./dev up said:\n{output[-4000:]}"
        assert (checkout / ".venv" / "bin" / "fraudpipe").exists(), "./dev up should create its own virtualenv"
        # the sink connector wrote the raw transactions behind the alert into the store
        sender = _alerts(ports["dashboard"])[0]["sender_account"]
        deadline = time.monotonic() + 60
        while not _sender_transactions(ports["dashboard"], sender) and time.monotonic() < deadline:
            time.sleep(2)
        assert _sender_transactions(ports["dashboard"], sender), f"no raw transactions of {sender} in the store"
        tree = descendants(dev.pid)
        dev.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal delivers
        dev.wait(timeout=180)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()
    output = (tmp_path / "dev-up.log").read_text(errors="replace")
    print(f"\n./dev up: first alert {first_alert_after:.0f}s after the command (fresh virtualenv included)")
    assert dev.returncode == 0, output[-4000:]
    assert "stopped broker" in output
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_processes_under(checkout) or any(Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes() for p in tree)):
        time.sleep(1)
    assert _processes_under(checkout) == []
    assert [p for p in tree if Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes()] == []

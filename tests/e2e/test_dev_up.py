"""The README's run command, as a newcomer runs it: a clean checkout, a fresh virtualenv,
`./dev up`, alerts visible through the dashboard API, then Ctrl-C and nothing left running."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.process import descendants
from tests.fixtures.launch import dashboard_alerts, dashboard_get, launched_until_first_alert, stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def _sender_transactions(port: int, sender: str) -> list[dict]:
    return dashboard_get(port, f"/api/senders/{sender}", "transactions")


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
    ports, env = stack_env(strip=("FRAUDPIPE_", "VIRTUAL_ENV", "PYSPARK_"), extra_ports=("broker",))
    env.update({
        "FRAUDPIPE_KAFKA__BROKER_PORT": str(ports["broker"]),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
    })
    with launched_until_first_alert(["./dev", "up"], cwd=checkout, env=env, log_path=tmp_path / "dev-up.log",
                                    dashboard_port=ports["dashboard"]) as dev:
        assert (checkout / ".venv" / "bin" / "fraudpipe").exists(), "./dev up should create its own virtualenv"
        # the sink connector wrote the raw transactions behind the alert into the store
        sender = dashboard_alerts(ports["dashboard"])[0]["sender_account"]
        deadline = time.monotonic() + 60
        while not _sender_transactions(ports["dashboard"], sender) and time.monotonic() < deadline:
            time.sleep(1)
        assert _sender_transactions(ports["dashboard"], sender), f"no raw transactions of {sender} in the store"
        tree = descendants(dev.process.pid)
        dev.stop_with_ctrl_c()
    output = dev.output()
    print(f"\n./dev up: first alert {dev.first_alert_after_s:.0f}s after the command (fresh virtualenv included)")
    assert dev.process.returncode == 0, output[-4000:]
    assert "stopped broker" in output
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_processes_under(checkout) or any(Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes() for p in tree)):
        time.sleep(1)
    assert _processes_under(checkout) == []
    assert [p for p in tree if Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes()] == []

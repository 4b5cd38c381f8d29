"""`fraudpipe up` as a user runs it: a real process tree, stopped by Ctrl-C (SIGINT)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudpipe.broker import free_port
from fraudpipe.health import kafka_ok

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    """Every process whose ancestry reaches `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_up_starts_the_broker_and_ctrl_c_stops_everything(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "FRAUDPIPE_KAFKA__BROKER_PORT": str(port),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "FRAUDPIPE_STACK__RUN_DIR": str(tmp_path / "run"),
        "FRAUDPIPE_STACK__STOP_GRACE_SECONDS": "5",
    }
    skips = [f"--skip={name}" for name in ("registry", "connect", "stream", "producer", "dashboard")]
    up = subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "up", *skips], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: kafka_ok(f"127.0.0.1:{port}"), 60, "the broker")
        state = json.loads((tmp_path / "run" / "state.json").read_text())
        assert [c["name"] for c in state["components"]] == ["broker"]
        tree = _descendants(up.pid)
        assert tree, "up should run the broker as a child process"
        up.send_signal(signal.SIGINT)
        output = up.communicate(timeout=60)[0].decode()
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, output
    assert "stopped broker" in output
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in tree), 10, "child processes to exit")
    assert not kafka_ok(f"127.0.0.1:{port}", timeout=1)

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
from fraudpipe.process import descendants

pytestmark = pytest.mark.integration


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
        tree = descendants(up.pid)
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


def _fraudpipe(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fraudpipe.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _broker_only_env(tmp_path: Path) -> tuple[dict[str, str], int]:
    port = free_port()
    return {
        **os.environ,
        "FRAUDPIPE_KAFKA__BROKER_PORT": str(port),
        "FRAUDPIPE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "FRAUDPIPE_STACK__RUN_DIR": str(tmp_path / "run"),
        "FRAUDPIPE_STACK__STOP_GRACE_SECONDS": "5",
    }, port


SKIP_ALL_BUT_BROKER = [f"--skip={name}" for name in ("registry", "connect", "stream", "producer", "dashboard")]


def test_a_refused_second_up_leaves_the_live_run_in_control(tmp_path: Path):
    env, port = _broker_only_env(tmp_path)
    state_file = tmp_path / "run" / "state.json"
    up = subprocess.Popen([sys.executable, "-m", "fraudpipe.cli", "up", *SKIP_ALL_BUT_BROKER], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(lambda: state_file.exists() and json.loads(state_file.read_text())["phase"] == "running", 60,
                  "the first run")
        before = state_file.read_bytes()
        second = _fraudpipe("up", *SKIP_ALL_BUT_BROKER, env=env)
        assert second.returncode == 1
        assert f"a run is already active (pid {up.pid})" in second.stderr
        assert state_file.read_bytes() == before, "the refused up rewrote the live run's state.json"

        status = _fraudpipe("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"run supervised by pid {up.pid} (running)" in status.stdout
        assert "broker     healthy" in status.stdout

        down = _fraudpipe("down", env=env)
        assert down.returncode == 0 and "stopped" in down.stdout
        up.wait(timeout=60)
    finally:
        if up.poll() is None:  # the components run in their own sessions: stop them first
            for entry in json.loads(state_file.read_text()).get("components", []):
                if entry.get("pid"):
                    try:
                        os.killpg(entry["pid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert not kafka_ok(f"127.0.0.1:{port}", timeout=1)


def test_down_and_status_ignore_a_recorded_pid_now_used_by_another_program(tmp_path: Path):
    """The recorded processes are gone and their pids belong to someone else: nothing is signalled."""
    env, _port = _broker_only_env(tmp_path)
    stranger = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        stat = Path(f"/proc/{stranger.pid}/stat").read_text().rsplit(")", 1)[1].split()
        recorded = {"pid": stranger.pid, "start_time": int(stat[19]) - 100,
                    "cmdline": f"{sys.executable} -m fraudpipe.cli up"}
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "state.json").write_text(json.dumps({
            "supervisor": stranger.pid, "supervisor_process": recorded, "phase": "running",
            "components": [{"name": "broker", "pid": stranger.pid,
                            "process": {**recorded, "cmdline": f"{sys.executable} -m fraudpipe.cli broker"},
                            "url": "127.0.0.1:1", "log": "broker.log"}],
        }))
        status = _fraudpipe("status", env=env)
        assert status.returncode == 3 and "no fraudpipe run is active" in status.stdout
        down = _fraudpipe("down", env=env, timeout=60)
        assert down.returncode == 0, down.stderr
        time.sleep(0.5)
        assert stranger.poll() is None, f"down signalled pid {stranger.pid}, which `sleep` now holds"
    finally:
        stranger.kill()
        stranger.wait()

"""The process-tree walk of fraudpipe/process.py on a real process tree."""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from fraudpipe.process import command_line, descendants, process_table, spawn, spawn_ready, terminate

# root -> (python -> sleep 37) and sleep 38: two children and a grandchild
TREE = ("import subprocess, sys\n"
        "inner = subprocess.Popen([sys.executable, '-c', 'import subprocess; subprocess.run([\"sleep\", \"37\"])'])\n"
        "subprocess.run(['sleep', '38'])\n")


def test_the_walk_finds_children_and_grandchildren_with_their_rss_and_command_lines(tmp_path):
    root = spawn([sys.executable, "-c", TREE], log_path=tmp_path / "tree.log", start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        tree: set[int] = set()
        while time.monotonic() < deadline:
            tree = descendants(root.pid)
            if {"sleep 37", "sleep 38"} <= {command_line(pid) for pid in tree}:
                break
            time.sleep(0.05)
        assert {"sleep 37", "sleep 38"} <= {command_line(pid) for pid in tree} and len(tree) == 3
        table = process_table()
        assert root.pid not in tree and table[root.pid][0] == os.getpid()
        assert all(table[pid][1] > 0 for pid in tree)  # resident memory, in bytes
        grandchild = next(pid for pid in tree if command_line(pid) == "sleep 37")
        assert table[grandchild][0] in tree and table[grandchild][0] != root.pid
        assert descendants(root.pid, table) == tree
    finally:
        os.killpg(root.pid, signal.SIGKILL)  # the tree this test started: its own process group
        terminate(root, grace=5)
    assert command_line(root.pid) == ""  # reaped: no command line left


class NotReadyError(Exception):
    pass


def test_a_server_that_never_gets_ready_is_stopped_before_the_error(tmp_path):
    started: list[int] = []

    def ready() -> bool:
        started.extend(pid for pid in descendants(os.getpid()) if command_line(pid) == "sleep 39")
        return False

    with pytest.raises(NotReadyError, match="^sleeper was not ready within 1s$"):
        spawn_ready(["sleep", "39"], ready=ready, timeout=1.0, what="sleeper", error=NotReadyError,
                    log_path=tmp_path / "sleeper.log", grace=2.0)
    assert started and command_line(started[0]) == ""  # stopped and reaped, not left running


def test_a_server_that_exits_at_start_is_reported_with_its_exit_code(tmp_path):
    with pytest.raises(NotReadyError, match="^quitter exited with code 3 before it was ready$"):
        spawn_ready(["sh", "-c", "exit 3"], ready=lambda: False, timeout=30, what="quitter", error=NotReadyError,
                    log_path=tmp_path / "quitter.log")

"""One JVM server of the bench: spawned with a log, health-checked, measured, stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

from fraudpipe.broker import free_port
from fraudpipe.errors import RealstackError
from fraudpipe.process import parent_death_signal, spawn_ready, terminate


def rss_mib(pid: int) -> float | None:
    """Resident set size of `pid` in MiB (Linux /proc), None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (an exited child of this process is reaped, not counted as alive)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: the signal probe below decides
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class JvmServer:
    """Base of RealKafka and RealCassandra: `workdir` holds config, data and `server.log`.

    `detached` servers outlive the Python process that started them (`fraudpipe realstack up`);
    attached ones (tests) are killed with it.
    """

    workdir: Path
    detached: bool = False
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    start_seconds: float | None = None
    name = "server"
    port_fields: ClassVar[tuple[str, ...]] = ()  # int fields that get a free loopback port when left at 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config and format storage before the first start (the port fields are set by then)."""

    def healthy(self) -> bool:
        raise NotImplementedError

    def start(self, *, timeout: float = 120.0) -> "JvmServer":
        if self.process is not None:
            return self
        started = time.monotonic()  # start time includes writing config and formatting storage
        self.workdir.mkdir(parents=True, exist_ok=True)
        for port_field in self.port_fields:
            if not getattr(self, port_field):
                setattr(self, port_field, free_port())
        self.prepare()
        options: dict[str, object] = {"start_new_session": True}
        if not self.detached:
            options["preexec_fn"] = parent_death_signal(signal.SIGKILL)
        self.process = spawn_ready(
            self.command(), ready=self.healthy, timeout=timeout, what=self.name, log_path=self.log_path, cwd=self.workdir,
            error=lambda message: RealstackError(f"{message}; last lines of {self.log_path}:\n{self.log_tail()}"),
            **options)
        self.pid = self.process.pid
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self, *, grace: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process, grace=grace)
        elif self.pid is not None and pid_alive(self.pid):  # started by another process (realstack up)
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.pid is not None and pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
        self.process = None

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid) if self.pid else None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "JvmServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def poll(check: Callable[[], object]) -> bool:
    """A health probe: True when `check` runs without raising."""
    try:
        check()
    except Exception:  # health is a yes/no question
        return False
    return True


__all__ = ["JvmServer", "poll", "rss_mib", "pid_alive"]

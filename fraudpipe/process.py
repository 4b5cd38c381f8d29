"""Child processes of fraudpipe's own services: start with a log, wait until healthy, stop in order.

The embedded broker, the registry and the Connect worker all run as child processes in
tests and in `fraudpipe up`; they share one way to start and stop.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable, Mapping

LOOPBACK = "127.0.0.1"


def identity(pid: int) -> dict[str, object] | None:
    """What tells process `pid` apart from a later process given the same pid, or None if none runs.

    The start time (clock ticks after boot, field 22 of /proc/<pid>/stat) and the command
    line: a pid recorded in a state file may since have been reused by another program.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status is left
        return None
    return {"pid": pid, "start_time": int(fields[19]),
            "cmdline": cmdline.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")}


def is_running(recorded: Mapping[str, object] | None) -> bool:
    """True when the process recorded by identity() still runs: same pid, start time and command line."""
    if not recorded or not isinstance(recorded.get("pid"), int) or recorded["pid"] <= 0:
        return False
    now = identity(recorded["pid"])  # type: ignore[arg-type]
    return now is not None and all(now[key] == recorded.get(key) for key in ("start_time", "cmdline"))


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident set size in bytes) of every process, from /proc/<pid>/stat."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), int(fields[21]) * page)
            except (OSError, IndexError, ValueError):  # gone since the listing
                continue
    return table


def descendants(root: int, table: Mapping[int, tuple[int, int]] | None = None) -> set[int]:
    """Every process whose ancestry reaches `root` (not `root` itself), from process_table()."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _rss) in (process_table() if table is None else table).items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def command_line(pid: int) -> str:
    """The command line of `pid` with spaces between arguments; "" once it has exited (or for a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def spawn(args: list[str], *, log_path: Path | None, cwd: Path | None = None, env: dict[str, str] | None = None,
          **popen_options: object) -> subprocess.Popen[bytes]:
    """Start `args` with stdout and stderr appended to `log_path` (or discarded)."""
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**os.environ, **(env or {})}, **popen_options)  # type: ignore[call-overload]
    finally:
        if not isinstance(log, int):
            log.close()  # the child holds its own descriptor


def terminate(process: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it is still running after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL without a clean shutdown: what a crash looks like."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def wait_until(ready: Callable[[], bool], *, process: subprocess.Popen[bytes] | None, timeout: float,
               what: str, error: Callable[[str], Exception]) -> None:
    """Poll `ready` until it is true; raise `error(...)` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise error(f"{what} exited with code {process.returncode} before it was ready")
        if ready():
            return
        time.sleep(0.1)
    raise error(f"{what} was not ready within {timeout:.0f}s")


def parent_death_signal(sig: int) -> Callable[[], None]:
    """A preexec_fn: Linux sends the child `sig` when the process that started it dies, even by SIGKILL,
    so no test or run leaves a server behind."""
    def preexec() -> None:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except OSError:  # not Linux/glibc: the child then only stops when it is stopped
            pass

    return preexec


def spawn_ready(args: list[str], *, ready: Callable[[], bool], timeout: float, what: str,
                error: Callable[[str], Exception], log_path: Path | None, grace: float = 5.0,
                **spawn_options: object) -> subprocess.Popen[bytes]:
    """spawn() a server and wait_until() it is ready; one that never gets ready is stopped (SIGTERM,
    then SIGKILL after `grace` seconds) before `error(...)` is raised."""
    process = spawn(args, log_path=log_path, **spawn_options)  # type: ignore[arg-type]
    try:
        wait_until(ready, process=process, timeout=timeout, what=what, error=error)
    except BaseException:
        terminate(process, grace=grace)
        raise
    return process


class ChildService:
    """A `fraudpipe <command>` HTTP service run as a child process on 127.0.0.1:`port`.

    Subclasses are dataclasses declaring `port`, `log_path` and `process` (None until
    started) with their own fields, and say how the service is run and when it is ready.
    """

    port: int
    log_path: Path | None
    process: subprocess.Popen[bytes] | None
    stop_grace = 10.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        """The `fraudpipe` arguments that run this service."""
        raise NotImplementedError

    def spawn_options(self) -> dict[str, object]:
        return {}

    def wait_ready(self, *, timeout: float) -> None:
        raise NotImplementedError

    def start(self, *, timeout: float = 30.0) -> "ChildService":
        if self.process is not None:
            return self
        self.process = spawn([sys.executable, "-m", "fraudpipe.cli", *self.command()], log_path=self.log_path,
                             **self.spawn_options())  # type: ignore[arg-type]
        try:
            self.wait_ready(timeout=timeout)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, *, grace: float | None = None) -> None:
        process, self.process = self.process, None
        terminate(process, grace=self.stop_grace if grace is None else grace)

    def kill(self) -> None:
        process, self.process = self.process, None
        kill(process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> "ChildService":
        self.stop()
        return self.start()

    def __enter__(self) -> "ChildService":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

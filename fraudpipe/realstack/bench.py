"""The bench: one RealKafka and one RealCassandra under a root dir, started side by side.

`fraudpipe realstack up` keeps the bench's ports and pids in <root>/state.json so that
`status` and `down` find it again; tests hold the Bench object itself.
"""
from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fraudpipe.errors import RealstackError
from fraudpipe.realstack import jars
from fraudpipe.realstack.cassandra import RealCassandra, release_version
from fraudpipe.realstack.kafka import RealKafka
from fraudpipe.realstack.service import JvmServer, pid_alive

DEFAULT_ROOT = jars.REPO_ROOT / ".fraudpipe" / "realstack" / "run"
SERVICES = ("kafka", "cassandra")


@dataclass
class Bench:
    root: Path
    detached: bool = False
    kafka: RealKafka = field(init=False)
    cassandra: RealCassandra = field(init=False)

    def __post_init__(self) -> None:
        self.kafka = RealKafka(workdir=self.root / "kafka", detached=self.detached)
        self.cassandra = RealCassandra(workdir=self.root / "cassandra", detached=self.detached)

    def servers(self, which: tuple[str, ...] = SERVICES) -> list[JvmServer]:
        return [getattr(self, name) for name in which]

    def start(self, which: tuple[str, ...] = SERVICES, *, timeout: float = 180.0) -> "Bench":
        """Start the named servers concurrently (their JVM warm-ups overlap); stop all if one fails."""
        reason = jars.missing_tools()
        if reason:
            raise RealstackError(reason)
        jars.fetch()
        errors: list[BaseException] = []

        def run(server: JvmServer) -> None:
            try:
                server.start(timeout=timeout)
            except BaseException as exc:  # reported below, after every thread is done
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,), name=f"start-{s.name}") for s in self.servers(which)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        if self.detached:
            self.save()
        return self

    def stop(self) -> None:
        for server in (self.kafka, self.cassandra):
            server.stop()
        state = self.root / "state.json"
        if state.exists():
            state.unlink()

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "state.json").write_text(json.dumps(self.describe(), indent=2) + "\n")

    def describe(self) -> dict[str, object]:
        """Addresses, pids, start seconds and RSS of the running servers."""
        found: dict[str, object] = {"root": str(self.root)}
        if self.kafka.pid:
            found["kafka"] = {"bootstrap_servers": self.kafka.bootstrap_servers, "port": self.kafka.port,
                              "controller_port": self.kafka.controller_port, "pid": self.kafka.pid,
                              "start_seconds": _round(self.kafka.start_seconds), "rss_mib": _round(self.kafka.rss_mib())}
        if self.cassandra.pid:
            found["cassandra"] = {"contact_point": self.cassandra.contact_point, "port": self.cassandra.native_port,
                                  "storage_port": self.cassandra.storage_port, "pid": self.cassandra.pid,
                                  "start_seconds": _round(self.cassandra.start_seconds), "rss_mib": _round(self.cassandra.rss_mib())}
        return found

    @classmethod
    def load(cls, root: Path = DEFAULT_ROOT) -> "Bench | None":
        """The bench `realstack up` left running under `root`, or None."""
        try:
            state = json.loads((root / "state.json").read_text())
        except (OSError, ValueError):
            return None
        bench = cls(root, detached=True)
        if "kafka" in state:
            k = state["kafka"]
            bench.kafka.port, bench.kafka.controller_port, bench.kafka.pid = k["port"], k["controller_port"], k["pid"]
            bench.kafka.start_seconds = k.get("start_seconds")
        if "cassandra" in state:
            c = state["cassandra"]
            bench.cassandra.native_port, bench.cassandra.storage_port, bench.cassandra.pid = c["port"], c["storage_port"], c["pid"]
            bench.cassandra.start_seconds = c.get("start_seconds")
        return bench

    def health(self) -> dict[str, str]:
        """Per server: 'ok', 'not answering' or 'not running'."""
        from fraudpipe.health import kafka_ok

        result = {}
        for name, server, probe in (
            ("kafka", self.kafka, lambda: kafka_ok(self.kafka.bootstrap_servers)),
            ("cassandra", self.cassandra, lambda: release_version(self.cassandra.contact_point, self.cassandra.native_port) is not None),
        ):
            if not server.pid or not pid_alive(server.pid):
                result[name] = "not running"
            else:
                result[name] = "ok" if probe() else "not answering"
        return result

    def wipe(self) -> None:
        """Delete the bench's data (after stop)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

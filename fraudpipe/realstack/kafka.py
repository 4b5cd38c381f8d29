"""A single-node Apache Kafka broker in KRaft mode (broker and controller in one JVM).

Storage is formatted by Kafka's own StorageTool in the server's work dir; both listeners
bind free ports on 127.0.0.1.
"""
from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass

from fraudpipe.errors import RealstackError
from fraudpipe.process import LOOPBACK
from fraudpipe.realstack import jars
from fraudpipe.realstack.service import JvmServer

KAFKA_HEAP = "512m"

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass
class RealKafka(JvmServer):
    port: int = 0
    controller_port: int = 0
    heap: str = KAFKA_HEAP
    log_level: str = "INFO"
    name = "Apache Kafka"
    port_fields = ("port", "controller_port")

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def properties(self) -> str:
        # Replication factors of 1 and no rebalance delay: one broker, tests that join groups at once.
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.check.interval.ms": "60000",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _jvm(self, main: str, *args: str) -> list[str]:
        return [
            jars.java(), "-Xms128m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.workdir / 'logs'}",
            "-cp", jars.classpath("kafka"), main, *args,
        ]

    def prepare(self) -> None:
        (self.workdir / "server.properties").write_text(self.properties())
        (self.workdir / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        if (self.workdir / "data" / "meta.properties").exists():
            return  # formatted by an earlier start: keep the data
        done = subprocess.run(
            self._jvm("kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(self.workdir / "server.properties")),
            capture_output=True, text=True, timeout=120, check=False,
        )
        if done.returncode != 0:
            raise RealstackError(f"kafka StorageTool format failed (exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}")

    def command(self) -> list[str]:
        return self._jvm("kafka.Kafka", str(self.workdir / "server.properties"))

    def healthy(self) -> bool:
        from fraudpipe.health import kafka_ok

        return kafka_ok(self.bootstrap_servers)

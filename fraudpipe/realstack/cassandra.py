"""A single-node Apache Cassandra 5.0 (CassandraDaemon from the cassandra-all jars).

Its cassandra.yaml is generated from cassandra.yaml.tmpl beside this module, with free
storage and native ports on 127.0.0.1 and all data under the server's work dir. The JVM
flags are those Cassandra's own jvm17-server.options needs on Java 17, with a small heap.
"""
from __future__ import annotations

import socket
import string
from dataclasses import dataclass
from pathlib import Path

from fraudpipe.process import LOOPBACK
from fraudpipe.realstack import jars
from fraudpipe.realstack.service import JvmServer

CASSANDRA_HEAP = "768m"
_HERE = Path(__file__).resolve().parent

# Module access Cassandra 5.0 needs on Java 17 (from its conf/jvm17-server.options).
_JAVA17_ACCESS = [
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    *[arg for module in (
        "java.base/java.lang.module", "java.base/jdk.internal.loader", "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect", "java.base/jdk.internal.math", "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar", "jdk.management/com.sun.management.internal", "java.base/sun.nio.ch",
        "java.base/java.io", "java.base/java.lang.reflect", "jdk.compiler/com.sun.tools.javac",
        "java.base/java.lang", "java.base/java.util",
    ) for arg in ("--add-opens", f"{module}=ALL-UNNAMED")],
]

# A single node needs no ring settling, schema agreement waits or superuser setup delay.
_FAST_START = [
    "-Dcassandra.ring_delay_ms=0",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
    "-Dcassandra.load_ring_state=false",
    "-Dcassandra.migration_task_wait_in_seconds=0",
    "-Dcassandra.initial_token=0",
]


@dataclass
class RealCassandra(JvmServer):
    native_port: int = 0
    storage_port: int = 0
    heap: str = CASSANDRA_HEAP
    log_level: str = "WARN"
    name = "Apache Cassandra"
    port_fields = ("native_port", "storage_port")

    @property
    def contact_point(self) -> str:
        return LOOPBACK

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.native_port}"

    def prepare(self) -> None:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        values = {"storage_port": self.storage_port, "native_port": self.native_port, "data_dir": data, "level": self.log_level}
        (self.workdir / "cassandra.yaml").write_text(string.Template((_HERE / "cassandra.yaml.tmpl").read_text()).substitute(values))
        (self.workdir / "logback.xml").write_text(string.Template((_HERE / "logback.xml.tmpl").read_text()).substitute(values))

    def command(self) -> list[str]:
        classpath = jars.classpath("cassandra")
        jamm = next((p for p in classpath.split(":") if Path(p).name.startswith("jamm-")), None)
        return [
            jars.java(), "-Xms256m", f"-Xmx{self.heap}", "-Xss256k",  # a small -Xms: Cassandra mlockall()s what is committed at start
            "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1",
            "-XX:CICompilerCount=2", "-XX:TieredStopAtLevel=1", "-XX:+PerfDisableSharedMem", "-XX:+ExitOnOutOfMemoryError", "-Djava.net.preferIPv4Stack=true",
            *_JAVA17_ACCESS, *([f"-javaagent:{jamm}"] if jamm else []),
            "-Djdk.attach.allowAttachSelf=true", "-Dio.netty.tryReflectionSetAccessible=true",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config=file://{self.workdir / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self.workdir / 'data'}",
            f"-Dcassandra.logdir={self.workdir / 'logs'}",
            f"-Dlogback.configurationFile={self.workdir / 'logback.xml'}",
            *_FAST_START,
            "-cp", classpath, "org.apache.cassandra.service.CassandraDaemon",
        ]

    def healthy(self) -> bool:
        return release_version(LOOPBACK, self.native_port) is not None


def release_version(host: str, port: int, *, timeout: float = 5.0) -> str | None:
    """`SELECT release_version FROM system.local` through cassandra-driver, or None when it does not answer."""
    try:
        from cassandra.cluster import Cluster
        from cassandra.policies import RoundRobinPolicy
    except ImportError:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # the driver logs every refused connect
        probe.settimeout(timeout)
        if probe.connect_ex((host, port)) != 0:
            return None
    cluster = Cluster([host], port=port, protocol_version=5, connect_timeout=timeout,
                      load_balancing_policy=RoundRobinPolicy(), control_connection_timeout=timeout)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
        return row.release_version if row else None
    except Exception:  # NoHostAvailable and friends while the node starts
        return None
    finally:
        cluster.shutdown()

"""docker/connect.Dockerfile: the pinned Cassandra sink must be supported on the JVM the pinned image runs it on.

No image can be pulled here, so the facts are written down with where they come from:
- the JDK of each cp-kafka-connect line: confluentinc/common-docker, base/Dockerfile.ubi8
  (the cp-base-new every CP image builds on): zulu11 on the 7.0-7.6 branches, zulu17 on
  7.7, temurin-17 from 7.8;
- the JDKs each DataStax kafka-sink release supports: DataStax's compatibility table
  (versions up to 1.7.3 unsupported on Java 17); 1.4.0 is built with release 8
  (datastax/kafka-sink pom.xml, java.release.version);
- the JDKs Connect itself supports: Kafka 3.x runs Connect on Java 8, 11 and 17; 4.0 needs
  17 (KIP-1013). CP 7.x carries Kafka 3.x.
The Dockerfile may install another JDK and point JAVA_HOME at it (kafka-run-class runs
$JAVA_HOME/bin/java); then that JDK is the one that counts.
"""
from __future__ import annotations

import re

from fraudpipe.contracts import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "docker" / "connect.Dockerfile"
CONNECT_IMAGE = "confluentinc/cp-kafka-connect"


def image_jdk(cp_version: str) -> int:
    major, minor = (int(part) for part in cp_version.split(".")[:2])
    assert major == 7, f"no JDK recorded for CP {cp_version}: look it up in common-docker and add it"
    return 11 if minor <= 6 else 17


def sink_jdks(sink_version: str) -> set[int]:
    parts = tuple(int(p) for p in sink_version.split("."))
    assert parts <= (1, 7, 3), f"no JDK support recorded for kafka-sink {sink_version}: check DataStax's table"
    return {8, 11}


def connect_jdks(cp_version: str) -> set[int]:
    assert cp_version.startswith("7."), cp_version
    return {8, 11, 17}  # Kafka 3.x


def args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))


def effective_jdk(text: str) -> int:
    """The JDK the worker runs on: an installed one JAVA_HOME points at, else the image's."""
    values = args(text)
    image = re.search(r"^FROM (\S+):(\S+)", text, re.M)
    assert image and image.group(1) == CONNECT_IMAGE, "connect.Dockerfile must build on cp-kafka-connect"
    cp_version = image.group(2).replace("${CP_VERSION}", values["CP_VERSION"])
    installed = re.search(r'install -y "?temurin-(\$\{CONNECT_JDK\}|\d+)-jre', text)
    if installed and re.search(r"^ENV JAVA_HOME=", text, re.M):
        return int(values["CONNECT_JDK"] if installed.group(1) == "${CONNECT_JDK}" else installed.group(1))
    return image_jdk(cp_version)


def test_the_pinned_sink_is_supported_on_the_jdk_the_worker_runs() -> None:
    text = DOCKERFILE.read_text()
    values = args(text)
    sink, cp_version, jdk = values["CASSANDRA_SINK_VERSION"], values["CP_VERSION"], effective_jdk(text)
    assert jdk in sink_jdks(sink), (
        f"kafka-sink {sink} is supported on Java {sorted(sink_jdks(sink))}, but cp-kafka-connect:{cp_version} "
        f"runs it on Java {jdk}")
    assert jdk in connect_jdks(cp_version), f"Connect of CP {cp_version} does not run on Java {jdk}"


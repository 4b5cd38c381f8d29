# Kafka Connect with the DataStax Apache Cassandra sink installed at build time.
# The Avro converter (io.confluent.connect.avro.AvroConverter) ships with the image.
# Keep CP_VERSION equal to the cp-kafka / cp-schema-registry tags in docker-compose.yml.
ARG CP_VERSION=7.9.0
FROM confluentinc/cp-kafka-connect:${CP_VERSION}

# The worker's JVM. cp-kafka-connect 7.7 and later run Java 17 (confluentinc/common-docker,
# base/Dockerfile.ubi8: zulu11 up to 7.6.x, zulu17 from 7.7.0, temurin-17 from 7.8.0), and
# DataStax supports kafka-sink 1.4.0 on Java 8 and 11 only (it is built for Java 8:
# release 8 in its pom.xml). Connect of Kafka 3.9 (CP 7.9) still supports Java 11 (KIP-1013:
# only Kafka 4.0 makes Connect need 17), so the worker runs on Temurin 11, from the
# Adoptium repository the base image already configures; kafka-run-class takes JAVA_HOME.
# tests/unit/test_connect_image.py checks this pairing against the versions pinned here.
ARG CONNECT_JDK=11
USER root
RUN yum --nodocs -q install -y "temurin-${CONNECT_JDK}-jre" \
 && yum clean all \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(rpm -ql "temurin-${CONNECT_JDK}-jre" | grep '/bin/java$' | head -n 1)")")")" /opt/connect-jdk \
 && /opt/connect-jdk/bin/java -version 2>&1 | grep -q "version \"${CONNECT_JDK}\."
ENV JAVA_HOME=/opt/connect-jdk
USER appuser

ARG CASSANDRA_SINK_VERSION=1.4.0
RUN confluent-hub install --no-prompt \
      --component-dir /usr/share/confluent-hub-components \
      datastax/kafka-connect-cassandra-sink:${CASSANDRA_SINK_VERSION}

ENV CONNECT_PLUGIN_PATH=/usr/share/java,/usr/share/confluent-hub-components

# Kafka Connect with the DataStax Apache Cassandra sink installed at build time.
# The Avro converter (io.confluent.connect.avro.AvroConverter) ships with the image.
# Keep CP_VERSION equal to the cp-kafka / cp-schema-registry tags in docker-compose.yml.
ARG CP_VERSION=7.9.0
FROM confluentinc/cp-kafka-connect:${CP_VERSION}

ARG CASSANDRA_SINK_VERSION=1.4.0
RUN confluent-hub install --no-prompt \
      --component-dir /usr/share/confluent-hub-components \
      datastax/kafka-connect-cassandra-sink:${CASSANDRA_SINK_VERSION}

ENV CONNECT_PLUGIN_PATH=/usr/share/java,/usr/share/confluent-hub-components

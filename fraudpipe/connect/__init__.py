"""Kafka-Connect-compatible worker: REST API, herder, sink task runtime, JDBC-SQLite and Cassandra sinks."""

"""The real-stack bench: Apache Kafka (KRaft) and Apache Cassandra from Maven jars, on free loopback ports."""

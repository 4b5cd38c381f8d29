"""fraudpipe: a real-time fraud-detection event pipeline (Kafka, Schema Registry, Connect, Spark, Cassandra)."""
__version__ = "0.1.0"

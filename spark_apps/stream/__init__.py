"""The streaming job: Kafka source, decoding, 1-minute windows, scoring outputs (entry point: job.py)."""

"""Create fraudpipe's topics on a real Kafka with `kafka.partitions` partitions each.

The compose stack runs this once before the producer, the Connect sink and the stream
job start, so all of them see the partition count from config.yml (the broker's
auto-create would use its own default). Idempotent: existing topics are left alone.
"""
from __future__ import annotations

from fraudpipe import contracts
from fraudpipe.broker import ensure_topics, wait_for_metadata
from fraudpipe.config import load_config

# Every topic named in contracts.py, so a topic added there is created here too.
TOPICS = tuple(sorted({value for name, value in vars(contracts).items() if name.endswith("_TOPIC")}))


def main() -> None:
    kafka = load_config().kafka
    wait_for_metadata(kafka.bootstrap_servers, timeout=120)
    ensure_topics(kafka.bootstrap_servers, {topic: kafka.partitions for topic in TOPICS}, timeout=60)
    print(f"topics ready on {kafka.bootstrap_servers}: {', '.join(TOPICS)} ({kafka.partitions} partitions)")


if __name__ == "__main__":
    main()

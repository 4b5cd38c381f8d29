"""Health probes for the components of a running stack: cheap, bounded, never raising."""
from __future__ import annotations

import requests


def http_ok(url: str, *, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx within `timeout`."""
    try:
        return requests.get(url, timeout=timeout).ok
    except (requests.RequestException, ValueError):
        return False


def http_json(url: str, *, method: str = "GET", body: object = None, timeout: float = 10.0) -> tuple[int, object]:
    """Send a JSON request; return (status, decoded body). Connection errors give status 0."""
    try:
        response = requests.request(method, url, json=body, timeout=timeout)
    except (requests.RequestException, ValueError) as exc:
        return 0, str(exc)
    if not response.content:
        return response.status_code, None
    try:
        return response.status_code, response.json()
    except ValueError:  # not JSON: the text says what went wrong
        return response.status_code, response.text


def kafka_ok(bootstrap: str, *, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0}).list_topics(timeout=timeout)
        return bool(metadata.brokers)
    except Exception:  # KafkaException when nothing listens; health is a yes/no question
        return False

"""Health probes for the components of a running stack: cheap, bounded, never raising."""
from __future__ import annotations

import json
import urllib.error
import urllib.request


def http_ok(url: str, *, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx within `timeout`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs from config
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def http_json(url: str, *, method: str = "GET", body: object = None, timeout: float = 10.0) -> tuple[int, object]:
    """Send a JSON request; return (status, decoded body). Connection errors give status 0."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, str(exc)


def kafka_ok(bootstrap: str, *, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0}).list_topics(timeout=timeout)
        return bool(metadata.brokers)
    except Exception:  # KafkaException when nothing listens; health is a yes/no question
        return False

"""The one dead-letter producer (fraudpipe/dead_letters.py) against the real embedded broker."""
from __future__ import annotations

import math
import threading

import pytest

from fraudpipe.broker import EmbeddedBroker, free_port
from fraudpipe.connect.task import TaskFailedError
from fraudpipe.dead_letters import DeadLetterProducer
from fraudpipe.errors import StreamError
from tests.fixtures.core import read_to_eof

pytestmark = pytest.mark.integration


def test_letters_arrive_with_key_value_and_headers(broker: EmbeddedBroker, topic: str) -> None:
    dlq = DeadLetterProducer(broker.bootstrap_servers, topic, error=StreamError)
    assert dlq.flush(5) is True  # nothing sent: no producer was even opened
    for n in range(5):
        dlq.send(key=f"k{n}".encode(), value=None if n == 3 else f"v{n}".encode(),
                 headers=[("fraudpipe.error.reason", f"reason {n}".encode()), ("x", b"\x00\xff")])
    assert dlq.flush(30) is True and dlq.sent == 5
    dlq.close()
    got = sorted(read_to_eof(broker.bootstrap_servers, topic, timeout=30), key=lambda m: m.key())  # keys pick partitions
    assert [(m.key(), m.value()) for m in got] == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2"), (b"k3", None),
                                                   (b"k4", b"v4")]
    assert got[4].headers() == [("fraudpipe.error.reason", b"reason 4"), ("x", b"\x00\xff")]


def test_an_undelivered_letter_is_the_callers_error_never_silence() -> None:
    nobody = f"127.0.0.1:{free_port()}"  # no broker: nothing can be delivered
    for error in (StreamError, TaskFailedError):
        dlq = DeadLetterProducer(nobody, "transactions-dlq", error=error)
        dlq.send(key=b"k", value=b"bad", headers=[])
        with pytest.raises(error, match=r"could not deliver dead letters to transactions-dlq \(1 undelivered"):
            dlq.flush(1.5)
        dlq.close(0)


def test_a_stop_ends_an_unbounded_flush_without_an_error() -> None:
    dlq = DeadLetterProducer(f"127.0.0.1:{free_port()}", "connect-dlq", error=TaskFailedError)
    dlq.send(key=None, value=b"bad", headers=[("__connect.errors.stage", b"VALUE_CONVERTER")])
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    assert dlq.flush(math.inf, stop=stop) is False  # the task is stopping: no offsets are committed after this
    dlq.close(0)

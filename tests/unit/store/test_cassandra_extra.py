"""Without cassandra-driver, the Cassandra adapters fail with an error naming the extra to install."""
from __future__ import annotations

import sys

import pytest

from fraudpipe.connect.cassandra_sink import CassandraWriter
from fraudpipe.errors import ConnectError, StoreError
from fraudpipe.store.cassandra import _import_driver


@pytest.fixture
def no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    # as if the [cassandra] extra were not installed: importing the driver raises ImportError
    for name in [n for n in sys.modules if n == "cassandra" or n.startswith("cassandra.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cassandra", None)


def test_the_store_names_the_extra(no_driver: None) -> None:
    with pytest.raises(StoreError, match=r"pip install 'fraudpipe\[cassandra\]'"):
        _import_driver()


def test_the_sink_names_the_extra(no_driver: None) -> None:
    with pytest.raises(ConnectError, match=r"pip install 'fraudpipe\[cassandra\]'"):
        CassandraWriter({}, [])

"""The sink plugins this worker ships, looked up by name as Kafka Connect does.

Kept apart from the port (plugin.py): the concrete sinks import their base from there,
and this module imports the concrete sinks, so the imports run one way only.
"""
from __future__ import annotations

from fraudpipe.connect.cassandra_sink import CassandraSinkConnector
from fraudpipe.connect.jdbc_sqlite import JdbcSinkConnector
from fraudpipe.connect.plugin import SinkPlugin

PLUGINS: tuple[type[SinkPlugin], ...] = (JdbcSinkConnector, CassandraSinkConnector)


def all_plugins() -> dict[str, type[SinkPlugin]]:
    """Every plugin by its full class name."""
    return {p.class_name: p for p in PLUGINS}


def find_plugin(name: str) -> type[SinkPlugin] | None:
    """A plugin by full class name, simple name, or alias (simple name without 'Connector'), as Connect does."""
    for class_name, plugin in all_plugins().items():
        simple = class_name.rsplit(".", 1)[-1]
        if name in (class_name, simple, simple.removesuffix("Connector")):
            return plugin
    return None

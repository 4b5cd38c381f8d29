"""The Flask dashboard: live fraud and pipeline views over the Store port."""
from __future__ import annotations


def create_app(config: object = None) -> object:
    """Lazy alias of dashboard.app.create_app, so importing the package stays cheap."""
    from dashboard.app import create_app as factory

    return factory(config)  # type: ignore[arg-type]

"""Session-wide fixtures. Each domain keeps its fixtures in tests/fixtures/<domain>.py."""
pytest_plugins = [
    "tests.fixtures.core",  # first: other fixture modules import its helpers
    "tests.fixtures.brokers",
    "tests.fixtures.connect",
    "tests.fixtures.dashboard",
    "tests.fixtures.producer",
    "tests.fixtures.realstack",
    "tests.fixtures.registry",
    "tests.fixtures.spark",
    "tests.fixtures.stream",
]


def pytest_collection_modifyitems(items):
    """Tests on the real-stack bench carry the `realstack` marker (`-m "not realstack"` leaves them out)."""
    import pytest

    from tests.fixtures.realstack import REALSTACK_FIXTURES

    for item in items:
        if REALSTACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realstack)

"""Session-wide fixtures. Each domain keeps its fixtures in tests/fixtures/<domain>.py."""
pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.connect",
    "tests.fixtures.dashboard",
    "tests.fixtures.producer",
    "tests.fixtures.registry",
    "tests.fixtures.spark",
    "tests.fixtures.stream",
]

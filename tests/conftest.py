import pytest

from support import MemoryServer


@pytest.fixture
def server():
    return MemoryServer()


def pytest_configure(config):
    # Run by default (bounded); deselect with -m "not soak" for a quick run.
    config.addinivalue_line(
        "markers", "soak: a bounded load test with about a thousand clients")

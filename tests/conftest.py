import pytest

from support import MemoryServer


@pytest.fixture
def server():
    return MemoryServer()

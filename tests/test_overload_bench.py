"""
A short run of bench/overload_bench.py against a real daemon with history
on, so that the benchmark never rots and the back-pressure is checked end to
end: talkers writing 900-byte lines flat out, a listener counting.
"""

import importlib.util
from pathlib import Path

import pytest

from chatd.storage.threaded import BEHIND_BYTES

# Starts daemons (through the bench), which the conftest cannot see here.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench" / "overload_bench.py"
READ_BYTES = 65536
"""What Twisted reads from a socket at once: one more per connection may be
taken in the turn reading pauses."""


def _bench():
    spec = importlib.util.spec_from_file_location("overload_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_everyLineDeliveredIsStoredAfterACleanStop(tmp_path):
    """
    Flat out with history on, then SIGTERM: every line the listener got is
    in the database, and nothing else is.
    """
    out = _bench().run(str(tmp_path), "clean", talkers=3, seconds=2)
    assert out["delivered"] > 0
    assert out["stored"] == out["delivered"]
    assert out["delivered_not_stored"] == out["stored_not_delivered"] == 0


def test_killLosesNoMoreThanTheWritersBound(tmp_path):
    """
    SIGKILL half-way: the lines delivered but not stored are no more than
    the writer's bound in bytes, and what was read in the turn that paused.
    """
    talkers = 3
    out = _bench().run(str(tmp_path), "kill", talkers=talkers, seconds=4)
    assert out["delivered"] > 0
    assert out["delivered_not_stored"] * 901 <= BEHIND_BYTES + talkers * READ_BYTES

"""
The collector's thresholds while the daemon runs (chatd.ops.collector).
"""

import gc

import pytest
from twisted.internet.task import Clock

from chatd.ops.collector import YOUNGEST, CollectorService
from chatd.tap import Options, makeService


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_youngestWalkedLessOftenWhileRunning(thresholds):
    collector = CollectorService()
    collector.startService()
    assert gc.get_threshold() == (YOUNGEST, 10, 10)
    collector.stopService()
    assert gc.get_threshold() == (700, 10, 10)


def test_stoppingUnstartedChangesNothing(thresholds):
    gc.set_threshold(800, 11, 12)
    CollectorService().stopService()
    assert gc.get_threshold() == (800, 11, 12)


def test_theDaemonRunsWithIt():
    config = Options()
    config.parseOptions(["--listen", "tcp:0"])
    top = makeService(config, reactor=Clock())
    assert [s for s in top if isinstance(s, CollectorService)]

"""
A short run of bench/fairness_bench.py against a real daemon, so that the
benchmark never rots and fairness is checked end to end: a victim's
/history is answered while others flood searches, and olga's right password
is never refused while others log in over and over.
"""

import importlib.util
from pathlib import Path

import pytest

# Starts daemons (through the bench), which the conftest cannot see here.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench" / "fairness_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("fairness_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nobodyIsShutOut(tmp_path):
    """
    Searches flooded from 10 connections leave the victim's /history
    answered, never busy; 20 threads logging in to one account leave olga's
    logins answered, every one right.
    """
    found = _bench().run(str(tmp_path), seconds=6, lines=100_000, searchers=10, loggers=20)
    assert found["history"]["busy"] == 0 and found["history"]["answered"] > 0
    olga = [got for got, took in found["passwords"]["olga"]]
    assert olga and olga == ["ok"] * len(olga)

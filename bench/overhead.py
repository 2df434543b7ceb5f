"""
What the fan-out's hot path costs, in process, this checkout against another
git revision: one line to a room of 1,000 through the real Fanout, Coalescer
and Outbox (to transports that take everything), the CPU per delivery.

On a shared, busy machine the end-to-end benchmark (bench.py --compare REV)
moves by +-25% from round to round; this measures the Python the metrics
could add to each delivery, with the kernel's sends left out, and takes the
least of many interleaved runs, which a neighbour's load can only raise.

    .venv/bin/python bench/overhead.py main       # or any revision

Variants: REV's code, this checkout's, and this checkout's with the metrics
timing each turn (what --metrics turns on).
"""

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from chatd.core import fanout as fanoutHere  # noqa: E402
from chatd.core.events import Said  # noqa: E402
from chatd.edge import outbox as outboxHere  # noqa: E402

MEMBERS = 1000


def atRevision(rev, path, folder):
    source = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{rev}:{path}"],
                            check=True, capture_output=True).stdout
    name = f"{Path(path).stem}_{rev.replace('/', '_')}"
    target = Path(folder, name + ".py")
    target.write_bytes(source)
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Transport:
    def registerProducer(self, producer, streaming):
        pass

    def write(self, data):
        pass

    def writeSequence(self, data):
        pass


class Wire:
    line = b"#lobby <ann> hello there, everyone\r\n"

    @classmethod
    def encode(cls, event):
        return cls.line

    @staticmethod
    def encodeOwn(event):
        return None


class Member:
    __slots__ = ("outbox", "wire")

    def __init__(self, outbox):
        self.outbox, self.wire = outbox, Wire


def nsPerDelivery(fanoutModule, outboxModule, metrics=False, lines=8, reps=20):
    coalescer = outboxModule.Coalescer(None)
    if metrics:
        from prometheus_client import CollectorRegistry, Histogram
        histogram = Histogram("t", "t", registry=CollectorRegistry())
        coalescer.timer = time.perf_counter
        coalescer.observe = histogram.observe
    members = [Member(outboxModule.Outbox(Transport(), 1 << 20, coalescer=coalescer))
               for _ in range(MEMBERS)]
    fanout = fanoutModule.Fanout()
    event = Said("#lobby", "ann", "hello", 0.0, 1)
    best = float("inf")
    for _ in range(reps):
        started = time.process_time()
        for _ in range(lines):
            # One read, one line, one flush: a write per recipient per line.
            with coalescer:
                fanout.toUsers(members, event, members[0])
        best = min(best, time.process_time() - started)
    return best / (lines * (MEMBERS - 1)) * 1e9


def main(argv):
    rev = argv[1] if len(argv) > 1 else "main"
    rounds = int(argv[2]) if len(argv) > 2 else 30
    with tempfile.TemporaryDirectory() as folder:
        variants = {
            rev: (atRevision(rev, "chatd/core/fanout.py", folder),
                  atRevision(rev, "chatd/edge/outbox.py", folder), False),
            "this checkout": (fanoutHere, outboxHere, False),
            "this checkout, metrics on": (fanoutHere, outboxHere, True),
        }
        results = {name: [] for name in variants}
        order = list(variants)
        for turn in range(rounds):
            for name in (order if turn % 2 == 0 else order[::-1]):
                results[name].append(nsPerDelivery(*variants[name]))
    base = min(results[rev])
    print(f"CPU per delivery, one line to {MEMBERS}, least and median of {rounds} rounds:")
    for name, values in results.items():
        print(f"  {name:28} {min(values):6.1f} ns  median {statistics.median(values):6.1f} ns"
              f"  ({min(values) / base - 1:+.1%} against {rev})")


if __name__ == "__main__":
    main(sys.argv)

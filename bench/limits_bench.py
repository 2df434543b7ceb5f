"""
What the limits cost and what they hold, measured against twistd -n chat:

1. memory: one client refuses to read while others talk; the daemon's RSS is
   sampled as the backlog builds, until the reader is dropped;
2. throughput: messages per second through a room with the default limits
   and with the limits opened wide (flood control effectively off).

Run from a checkout with its venv:

    .venv/bin/python bench/limits_bench.py [--baseline GIT-REV]

With --baseline, the throughput is also measured for the code at GIT-REV
(exported to a temporary folder and run through a generated .tac), e.g. the
commit before the limits, to show what they cost against no limits at all.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import timeit

from twisted.internet.task import Clock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from crowd import Crowd, allowOpenFiles  # noqa: E402
from support import Daemon, twistdPath  # noqa: E402

from chatd.edge.limits import FloodGate  # noqa: E402


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


def login(crowd, nick):
    member = crowd.connect()
    crowd.send(member, nick)
    crowd.pump(lambda: any(l.startswith("=== #lobby members") for l in member.lines))
    member.take()
    return member


# The limits alone: no history written (and none in the user's data folder).
NO_HISTORY = ("--db", "none")

TAC = """
import sys
sys.path.insert(0, {tree!r})
from twisted.application import service
from chatd import tap
config = tap.Options()
config.parseOptions({args!r})
application = service.Application("chatd")
tap.makeService(config).setServiceParent(application)
"""


def daemonAt(tree, args):
    """
    A daemon running the chatd in the folder C{tree} (an exported older
    revision) through a .tac, listening on a free loopback port.
    """
    tac = os.path.join(tree, "bench.tac")
    with open(tac, "w") as f:
        f.write(TAC.format(tree=tree, args=["--listen", "tcp:0:interface=127.0.0.1", *args]))
    daemon = Daemon()
    daemon.command = [twistdPath(), "-n", "--pidfile=", "-y", tac]
    return daemon


def exportRevision(rev):
    tree = tempfile.mkdtemp(prefix="chatd-baseline-")
    archive = subprocess.run(["git", "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return tree


def memoryWithStuckReader(seconds=8, talkers=20):
    daemon = Daemon("--flood-burst", "1000000", "--flood-rate", "1000000", *NO_HISTORY).start()
    crowd = Crowd(daemon.port)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", daemon.port))
    stuck.sendall(b"stuck\n")
    people = [login(crowd, f"t{i}") for i in range(talkers)]
    pid = daemon.process.pid
    samples = [(0.0, rss(pid))]
    start = time.monotonic()
    dropped = None
    while time.monotonic() - start < seconds:
        for p in people:
            crowd.send(p, "x" * 200)
        crowd.pump(lambda: all(len(p.lines) >= talkers - 1 for p in people), timeout=60)
        for p in people:
            p.lines.clear()
        now = time.monotonic() - start
        if now - samples[-1][0] >= 0.5:
            samples.append((now, rss(pid)))
            if dropped is None and "dropping stuck" in daemon.logText():
                dropped = now
    stuck.close()
    crowd.closeAll()
    daemon.stop()
    return samples, dropped


def throughput(daemon, seconds=5, talkers=20):
    daemon.start()
    crowd = Crowd(daemon.port)
    people = [login(crowd, f"t{i}") for i in range(talkers)]
    start = time.monotonic()
    messages = 0
    while time.monotonic() - start < seconds:
        # Each talker stays within the default flood rate, as real users
        # would; the room sees talkers * 1 lines per step.
        for p in people:
            crowd.send(p, "y" * 80)
        messages += len(people)
        crowd.pump(lambda: all(len(p.lines) >= talkers - 1 for p in people), timeout=60)
        for p in people:
            p.lines.clear()
    elapsed = time.monotonic() - start
    crowd.closeAll()
    daemon.stop()
    return messages / elapsed, messages * (talkers - 1) / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git revision without the limits")
    options = parser.parse_args()
    allowOpenFiles(4096)
    samples, dropped = memoryWithStuckReader()
    print("RSS while one client never reads and 20 others talk as fast as they")
    print("can (200-byte lines, flood control opened wide, default --send-queue):")
    for t, r in samples:
        print(f"  t={t:5.1f}s  RSS {r / 2**20:6.1f} MiB")
    print(f"  the reader that never reads was dropped by t={dropped:.1f}s"
          if dropped is not None else "  the reader that never reads was NOT dropped")
    # Each talker sends a line per step, far faster than the default 5/s,
    # so "limits on" keeps the default burst but a rate that lets it pass:
    # the difference is the cost of the checks, not of refused lines.
    runs = [
        ("limits on", lambda: Daemon("--flood-rate", "100000", "--flood-burst", "20",
                                     *NO_HISTORY)),
        ("limits wide open", lambda: Daemon("--flood-rate", "1e9", "--flood-burst",
                                            "1000000000", *NO_HISTORY)),
    ]
    if options.baseline:
        tree = exportRevision(options.baseline)
        runs.append((f"no limits ({options.baseline[:10]})", lambda: daemonAt(tree, [])))
    print("Throughput, one room, 20 talkers each sending one 80-byte line per step")
    print("and reading the 19 others' lines before the next (two runs each):")
    for attempt in range(2):
        for name, make in runs:
            sent, delivered = throughput(make())
            print(f"  {name:>24}: {sent:8.0f} messages/s in, "
                  f"{delivered:9.0f} deliveries/s out")
    clock = Clock()
    gate = FloodGate(clock, 1e9, 10 ** 9, 10)
    perLine = timeit.timeit(gate.admit, number=200000) / 200000
    print(f"FloodGate.admit alone: {perLine * 1e9:.0f} ns per line")

if __name__ == "__main__":
    main()

"""
What the limits cost and what they hold, measured against twistd -n chat:

1. memory: one client refuses to read while others talk; the daemon's RSS is
   sampled as the backlog builds, until the reader is dropped;
2. throughput: messages per second through a room with the default limits
   and with the limits opened wide (flood control effectively off).

Run from a checkout with its venv: .venv/bin/python bench/limits_bench.py
"""

import os
import socket
import sys
import time
import timeit

from twisted.internet.task import Clock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from crowd import Crowd, allowOpenFiles  # noqa: E402
from support import Daemon  # noqa: E402

from chatd.limits import FloodGate  # noqa: E402


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


def memoryWithStuckReader(seconds=8, talkers=20):
    daemon = Daemon("--flood-burst", "1000000", "--flood-rate", "1000000").start()
    crowd = Crowd(daemon.port)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", daemon.port))
    stuck.sendall(b"stuck\n")
    people = [login(crowd, f"t{i}") for i in range(talkers)]
    pid = daemon.process.pid
    samples = [(0.0, rss(pid))]
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for p in people:
            crowd.send(p, "x" * 200)
        crowd.pump(lambda: all(len(p.lines) >= talkers - 1 for p in people), timeout=60)
        for p in people:
            p.lines.clear()
        now = time.monotonic() - start
        if now - samples[-1][0] >= 0.5:
            samples.append((now, rss(pid)))
    dropped = "dropping stuck" in daemon.logText()
    stuck.close()
    crowd.closeAll()
    daemon.stop()
    return samples, dropped


def throughput(args, seconds=5, talkers=20):
    daemon = Daemon(*args).start()
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
    allowOpenFiles(4096)
    samples, dropped = memoryWithStuckReader()
    print("RSS while one client never reads (20 talkers, 200-byte lines):")
    for t, r in samples:
        print(f"  t={t:5.1f}s  RSS {r / 2**20:6.1f} MiB")
    print(f"  stuck reader dropped: {dropped}")
    # Each talker sends a line per step, far faster than the default 5/s,
    # so "limits on" keeps the default burst but a rate that lets it pass:
    # the difference is the cost of the checks, not of refused lines.
    for name, args in [
        ("limits wide open", ["--flood-rate", "1e9", "--flood-burst", "1000000000"]),
        ("limits on", ["--flood-rate", "100000", "--flood-burst", "20"]),
    ]:
        sent, delivered = throughput(args)
        print(f"{name:>18}: {sent:8.0f} messages/s in, {delivered:9.0f} deliveries/s out")
    clock = Clock()
    gate = FloodGate(clock, 1e9, 10 ** 9, 10)
    perLine = timeit.timeit(gate.admit, number=200000) / 200000
    print(f"FloodGate.admit: {perLine * 1e9:.0f} ns per line")

if __name__ == "__main__":
    main()

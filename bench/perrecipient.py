"""
chatd's Python per recipient when a room's line is alone in its turn, as in
latency-1000: L{chatd.core.fanout.Fanout.toMembers} of one line to a room of
N members (into the turn's batches), then the L{Coalescer}'s flush
(L{Outbox.flush}, L{writeNow}, the send), over real loopback TCP
transports, beside a bare C{socket.send} loop on the same sockets.

Not a test: it prints numbers for bench/README.md (issue 18).  It measures
whichever chatd it imports, so two versions are compared by running it
from each (PYTHONPATH=a checkout of the other, alternately):

    .venv/bin/python bench/perrecipient.py [--members 1000] [--turns 300]

Run it under the benchmark lock (flock /work/bench.lock ...).
"""

import argparse
import gc
import os
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

from twisted.internet import reactor

import chatd
from chatd.core import events
from chatd.core.fanout import Fanout
from chatd.core.members import Members
from chatd.edge.leantcp import LeanServer
from chatd.edge.outbox import Coalescer, Outbox
from chatd.line.wire import LineWire

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sendpath import loopbackTransports  # noqa: E402


class _Room:
    __slots__ = ("name", "members")


class _User:
    __slots__ = ("nick", "wire", "outbox")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))

    transports, child = loopbackTransports(options.members)

    coalescer = Coalescer()
    room = _Room()
    room.name = "#r0"
    room.members = Members()
    wire = LineWire()
    users = []
    for number, transport in enumerate(transports):
        user = _User()
        user.nick, user.wire = f"u{number}", wire
        user.outbox = Outbox(transport, 256 * 1024, coalescer=coalescer)
        room.members[user.nick] = user
        users.append(user)
    fanout = Fanout()
    # The sender is a member (the line is not echoed to it): N - 1 deliveries.
    actor = users[0]
    event = events.Said(room.name, actor.nick, "x" * 50, 1234567890.123, 1)
    line = wire.encode(event)
    floorSockets = [t.socket for t in transports[1:]]
    recipients = len(floorSockets)

    def chatdTurn():
        started = time.thread_time()
        coalescer.__enter__()
        fanout.toMembers(room, event, actor)
        batched = time.thread_time()
        coalescer.__exit__(None, None, None)
        return batched - started, time.thread_time() - batched

    def floorTurn():
        started = time.thread_time()
        for s in floorSockets:
            s.send(line)
        return time.thread_time() - started

    gc.disable()
    print(f"chatd from {Path(chatd.__file__).parent.parent}; {recipients} recipients, "
          f"{len(line)}-byte line, medians of {options.turns} turns (us per recipient)")
    for number in range(options.rounds):
        batch, flush, floor = [], [], []
        for _ in range(options.turns):
            spentBatch, spentFlush = chatdTurn()
            batch.append(spentBatch)
            flush.append(spentFlush)
            # The reader drains between turns, as between latency-1000's lines.
            time.sleep(0.003)
            floor.append(floorTurn())
            time.sleep(0.003)
        perRecipient = 1e6 / recipients
        b = statistics.median(batch) * perRecipient
        f = statistics.median(flush) * perRecipient
        s = statistics.median(floor) * perRecipient
        print(f"round {number}: fan-out into the batch {b:.2f}, flush {f:.2f}, "
              f"chatd in all {b + f:.2f}; bare socket.send {s:.2f}; "
              f"chatd's Python above it {b + f - s:.2f}")
    gc.enable()
    held = sum(1 for t in transports if t._tempDataLen or t.dataBuffer)
    if held:
        print(f"({held} transports were left holding bytes: the reader fell behind)")
    for t in transports:
        t.socket.close()
    os.waitpid(child, 0)


if __name__ == "__main__":
    sys.exit(main())

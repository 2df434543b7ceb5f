"""
The web front end's cost per delivery beside the line protocol's, in memory.

    .venv/bin/python bench/web_fanout.py [--members 1000] [--lines 200]

Builds the real core, gate, fan-out, outboxes and both front ends' protocols
over transports that take bytes and drop them (no sockets: the kernel's
share is the same for both, give or take the frames' larger size), puts
MEMBERS line clients in one room, MEMBERS browsers in another and MEMBERS of
both, alternating, in a third, and has a line client say LINES lines in
each.  It prints the processor time per delivery for each, and their ratio
to the line room's (issue 14 asks the web front end to stay
within 1.5x of the line protocol).  This measures what chatd's Python does
per recipient, not a network: bench/run measures the daemon over sockets.
"""

import argparse
import time
from types import SimpleNamespace

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.edge.gate import Gate
from chatd.edge.limits import Limits
from chatd.line.protocol import ChatFactory
from chatd.web.protocol import WebFactory


# Each room's members: all line clients, all browsers, and every other one a
# browser.
ROOMS = ("line", "web", "mixed")


class NullTransport:
    """
    A transport that accepts everything and keeps nothing.
    """

    disconnecting = False
    connected = True

    def __init__(self, port):
        self._peer = IPv4Address("TCP", "127.0.0.1", port)
        self.written = 0

    def write(self, data):
        self.written += len(data)

    def writeSequence(self, seq):
        for data in seq:
            self.written += len(data)

    def getPeer(self):
        return self._peer

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 1)

    def registerProducer(self, producer, streaming):
        pass

    def unregisterProducer(self):
        pass

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def loseConnection(self):
        pass

    def abortConnection(self):
        pass


class _Channel:
    def __init__(self, transport):
        self.transport = transport
        self.dataReceived = lambda data: None

    def setTimeout(self, timeout):
        pass

    def uncount(self):
        # Never counted as HTTP (see chatd.web.resource._Channel).
        pass


class _Request:
    def __init__(self, transport):
        self.channel = _Channel(transport)


def build(members):
    clock = Clock()
    limits = Limits(floodRate=1e9, floodBurst=10**9, maxConnections=10**6,
                    maxPerAddress=10**6, maxRooms=10, loginTimeout=0)
    core = ChatCore(Fanout(), clock)
    gate = Gate(clock, limits)
    factories = {"line": ChatFactory(core, gate, replay=0),
                 "web": WebFactory(core, gate, replay=0)}
    port = 10000

    def connect(kind, nick, room):
        nonlocal port
        port += 1
        t = NullTransport(port)
        if kind == "line":
            proto = factories["line"].buildProtocol(t.getPeer())
            proto.makeConnection(t)
            proto.dataReceived(f"{nick}\n/join #{room}\n".encode())
        else:
            proto = factories["web"].buildProtocol(_Request(t))
            # (The WebSocket library's transport, whose writes the protocol
            # sends through the connection's outbox.)
            proto.negotiationStarted(SimpleNamespace(transport=t))
            proto.negotiationFinished()
            proto.textMessageReceived(f'{{"type":"nick","nick":"{nick}"}}')
            proto.textMessageReceived(f'{{"type":"join","room":"#{room}"}}')
        return proto, t

    # In the mixed room the formats alternate in join order, as they do
    # when browsers and line clients come and go.
    transports = {room: [] for room in ROOMS}
    for i in range(members):
        for room in ROOMS:
            kind = room if room != "mixed" else ("line", "web")[i % 2]
            transports[room].append(connect(kind, f"{room[0]}{i}", room)[1])
    senders = {room: connect("line", f"s{room}", room)[0] for room in ROOMS}
    return senders, transports


def measure(sender, transports, lines):
    before = sum(t.written for t in transports)
    start = time.process_time()
    for n in range(lines):
        sender.dataReceived(b"BMK %06d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" % n)
    spent = time.process_time() - start
    deliveries = lines * len(transports)
    return spent / deliveries * 1e6, (sum(t.written for t in transports) - before) / deliveries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    senders, transports = build(args.members)
    results = {room: [] for room in ROOMS}
    for _ in range(args.rounds):
        for kind in ROOMS:
            results[kind].append(measure(senders[kind], transports[kind], args.lines))
    best = {kind: min(r[0] for r in rs) for kind, rs in results.items()}
    size = {kind: rs[0][1] for kind, rs in results.items()}
    print(f"room of {args.members}, {args.lines} lines, best of {args.rounds}:")
    for kind in ROOMS:
        print(f"  {kind:5}  {best[kind]:.3f} us of CPU per delivery, "
              f"{size[kind]:.0f} bytes each")
    for kind in ROOMS[1:]:
        print(f"  {kind} / line: {best[kind] / best['line']:.2f}x")
    return best


if __name__ == "__main__":
    main()

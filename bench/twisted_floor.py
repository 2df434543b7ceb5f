"""
The Twisted floor: bench/ceiling.c's trivial fan-out server, written as the
least a Twisted LineReceiver server can be, on the reactor chatd runs on.

It speaks just enough of chatd's line protocol for bench/loadgen.c, exactly
as the ceiling does: a nickname, then "/join #rN" (announced to the room's
members, as chatd announces a join) and "/part" are acknowledged; every
other line goes to every other member of the sender's room as
"#rN <nick> text".  No lobby, no limits, no checks, no log line per login.
Twisted's transports gather each connection's writes and send them once per
reactor turn.  Whatever this costs per login or per delivery, no server on
Twisted can cost less; the C ceiling shows the same for the kernel.

Usage: python twisted_floor.py PORT [--silent]   (0 picks a free port;
prints "listening on PORT").  With --silent a join is announced to nobody,
as in the Twisted documentation's chat example: what a login alone costs.
"""

import sys

from twisted.internet import protocol, reactor
from twisted.protocols import basic


class FloorProtocol(basic.LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 4096
    nick = None
    room = None

    def connectionMade(self):
        self.transport.write(b"??? nick\r\n")

    def lineReceived(self, line):
        line = line.rstrip(b"\r")
        if self.nick is None:
            self.nick = line
            self.transport.write(b"=== #lobby members (1): %s\r\n" % line)
        elif line.startswith(b"/join #r"):
            number = int(line[8:] or 0) & 65535
            if self.room is None:
                members = self.factory.rooms.setdefault(number, [])
                if not self.factory.silent:
                    announcement = b"-- #r%d %s has joined\r\n" % (number, self.nick)
                    for member in members:
                        member.transport.write(announcement)
                members.append(self)
                self.room = number
            self.transport.write(b"=== #r%d members\r\n" % number)
        elif line.startswith(b"/part"):
            self.transport.write(b"=== left #lobby\r\n=== now talking in #r%d\r\n"
                                 % (self.room or 0))
        elif self.room is not None:
            message = b"#r%d <%s> %s\r\n" % (self.room, self.nick, line)
            for member in self.factory.rooms[self.room]:
                if member is not self:
                    member.transport.write(message)

    def connectionLost(self, reason):
        if self.room is not None:
            self.factory.rooms[self.room].remove(self)


class FloorFactory(protocol.Factory):
    protocol = FloorProtocol

    def __init__(self, silent):
        self.rooms = {}
        self.silent = silent


def main(port, silent):
    listening = reactor.listenTCP(port, FloorFactory(silent), backlog=4096,
                                  interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0, "--silent" in sys.argv[2:])

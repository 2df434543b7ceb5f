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

With --aggregated it does instead the least that issue 18's point 1 asks of a
chat server per login, the way chatd does it but with nothing else: the
greeting, a nickname claimed unique in a dict, the room's names shown to the
newcomer (a count in a room of more than 100), arrivals announced together
(at the end of the turn of a first arrival, then once per window while they
keep coming, in the windows chatd uses), each reply to a read written once.

Usage: python twisted_floor.py PORT [--silent | --aggregated]   (0 picks a
free port; prints "listening on PORT").  With --silent a join is announced to
nobody, as in the Twisted documentation's chat example: what a login alone
costs.
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


# As chatd/core/arrivals.py: in a room of BIG_ROOM or more, the arrivals after
# the first are announced when a window ends, a LONG_WINDOW while they keep
# coming; and a newcomer to a room of more than LISTED is told only the count.
BIG_ROOM, WINDOW, LONG_WINDOW, LISTED = 10, 0.5, 2.0, 100
GREETING = b"-!- Welcome to the floor.\r\n??? Choose a nickname:\r\n"


class Room:
    def __init__(self, number):
        self.name = b"#r%d" % number
        self.members = []
        self.names = []
        # The members waiting to be announced; None while the room is quiet
        # (no announcement due).
        self.waiting = None

    def arrive(self, member):
        if self.waiting is None:
            self.waiting = []
            reactor.callLater(0, self.due, 0)
        self.waiting.append(member)

    def due(self, window):
        arrived, self.waiting = self.waiting, []
        if arrived and len(self.members) >= BIG_ROOM:
            window = LONG_WINDOW if window else WINDOW
            reactor.callLater(window, self.due, window)
        else:
            self.waiting = None
        self.tell(arrived)

    def announce(self):
        """
        Before anything else happens in the room: the arrivals waiting.
        """
        if self.waiting:
            arrived, self.waiting = self.waiting, []
            self.tell(arrived)

    def tell(self, arrived):
        arrived = [member for member in arrived if member.room is self]
        if not arrived:
            return
        nicks = [member.nick for member in arrived]
        line = _joined(self.name, nicks)
        newcomers = set(arrived)
        for member in self.members:
            if member not in newcomers:
                member.transport.write(line)
        # A newcomer saw those before them among the names.
        for i, member in enumerate(arrived[:-1]):
            member.transport.write(_joined(self.name, nicks[i + 1:]))


def _joined(room, nicks):
    if len(nicks) < 4:
        return b"".join(b"-- %s %s has joined\r\n" % (room, nick) for nick in nicks)
    return b"-- %s %s, %s and %d others have joined\r\n" % (
        room, nicks[0], nicks[1], len(nicks) - 2)


class AggregatedProtocol(FloorProtocol):
    """
    The floor's lines, answered as issue 18 asks: every method its own.
    """

    def connectionMade(self):
        self.reply = []
        self.transport.write(GREETING)

    def dataReceived(self, data):
        basic.LineReceiver.dataReceived(self, data)
        if self.reply:
            self.transport.write(b"".join(self.reply))
            self.reply = []

    def lineReceived(self, line):
        line = line.rstrip(b"\r")
        if self.nick is None:
            if not line or self.factory.nicks.setdefault(line.lower(), self) is not self:
                self.reply.append(b"!!! taken\r\n??? Choose a nickname:\r\n")
                return
            self.nick = line
            self.reply.append(b"=== you are now %s\r\n=== joined #lobby\r\n"
                              b"=== #lobby members (1): %s\r\n" % (line, line))
        elif line.startswith(b"/join #r"):
            number = int(line[8:] or 0) & 65535
            if self.room is None:
                room = self.factory.rooms.get(number)
                if room is None:
                    room = self.factory.rooms[number] = Room(number)
                room.members.append(self)
                room.names.append(self.nick)
                room.arrive(self)
                self.room = room
            room = self.room
            count = len(room.members)
            names = b": " + b" ".join(room.names) if count <= LISTED else b""
            self.reply.append(b"=== joined %s\r\n=== %s members (%d)%s\r\n"
                              % (room.name, room.name, count, names))
        elif line.startswith(b"/part"):
            self.reply.append(b"=== left #lobby\r\n=== now talking in %s\r\n"
                              % (self.room.name if self.room else b"#lobby"))
        elif self.room is not None:
            self.room.announce()
            message = b"%s <%s> %s\r\n" % (self.room.name, self.nick, line)
            for member in self.room.members:
                if member is not self:
                    member.transport.write(message)

    def connectionLost(self, reason):
        if self.nick is not None:
            del self.factory.nicks[self.nick.lower()]
        if self.room is not None:
            self.room.members.remove(self)
            self.room.names.remove(self.nick)
            self.room = None


class AggregatedFactory(protocol.Factory):
    protocol = AggregatedProtocol

    def __init__(self):
        self.rooms = {}
        self.nicks = {}


def main(port, mode):
    factory = AggregatedFactory() if mode == "--aggregated" else FloorFactory(
        mode == "--silent")
    listening = reactor.listenTCP(port, factory, backlog=4096, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0, (sys.argv[2:] or [None])[0])

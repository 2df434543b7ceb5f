"""
The limits over in-memory transports and a L{Clock}: flood control,
connection counts and timeouts, and their options.
"""

import pytest
from twisted.internet.task import Clock
from twisted.python import usage

from chatd.edge.limits import ACCEPT, DISCONNECT, REFUSE, FloodGate, Limits
from chatd.tap import Options
from support import MemoryServer

FLOOD_ERROR = "!!! you are sending lines too fast; this one was not delivered"


def said(nick, text, room="#lobby"):
    return f"{room} <{nick}> {text}"


def test_floodGateBucket():
    """
    The bucket lets a burst through at once, then one line per 1/rate
    seconds; refusals past the kick count ask for a disconnect, and a sender
    who has its full burst back starts with a clean slate.
    """
    clock = Clock()
    gate = FloodGate(clock, rate=2, burst=3, kick=2)
    assert [gate.admit() for _ in range(5)] == [ACCEPT] * 3 + [REFUSE] * 2
    clock.advance(0.5)
    assert [gate.admit(), gate.admit()] == [ACCEPT, DISCONNECT]
    clock.advance(1.5)
    assert [gate.admit() for _ in range(4)] == [ACCEPT] * 3 + [REFUSE]


def test_pasteOfADozenLinesPasses():
    """
    With the default limits a paste of a dozen lines (and up to the burst)
    arrives whole, in order, with no error.
    """
    server = MemoryServer()
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    # Logging in spent a line of bob's burst.
    paste = [f"paste line {i}" for i in range(Limits.floodBurst - 1)]
    bob.sendBytes("".join(line + "\n" for line in paste).encode())
    assert bob.lines() == []
    assert alice.lines() == [said("bob", line) for line in paste]


def test_excessLinesRefusedThenAllowedAgain():
    """
    Lines beyond the burst each get an error and reach nobody; once time has
    refilled the bucket, lines are delivered again.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    for i in range(5):
        bob.send(f"m{i}")
    assert bob.lines() == [FLOOD_ERROR] * 2
    assert alice.lines() == [said("bob", f"m{i}") for i in range(3)]
    server.clock.advance(1)
    bob.send("m5")
    bob.send("m6")
    assert alice.lines() == [said("bob", "m5")]
    assert bob.lines() == [FLOOD_ERROR]
    assert not bob.transport.disconnecting


def test_sustainedFloodDisconnects():
    """
    A sender that goes on flooding is disconnected after the kick count of
    refused lines; the others see it quit for flooding and it frees its
    place.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3, floodKick=5))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    for i in range(20):
        bob.send(f"m{i}")
    assert bob.lines() == [FLOOD_ERROR] * 5 + ["-!- Closing your connection: flooding"]
    assert alice.lines() == [said("bob", f"m{i}") for i in range(3)] + [
        "-- #lobby bob has quit (flooding)"]
    assert server.factory.connections == {alice.proto}
    assert server.factory.fromAddress("127.0.0.1") == 1


def test_slowSenderJustOverTheRateIsNotKickedAtOnce():
    """
    Refusals only count towards a disconnect within one flood: a user who
    overruns the burst now and then but pauses in between is never kicked.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3, floodKick=2))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    for round in range(10):
        server.clock.advance(10)
        for i in range(5):
            bob.send(f"r{round} m{i}")
        assert bob.lines() == [FLOOD_ERROR] * 2
    assert not bob.transport.disconnecting
    assert len(alice.lines()) == 30


def test_globalConnectionLimit():
    """
    Past --max-connections a new connection gets one line saying why and is
    closed without becoming a user; when a connection closes its place is
    free again.
    """
    server = MemoryServer(limits=Limits(maxConnections=2))
    server.connect("alice")
    bob = server.connect("bob")
    extra = server.connect(host="10.0.0.9")
    assert extra.lines() == ["-!- Connection refused: the server is full; try again later"]
    assert not extra.transport.connected
    extra.send("carol")
    assert server.core.users.keys() == {"alice", "bob"}
    bob.send("/quit")
    assert len(server.factory.connections) == 1
    carol = server.connect("carol")
    assert carol.proto in server.factory.connections
    assert set(server.core.users) == {"alice", "carol"}


def test_perAddressLimit():
    """
    Past --max-per-address, further connections from that address are
    refused while other addresses still get in; counts follow closes,
    including closes of refused connections, which never counted.
    """
    server = MemoryServer(limits=Limits(maxPerAddress=2))
    a1, a2 = server.connect("a1", host="10.0.0.1"), server.connect("a2", host="10.0.0.1")
    refused = server.connect(host="10.0.0.1")
    assert refused.lines() == ["-!- Connection refused: too many connections from 10.0.0.1"]
    other = server.connect("b1", host="10.0.0.2")
    assert other.proto in server.factory.connections
    assert server.factory.fromAddress("10.0.0.1") == 2
    a1.transport.loseConnection()
    a1.transport.loseConnection()
    assert server.factory.fromAddress("10.0.0.1") == 1
    again = server.connect("a3", host="10.0.0.1")
    assert again.proto in server.factory.connections
    assert server.factory.fromAddress("10.0.0.1") == 2
    assert len(server.factory.connections) == 3
    assert a2.proto in server.factory.connections


def test_loginTimeout():
    """
    A connection that has not chosen a nickname within --login-timeout is
    told why and closed, however much else it sends; one that chose a
    nickname in time stays.
    """
    server = MemoryServer(limits=Limits(loginTimeout=30))
    lurker = server.connect()
    alice = server.connect()
    lurker.lines(), alice.lines()
    server.clock.advance(10)
    alice.send("alice")
    for _ in range(3):
        server.clock.advance(5)
        lurker.send("/help")
    lurker.lines()
    server.clock.advance(5)
    assert lurker.lines() == [
        "-!- Closing your connection: no nickname chosen within 30 seconds"]
    assert server.factory.connections == {alice.proto}
    server.clock.advance(1000)
    assert server.factory.connections == {alice.proto}
    assert not server.clock.getDelayedCalls()


def test_idleTimeoutOffByDefault():
    """
    By default a silent user is never disconnected.
    """
    server = MemoryServer()
    alice = server.connect("alice")
    server.clock.advance(10 ** 7)
    assert alice.proto in server.factory.connections
    assert server.clock.getDelayedCalls() == []


def test_idleTimeout():
    """
    With --idle-timeout a user silent that long is told and disconnected;
    every line starts the wait over.
    """
    server = MemoryServer(limits=Limits(idleTimeout=300))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    for _ in range(5):
        server.clock.advance(299)
        bob.send("still here")
        alice.send("/who")
    alice.lines(), bob.lines()
    server.clock.advance(100)
    alice.send("/who")
    alice.lines()
    server.clock.advance(200)
    assert bob.lines() == ["-!- Closing your connection: idle for 300 seconds"]
    assert alice.lines() == ["-- #lobby bob has quit (idle for 300 seconds)"]
    assert server.factory.connections == {alice.proto}
    server.clock.advance(100)
    assert server.factory.connections == set()
    assert not server.clock.getDelayedCalls()


def test_burstOverSendQueueForgivenWhenDrained():
    """
    A reader pushed past --send-queue by one burst, whose transport then
    drains, is kept and gets everything; one whose backlog stays over the
    limit for --send-queue-grace seconds is dropped, and only it.
    """
    server = MemoryServer(limits=Limits(sendQueueBytes=4096, sendQueueGrace=2,
                                        floodBurst=1000))
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    alice.lines(), bob.lines()
    paste = [f"line {i} " + "p" * 100 for i in range(100)]
    bob.proto.outbox.pauseProducing()
    carol.proto.outbox.pauseProducing()
    for line in paste:
        alice.send(line)
    assert bob.proto.outbox.pending > 4096
    bob.proto.outbox.resumeProducing()
    server.clock.advance(1)
    alice.send("one more")
    bob.proto.outbox.pauseProducing()
    server.clock.advance(1)
    alice.send("and another")
    assert carol.transport.disconnected
    assert not bob.transport.disconnected
    assert bob.lines() == [said("alice", line) for line in paste + ["one more"]]
    assert alice.lines() == ["-- #lobby carol has quit (send queue exceeded)"]


def test_sendQueueHardCeiling():
    """
    However short the wait, a backlog of more than four times --send-queue
    drops its reader at once, so its memory stays bounded.
    """
    server = MemoryServer(limits=Limits(sendQueueBytes=4096, sendQueueGrace=60,
                                        floodBurst=1000))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    bob.proto.outbox.pauseProducing()
    for i in range(200):
        alice.send(f"line {i} " + "p" * 100)
        assert bob.proto.outbox.pending <= 4 * 4096
    assert bob.transport.disconnected
    assert alice.lines() == ["-- #lobby bob has quit (send queue exceeded)"]


def test_roomsPerUserBounded():
    """
    A user may be in --max-rooms rooms at once; one more is refused with the
    reason, and parting one makes room again.  Re-joining a room one is in
    only switches to it.
    """
    server = MemoryServer()
    server.core.maxRooms = 3
    alice = server.connect("alice")
    alice.send("/join #a")
    alice.send("/join #b")
    alice.lines()
    alice.send("/join #c")
    assert alice.lines() == ["!!! you are in 3 rooms, the most allowed; /part one first"]
    alice.send("/join #a")
    assert alice.lines() == ["=== now talking in #a"]
    alice.send("/part #b")
    alice.send("/join #c")
    assert "=== joined #c" in alice.lines()
    assert set(server.core.rooms) == {"#lobby", "#a", "#c"}


def test_optionsDefaultsAndChecks():
    """
    Every limit is an option whose default is the Limits default; values
    that make no sense are usage errors.
    """
    config = Options()
    config.parseOptions([])
    assert config.limits() == Limits()
    config = Options()
    config.parseOptions(["--flood-rate", "0.5", "--flood-burst", "12", "--flood-kick", "7",
                         "--max-connections", "5000", "--max-per-address", "9",
                         "--login-timeout", "0", "--idle-timeout", "600",
                         "--send-queue", "65536", "--send-queue-grace", "2",
                         "--max-rooms", "3"])
    assert config.limits() == Limits(
        sendQueueBytes=65536, sendQueueGrace=2, floodRate=0.5, floodBurst=12, floodKick=7,
        maxConnections=5000, maxPerAddress=9, maxRooms=3, loginTimeout=0, idleTimeout=600)
    for bad in (["--flood-rate", "0"], ["--max-connections", "0"],
                ["--max-per-address", "-1"], ["--idle-timeout", "-5"]):
        with pytest.raises(usage.UsageError):
            Options().parseOptions(bad)


def test_closingNoticeIsTheLastLine():
    """
    Once told why its connection closes (here at shutdown), a client gets
    nothing more, not even the others leaving after it.
    """
    server = MemoryServer()
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.factory.shutDown("The server is going down. Goodbye.")
    for client in (alice, bob):
        assert client.lines() == ["-!- The server is going down. Goodbye."]
    assert server.factory.connections == set()

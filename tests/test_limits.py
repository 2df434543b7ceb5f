"""
The limits over in-memory transports and a L{Clock}: flood control,
connection counts and timeouts, and their options.
"""

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage

from chatd.edge.limits import FloodGate, Limits
from chatd.tap import Options
from support import MemoryServer

SLOWED = "-!- you are sending fast; your lines are being delayed"


def said(nick, text, room="#lobby"):
    return f"{room} <{nick}> {text}"


def test_floodGateBucket():
    """
    The bucket lets a burst through at once, then asks for a wait of 1/rate
    seconds per line; it never refuses.  A flood is counted once, and a
    sender who has its full burst back starts a new one.
    """
    clock = Clock()
    gate = FloodGate(clock, rate=2, burst=3)
    assert [gate.take() for _ in range(2)] == [0, 0]
    assert gate.floods == 0
    # The third line empties the bucket: the next must wait half a second.
    assert gate.take() == pytest.approx(0.5)
    assert gate.floods == 1
    clock.advance(0.5)
    assert gate.take() == pytest.approx(0.5)
    assert gate.floods == 1
    clock.advance(1.5)
    assert gate.take() == 0
    clock.advance(10)
    assert [gate.take() for _ in range(3)][-1] == pytest.approx(0.5)
    assert gate.floods == 2


def test_pasteOfADozenLinesPasses():
    """
    With the default limits a paste up to the burst arrives whole, in
    order, at once, with no notice.
    """
    server = MemoryServer()
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    # Logging in spent a line of bob's burst.
    paste = [f"paste line {i}" for i in range(Limits.floodBurst - 2)]
    bob.sendBytes("".join(line + "\n" for line in paste).encode())
    assert bob.lines() == []
    assert alice.lines() == [said("bob", line) for line in paste]


def test_fastLinesAreDelayedNotRefused():
    """
    Lines beyond the burst are not refused: they wait, reading from the
    sender pauses, and they are handled one per 1/rate seconds, in order,
    each reaching the others once; the sender is told once.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    bob.sendBytes(b"".join(b"m%d\n" % i for i in range(8)))
    assert bob.lines() == [SLOWED]
    assert alice.lines() == [said("bob", f"m{i}") for i in range(3)]
    assert bob.transport.producerState == "paused"
    for i in range(3, 8):
        server.clock.advance(0.99)
        assert alice.lines() == []
        server.clock.advance(0.01)
        assert alice.lines() == [said("bob", f"m{i}")]
    assert bob.lines() == []
    server.clock.advance(1)
    assert bob.transport.producerState == "producing"
    assert not bob.transport.disconnecting


def test_delayedLinesKeepTheirOrderWithCommands():
    """
    Commands wait in line with messages: a /ping sent after a flood is
    answered only after every line before it was handled.
    """
    server = MemoryServer(limits=Limits(floodRate=10, floodBurst=2))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    bob.sendBytes(b"a\nb\nc\n/ping done\n")
    assert alice.lines() == [said("bob", "a"), said("bob", "b")]
    assert bob.lines() == [SLOWED]
    server.clock.pump([0.1] * 10)
    assert alice.lines() == [said("bob", "c")]
    assert bob.lines() == ["=== pong done"]


def test_floodersOthersAreNotSlowed():
    """
    While one member is delayed, another's lines go straight through.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3))
    alice, bob, carol = (server.connect(n) for n in ("alice", "bob", "carol"))
    alice.lines(), bob.lines()
    server.clock.advance(10)
    bob.sendBytes(b"".join(b"m%d\n" % i for i in range(10)))
    alice.lines()
    carol.send("hello")
    assert alice.lines() == [said("carol", "hello")]


def test_unreadInputOverTheBoundTooLongCloses():
    """
    A peer that keeps more unread input than --recv-queue for longer than
    --recv-queue-time is closed with its reason; the others see it quit.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3, recvQueueBytes=1024,
                                        recvQueueTime=5))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    bob.sendBytes(b"".join(b"line %04d\n" % i for i in range(300)))
    server.clock.pump([0.5] * 10)
    assert not bob.transport.disconnecting
    server.clock.pump([0.5] * 2)
    assert bob.lines()[-1] == ("-!- Closing your connection: Excess Flood: more than "
                               "1024 bytes unread for 5 seconds")
    assert alice.lines()[-1] == ("-- #lobby bob has quit (Excess Flood: more than "
                                 "1024 bytes unread for 5 seconds)")
    assert server.gate.connections == {alice.proto.conn}
    assert server.gate.fromAddress("127.0.0.1") == 1


def test_shortLinesCountAsLinesAgainstTheBound():
    """
    Waiting lines count as at least 64 bytes each: a peer that sends
    thousands of tiny lines and closes does not go on talking (and holding
    its nickname) for as long as they take at the flood rate; it is closed
    as any flood over the bound is.
    """
    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=3, recvQueueBytes=1024,
                                        recvQueueTime=5))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    bob.sendBytes(b"x\n" * 300)
    bob.proto.readConnectionLost()
    server.clock.pump([0.5] * 12)
    assert alice.lines()[-1] == ("-- #lobby bob has quit (Excess Flood: more than "
                                 "1024 bytes unread for 5 seconds)")
    assert server.core.user("bob") is None


def test_unreadInputThatDrainsInTimeIsKept():
    """
    A paste over the bound that drains below it within --recv-queue-time is
    handled whole: nothing is lost and the sender stays.
    """
    server = MemoryServer(limits=Limits(floodRate=100, floodBurst=3, recvQueueBytes=1024,
                                        recvQueueTime=5))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    server.clock.advance(10)
    bob.sendBytes(b"".join(b"line %04d\n" % i for i in range(200)))
    server.clock.pump([0.01] * 300)
    assert alice.lines() == [said("bob", "line %04d" % i) for i in range(200)]
    assert not bob.transport.disconnecting


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
    assert len(server.gate.connections) == 1
    carol = server.connect("carol")
    assert carol.proto.conn in server.gate.connections
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
    assert other.proto.conn in server.gate.connections
    assert server.gate.fromAddress("10.0.0.1") == 2
    a1.transport.loseConnection()
    a1.transport.loseConnection()
    assert server.gate.fromAddress("10.0.0.1") == 1
    again = server.connect("a3", host="10.0.0.1")
    assert again.proto.conn in server.gate.connections
    assert server.gate.fromAddress("10.0.0.1") == 2
    assert len(server.gate.connections) == 3
    assert a2.proto.conn in server.gate.connections


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
        "-!- Closing your connection: not logged in within 30 seconds"]
    assert server.gate.connections == {alice.proto.conn}
    server.clock.advance(1000)
    assert server.gate.connections == {alice.proto.conn}
    assert not server.clock.getDelayedCalls()


def test_loginTimeoutAfterAnAnswer():
    """
    The login timeout stops while the server checks a password and starts
    over once it answers; not at all when a reload has turned it off
    (--login-timeout 0) meanwhile.
    """
    server = MemoryServer(limits=Limits(loginTimeout=30))
    waiting, turnedOff = server.connect(), server.connect()
    for client in (waiting, turnedOff):
        client.lines()
        client.proto.conn.awaitServer()
    server.clock.advance(100)
    assert server.gate.connections == {waiting.proto.conn, turnedOff.proto.conn}
    waiting.proto.conn.serverAnswered()
    server.gate.setLimits(Limits(loginTimeout=0))
    turnedOff.proto.conn.serverAnswered()
    server.clock.advance(29.9)
    assert server.gate.connections == {waiting.proto.conn, turnedOff.proto.conn}
    server.clock.advance(0.1)
    assert waiting.lines() == [
        "-!- Closing your connection: not logged in within 30 seconds"]
    server.clock.advance(1000)
    assert server.gate.connections == {turnedOff.proto.conn}


def test_loginTimeoutWaitsForEveryCheck():
    """
    With two checks in flight (an IRC client's PASS and SASL), the login
    timeout starts over only once both are answered.
    """
    server = MemoryServer(limits=Limits(loginTimeout=30))
    client = server.connect()
    conn = client.proto.conn
    first, second = Deferred(), Deferred()
    conn.checking(first)
    conn.checking(second)
    first.callback(None)
    server.clock.advance(100)
    assert conn in server.gate.connections
    second.callback(None)
    server.clock.advance(29.9)
    assert conn in server.gate.connections
    server.clock.advance(0.1)
    assert conn not in server.gate.connections


def test_closeTimeoutCutsOffAConnectionThatDoesNotGo():
    """
    A connection being closed whose transport does not go (a peer that never
    reads its last lines, a TLS handshake that never completes) is cut off
    --close-timeout seconds later, 10 by default.
    """
    for limits, timeout in ((Limits(loginTimeout=30), 10), (Limits(loginTimeout=30,
                                                                  closeTimeout=2), 2)):
        server = MemoryServer(limits=limits)
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        proto = server.factory.buildProtocol(address)
        # Unlike the memory clients' transport, this one never goes by itself.
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        server.clock.advance(30)
        assert transport.disconnecting and not transport.disconnected
        server.clock.advance(timeout - 0.1)
        assert not transport.disconnected
        server.clock.advance(0.1)
        assert transport.disconnected


def test_idleTimeoutOffByDefault():
    """
    By default a silent user is never disconnected.
    """
    server = MemoryServer()
    alice = server.connect("alice")
    server.clock.advance(10 ** 7)
    assert alice.proto.conn in server.gate.connections
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
    assert server.gate.connections == {alice.proto.conn}
    server.clock.advance(100)
    assert server.gate.connections == set()
    assert not server.clock.getDelayedCalls()


def test_burstOverSendQueueForgivenWhenDrained():
    """
    A reader pushed past --send-queue by one burst (here to nearly twice
    it), whose transport then drains, is kept and gets everything; one whose
    backlog stays over the limit for --send-queue-grace seconds is dropped,
    and only it.
    """
    server = MemoryServer(limits=Limits(sendQueueBytes=4096, sendQueueGrace=2,
                                        floodBurst=1000))
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    alice.lines(), bob.lines()
    paste = [f"line {i} " + "p" * 100 for i in range(60)]
    bob.proto.conn.outbox.pauseProducing()
    carol.proto.conn.outbox.pauseProducing()
    for line in paste:
        alice.send(line)
    assert bob.proto.conn.outbox.pending > 4096
    bob.proto.conn.outbox.resumeProducing()
    server.clock.advance(1)
    alice.send("one more")
    bob.proto.conn.outbox.pauseProducing()
    server.clock.advance(1)
    alice.send("and another")
    assert carol.transport.disconnected
    assert not bob.transport.disconnected
    assert bob.lines() == [said("alice", line) for line in paste + ["one more"]]
    assert alice.lines() == ["-- #lobby carol has quit (send queue exceeded)"]


def test_sendQueueHardCeiling():
    """
    However long the grace, a backlog of more than twice --send-queue
    drops its reader at once, so its memory stays bounded.
    """
    server = MemoryServer(limits=Limits(sendQueueBytes=4096, sendQueueGrace=60,
                                        floodBurst=1000))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    bob.proto.conn.outbox.pauseProducing()
    for i in range(200):
        alice.send(f"line {i} " + "p" * 100)
        assert bob.proto.conn.outbox.pending <= 2 * 4096
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
    config.parseOptions(["--flood-rate", "0.5", "--flood-burst", "12", "--recv-queue", "8192",
                         "--recv-queue-time", "7",
                         "--max-connections", "5000", "--max-per-address", "9",
                         "--login-timeout", "0", "--idle-timeout", "600",
                         "--send-queue", "65536", "--send-queue-grace", "2",
                         "--max-rooms", "3", "--close-timeout", "1.5"])
    assert config.limits() == Limits(
        sendQueueBytes=65536, sendQueueGrace=2, floodRate=0.5, floodBurst=12,
        recvQueueBytes=8192, recvQueueTime=7,
        maxConnections=5000, maxPerAddress=9, maxRooms=3, loginTimeout=0, idleTimeout=600,
        closeTimeout=1.5)
    for bad in (["--flood-rate", "0"], ["--max-connections", "0"],
                ["--max-per-address", "-1"], ["--idle-timeout", "-5"],
                ["--close-timeout", "0"]):
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
    server.gate.shutDown()
    for client in (alice, bob):
        assert client.lines() == ["-!- The server is going down. Goodbye."]
    assert server.gate.connections == set()


def test_telnetNegotiationAndEndlessLinesArePacedLikeLines():
    """
    A stream of telnet negotiation (each asking for an answer) or one line
    that never ends is paced like a flood of lines: reading from it pauses
    (so what it keeps sending waits in the kernel, where --recv-queue counts
    it), and the others are not held up.
    """
    limits = Limits(floodRate=5, floodBurst=20, recvQueueBytes=1024, recvQueueTime=5)
    server = MemoryServer(limits=limits)
    alice, negotiator, endless = (server.connect(n) for n in ("alice", "neg", "endless"))
    server.clock.advance(10)
    negotiator.sendBytes(bytes([255, 253, 1]) * 100)
    assert negotiator.transport.producerState == "paused"
    endless.sendBytes(b"x" * 5000)
    for _ in range(25):
        endless.sendBytes(b"x" * 5000)
    assert endless.transport.producerState == "paused"
    alice.lines()
    alice.send("/ping still here")
    assert alice.lines() == ["=== pong still here"]


def test_perAddressLimitsCountAnAddressGroup():
    """
    An attacker who picks its source address gains nothing: every loopback
    address (127.x.y.z, ::1) counts as one, and so does an IPv6 /64; other
    IPv4 addresses count apart.
    """
    from chatd.core.bans import addressGroup
    from chatd.edge.limits import ConnectionCounter

    assert addressGroup("127.0.0.2") == addressGroup("127.9.9.9") == addressGroup("::1")
    assert addressGroup("2001:db8::1") == addressGroup("2001:db8::ffff:1") != addressGroup(
        "2001:db8:0:1::1")
    assert addressGroup("198.51.100.1") != addressGroup("198.51.100.2")
    counter = ConnectionCounter(100, 2)
    assert counter.admit("127.0.0.2") is None
    assert counter.admit("127.0.0.3") is None
    assert counter.admit("127.0.0.4") == (
        "too many connections from 127.0.0.4 (counted with all of loopback)")
    counter.release("127.0.0.2")
    assert counter.admit("::1") is None


def test_addressAnswersKeptBounded():
    """
    The parsed answers for addresses are kept for the last
    L{chatd.core.bans.ADDRESSES_KEPT} addresses only: connections from ever
    more addresses cannot grow them.  And they are the answers: the limits
    count the same after an address is no longer kept as before.
    """
    from chatd.core import bans
    from chatd.edge.limits import ConnectionCounter

    counter = ConnectionCounter(10 ** 6, 1)
    for i in range(1, bans.ADDRESSES_KEPT * 3):
        address = f"2001:db8:{i:x}::1"
        assert counter.admit(address) is None
        assert bans.addressGroup(address) == f"2001:db8:{i:x}::/64"
        assert bans._addressKey(address.upper()) == address
    assert bans.addressGroup.cache_info().currsize <= bans.ADDRESSES_KEPT
    assert bans._addressKey.cache_info().currsize <= bans.ADDRESSES_KEPT
    # The first group, long since no longer kept, still counts its one.
    assert counter.admit("2001:db8:1::2") == (
        "too many connections from 2001:db8:1::2 (counted with all of 2001:db8:1::/64)")

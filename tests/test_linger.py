"""
A connection lost while lines it sent wait for flood pacing: those lines are
still said, at the pace, then its user quits with the loss's reason; nothing
more is written to it, and the gate forgets it only then.  Over in-memory
transports and a L{Clock}, for the line protocol and IRC (the web's in
tests/test_web_protocol.py).
"""

import pytest
from twisted.internet import error
from twisted.python.failure import Failure

from chatd.edge.limits import Limits
from ircsupport import IrcMemoryServer
from support import MemoryAccounts, MemoryServer

PACED = Limits(floodRate=1, floodBurst=3)
SENDER = "192.0.2.7"


def said(nick, text, room="#lobby"):
    return f"{room} <{nick}> {text}"


def breaks(client, reason=error.ConnectionLost):
    """
    The peer's connection breaks as a TCP one does: the transport is gone,
    then its protocol is told.
    """
    client.transport.connected = False
    client.transport.clear()
    client.proto.connectionLost(Failure(reason()))


def pasted(server, sender, count):
    """
    C{sender} (rested: its whole burst) pastes C{count} lines "m0"...
    """
    server.clock.advance(10)
    sender.sendBytes(b"".join(b"m%d\n" % i for i in range(count)))


@pytest.mark.parametrize("reason, why", [(error.ConnectionLost, "connection lost"),
                                         (error.ConnectionDone, "connection closed")])
def test_linesWaitingAreSaidAtThePaceThenTheUserQuits(reason, why):
    """
    Every line read before the loss is said once, in order, one per 1/rate
    seconds; then the user quits with the loss's reason, and only then does
    the gate forget the connection.  Nothing is written to it after the loss.
    """
    server = MemoryServer(limits=PACED)
    alice, bob = server.connect("alice", host=SENDER), server.connect("bob")
    alice.lines()
    pasted(server, alice, 6)
    assert bob.lines() == [said("alice", f"m{i}") for i in range(3)]
    breaks(alice, reason)
    assert server.gate.fromAddress(SENDER) == 1
    for i in range(3, 6):
        server.clock.advance(0.99)
        assert bob.lines() == []
        server.clock.advance(0.01)
        end = [f"-- #lobby alice has quit ({why})"] if i == 5 else []
        assert bob.lines() == [said("alice", f"m{i}")] + end
    assert server.gate.fromAddress(SENDER) == 0
    assert server.gate.connections == {bob.proto.conn}
    assert alice.transport.value() == b""
    server.clock.advance(10)
    assert bob.lines() == []


def test_aLossWithNothingWaitingQuitsAtOnce():
    """
    A connection lost with no line waiting is let go at once, as before.
    """
    server = MemoryServer(limits=PACED)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    pasted(server, alice, 3)
    breaks(alice)
    assert bob.lines() == [said("alice", f"m{i}") for i in range(3)] + [
        "-- #lobby alice has quit (connection lost)"]
    assert server.gate.connections == {bob.proto.conn}


def test_aResetSkipsNoPacing():
    """
    A paste ended by a reset is no faster than one that stays: the lines
    after the burst still come one per 1/rate seconds.
    """
    server = MemoryServer(limits=PACED)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    pasted(server, alice, 50)
    breaks(alice)
    assert len(bob.lines()) == 3
    server.clock.advance(0.5)
    assert bob.lines() == []
    server.clock.pump([0.5] * 20)
    assert bob.lines() == [said("alice", f"m{i}") for i in range(3, 13)]
    assert alice.proto.conn in server.gate.connections


def test_ircLinesWaitingAreSaid():
    """
    IRC's input is paced by the same machinery: its lines are said too, and
    its user shown under the same prefix (their own username) to the end.
    """
    server = IrcMemoryServer(limits=PACED)
    alice = server.connectIrc("alice", host=SENDER, username="al")
    alice.send("JOIN #lobby")
    bob, watcher = server.connect("bob"), server.connectIrc("watcher")
    watcher.send("JOIN #lobby")
    alice.lines(), bob.lines(), watcher.lines()
    server.clock.advance(10)
    alice.sendBytes(b"".join(b"PRIVMSG #lobby :m%d\r\n" % i for i in range(5)))
    assert watcher.lines() == [f":alice!~al@chatd PRIVMSG #lobby m{i}" for i in range(3)]
    breaks(alice)
    server.clock.pump([1, 1])
    assert bob.lines() == [said("alice", f"m{i}") for i in range(5)] + [
        "-- #lobby alice has quit (connection lost)"]
    assert watcher.lines() == [f":alice!~al@chatd PRIVMSG #lobby m{i}" for i in (3, 4)] + [
        ":alice!~al@chatd QUIT :connection lost"]
    assert server.gate.fromAddress(SENDER) == 0


def test_shutdownLetsALingeringUserGo():
    """
    A shutdown does not wait for a lingering user's lines: they quit with
    the others at once, their lines unsaid, and the shutdown completes.
    """
    server = MemoryServer(limits=PACED)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    pasted(server, alice, 10)
    bob.lines()
    breaks(alice)
    done = server.gate.shutDown()
    assert done.called
    assert bob.lines() == ["-!- The server is going down. Goodbye."]
    server.clock.advance(10)
    assert bob.lines() == []
    assert server.gate.connections == set()


def operator(server):
    boss = server.connect()
    boss.send("/nick boss boss-password")
    boss.lines()
    return boss


def trusted():
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    return MemoryServer(accounts=accounts, operators=["boss"], limits=PACED)


def lingeringBeforeOperator(count):
    """
    alice pastes C{count} lines and her connection breaks while they wait,
    before bob and the operator boss, in one trusted server.
    """
    server = trusted()
    alice, bob = server.connect("alice", host=SENDER), server.connect("bob")
    boss = operator(server)
    alice.lines(), bob.lines()
    pasted(server, alice, count)
    breaks(alice)
    bob.lines()
    return server, bob, boss


def test_aBanPutsALingeringUserOutAtOnce():
    """
    A lingering user banned is gone at once: none of their lines left is
    said after the ban, and the gate forgets them.
    """
    server, bob, boss = lingeringBeforeOperator(10)
    boss.send("/ban alice spam")
    assert bob.lines() == ["-- #lobby boss banned alice from the server (spam)",
                           "-- #lobby alice has quit (banned)"]
    server.clock.advance(20)
    assert bob.lines() == []
    assert server.gate.fromAddress(SENDER) == 0


def test_aKickedLingeringUserSaysNothingMoreInTheRoom():
    """
    A lingering user kicked from a room says nothing more there; they quit
    once their lines are handled.
    """
    server, bob, boss = lingeringBeforeOperator(5)
    boss.send("/kick alice spam")
    assert bob.lines() == ["-- #lobby alice was kicked by boss (spam)"]
    server.clock.advance(1)
    assert server.gate.fromAddress(SENDER) == 1
    server.clock.advance(1)
    assert bob.lines() == []
    assert server.gate.fromAddress(SENDER) == 0

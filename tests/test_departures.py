"""
Departures announced together (chatd.core.departures): the parts and quits
of a turn reach each member left once, in the order they happened, after
everything the departing said and their arrival, and before anything else
that happens in the room or to their nickname.
"""

import pytest
from twisted.internet.task import Clock

from chatd.core import events
from chatd.core.chat import ChatCore, User
from chatd.core.fanout import Fanout
from chatd.irc.wire import IrcWire
from chatd.line.wire import parseLine
from chatd.web.wire import WebWire
from ircsupport import IrcMemoryServer
from support import EventWire, Inbox, MemoryServer


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def core(clock):
    return ChatCore(Fanout(clock), clock)


def arrive(core, clock, *nicks):
    """
    Connect users under C{nicks}, let their arrivals be announced, and empty
    every inbox.
    """
    users = [User(Inbox(), EventWire) for _ in nicks]
    for user, nick in zip(users, nicks):
        core.claimNick(user, nick)
    clock.advance(0)
    for user in core.users.values():
        user.outbox.take()
    return users


def told(user):
    """
    What C{user} was told of the rooms' comings and goings and lines.
    """
    return [e for e in user.outbox.take()
            if isinstance(e, (events.Departed, events.Parted, events.Quit, events.Joined,
                              events.Arrived, events.Said, events.Renamed))]


def inLobbyAndDev(core, clock):
    """
    Alice and Bob, settled in the lobby and #dev, with nothing left to read.
    """
    alice, bob = arrive(core, clock, "alice", "bob")
    for user in (alice, bob):
        core.join(user, "#dev")
    clock.advance(0)
    told(alice)
    return alice, bob


def quits(room, *nicks, reason="gone"):
    return tuple(events.Quit(room, nick, reason) for nick in nicks)


def test_aTurnsQuitsAreOneAnnouncement(core, clock):
    """
    Quits in one turn reach each member left once, together, in the order
    they happened, when the turn ends; the next turn's are another
    announcement.
    """
    alice, bob, carol, dave, erin = arrive(core, clock, "alice", "bob", "carol", "dave",
                                           "erin")
    for user in (bob, dave, carol):
        core.disconnect(user, "gone")
    assert told(alice) == told(erin) == []
    clock.advance(0)
    batch = events.Departed("#lobby", quits("#lobby", "bob", "dave", "carol"), 1)
    assert told(alice) == [batch]
    assert told(erin) == [batch]
    core.disconnect(erin, "later")
    clock.advance(0)
    assert told(alice) == [events.Departed("#lobby", quits("#lobby", "erin",
                                                             reason="later"), 2)]


def test_partsAndQuitsTogetherInOrder(core, clock):
    """
    Parts and quits of one turn are one announcement per room, in order;
    the parter is confirmed at once, and not told of the others.
    """
    alice, bob, carol = arrive(core, clock, "alice", "bob", "carol")
    core.part(bob, "#lobby", "bye")
    core.disconnect(carol, "gone")
    clock.advance(0)
    assert told(alice) == [events.Departed(
        "#lobby", (events.Parted("#lobby", "bob", "bye"),
                   events.Quit("#lobby", "carol", "gone")), 1)]
    assert told(bob) == []


def test_aLineAfterADepartureComesAfterIt(core, clock):
    """
    Anything else that happens in the room announces the departures
    waiting first: a member never hears of a line said after someone left
    before hearing that they left.
    """
    alice, bob, carol = arrive(core, clock, "alice", "bob", "carol")
    core.disconnect(carol, "gone")
    core.say(bob, "#lobby", "she left")
    [departed, said] = told(alice)
    assert departed == events.Departed("#lobby", quits("#lobby", "carol"), 1)
    assert (said.nick, said.text) == ("bob", "she left")
    clock.advance(0)
    assert told(alice) == []


def test_theDepartingSaidEverythingBefore(core, clock):
    """
    What someone says before leaving reaches the others before their
    departure, however late in the turn they leave.
    """
    alice, bob = arrive(core, clock, "alice", "bob")
    core.say(bob, "#lobby", "bye all")
    core.disconnect(bob, "gone")
    clock.advance(0)
    [said, departed] = told(alice)
    assert said.text == "bye all"
    assert departed == events.Departed("#lobby", quits("#lobby", "bob"), 1)


def test_aNewcomerIsNotToldOfThoseWhoLeftBefore(core, clock):
    """
    The members are told of departures before a newcomer arrives, and the
    newcomer never: they were not there to see them go.
    """
    alice, bob = arrive(core, clock, "alice", "bob")
    core.disconnect(bob, "gone")
    carol = User(Inbox(), EventWire)
    core.claimNick(carol, "carol")
    assert told(alice) == [events.Departed("#lobby", quits("#lobby", "bob"), 1)]
    clock.advance(0)
    assert told(alice) == [events.Joined("#lobby", "carol")]
    assert told(carol) == []


def test_aNicknameTakenAfterItsHolderLeft(core, clock):
    """
    Someone taking the nickname of someone whose quit is still waiting is
    shown after it, in every room: an IRC client that kept the QUIT of the
    old holder until after the new one's arrival elsewhere would drop the
    newcomer from every channel.
    """
    alice, bob = inLobbyAndDev(core, clock)
    core.disconnect(bob, "gone")
    newBob = User(Inbox(), EventWire)
    core.claimNick(newBob, "BOB", lobby=False)
    assert told(alice) == [events.Departed("#lobby", quits("#lobby", "bob"), 1),
                           events.Departed("#dev", quits("#dev", "bob"), 1)]
    core.join(newBob, "#dev")
    clock.advance(0)
    assert told(alice) == [events.Joined("#dev", "BOB")]


def test_aRenameAfterAPart(core, clock):
    """
    A user who parted one room and is renamed is shown leaving it under
    their old name before anyone sees the new one.
    """
    alice, bob = inLobbyAndDev(core, clock)
    core.part(bob, "#dev")
    core.rename(bob, "robert")
    assert told(alice) == [
        events.Departed("#dev", (events.Parted("#dev", "bob", ""),), 1),
        events.Renamed("#lobby", "bob", "robert")]


def test_arrivingAndLeavingInOneWindow(core, clock):
    """
    Someone who arrives in a big room's window and leaves before it ends is
    shown arriving, then leaving: both, in order.
    """
    core.fanout.arrivals.bigRoom = 3
    alice, bob, carol = arrive(core, clock, "alice", "bob", "carol")
    clock.advance(1)
    dave = User(Inbox(), EventWire)
    core.claimNick(dave, "dave")
    clock.advance(0)
    told(alice)
    # The window is open: erin's arrival waits for it, her quit for the turn.
    erin = User(Inbox(), EventWire)
    core.claimNick(erin, "erin")
    clock.advance(0)
    assert told(alice) == []
    core.disconnect(erin, "gone")
    clock.advance(0)
    assert told(alice) == [events.Joined("#lobby", "erin"),
                           events.Departed("#lobby", quits("#lobby", "erin"), 1)]


def test_aMemberWhoLeavesTooIsNotTold(core, clock):
    """
    A member who leaves in the same turn is not told of the departures
    before theirs: they are gone when the turn's are announced.
    """
    alice, bob, carol = arrive(core, clock, "alice", "bob", "carol")
    core.disconnect(bob, "gone")
    core.disconnect(carol, "gone")
    clock.advance(0)
    assert told(carol) == []
    assert told(alice) == [events.Departed("#lobby", quits("#lobby", "bob", "carol"), 1)]


def test_aRecipientDroppedDuringTheAnnouncement(core, clock):
    """
    A member whose delivery of the announcement disconnects them (their
    send queue overflowed) is announced leaving in the next one: never lost.
    """
    alice, bob, carol = arrive(core, clock, "alice", "bob", "carol")

    class Overflowing(Inbox):
        def send(self, event):
            super().send(event)
            if isinstance(event, events.Departed):
                core.disconnect(bob, "send queue exceeded")

    bob.outbox = Overflowing()
    core.disconnect(carol, "gone")
    # (A Clock runs the next turn's call in the same advance.)
    clock.advance(0)
    assert told(alice) == [
        events.Departed("#lobby", quits("#lobby", "carol"), 1),
        events.Departed("#lobby", quits("#lobby", "bob", reason="send queue exceeded"), 2)]


def test_aKickIsToldAtOnce(core, clock):
    """
    A moderator's kick is told at once, after the departures waiting.
    """
    alice, bob, carol, dave = arrive(core, clock, "alice", "bob", "carol", "dave")
    core.join(alice, "#den")
    for user in (bob, carol, dave):
        core.join(user, "#den")
    clock.advance(0)
    told(dave)
    core.part(carol, "#den")
    core.moderation.kick(alice, "#den", "bob", "out")
    assert [e for e in dave.outbox.take() if e.__class__ is not events.Entered] == [
        events.Departed("#den", (events.Parted("#den", "carol", ""),), 1),
        events.Kicked("#den", "bob", "alice", "out")]


def test_withoutAClockEachDepartureIsToldAtOnce():
    """
    A fan-out given no clock (a brokered one orders the cluster's events
    itself) announces each departure as it happens, as before.
    """
    core = ChatCore(Fanout(), Clock())
    alice, bob = (User(Inbox(), EventWire) for _ in range(2))
    core.claimNick(alice, "alice")
    core.claimNick(bob, "bob")
    alice.outbox.take()
    core.disconnect(bob, "gone")
    assert told(alice) == [events.Quit("#lobby", "bob", "gone")]


def test_lineProtocolShowsManyDeparturesAsOneLine():
    """
    On the line protocol up to three departures announced together are one
    line each, with their reasons, as lone ones are; from four on, one
    parseable room event naming the first two and counting the others,
    "quit" when all quit, "left" when some parted, with the reason when
    every one gave the same.
    """
    server = MemoryServer(announceTogether=True)
    alice = server.connect("alice")
    others = [server.connect(f"b{i}", host=f"10.0.0.{i + 1}") for i in range(40)]
    server.clock.advance(0)
    alice.lines()
    others[0].send("/quit off")
    others[1].send("/part #lobby bye")
    others[2].transport.loseConnection()
    server.clock.advance(0)
    assert alice.lines() == ["-- #lobby b0 has quit (Quit: off)", "-- #lobby b1 has left (bye)",
                             "-- #lobby b2 has quit (connection closed)"]
    for other in others[3:20]:
        other.transport.loseConnection()
    server.clock.advance(0)
    lines = alice.lines()
    assert lines == ["-- #lobby b3, b4 and 15 others have quit (connection closed)"]
    parsed = parseLine(lines[0])
    assert (parsed.kind, parsed.room) == ("event", "#lobby")
    others[20].send("/quit off")
    for other in others[21:24]:
        other.send("/part #lobby")
    server.clock.advance(0)
    assert alice.lines() == ["-- #lobby b20, b21 and 2 others have left"]


def ircRooms(rooms):
    """
    An IRC server whose IRC users are in C{rooms} (a dict: room -> the
    nicknames in it), settled, with nothing left to read.

    @return: the server, and each user's client by nickname.
    """
    server = IrcMemoryServer(announceTogether=True)
    clients = {}
    for room, nicks in rooms.items():
        for nick in nicks.split():
            if nick not in clients:
                clients[nick] = server.connectIrc(nick)
            clients[nick].send(f"JOIN {room}")
    server.clock.advance(0)
    for client in clients.values():
        client.lines()
    return server, clients


def test_ircTellsEachQuitOnceAcrossRooms():
    """
    IRC clients get one PART or QUIT per departure, in order, written
    together; a quit once however many of the announced rooms they share
    with the quitter.
    """
    server, users = ircRooms({"#a": "alice bob carol dave", "#b": "alice bob dave"})
    alice, bob, carol, dave = (users[nick] for nick in ("alice", "bob", "carol", "dave"))
    dave.send("PART #b :bye")
    bob.send("QUIT :off")
    carol.send("QUIT :off too")
    assert alice.lines() == []
    server.clock.advance(0)
    # #b's departures first (dave's part came first), then #a's, less the
    # QUIT told for #b already.
    assert alice.lines() == [":dave!~dave@chatd PART #b bye",
                             ":bob!~bob@chatd QUIT :Quit: off",
                             ":carol!~carol@chatd QUIT :Quit: off too"]


def test_aPartIsToldBeforeTheQuitAfterIt():
    """
    Someone who parts a room and then quits, in a turn in which another
    room's departures came first, is told parting before quitting: an IRC
    client drops a user at their QUIT, and a PART after it would come from
    nobody it knows.
    """
    server, users = ircRooms({"#a": "alice vic walt", "#b": "alice vic"})
    alice, vic, walt = (users[nick] for nick in ("alice", "vic", "walt"))
    walt.send("QUIT :first")
    vic.send("PART #b :bye")
    vic.send("QUIT :gone")
    server.clock.advance(0)
    assert alice.lines() == [":walt!~walt@chatd QUIT :Quit: first",
                             ":vic!~vic@chatd PART #b bye",
                             ":vic!~vic@chatd QUIT :Quit: gone"]


def test_ircAndWebShowEachDeparture():
    """
    A batch is what each departure would show alone, one after the other:
    IRC lines, web frames.
    """
    batch = events.Departed("#lobby", (events.Parted("#lobby", "ann", "bye"),
                                       events.Quit("#lobby", "bob", "off")), 3)
    alone = [events.Parted("#lobby", "ann", "bye"), events.Quit("#lobby", "bob", "off")]
    wire = IrcWire()
    assert bytes(wire.encode(batch)) == b"".join(bytes(wire.encode(e)) for e in alone)
    assert WebWire.encode(batch) == b"".join(WebWire.encode(e) for e in alone)


def test_ircTellsAQuitOnceAcrossThreeRooms():
    """
    A quit told for two rooms with another room's departures between them
    still reaches an IRC client sharing all three once.
    """
    server, users = ircRooms({"#a": "alice bob carol", "#b": "alice dave", "#c": "alice bob"})
    alice, bob, carol, dave = (users[nick] for nick in ("alice", "bob", "carol", "dave"))
    carol.send("PART #a")
    dave.send("PART #b")
    bob.send("QUIT :off")
    server.clock.advance(0)
    # #a's (carol's part, bob's quit), #b's (dave's part), #c's (bob's quit,
    # told already).
    assert alice.lines() == [":carol!~carol@chatd PART #a", ":bob!~bob@chatd QUIT :Quit: off",
                             ":dave!~dave@chatd PART #b"]

"""
Arrivals announced together (chatd.core.arrivals): each member is told each
arrival exactly once, alone or with others, and always before anything the
newcomer says or anything else that happens in the room after it.
"""

import pytest
from twisted.internet.task import Clock

from chatd.core import events
from chatd.core.chat import ChatCore, User
from chatd.core.fanout import Fanout
from chatd.line.wire import parseLine
from support import EventWire, Inbox, MemoryServer, OwnEventWire
from trustsupport import Trust, clear as clearPeople


@pytest.fixture
def clock():
    clock = Clock()
    clock.advance(1000)
    return clock


@pytest.fixture
def core(clock):
    core = ChatCore(Fanout(clock), clock)
    # A room of 3 or more counts as big here, so that small tests show it.
    core.fanout.arrivals.bigRoom = 3
    return core


def arrive(core, nick):
    """
    Connect a user and claim C{nick} (announced when the clock says so).
    """
    user = User(Inbox(), EventWire)
    core.claimNick(user, nick)
    return user


def settled(clock, *users):
    """
    Let the current turn and any window end, and empty the users' inboxes.
    """
    clock.advance(0)
    clock.advance(1)
    for user in users:
        user.outbox.take()


def clear(*users):
    for user in users:
        user.outbox.take()


def received(user, kinds=(events.Joined, events.Arrived, events.Said, events.Quit,
                          events.Renamed, events.Parted)):
    """
    What C{user} was told about the room, leaving out their own replies.
    """
    return [e for e in user.outbox.take() if isinstance(e, kinds)]



def windowOpen(core, clock):
    """
    Alice, Bob and Carol settled in the lobby, and Dave announced to them at
    the end of a turn, which opens the room's window: the next arrivals
    wait for it.

    @return: alice, bob and carol, with nothing left to read.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    settled(clock, alice, bob, carol)
    arrive(core, "dave")
    clock.advance(0)
    clear(alice, bob, carol)
    return alice, bob, carol


def test_oneTurnsArrivalsAreOneAnnouncement(core, clock):
    """
    Arrivals in one reactor turn reach the members already there as one
    announcement, at the end of the turn; a newcomer of that turn is told
    only those after them (the others were among the members it was shown).
    """
    alice = arrive(core, "alice")
    settled(clock, alice)
    bob, carol, dave = (arrive(core, n) for n in ["bob", "carol", "dave"])
    assert received(alice) == []
    assert [e.members for e in dave.outbox.events if isinstance(e, events.Entered)] == [
        ("alice", "bob", "carol", "dave")]
    clock.advance(0)
    [toAlice] = received(alice)
    assert toAlice == events.Arrived("#lobby", ("bob", "carol", "dave"))
    # Bob is told the batch from the arrival after his on: the same tuple
    # as Alice's, so that each wire makes its lines once.
    [toBob] = received(bob)
    assert toBob == events.Arrived("#lobby", ("bob", "carol", "dave"), since=1)
    assert toBob.nicks is toAlice.nicks
    assert received(carol) == [events.Joined("#lobby", "dave")]
    assert received(dave) == []
    clock.advance(10)
    assert [received(u) for u in (alice, bob, carol, dave)] == [[], [], [], []]


def test_aSmallRoomAnnouncesEveryTurn(core, clock):
    """
    Below the big-room size, every turn's arrivals are announced at its end:
    no window holds them.
    """
    core.fanout.arrivals.bigRoom = 10
    alice = arrive(core, "alice")
    settled(clock, alice)
    for nick in ["bob", "carol", "dave"]:
        arrive(core, nick)
        clock.advance(0)
        assert received(alice) == [events.Joined("#lobby", nick)]


def test_aBigRoomAnnouncesOncePerWindow(core, clock):
    """
    In a big room the arrivals that follow an announcement wait for the
    window to end, and are then announced together; a window without
    arrivals makes the room quiet again, so the next one is told at once.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    settled(clock, alice, bob, carol)
    dave = arrive(core, "dave")
    clock.advance(0)
    assert received(alice) == [events.Joined("#lobby", "dave")]
    clear(bob, carol, dave)
    erin = arrive(core, "erin")
    clock.advance(0.2)
    frank = arrive(core, "frank")
    clock.advance(0.29)
    assert received(alice) == []
    clock.advance(0.01)
    announced = [events.Arrived("#lobby", ("erin", "frank"))]
    assert [received(u) for u in (alice, bob, carol, dave)] == [announced] * 4
    assert received(erin) == [events.Joined("#lobby", "frank")]
    assert received(frank) == []
    # The window that follows is a long one (see the next test).
    clock.advance(2)
    arrive(core, "gina")
    clock.advance(0)
    assert received(alice) == [events.Joined("#lobby", "gina")]


def test_aBigRoomAnnouncesLessOftenWhileArrivalsKeepComing(core, clock):
    """
    In a big room, once a window has ended with arrivals, they keep coming:
    the next window is the long one, and so are those after it while each
    ends with arrivals.  One without arrivals makes the room quiet again.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    settled(clock, alice, bob, carol)
    arrive(core, "dave")
    clock.advance(0)
    assert received(alice) == [events.Joined("#lobby", "dave")]
    arrive(core, "erin")
    clock.advance(0.5)
    assert received(alice) == [events.Joined("#lobby", "erin")]
    for window in range(2):
        nicks = [f"f{window}", f"g{window}"]
        for nick in nicks:
            arrive(core, nick)
            clock.advance(0.5)
        clock.advance(0.99)
        assert received(alice) == []
        clock.advance(0.01)
        assert received(alice) == [events.Arrived("#lobby", tuple(nicks))]
    # A long window without arrivals: quiet again, and the next is told at
    # the end of its turn.
    clock.advance(2)
    assert received(alice) == []
    arrive(core, "hank")
    clock.advance(0)
    assert received(alice) == [events.Joined("#lobby", "hank")]


def test_aNewcomersLineComesAfterTheirArrival(core, clock):
    """
    Whatever happens in a room (here the newcomer speaking) first announces
    the arrivals waiting there, so no member hears from someone before
    hearing they arrived, and nobody hears an arrival twice.
    """
    alice, bob, carol = windowOpen(core, clock)
    erin = arrive(core, "erin")
    frank = arrive(core, "frank")
    core.say(erin, "#lobby", "hello")
    said = events.Said("#lobby", "erin", "hello", clock.seconds())
    assert received(alice) == [events.Arrived("#lobby", ("erin", "frank")), said]
    assert received(frank) == [said]
    assert received(erin) == [events.Joined("#lobby", "frank")]
    clock.advance(1)
    assert received(alice) == []
    assert received(frank) == []


def test_aDepartureComesAfterTheArrival(core, clock):
    """
    A newcomer who leaves before being announced is announced first, then
    their leaving: the members' view of the room stays whole.
    """
    alice, bob, carol = windowOpen(core, clock)
    erin = arrive(core, "erin")
    core.disconnect(erin, "gone")
    assert received(alice) == [events.Joined("#lobby", "erin")]
    # The departure when the turn ends (chatd.core.departures).
    clock.advance(0)
    assert received(alice, (events.Departed,)) == [
        events.Departed("#lobby", (events.Quit("#lobby", "erin", "gone"),), 1)]
    clock.advance(1)
    assert received(alice) == []


def test_aLeaverHearsOfTheArrivalsWaitingBeforeTheirOwnLeaving(core, clock):
    """
    A member who parts while arrivals wait is told of them before the
    confirmation of their own leaving, not after it, as news from a room
    they are no longer in; a member kicked meanwhile, before the kick.
    """
    alice = arrive(core, "alice")
    bob, carol = (User(Inbox(), OwnEventWire) for _ in range(2))
    core.claimNick(bob, "bob")
    core.claimNick(carol, "carol")
    # Alice creates #dev, and moderates it.
    for user in (alice, bob, carol):
        core.join(user, "#dev")
    settled(clock, alice, bob, carol)
    dave = arrive(core, "dave")
    core.join(dave, "#dev")
    clock.advance(0)
    clear(alice, bob, carol, dave)

    def inDev(user):
        # (Departures are left out: bob's reaches carol before frank's arrival.)
        return [e for e in user.outbox.take() if not isinstance(e, events.Departed)
                and getattr(e[1] if type(e) is tuple else e, "room", None) == "#dev"]

    # #dev's window is open: Erin's arrival waits for it.
    erin = arrive(core, "erin")
    core.join(erin, "#dev")
    core.part(bob, "#dev")
    assert inDev(bob) == [events.Joined("#dev", "erin"), ("own", events.Parted("#dev", "bob", ""))]
    assert inDev(carol) == [events.Joined("#dev", "erin")]
    frank = arrive(core, "frank")
    core.join(frank, "#dev")
    core.moderation.kick(alice, "#dev", "carol")
    assert inDev(carol) == [events.Joined("#dev", "frank"),
                            events.Kicked("#dev", "carol", "alice", ""),
                            events.PutOut("#dev")]
    clock.advance(10)
    assert inDev(bob) == inDev(carol) == []


def test_whoeverTheCoreSendsOffHearsOfTheArrivalsWaitingFirst():
    """
    A holder ghosted by the nickname's owner and a user banned from the
    server are told of the arrivals waiting in their rooms before why they
    are let go, and nothing after it.
    """
    trust = Trust(announceTogether=True)
    trust.core.fanout.arrivals.bigRoom = 3
    op = trust.arrive("op", password="op-password")
    stale = trust.arrive("owner", password="owner-password")
    troll = trust.arrive("troll", host="192.0.2.66")
    # Announced at the end of their turn, which opens the lobby's window.
    trust.clock.advance(0)
    clearPeople(op, stale, troll)
    trust.arrive("erin")
    trust.arrive("owner", password="owner-password")
    assert stale.outbox.take() == [events.Joined("#lobby", "erin"), events.Ghosted("owner")]
    # The troll's other room, #den, with its window open too.
    for person in (op, troll, trust.arrive("gina"), trust.arrive("hal")):
        person.join("#den")
    trust.clock.advance(1)
    clearPeople(troll)
    trust.arrive("frank").join("#den")
    op.ban("#lobby", "troll", 3600, "spam")
    assert troll.outbox.take() == [
        events.Joined("#lobby", "frank"),
        events.Banned("#lobby", "troll", "op", 3600, "spam", True),
        events.Joined("#den", "frank"),
        events.Banned("#den", "troll", "op", 3600, "spam", True),
        events.Expelled("op", 3600, "spam")]
    trust.clock.advance(10)
    assert stale.outbox.take() == troll.outbox.take() == []


def test_aRenameComesAfterTheArrival(core, clock):
    """
    A newcomer renamed before being announced is announced by the name they
    arrived with, then renamed.
    """
    alice, bob, carol = windowOpen(core, clock)
    erin = arrive(core, "erin")
    core.rename(erin, "erin2")
    assert received(alice) == [events.Joined("#lobby", "erin"),
                               events.Renamed("#lobby", "erin", "erin2")]
    clock.advance(1)
    assert received(alice) == []


def test_aMemberRenamedBeforeTheAnnouncementIsStillToldIt(core, clock):
    """
    A member renamed while an arrival waits (a rename puts them last among
    the members, after the newcomer) is still told of it, and the
    newcomer is not told of themselves.
    """
    alice, bob, carol = windowOpen(core, clock)
    erin = arrive(core, "erin")
    clear(erin)
    core.rename(alice, "alicia")
    assert list(core.rooms["#lobby"].members)[-2:] == ["erin", "alicia"]
    assert received(alice) == [events.Joined("#lobby", "erin")]
    assert received(bob) == [events.Joined("#lobby", "erin"),
                             events.Renamed("#lobby", "alice", "alicia")]
    assert received(erin) == [events.Renamed("#lobby", "alice", "alicia")]


def test_aNewcomerWhoCameTwiceIsNotToldOfThemselves(core, clock):
    """
    A newcomer put out silently and back before the announcement (so that
    the newcomers are not the last members in the order they arrived)
    is told only of those after them; the others are told of everyone.
    """
    alice, bob, carol = windowOpen(core, clock)
    lobby = core.rooms["#lobby"]
    erin = arrive(core, "erin")
    core.removeMember(erin, lobby)
    frank = arrive(core, "frank")
    core.join(erin, "#lobby")
    clear(erin, frank)
    clock.advance(2)
    assert received(alice) == [events.Arrived("#lobby", ("erin", "frank", "erin"))]
    assert received(frank) == [events.Joined("#lobby", "erin")]
    assert received(erin) == []


def test_newcomersAloneAreAnnouncedToNobody(core, clock):
    """
    Newcomers alone in a room (as in a lobby left in the same read as it
    was entered) cost no fan-out of their arrival; those who join after
    them are told of them, and they of those, as before.
    """
    fannedOut = []
    toUsers = core.fanout.toUsers
    core.fanout.toUsers = lambda users, event: (fannedOut.append(event),
                                                toUsers(users, event))
    alice = arrive(core, "alice")
    core.part(alice, "#lobby")
    bob, carol = arrive(core, "bob"), arrive(core, "carol")
    clock.advance(0)
    assert fannedOut == []
    assert received(bob) == [events.Joined("#lobby", "carol")]
    dave = arrive(core, "dave")
    clock.advance(0)
    assert fannedOut == [events.Joined("#lobby", "dave")]
    assert received(bob) == received(carol) == [events.Joined("#lobby", "dave")]
    assert received(alice) == received(dave) == []


def test_aNewcomerPutOutSilentlyIsNeverAnnounced(core, clock):
    """
    A newcomer taken out of the room without a word before being announced
    (as a mirror of another daemon's room may be) is not announced later.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    settled(clock, alice, bob, carol)
    erin = arrive(core, "erin")
    core.removeMember(erin, core.rooms["#lobby"])
    clock.advance(0)
    assert received(alice) == []


def test_withoutAClockEachArrivalIsToldAtOnce():
    """
    A fan-out given no clock (a brokered one orders the cluster's events
    itself) announces each arrival as it happens.
    """
    core = ChatCore(Fanout(), Clock())
    alice = arrive(core, "alice")
    alice.outbox.take()
    arrive(core, "bob")
    assert received(alice) == [events.Joined("#lobby", "bob")]


def test_lineProtocolShowsManyArrivalsAsOneLine(clock):
    """
    On the line protocol a few arrivals announced together are one line
    each, as lone ones are; from four on, one parseable room event line
    naming the first two and counting the others.
    """
    server = MemoryServer(announceTogether=True)
    alice = server.connect("alice")
    server.clock.advance(0)
    for nick in ["b1", "b2", "b3"]:
        server.connect(nick)
    server.clock.advance(0)
    assert alice.lines() == ["-- #lobby b1 has joined", "-- #lobby b2 has joined",
                             "-- #lobby b3 has joined"]
    for i in range(30):
        server.connect(f"c{i}")
    server.clock.advance(0)
    lines = alice.lines()
    assert lines == ["-- #lobby c0, c1 and 28 others have joined"]
    parsed = parseLine(lines[0])
    assert (parsed.kind, parsed.room) == ("event", "#lobby")


def crowd(server, count, prefix="m"):
    """
    Log C{count} users in, each from their own address.
    """
    return [server.connect(f"{prefix}{i:03}", host=f"10.0.{i // 200}.{i % 200 + 1}")
            for i in range(count)]


def test_aNewcomerToABigRoomIsToldHowManyNotWho():
    """
    Entering a room of more than a page of members, a newcomer is told how
    many there are and how to list them, not every name; up to a page, every
    name as before.
    """
    server = MemoryServer()
    crowd(server, 99)
    hundredth = server.connect()
    hundredth.lines()
    hundredth.send("m100")
    assert hundredth.lines()[-1].startswith("=== #lobby members (100): m000 m001 ")
    late = server.connect()
    late.lines()
    late.send("m101")
    assert late.lines() == [
        "=== you are now m101", "=== joined #lobby",
        "=== #lobby members (101), too many to list: /who #lobby PAGE shows them 100 at a time"]


def test_whoOfABigRoomIsPaginated():
    """
    /who of a room of more than a page lists a page at a time, sorted, and
    says which page of how many; a small room is listed whole, as before.
    A page past the last is refused, saying how many there are, rather
    than shown empty as if the room were.
    """
    server = MemoryServer()
    members = crowd(server, 250)
    alice = members[0]
    alice.lines()
    alice.send("/who")
    names = [f"m{i:03}" for i in range(250)]
    assert alice.lines() == [f"=== #lobby members (250), page 1 of 3: {' '.join(names[:100])}"]
    alice.send("/who #lobby 3")
    assert alice.lines() == [f"=== #lobby members (250), page 3 of 3: {' '.join(names[200:])}"]
    alice.send("/who 4")
    assert alice.lines() == ["!!! #lobby has 250 members, 3 pages of 100: /who #lobby 1 to 3"]
    alice.send("/who 0")
    assert alice.lines() == [
        "!!! usage: /who [#ROOM] [PAGE], PAGE a number from 1 to 999999999"]
    alice.send("/join #small")
    alice.lines()
    alice.send("/who #small")
    # (Its creator moderates it.)
    assert alice.lines() == ["=== #small members (1): m000", "=== #small moderators: m000"]
    alice.send("/who #small 1")
    assert alice.lines() == ["=== #small members (1), page 1 of 1: m000",
                             "=== #small moderators: m000"]
    alice.send("/who #small 2")
    assert alice.lines() == ["!!! #small has 1 member, 1 page of 100: /who #small 1"]


def test_ircAndWebShowEachArrival():
    """
    IRC has no word for several arrivals: a batch is one JOIN line each, in
    order; the web client gets one joined object each, as for a lone one.
    """
    from chatd.irc.wire import IrcWire
    from chatd.web.wire import WebWire

    batch = events.Arrived("#lobby", ("ann", "bob"))
    assert IrcWire().encode(batch) == (b":ann!~ann@chatd JOIN #lobby\r\n"
                                       b":bob!~bob@chatd JOIN #lobby\r\n")
    assert WebWire.encode(batch) == (WebWire.encode(events.Joined("#lobby", "ann"))
                                     + WebWire.encode(events.Joined("#lobby", "bob")))


def test_eachNewcomerIsShownTheTailOfTheBatch(monkeypatch):
    """
    A newcomer's announcement (the batch from the arrival after theirs on)
    shows exactly those arrivals on every wire format; IRC and the web make
    each arrival's line once a batch, not once per newcomer told it: a batch
    of 300 on IRC used to make 45,000 JOIN lines, a fifth of a second.
    """
    from chatd.irc import wire as ircWire
    from chatd.line.wire import LineWire
    from chatd.web import wire as webWire

    made = []
    monkeypatch.setattr(ircWire, "line", lambda *a, **k: made.append(a) or b"%r\r\n" % (a,))
    monkeypatch.setattr(webWire, "message", lambda o: made.append(o) or b"%r" % (o,))
    irc = ircWire.IrcWire()
    nicks = tuple(f"n{i:03}" for i in range(300))
    for wire in (irc, webWire.WebWire, LineWire):
        lone = [wire.encode(events.Joined("#lobby", nick)) for nick in nicks]
        del made[:]
        tails = [wire.encode(events.Arrived("#lobby", nicks, since))
                 for since in range(len(nicks) - 1)]
        if wire is LineWire:
            # (From four arrivals on, one line that counts them.)
            assert tails[-1] == lone[-2] + lone[-1]
            assert tails[100] == b"-- #lobby n100, n101 and 198 others have joined\r\n"
            continue
        assert tails == [b"".join(lone[since:]) for since in range(len(nicks) - 1)]
        assert len(made) == len(nicks), wire


def test_aNewcomerIsShownTheMembersAsTheyAre(core, clock):
    """
    The member list a newcomer is shown follows every change before it:
    arrivals, departures and renames, in the order of the room's table (the
    order people joined, a renamed member listed anew).
    """
    def shown(user):
        return [e.members for e in user.outbox.take() if isinstance(e, events.Entered)]

    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    assert shown(bob) == [("alice", "bob")]
    core.part(bob, "#lobby")
    carol = arrive(core, "carol")
    assert shown(carol) == [("alice", "carol")]
    core.rename(alice, "ann")
    dave = arrive(core, "dave")
    assert shown(dave) == [("carol", "ann", "dave")]
    core.join(bob, "#lobby")
    assert shown(bob) == [("carol", "ann", "dave", "bob")]


def test_aNewcomerAwayIsAnnouncedBeforeTheirAway(core, clock):
    """
    The members of a room someone away joins are told of the arrival, then
    that the newcomer is away: never of the away of someone not yet there.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.join(alice, "#den")
    settled(clock, alice, bob)
    core.setAway(bob, "lunch")
    clear(alice)
    core.join(bob, "#den")
    assert received(alice, (events.Joined, events.Arrived, events.AwayChanged)) == [
        events.Joined("#den", "bob"), events.AwayChanged("bob", "lunch")]
    clock.advance(1)
    assert received(alice) == []


def test_lineProtocolLineAfterArrivalsComesAfterThem():
    """
    Over the line protocol: in a big room whose window is open, a newcomer's
    line brings out the arrivals waiting (theirs among them) first, as one
    aggregate line; every member gets each arrival once, and nothing more
    when the window ends.
    """
    server = MemoryServer(announceTogether=True)
    members = crowd(server, 12)
    server.clock.advance(0)
    server.clock.advance(1)
    first = members[0]
    first.lines()
    news = crowd(server, 5, prefix="n")
    server.clock.advance(0)
    assert first.lines() == ["-- #lobby n000, n001 and 3 others have joined"]
    # Each newcomer of that batch is told of those after them.
    assert news[0].lines() == ["-- #lobby n001, n002 and 2 others have joined"]
    assert news[3].lines() == ["-- #lobby n004 has joined"]
    assert news[4].lines() == []
    late = crowd(server, 4, prefix="p")
    late[1].send("hello")
    assert first.lines() == ["-- #lobby p000, p001 and 2 others have joined",
                             "#lobby <p001> hello"]
    assert news[0].lines() == ["-- #lobby p000, p001 and 2 others have joined",
                               "#lobby <p001> hello"]
    assert late[0].lines() == ["-- #lobby p001 has joined", "-- #lobby p002 has joined",
                               "-- #lobby p003 has joined", "#lobby <p001> hello"]
    assert late[3].lines() == ["#lobby <p001> hello"]
    server.clock.advance(1)
    assert [c.lines() for c in (first, news[0], late[0], late[3])] == [[], [], [], []]


def test_awayAfterArrivingComesAfterTheArrival(core, clock):
    """
    A newcomer going away before being announced is announced first, then
    away.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    settled(clock, alice, bob, carol)
    arrive(core, "dave")
    clock.advance(0)
    clear(alice, bob, carol)
    erin = arrive(core, "erin")
    core.setAway(erin, "lunch")
    assert received(alice, (events.Joined, events.AwayChanged)) == [
        events.Joined("#lobby", "erin"), events.AwayChanged("erin", "lunch")]
    clock.advance(1)
    assert received(alice) == []

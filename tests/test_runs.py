"""
A room's lines of a turn shared by its members (L{chatd.core.runs}): the
fan-out appends each line once, and each member's outbox writes its share
with the rest of its batch.  Every recipient gets exactly its bytes, in the
order sent, once, whatever else it is sent meanwhile.
"""

from twisted.internet.address import IPv4Address

from chatd.core.fanout import Fanout
from chatd.core.members import Members
from chatd.core.runs import RUN_BYTES, Run
from chatd.edge.outbox import FLUSH_BYTES, FLUSH_SLICE, Coalescer, Outbox
from chatd.web.protocol import WebFactory
from fanoutfakes import Box, Wire
from ircsupport import IrcMemoryServer
from test_coalescing import CountingTransport, Turns
from websupport import Browser

LINE = Wire(b"")


class Room:
    def __init__(self, name):
        self.name = name
        self.members = Members()


class Person:
    """
    A member with a real outbox on its own transport.
    """

    def __init__(self, coalescer, wire=LINE, limit=1 << 20):
        self.wire = wire
        self.transport = CountingTransport()
        self.outbox = Outbox(self.transport, limit, coalescer=coalescer)


class Setting:
    """
    A fan-out, a clocked coalescer and rooms of people, all in memory.
    """

    def __init__(self, people=3, rooms=("#a",)):
        self.clock = Turns()
        self.coalescer = Coalescer(self.clock)
        self.fanout = Fanout()
        self.people = [Person(self.coalescer) for _ in range(people)]
        self.rooms = {name: Room(name) for name in rooms}
        for name in rooms:
            for i, person in enumerate(self.people):
                self.rooms[name].members[i] = person

    def say(self, room, text, actor=None):
        self.fanout.toMembers(self.rooms[room], text.encode(), actor)

    def written(self):
        return [person.transport.value() for person in self.people]


def test_aTurnsLinesReachEachMemberInOneWrite():
    """
    Lines said in one room in one turn reach every member but their sayer,
    in order, in one write each.
    """
    s = Setting(people=3)
    a, b, c = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        s.say("#a", "two", b)
        s.say("#a", "three", a)
        s.say("#a", "four")
    s.clock.turn()
    assert a.transport.writes == [b"two\r\nfour\r\n"]
    assert b.transport.writes == [b"one\r\nthree\r\nfour\r\n"]
    assert c.transport.writes == [b"one\r\ntwo\r\nthree\r\nfour\r\n"]
    # One joined object written to everyone who shared the whole run.
    assert s.fanout.deliveries == 2 + 2 + 2 + 3


def test_countsAreThoseOfOneSendPerRecipient():
    """
    The metrics' deliveries and bytes are what one send per recipient
    counted.
    """
    s = Setting(people=4)
    with s.coalescer:
        s.say("#a", "hello", s.people[0])
        s.say("#a", "x")
    s.clock.turn()
    assert s.fanout.deliveries == 3 + 4
    assert s.fanout.sentBytes == len(b"hello\r\n") * 3 + len(b"x\r\n") * 4
    assert sum(len(v) for v in s.written()) == s.fanout.sentBytes


def test_orderKeptAcrossRoomsAndPrivateLines():
    """
    A member of two busy rooms, sent a private line too, gets each line
    where it was sent among the others.
    """
    s = Setting(people=3, rooms=("#a", "#b"))
    a, b, c = s.people
    with s.coalescer:
        s.say("#a", "a1", a)
        s.say("#b", "b1", b)
        s.say("#a", "a2", a)
        c.outbox.send(b"private\r\n")
        s.say("#a", "a3", b)
        s.say("#b", "b2", a)
        s.say("#b", "b3", a)
    s.clock.turn()
    assert c.transport.value() == b"a1\r\nb1\r\na2\r\nprivate\r\na3\r\nb2\r\nb3\r\n"
    assert a.transport.value() == b"b1\r\na3\r\n"
    assert b.transport.value() == b"a1\r\na2\r\nb2\r\nb3\r\n"


def test_interleavedRoomsKeepEveryonesOrder():
    """
    Members of two rooms whose lines alternate in a turn (each line ends
    every share of the other room's run, and the rooms are sent line by
    line from then on) get every line once, in the order said, in one
    write.
    """
    s = Setting(people=4, rooms=("#a", "#b"))
    said = []
    with s.coalescer:
        for i in range(12):
            room = "#a" if i % 2 else "#b"
            if i in (3, 4):
                room = "#a"
            s.say(room, f"{room}{i}", s.people[i % 3])
            said.append((i % 3, f"{room}{i}\r\n".encode()))
    s.clock.turn()
    for p, person in enumerate(s.people):
        assert person.transport.writes == [b"".join(line for by, line in said if by != p)]


def test_actorsConfirmationInItsPlace():
    """
    The actor's own confirmation comes where its line was, among the lines
    it shares.
    """
    own = Wire(b"", own=b"=== sent\r\n")
    s = Setting(people=2)
    a, b = s.people
    a.wire = b.wire = own
    s.rooms["#a"].members = Members()
    for i, person in enumerate(s.people):
        s.rooms["#a"].members[i] = person
    with s.coalescer:
        s.say("#a", "one", b)
        s.say("#a", "two", a)
        s.say("#a", "three", b)
        s.say("#a", "four", b)
        s.say("#a", "five", a)
    s.clock.turn()
    assert a.transport.value() == b"one\r\n=== sent\r\nthree\r\nfour\r\n=== sent\r\n"
    assert b.transport.value() == b"=== sent\r\ntwo\r\n=== sent\r\n=== sent\r\nfive\r\n"


def test_departedMemberGetsNothingAfterLeaving():
    """
    Someone who leaves the room mid-turn gets its lines up to their leaving
    and none after, whatever they are sent meanwhile.
    """
    s = Setting(people=3)
    a, b, c = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        s.say("#a", "two", a)
        del s.rooms["#a"].members[2]
        s.say("#a", "three", a)
        c.outbox.send(b"you left\r\n")
        s.say("#a", "four", b)
    s.clock.turn()
    assert c.transport.value() == b"one\r\ntwo\r\nyou left\r\n"
    assert b.transport.value() == b"one\r\ntwo\r\nthree\r\n"


def test_newcomerGetsNothingFromBeforeJoining():
    """
    Someone who joins mid-turn gets none of the room's lines from before
    and every one after, in order with what else they are sent.
    """
    s = Setting(people=2)
    a, b = s.people
    newcomer = Person(s.coalescer)
    with s.coalescer:
        s.say("#a", "one", a)
        s.say("#a", "two", a)
        newcomer.outbox.send(b"welcome\r\n")
        s.rooms["#a"].members[2] = newcomer
        s.say("#a", "three", a)
        s.say("#a", "four", b)
    s.clock.turn()
    assert newcomer.transport.writes == [b"welcome\r\nthree\r\nfour\r\n"]
    assert b.transport.writes == [b"one\r\ntwo\r\nthree\r\n"]


def test_lineReadBetweenSlicesReachesEveryoneOnce():
    """
    With the sliced flush, a line read between slices reaches those already
    written in their next write and those not yet written in this one,
    once each, in order.
    """
    s = Setting(people=FLUSH_SLICE + 2)
    first, last = s.people[0], s.people[-1]
    with s.coalescer:
        s.say("#a", "one", first)
        s.say("#a", "two")
    s.clock.turn()
    # The first slice: those sent "one" (the sayer of "one" joined the
    # batch with "two", after them).
    written = s.people[1:FLUSH_SLICE + 1]
    assert [p.transport.writes for p in written] == [[b"one\r\ntwo\r\n"]] * FLUSH_SLICE
    assert last.transport.writes == first.transport.writes == []
    with s.coalescer:
        s.say("#a", "three", last)
    s.clock.turn()
    assert first.transport.writes == [b"two\r\nthree\r\n"]
    assert last.transport.writes == [b"one\r\ntwo\r\n"]
    s.clock.turn()
    assert not s.clock.calls
    assert [p.transport.writes for p in written] == \
        [[b"one\r\ntwo\r\n", b"three\r\n"]] * FLUSH_SLICE
    assert first.transport.writes == [b"two\r\nthree\r\n"]
    assert last.transport.writes == [b"one\r\ntwo\r\n"]


def test_aTurnAfterAFlushBeginsAgain():
    """
    The next turn's lines go to everyone again, once.
    """
    s = Setting(people=3)
    for turn in range(3):
        with s.coalescer:
            s.say("#a", f"t{turn}a", s.people[0])
            s.say("#a", f"t{turn}b", s.people[1])
        s.clock.turn()
    assert s.people[2].transport.writes == [b"t0a\r\nt0b\r\n", b"t1a\r\nt1b\r\n",
                                            b"t2a\r\nt2b\r\n"]
    assert s.people[0].transport.value() == b"t0b\r\nt1b\r\nt2b\r\n"


def test_pausedMemberTakesLinesInItsBacklog():
    """
    A member whose transport is paused mid-turn keeps what it shared before
    the pause ahead of what waits for the transport, in order.
    """
    s = Setting(people=2)
    a, b = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        s.say("#a", "two", a)
        b.outbox.pauseProducing()
        s.say("#a", "three", a)
        s.say("#a", "four", a)
    s.clock.turn()
    assert b.transport.value() == b"one\r\ntwo\r\n"
    b.outbox.resumeProducing()
    assert b.transport.value() == b"one\r\ntwo\r\nthree\r\nfour\r\n"


def test_memberPausedBeforeTheRunIsSentEachLine():
    """
    A member paused when the run begins waits its lines in its backlog,
    counted against its limit: dropped when over it.
    """
    s = Setting(people=2)
    a, b = s.people
    b.outbox.limit = 10
    dropped = []
    b.outbox.onOverflow = dropped.append
    b.outbox.pauseProducing()
    with s.coalescer:
        s.say("#a", "one", a)
        assert b.outbox.pending == 5
        s.say("#a", "two", a)
        s.say("#a", "three", a)
    assert dropped == [17]
    assert b.transport.disconnecting or b.transport.value() == b""


def test_placeHeldMidTurnKeepsLinesBehindIt():
    """
    A place kept for history mid-turn: the lines shared before it go out
    first, those after wait behind it until it is filled.
    """
    s = Setting(people=2)
    a, b = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        place = b.outbox.hold()
        s.say("#a", "two", a)
    s.clock.turn()
    assert b.transport.value() == b"one\r\n"
    b.outbox.fill(place, b"history\r\n")
    assert b.transport.value() == b"one\r\nhistory\r\ntwo\r\n"


def test_closedMemberGetsNothingOthersEverything():
    """
    An outbox closed mid-turn writes nothing; the others share on.
    """
    s = Setting(people=3)
    a, b, c = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        b.outbox.close()
        s.say("#a", "two", a)
    s.clock.turn()
    assert b.transport.value() == b""
    assert c.transport.writes == [b"one\r\ntwo\r\n"]
    # Nobody shares the run any more: its lines are let go.
    assert s.rooms["#a"].members.runs[LINE].lines == []


def test_finishWritesTheShareSoFar():
    """
    A connection finished mid-turn writes what it shared so far, and
    nothing after.
    """
    s = Setting(people=2)
    a, b = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        b.outbox.send(b"bye\r\n")
        b.outbox.finish()
        s.say("#a", "two", a)
    s.clock.turn()
    assert b.transport.value() == b"one\r\nbye\r\n"


def test_outsideABatchEachLineIsWrittenAtOnce():
    """
    With no batch open (a timer), each line is written at once, as before.
    """
    s = Setting(people=2)
    s.say("#a", "one", s.people[0])
    s.say("#a", "two", s.people[0])
    assert s.people[1].transport.writes == [b"one\r\n", b"two\r\n"]


def test_outboxThatCannotShareIsSentEachLine():
    """
    A member whose outbox only sends (it has no C{share}) gets each line
    itself, in order with the rest.
    """
    s = Setting(people=2)
    box = Box()
    other = type("Other", (), {})()
    other.wire, other.outbox = LINE, box
    s.rooms["#a"].members[9] = other
    with s.coalescer:
        s.say("#a", "one", s.people[0])
        s.say("#a", "two", other)
        s.say("#a", "three", s.people[1])
    s.clock.turn()
    assert box.got == [b"one\r\n", b"three\r\n"]
    assert s.people[1].transport.value() == b"one\r\ntwo\r\n"


def test_longRunWrittenEarlyAsLinesWere():
    """
    A turn's lines past FLUSH_BYTES are handed to the transport before the
    turn ends, as each line's send did: the slow-reader bound holds.
    """
    s = Setting(people=2)
    a, b = s.people
    line = "x" * 998
    count = (FLUSH_BYTES + RUN_BYTES) // 1000 + 2
    with s.coalescer:
        for _ in range(count):
            s.say("#a", line, a)
        assert b.transport.writes
        assert len(b.transport.writes[0]) >= FLUSH_BYTES
    s.clock.turn()
    assert b.transport.value() == (line.encode() + b"\r\n") * count


def test_wireEncodesOncePerLine():
    """
    Each line is encoded once for the room, however many share it.
    """
    wire = Wire(b"")
    s = Setting(people=5)
    for person in s.people:
        person.wire = wire
    s.rooms["#a"].members = Members()
    for i, person in enumerate(s.people):
        s.rooms["#a"].members[i] = person
    with s.coalescer:
        for i in range(4):
            s.say("#a", str(i), s.people[i])
    assert wire.encoded == 4


def test_everyFrontEndSeesItsTurnInOrder():
    """
    Over the real front ends in one turn (lines in two rooms, private
    lines, a reply, a join, an arrival and a quit announced together): each
    client gets exactly what it was sent, in order, once; IRC's quit once
    for the two rooms; the browser the same events.
    """
    server = IrcMemoryServer(coalesceTurns=True, announceTogether=True)
    web = WebFactory(server.core, server.gate, replay=20)
    alice, bob, carol = (server.connect(nick) for nick in ("alice", "bob", "carol"))
    dave = server.connectIrc("dave")
    fay = Browser(web, IPv4Address("TCP", "127.0.0.1", 45000))
    fay.send(type="nick", nick="fay")
    dave.send("JOIN #lobby,#dev")
    fay.send(type="join", room="#dev")
    for client in (alice, bob, carol):
        client.send("/join #dev")
    server.clock.advance(0)
    for client in (alice, bob, carol, dave, fay):
        client.transport.clear()
    alice.send("/join #lobby")
    alice.send("l1")
    bob.send("d1")
    alice.send("/msg carol p1")
    alice.send("/msg fay p2")
    bob.send("/join #lobby")
    bob.send("l2")
    dave.send("PRIVMSG #lobby :i1")
    carol.send("/ping x")
    erin = server.connect("erin")
    erin.send("/join #dev")
    alice.send("/join #dev")
    alice.send("d2")
    carol.send("/quit bye")
    alice.send("d3")
    server.clock.advance(0)
    assert alice.lines() == [
        "=== now talking in #lobby", "#dev <bob> d1", "=== to carol: p1", "=== to fay: p2",
        "#lobby <bob> l2", "#lobby <dave> i1", "=== now talking in #dev",
        "-- #dev erin has joined", "-- #lobby erin has joined",
        "-- #lobby carol has quit (Quit: bye)", "-- #dev carol has quit (Quit: bye)"]
    assert bob.lines() == [
        "#lobby <alice> l1", "=== now talking in #lobby", "#lobby <dave> i1",
        "-- #dev erin has joined", "#dev <alice> d2", "-- #lobby erin has joined",
        "-- #lobby carol has quit (Quit: bye)", "-- #dev carol has quit (Quit: bye)", "#dev <alice> d3"]
    assert carol.lines() == [
        "#lobby <alice> l1", "#dev <bob> d1", "*alice* p1", "#lobby <bob> l2",
        "#lobby <dave> i1", "=== pong x", "-- #dev erin has joined", "#dev <alice> d2",
        "-- #lobby erin has joined", "=== bye"]
    assert erin.lines()[-4:] == [
        "#dev <alice> d2", "-- #lobby carol has quit (Quit: bye)", "-- #dev carol has quit (Quit: bye)",
        "#dev <alice> d3"]
    assert dave.lines() == [
        ":alice!~alice@chatd PRIVMSG #lobby l1", ":bob!~bob@chatd PRIVMSG #dev d1",
        ":bob!~bob@chatd PRIVMSG #lobby l2", ":erin!~erin@chatd JOIN #dev",
        ":alice!~alice@chatd PRIVMSG #dev d2", ":erin!~erin@chatd JOIN #lobby",
        ":carol!~carol@chatd QUIT :Quit: bye", ":alice!~alice@chatd PRIVMSG #dev d3"]
    assert [(m["type"], m["room"] if "room" in m else m["from"], m.get("nick"), m.get("text"))
            for m in fay.messages()] == [
        ("said", "#lobby", "alice", "l1"), ("said", "#dev", "bob", "d1"),
        ("private", "alice", None, "p2"), ("said", "#lobby", "bob", "l2"),
        ("said", "#lobby", "dave", "i1"), ("joined", "#dev", "erin", None),
        ("said", "#dev", "alice", "d2"), ("joined", "#lobby", "erin", None),
        ("quit", "#lobby", "carol", None), ("quit", "#dev", "carol", None),
        ("said", "#dev", "alice", "d3")]


def test_ircMembersShareARoomsRun(monkeypatch):
    """
    IRC members share a room's run as line members do (one append a line
    for all of them, not a send each), and each still gets exactly its
    lines in order once: its own only with echo-message, a QUIT told in
    two rooms once, nothing after parting.
    """
    shared = []
    share = Outbox.share

    def spy(outbox, run):
        shared.append(outbox)
        return share(outbox, run)

    monkeypatch.setattr(Outbox, "share", spy)
    server = IrcMemoryServer(coalesceTurns=True)
    alice, carol = server.connect("alice"), server.connect("carol")
    dave = server.connectIrc("dave")
    erin = server.connectIrc()
    for line in ("CAP REQ :echo-message", "NICK erin", "USER erin 0 * :E", "CAP END"):
        erin.send(line)
    for client in (dave, erin):
        client.send("JOIN #dev,#lobby")
    for client in (alice, carol):
        client.send("/join #dev")
    server.clock.advance(0)
    for client in (alice, carol, dave, erin):
        client.transport.clear()
    alice.send("a1")
    dave.send("PRIVMSG #dev :d1")
    alice.send("a2")
    erin.send("PRIVMSG #dev :e1")
    alice.send("a3")
    carol.send("/quit bye")
    alice.send("a4")
    erin.send("PART #dev")
    alice.send("a5")
    server.clock.advance(0)
    said = lambda who, text: f":{who}!~{who}@chatd PRIVMSG #dev {text}"
    quit = ":carol!~carol@chatd QUIT :Quit: bye"
    assert dave.lines() == [said("alice", "a1"), said("alice", "a2"), said("erin", "e1"),
                            said("alice", "a3"), quit, said("alice", "a4"),
                            ":erin!~erin@chatd PART #dev", said("alice", "a5")]
    assert erin.lines() == [said("alice", "a1"), said("dave", "d1"), said("alice", "a2"),
                            said("erin", "e1"), said("alice", "a3"), quit, said("alice", "a4"),
                            ":erin!~erin@chatd PART #dev"]
    assert alice.lines() == ["#dev <dave> d1", "#dev <erin> e1",
                             "-- #lobby carol has quit (Quit: bye)",
                             "-- #dev carol has quit (Quit: bye)", "-- #dev erin has left"]
    assert dave.proto.conn.outbox in shared and erin.proto.conn.outbox in shared


def test_membersWhoSharedTheWholeTurnWriteOneObject():
    """
    Members sent nothing but a room's lines in a turn write one bytes
    object between them, the turn's first line in it: no join each.
    """
    s = Setting(people=3)
    with s.coalescer:
        for text in ("one", "two", "three"):
            s.say("#a", text)
    s.clock.turn()
    (first,), (second,), (third,) = (p.transport.writes for p in s.people)
    assert first == b"one\r\ntwo\r\nthree\r\n"
    assert first is second is third


class EchoingWire(Wire):
    """
    A wire format that shows the actor the same bytes as everyone (the
    web's own lines), encoding them anew when asked for the actor's copy.
    """

    def encodeOwn(self, event):
        return self.encode(event)

    @staticmethod
    def ownIsEveryones(event):
        return True


def test_actorWhoseCopyIsEveryonesKeepsItsShare():
    """
    Where the actor's copy of its line is everyone's bytes, each sayer gets
    its own lines in their place with the others', every line is encoded
    once, and the actors too write the one object everyone who shared the
    turn writes (their share did not end at their lines).
    """
    echoing = EchoingWire(b"")
    s = Setting(people=3)
    s.rooms["#a"].members = Members()
    for i, person in enumerate(s.people):
        person.wire = echoing
        s.rooms["#a"].members[i] = person
    a, b, c = s.people
    with s.coalescer:
        s.say("#a", "one", a)
        s.say("#a", "two", b)
        s.say("#a", "three", a)
        s.say("#a", "four", c)
    s.clock.turn()
    (first,), (second,), (third,) = (p.transport.writes for p in s.people)
    assert first == b"one\r\ntwo\r\nthree\r\nfour\r\n"
    assert first is second is third
    assert echoing.encoded == 4
    # Deliveries are the others'; the bytes count the actors' copies too.
    assert s.fanout.deliveries == 4 * 2
    assert s.fanout.sentBytes == len(first) * 3


def test_actorWhoseCopyIsEveryonesFirstLineAndLineByLine():
    """
    The turn's first line, and a room sent line by line, reach the actor
    as everyone's bytes, encoded once.
    """
    echoing = EchoingWire(b"")
    s = Setting(people=2, rooms=("#a", "#b"))
    for room in s.rooms.values():
        room.members = Members()
        for i, person in enumerate(s.people):
            person.wire = echoing
            room.members[i] = person
    a, b = s.people
    with s.coalescer:
        # Two rooms of the same members interleaving: line by line.
        for text, room in (("one", "#a"), ("two", "#b"), ("three", "#a"), ("four", "#b"),
                           ("five", "#a")):
            s.say(room, text, a)
    s.clock.turn()
    assert a.transport.value() == b.transport.value() == b"one\r\ntwo\r\nthree\r\nfour\r\nfive\r\n"
    assert echoing.encoded == 5
    assert s.fanout.deliveries == 5



def test_runEndsAtItsWiresBytes():
    """
    A run ends at RUN_BYTES, or at the bytes its wire format says (the
    web's frames are bigger): the next line begins a new one, and every
    member still gets every line, in order.
    """
    text = "x" * 998
    for wire, limit in ((LINE, RUN_BYTES), (BigLines(b""), 2 * RUN_BYTES)):
        s = Setting(people=2)
        for person in s.people:
            person.wire = wire
        s.rooms["#a"].members = Members()
        for i, person in enumerate(s.people):
            s.rooms["#a"].members[i] = person
        room = s.rooms["#a"]
        perRun = limit // 1000 + 1
        count = 2 * perRun + 1
        runs = []
        with s.coalescer:
            for _ in range(count):
                s.say("#a", text)
                run = room.members.runs[wire]
                if type(run) is Run and run not in runs:
                    runs.append(run)
        s.clock.turn()
        assert len(runs) == 3, (limit, len(runs))
        for person in s.people:
            assert person.transport.value() == (text.encode() + b"\r\n") * count


class BigLines(Wire):
    runBytes = 2 * RUN_BYTES

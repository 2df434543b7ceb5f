"""
History as users see it, through the real factory, commands and core, with an
in-memory store whose reads answer when the test says: replay on join,
/history and /search, their marking and their order against live lines.
"""

import pytest
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.core import events
from chatd.core.chat import ChatCore, User
from chatd.storage import HistoryBusy
from chatd.core.refusals import NotInRoom
from chatd.core.fanout import Fanout
from chatd.core.names import roomKey
from chatd.edge.connection import Connection
from chatd.edge.outbox import Outbox
from chatd.line.wire import LineWire
from support import MemoryHistory, MemoryServer


@pytest.fixture
def history():
    return MemoryHistory()


@pytest.fixture
def server(history):
    server = MemoryServer(history=history, replay=3)
    server.clock.advance(1764104591)  # 2025-11-25T21:03:11Z
    return server


def arrive(server, history, nick):
    """
    Connect C{nick}, let their replay of the lobby arrive and clear it.
    """
    client = server.connect(nick)
    history.answer()
    client.lines()
    return client


def test_roomLinesAreStoredWithIncreasingIdsAndPrivateOnesNever(server, history):
    """
    Messages, actions and topic changes are stored, with their time and ids
    in the order they happened, exactly as delivered live; private messages
    are not stored at all.
    """
    alice, bob = arrive(server, history, "alice"), arrive(server, history, "bob")
    alice.send("hello")
    alice.send("/me waves")
    alice.send("/topic cake")
    alice.send("/msg bob a secret")
    t = 1764104591.0
    assert history.lines == [
        events.Said("#lobby", "alice", "hello", t, 1),
        events.Acted("#lobby", "alice", "waves", t, 2),
        events.TopicChanged("#lobby", "alice", "cake", t, 3),
    ]
    assert bob.lines() == ["#lobby <alice> hello", "* #lobby alice waves",
                           "-- #lobby alice set the topic: cake", "*alice* a secret"]


def test_joinReplaysLastLinesOldestFirstMarkedAsHistory(server, history):
    """
    Joining a room shows its last N lines (here 3) after the join replies,
    oldest first, each marked with "~" and its UTC time.
    """
    alice = server.connect("alice")
    for text in ["one", "two", "three", "four"]:
        alice.send(text)
    history.answer()
    bob = server.connect()
    bob.lines()
    bob.send("bob")
    history.answer()
    assert bob.lines() == [
        "=== you are now bob",
        "=== joined #lobby",
        "=== #lobby members (2): alice bob",
        "~ 2025-11-25T21:03:11Z #lobby <alice> two",
        "~ 2025-11-25T21:03:11Z #lobby <alice> three",
        "~ 2025-11-25T21:03:11Z #lobby <alice> four",
    ]


def test_liveLinesWaitForTheReplay(server, history):
    """
    Lines said while the joiner's replay is still being read reach the joiner
    only after the replay, never mixed into it, and the replay holds nothing
    said after the join.
    """
    alice = server.connect("alice")
    alice.send("before")
    history.answer()
    bob = server.connect("bob")
    alice.send("after")
    bob.send("/who")
    assert bob.lines() == []
    history.answer()
    assert bob.lines() == [
        "~ 2025-11-25T21:03:11Z #lobby <alice> before",
        "#lobby <alice> after",
        "=== #lobby members (2): alice bob",
    ]


def test_replayOfAnotherRoomKeepsItsPlace(server, history):
    """
    Joining a second room: its replay comes after the join replies and
    before later live lines of any room.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/join #dev")
    alice.send("dev line")
    alice.send("/join #lobby")
    history.answer()
    bob.lines()
    bob.send("/join #dev")
    alice.send("lobby live")
    history.answer()
    assert bob.lines() == [
        "=== joined #dev",
        "=== #dev members (2): alice bob",
        "~ 2025-11-25T21:03:11Z #dev <alice> dev line",
        "#lobby <alice> lobby live",
    ]


def test_replayZeroShowsNothing(history):
    """
    With --replay 0, joining shows no history and reads nothing.
    """
    server = MemoryServer(history=history, replay=0)
    alice = server.connect("alice")
    alice.send("hello")
    bob = server.connect()
    bob.lines()
    bob.send("bob")
    assert bob.lines() == ["=== you are now bob", "=== joined #lobby",
                           "=== #lobby members (2): alice bob"]


def test_historyCommand(server, history):
    """
    /history N shows the current room's last N lines under a reply naming
    how many, and says so when the room has none.
    """
    alice = server.connect("alice")
    alice.send("/join #quiet")
    history.answer()
    alice.lines()
    alice.send("/history")
    history.answer()
    assert alice.lines() == ["=== #quiet has no history"]
    alice.send("/join #lobby")
    for text in ["one", "two", "three"]:
        alice.send(text)
    alice.send("/history 2")
    history.answer()
    assert alice.lines() == [
        "=== now talking in #lobby",
        "=== #lobby: the last 2 lines",
        "~ 2025-11-25T21:03:11Z #lobby <alice> two",
        "~ 2025-11-25T21:03:11Z #lobby <alice> three",
    ]


@pytest.mark.parametrize("arg", ["0", "501", "-1", "many"])
def test_historyCountBounded(server, history, arg):
    """
    /history takes a count from 1 to 500 and nothing else.
    """
    alice = arrive(server, history, "alice")
    alice.send(f"/history {arg}")
    assert alice.lines() == ["!!! usage: /history [N], N a number from 1 to 500"]


def test_searchLooksOnlyInTheUsersRooms(server, history):
    """
    /search finds lines in the user's rooms, newest first, and never in a
    room the user is not in, even one they left.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/join #secret")
    alice.send("cake in secret")
    alice.send("/join #lobby")
    alice.send("cake in lobby")
    alice.send("more cake in lobby")
    bob.send("/join #secret")
    bob.send("/part #secret")
    history.answer()
    bob.lines()
    bob.send("/search cake")
    history.answer()
    assert history.searched[-1] == ["#lobby"]
    assert bob.lines() == [
        "=== 2 lines in your rooms with cake, newest first",
        "~ 2025-11-25T21:03:11Z #lobby <alice> more cake in lobby",
        "~ 2025-11-25T21:03:11Z #lobby <alice> cake in lobby",
    ]
    bob.send("/search pie")
    history.answer()
    assert bob.lines() == ["=== nothing in your rooms matches pie"]


def test_searchNeedsWords(server, history):
    """
    /search without words, or with too many, is refused with its usage.
    """
    alice = arrive(server, history, "alice")
    alice.send("/search")
    alice.send("/search " + " ".join("w" * 11))
    assert alice.lines() == ["!!! usage: /search WORDS",
                             "!!! /search takes at most 10 words"]


def test_failedReadTellsTheUserAndReleasesLiveLines(server, history):
    """
    When the store cannot answer, the user is told so and the live lines
    held behind the read still arrive.
    """
    alice, bob = arrive(server, history, "alice"), arrive(server, history, "bob")
    history.recent = lambda room, count: fail(RuntimeError("disk on fire"))
    bob.send("/history")
    alice.send("still here")
    assert bob.lines() == ["!!! history is unavailable right now",
                           "#lobby <alice> still here"]


def test_busyStoreIsARefusal(server, history):
    """
    A store too busy for one more search says so as a refusal, with no
    traceback, and the live lines held behind it still arrive.
    """
    alice, bob = arrive(server, history, "alice"), arrive(server, history, "bob")
    history.search = lambda rooms, words, limit: fail(
        HistoryBusy("history is busy; try again in a moment"))
    bob.send("/search cake")
    alice.send("still here")
    assert bob.lines() == ["!!! history is busy; try again in a moment",
                           "#lobby <alice> still here"]


def test_oneReadAskedForAtATimePerConnection(server, history):
    """
    A connection has one read it asked for (/search, /history) waiting in
    the store at a time: the lines after it wait (unread) until the store
    answers, so that one fast asker cannot fill the store's queues for
    everyone; another connection asks meanwhile, and nothing is lost.
    """
    asked = []
    for name in ("recent", "search"):
        real = getattr(history, name)
        setattr(history, name, lambda *args, real=real, name=name:
                asked.append(name) or real(*args))
    alice, bob = arrive(server, history, "alice"), arrive(server, history, "bob")
    alice.send("cake")
    alice.lines(), bob.lines()
    asked.clear()
    alice.sendBytes(b"/search cake\n/search cake\n/history 1\n")
    bob.send("/history 1")
    assert asked == ["search", "recent"]
    history.answer()
    assert asked == ["search", "recent", "search"]
    history.answer()
    assert asked == ["search", "recent", "search", "recent"]
    history.answer()
    assert asked == ["search", "recent", "search", "recent"]
    cake = "~ 2025-11-25T21:03:11Z #lobby <alice> cake"
    found = ["=== 1 line in your rooms with cake, newest first", cake]
    assert alice.lines() == found * 2 + ["=== #lobby: the last 1 line", cake]
    assert bob.lines() == ["=== #lobby: the last 1 line", cake]


def test_withoutHistory():
    """
    A server that keeps no history replays nothing, gives events no id, and
    refuses /history and /search.
    """
    server = MemoryServer()
    alice = server.connect("alice")
    alice.send("/history")
    alice.send("/search cake")
    assert alice.lines() == ["!!! this server keeps no history"] * 2


def test_coreRefusesHistoryOfARoomNotJoined(history):
    """
    The core hands out a room's history only to its members.
    """
    core = ChatCore(Fanout(), Clock(), history=history)
    alice, bob = (User(Outbox(StringTransport(), 1000), LineWire) for _ in "ab")
    core.claimNick(alice, "alice")
    core.claimNick(bob, "bob")
    core.join(alice, "#dev")
    with pytest.raises(NotInRoom) as e:
        core.recent(bob, "#dev", 5)
    assert e.value == NotInRoom("#dev")


def test_quitDuringReplaySaysBye(server, history):
    """
    A user who quits while their replay is still being read gets "bye" at
    once, and the connection closes; the late replay is dropped.
    """
    alice = server.connect("alice")
    alice.lines()
    alice.send("/quit")
    assert alice.lines() == ["=== bye"]
    assert not alice.transport.connected
    history.answer()
    assert alice.lines() == []


def test_historyThatNeverComesIsSkipped(server, history):
    """
    When the store does not answer within HISTORY_WAIT seconds, the user is
    told, the live lines held behind it flow, and the late answer is dropped.
    """
    alice, bob = arrive(server, history, "alice"), arrive(server, history, "bob")
    alice.send("one")
    bob.send("/history")
    alice.send("two")
    server.clock.advance(Connection.HISTORY_WAIT - 0.1)
    assert bob.lines() == ["#lobby <alice> one"]
    server.clock.advance(0.1)
    assert bob.lines() == ["!!! history took too long and was skipped",
                           "#lobby <alice> two"]
    history.answer()
    alice.send("three")
    assert bob.lines() == ["#lobby <alice> three"]


class TellingHistory(MemoryHistory):
    """
    A store that tells which rooms hold nothing, as chatd's SQLite store
    does, and notes which rooms were read.
    """

    def __init__(self):
        super().__init__()
        self.read = []

    def mayHold(self, room):
        return any(roomKey(e.room) == roomKey(room) for e in self.lines)

    def recent(self, room, count):
        self.read.append(room)
        return super().recent(room, count)


def test_joinOfARoomWithNothingStoredReadsNothing():
    """
    Joining a room the store holds nothing for asks it for no replay: the
    join's replies come at once, and nothing follows them.  A room with
    lines stored is replayed as before.
    """
    history = TellingHistory()
    server = MemoryServer(history=history, replay=3)
    server.clock.advance(1764104591)
    alice = server.connect()
    alice.lines()
    alice.send("alice")
    alice.send("/join #quiet")
    assert alice.lines() == ["=== you are now alice", "=== joined #lobby",
                             "=== #lobby members (1): alice", "=== joined #quiet",
                             "=== #quiet members (1): alice"]
    alice.send("/join #lobby")
    alice.send("hello")
    assert history.read == []
    bob = server.connect()
    bob.lines()
    bob.send("bob")
    bob.send("/join #quiet")
    history.answer()
    assert bob.lines() == [
        "=== you are now bob", "=== joined #lobby", "=== #lobby members (2): alice bob",
        "~ 2025-11-25T21:03:11Z #lobby <alice> hello",
        "=== joined #quiet", "=== #quiet members (2): alice bob",
    ]
    assert history.read == ["#lobby"]


def test_brokeredReplayOnASharedStoreIsAlwaysRead():
    """
    A brokered fan-out on a shared store replays lines the stream said that
    the store may not hold yet: its replay is read whatever the store says.
    On a store of its own it asks the store, as one daemon does.
    """
    from chatd.broker.fanout import BrokeredFanout

    class Store:
        shared = True

        def mayHold(self, room):
            return False

    # (Nothing of the broker is needed for the answer.)
    fanout = BrokeredFanout.__new__(BrokeredFanout)
    lobby = type("Room", (), {"name": "#lobby"})()
    assert fanout.mayReadHistory(lobby, Store())
    Store.shared = False
    assert not fanout.mayReadHistory(lobby, Store())

"""
The chat core's rules, with no reactor, sockets or wire format: each user's
"wire" hands over the event itself, so tests see exactly which events reach
whom.
"""

import pytest
from twisted.internet.task import Clock

from chatd.core import events
from chatd.core.chat import ChatCore, ChatError, User
from chatd.core.fanout import Fanout
from support import EventWire, Inbox


@pytest.fixture
def core():
    clock = Clock()
    clock.advance(1000)
    return ChatCore(Fanout(), clock)


def arrive(core, nick):
    user = User(Inbox(), EventWire)
    core.claimNick(user, nick)
    return user


def clear(*users):
    for user in users:
        user.outbox.take()


def test_claimJoinsLobbyAndAnnounces(core):
    """
    A new user lands in #lobby; the members already there hear it once and the
    newcomer hears nothing about themselves.
    """
    alice = arrive(core, "alice")
    bob = arrive(core, "bob")
    assert alice.outbox.take() == [events.Joined("#lobby", "bob")]
    assert bob.outbox.take() == []
    assert bob.current is core.rooms["#lobby"]


def test_sayReachesEveryOtherMemberOnceInOrder(core):
    """
    Room messages reach each other member exactly once, in the order said,
    and never the sender or anyone outside the room.
    """
    alice, bob, carol, dave = (arrive(core, n) for n in ["alice", "bob", "carol", "dave"])
    core.join(dave, "#elsewhere")
    core.part(dave, "#lobby")
    clear(alice, bob, carol, dave)
    core.say(alice, "one")
    core.say(bob, "two")
    core.say(alice, "three")
    said = lambda nick, text: events.Said("#lobby", nick, text, 1000.0)
    assert alice.outbox.take() == [said("bob", "two")]
    assert bob.outbox.take() == [said("alice", "one"), said("alice", "three")]
    assert carol.outbox.take() == [said("alice", "one"), said("bob", "two"), said("alice", "three")]
    assert dave.outbox.take() == []


def test_roomsAreIsolated(core):
    """
    A message in one room never reaches members of another.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    core.join(alice, "#dev")
    core.join(bob, "#dev")
    clear(alice, bob, carol)
    core.say(alice, "dev talk")
    assert bob.outbox.take() == [events.Said("#dev", "alice", "dev talk", 1000.0)]
    assert carol.outbox.take() == []


def test_tellReachesOnlyTheTarget(core):
    """
    A private message reaches its target and nobody else, whatever their
    rooms; the nickname is matched case-insensitively.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    clear(alice, bob, carol)
    core.tell(alice, "BOB", "psst")
    assert bob.outbox.take() == [events.PrivatelySaid("alice", "psst", 1000.0)]
    assert alice.outbox.take() == []
    assert carol.outbox.take() == []


def test_tellUnknownNick(core):
    """
    A private message to nobody is refused with the missing name.
    """
    alice = arrive(core, "alice")
    with pytest.raises(ChatError, match="no such user: zed"):
        core.tell(alice, "zed", "hi")


def test_nickTakenIgnoringCase(core):
    """
    A nickname differing only in case from a taken one is refused, and the
    refused user can try again.
    """
    arrive(core, "Alice")
    user = User(Inbox(), EventWire)
    with pytest.raises(ChatError, match="taken"):
        core.claimNick(user, "aLiCe")
    assert user.nick is None
    core.claimNick(user, "alice2")
    assert core.users["alice2"] is user


def test_invalidNickRefused(core):
    """
    An invalid nickname is refused with the rules.
    """
    with pytest.raises(ChatError, match="nickname"):
        core.claimNick(User(Inbox(), EventWire), "#lobby")


def test_renameAnnouncedToEachRoomAndFreesOldNick(core):
    """
    A rename is announced once in each of the user's rooms, and the old
    nickname is free at once.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    core.join(alice, "#dev")
    core.join(bob, "#dev")
    clear(alice, bob, carol)
    core.rename(alice, "alicia")
    assert bob.outbox.take() == [events.Renamed("#lobby", "alice", "alicia"),
                                 events.Renamed("#dev", "alice", "alicia")]
    assert carol.outbox.take() == [events.Renamed("#lobby", "alice", "alicia")]
    assert alice.outbox.take() == []
    arrive(core, "alice")
    core.tell(bob, "alicia", "found you")
    assert alice.outbox.take()[-1] == events.PrivatelySaid("bob", "found you", 1000.0)


def test_renameCaseOnly(core):
    """
    Changing only the case of one's own nickname is allowed.
    """
    alice = arrive(core, "alice")
    core.rename(alice, "Alice")
    assert alice.nick == "Alice" and core.users["alice"] is alice


def test_renameToTakenNickRefused(core):
    """
    One cannot rename to someone else's nickname.
    """
    alice = arrive(core, "alice")
    arrive(core, "bob")
    with pytest.raises(ChatError, match="taken"):
        core.rename(alice, "BOB")
    assert alice.nick == "alice"


def test_disconnectAnnouncesFreesAndIsIdempotent(core):
    """
    A disconnect is announced once to each room, frees the nickname at once,
    and a second disconnect does nothing.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    core.disconnect(alice, "gone")
    core.disconnect(alice, "gone again")
    assert bob.outbox.take() == [events.Quit("#lobby", "alice", "gone")]
    assert "alice" not in core.users
    arrive(core, "alice")


def test_disconnectBeforeNick(core):
    """
    A connection that never chose a nickname leaves no trace.
    """
    core.disconnect(User(Inbox(), EventWire), "bye")
    assert core.users == {}


def test_emptyRoomDisappears(core):
    """
    A room with no members left is gone from the room list.
    """
    alice = arrive(core, "alice")
    core.join(alice, "#tmp")
    assert "#tmp" in core.rooms
    core.part(alice, "#tmp")
    assert "#tmp" not in core.rooms


def test_partFallsBackToLastJoinedRoom(core):
    """
    Leaving the current room makes the most recently joined remaining room
    current; leaving the last one leaves the user in no room.
    """
    alice = arrive(core, "alice")
    core.join(alice, "#a")
    core.join(alice, "#b")
    core.join(alice, "#a")
    core.part(alice)
    assert alice.current.name == "#b"
    core.part(alice, "#b")
    core.part(alice, "#lobby")
    assert alice.current is None
    with pytest.raises(ChatError, match="no room"):
        core.say(alice, "hello?")


def test_partNotMember(core):
    """
    Leaving a room one is not in is refused.
    """
    alice = arrive(core, "alice")
    with pytest.raises(ChatError, match="not in #nowhere"):
        core.part(alice, "#nowhere")


def test_joinTwiceOnlySwitches(core):
    """
    Joining a room one is already in announces nothing and makes it current.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.join(alice, "#dev")
    clear(alice, bob)
    core.join(alice, "lobby")
    assert alice.current.name == "#lobby"
    assert bob.outbox.take() == []


def test_roomNamesIgnoreCase(core):
    """
    #Dev and #dev are one room, keeping the name it was created with.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.join(alice, "#Dev")
    core.join(bob, "#dev")
    assert bob.current is alice.current
    assert bob.current.name == "#Dev"


def test_topic(core):
    """
    Setting a topic stores it and tells the other members.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    core.setTopic(alice, "cake")
    assert core.rooms["#lobby"].topic == "cake"
    assert bob.outbox.take() == [events.TopicChanged("#lobby", "alice", "cake", 1000.0)]
    assert alice.outbox.take() == []


def test_recipientDroppedDuringFanout(core):
    """
    A recipient that is disconnected while a message is being fanned out does
    not stop the others from getting it.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    clear(alice, bob, carol)

    class DroppingInbox(Inbox):
        def send(self, event):
            core.disconnect(bob, "too slow")

    bob.outbox = DroppingInbox()
    core.say(alice, "hello")
    assert carol.outbox.take() == [events.Quit("#lobby", "bob", "too slow"),
                                   events.Said("#lobby", "alice", "hello", 1000.0)]

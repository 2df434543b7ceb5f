"""
The session API as a front end sees it, with a wire format that shows the
actor's own confirmations (L{OwnEventWire}): exactly what the actor of each
request is told, and what everyone else is told; and the line front end's
words for a few refusals.
"""

import pytest
from twisted.internet.task import Clock

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.line.refusals import describe
from support import Inbox, OwnEventWire
from trustsupport import Person


@pytest.fixture
def core():
    clock = Clock()
    clock.advance(1000)
    return ChatCore(Fanout(), clock)


def arrive(core, nick):
    """
    Open a session whose wire shows own confirmations, claim C{nick}, and
    return it with nothing in its inbox.
    """
    inbox = Inbox()
    person = Person(core.open(inbox, OwnEventWire, "192.0.2.1"), inbox)
    person.claim(nick)
    inbox.take()
    return person


def clear(*people):
    for person in people:
        person.outbox.take()


def test_arrivalTellsTheNicknameAndTheRoom(core):
    """
    Claiming a nickname tells the user their nickname, then shows them the
    lobby they entered; it is no one else's business but the lobby's
    members', who hear the join.
    """
    alice = arrive(core, "alice")
    inbox = Inbox()
    bob = Person(core.open(inbox, OwnEventWire), inbox)
    assert bob.claim("bob") is core.rooms["#lobby"]
    assert bob.nick == "bob" and [room.name for room in bob.rooms] == ["#lobby"]
    assert bob.outbox.take() == [events.NowKnownAs(None, "bob"),
                                 events.Entered("#lobby", "bob", "", ("alice", "bob"))]
    assert alice.outbox.take() == [events.Joined("#lobby", "bob")]


def test_joinerIsShownTheRoomOthersHearTheJoin(core):
    """
    The joiner is shown the room they entered, once, and no Joined of their
    own; each member already there hears the join once; members of other
    rooms hear nothing.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    bob.join("#dev")
    carol.join("#elsewhere")
    carol.part("#lobby")
    clear(alice, bob, carol)
    room, joinedNow = alice.join("#dev")
    assert joinedNow and alice.isIn(room)
    assert alice.outbox.take() == [events.Entered("#dev", "alice", "", ("bob", "alice"))]
    assert bob.outbox.take() == [events.Joined("#dev", "alice")]
    assert carol.outbox.take() == []
    assert alice.join("#DEV") == (room, False)
    assert alice.outbox.take() == [] and bob.outbox.take() == []


def test_roomMessageReachesEachOtherMemberOnce(core):
    """
    The sender of a room message or action gets its own confirmation and
    nothing else (whether to show it, an echo, is the wire format's choice);
    each other member of the room gets it exactly once; nobody outside the
    room gets anything.
    """
    alice, bob, carol, dave = (arrive(core, n) for n in ["alice", "bob", "carol", "dave"])
    dave.join("#elsewhere")
    dave.part("#lobby")
    clear(alice, bob, carol, dave)
    alice.say("#lobby", "hello")
    alice.act("#lobby", "waves")
    said = events.Said("#lobby", "alice", "hello", 1000.0)
    acted = events.Acted("#lobby", "alice", "waves", 1000.0)
    assert alice.outbox.take() == [("own", said), ("own", acted)]
    assert bob.outbox.take() == [said, acted]
    assert carol.outbox.take() == [said, acted]
    assert dave.outbox.take() == []


def test_privateMessageConfirmedToTheSenderOnly(core):
    """
    A private message's sender gets their own confirmation of it, its target
    gets it, and nobody else gets anything.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    clear(alice, bob, carol)
    alice.tell("BOB", "psst")
    told = events.PrivatelySaid("alice", "bob", "psst", 1000.0)
    assert alice.outbox.take() == [("own", told)]
    assert bob.outbox.take() == [told]
    assert carol.outbox.take() == []
    with pytest.raises(R.NoSuchUser) as e:
        alice.tell("zed", "hi")
    assert e.value == R.NoSuchUser("zed")
    assert [p.outbox.take() for p in (alice, bob, carol)] == [[], [], []]


def test_partConfirmedToTheParter(core):
    """
    Whoever parts a room gets their own confirmation, once; the members left
    hear the part once; the parter stays in their other rooms.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    alice.join("#dev")
    bob.join("#dev")
    clear(alice, bob, carol)
    left = alice.part("#dev", "lunch")
    parted = events.Parted("#dev", "alice", "lunch")
    assert left.name == "#dev" and not alice.isIn(left)
    assert alice.outbox.take() == [("own", parted)]
    assert bob.outbox.take() == [parted]
    assert carol.outbox.take() == []
    assert [room.name for room in alice.rooms] == ["#lobby"]


def test_topicConfirmedToTheSetter(core):
    """
    Whoever sets a topic gets their own confirmation; the other members hear
    the new topic once.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    alice.setTopic("#lobby", "cake")
    changed = events.TopicChanged("#lobby", "alice", "cake", 1000.0)
    assert alice.outbox.take() == [("own", changed)]
    assert bob.outbox.take() == [changed]


def test_renameToldOnceToTheUserAndOncePerRoomToOthers(core):
    """
    A user renamed while in two rooms is told their new nickname exactly
    once (beside a confirmation per room, which the wire format may show or
    not); each other member hears one Renamed for each room they share.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    alice.join("#dev")
    bob.join("#dev")
    clear(alice, bob, carol)
    alice.rename("alicia")
    lobby = events.Renamed("#lobby", "alice", "alicia")
    dev = events.Renamed("#dev", "alice", "alicia")
    got = alice.outbox.take()
    assert [e for e in got if isinstance(e, events.NowKnownAs)] == [
        events.NowKnownAs("alice", "alicia")]
    assert got == [("own", lobby), ("own", dev), events.NowKnownAs("alice", "alicia")]
    assert bob.outbox.take() == [lobby, dev]
    assert carol.outbox.take() == [lobby]


def test_refusedRequestsTellNobody(core):
    """
    A refused request raises its typed refusal and delivers nothing to
    anyone.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    with pytest.raises(R.NotInRoom) as e:
        alice.say("#dev", "anyone?")
    assert e.value == R.NotInRoom("#dev")
    with pytest.raises(R.NicknameTaken) as e:
        alice.rename("Bob")
    assert e.value == R.NicknameTaken("Bob", False)
    with pytest.raises(R.NoSuchRoom) as e:
        alice.room("#nowhere")
    assert e.value == R.NoSuchRoom("#nowhere")
    assert alice.outbox.take() == [] and bob.outbox.take() == []


@pytest.mark.parametrize("refusal, text", [
    (R.NoSuchUser("zed"), "no such user: zed"),
    (R.NotInRoom("#dev"), "you are not in #dev"),
    (R.Banned("#dev", 60, "spam"), "you are banned from #dev for 1m more (spam)"),
    (R.Banned("", None, ""), "you are banned from this server"),
    (R.NotModerator("#lobby"),
     "you do not moderate #lobby: operators, its owner and its creator do"),
    (R.NicknameTaken("owner", True),
     "the nickname owner is taken; /ghost owner PASSWORD if it is yours"),
    (R.PasswordRequired("owner"), "owner is registered: /nick owner PASSWORD if it is yours"),
    (R.CoversEveryone("::/0"), "::/0 covers everyone"),
    (R.NoRenameWhileMuted("#dev"),
     "you are muted in #dev; you cannot change nickname until the mute ends"),
    (R.WrongPassword("owner"), "wrong password for owner"),
])
def test_lineFrontEndWordsUnchanged(refusal, text):
    """
    The line front end words refusals as it did before they were typed:
    scripts and the companion client read these lines.
    """
    assert describe(refusal) == text


def test_sessionNeedsANicknameFirstAndOnlyOnce():
    """
    A front end that forgets the order still cannot act nameless or hold
    two nicknames: calls before a nickname are refused, a second claim too.
    """
    core = ChatCore(Fanout(), Clock())
    inbox = Inbox()
    session = core.open(inbox, OwnEventWire)
    for call in (lambda: session.join("#dev"), lambda: session.say("#lobby", "hi"),
                 lambda: session.rename("bob"), lambda: session.register("password1"),
                 lambda: session.tell("x", "hi"), lambda: session.kick("#lobby", "x")):
        with pytest.raises(R.NoNickname):
            call()
    session.claim("alice")
    with pytest.raises(R.AlreadyNamed) as e:
        session.claim("alice2")
    assert e.value == R.AlreadyNamed("alice")
    assert list(core.users) == ["alice"]

"""
The chat core's rules, with no reactor, sockets or wire format: each user's
"wire" hands over the event itself, so tests see exactly which events reach
whom.  Every call names its room: which room a user is looking at is the
front end's business, not the core's.
"""

import pytest
from twisted.internet.task import Clock

from chatd.core import events
from chatd.core import refusals as R
from chatd.core import chat
from chatd.core.chat import ChatCore, User
from chatd.core.names import sortedNicks
from chatd.core.fanout import Fanout
from support import EventWire, Inbox


@pytest.fixture
def core():
    clock = Clock()
    clock.advance(1000)
    return ChatCore(Fanout(), clock)


def arrive(core, nick):
    """
    Connect a user, claim C{nick} and return them with nothing in their
    inbox (their arrival's own C{NowKnownAs} is checked elsewhere).
    """
    user = User(Inbox(), EventWire)
    core.claimNick(user, nick)
    user.outbox.take()
    return user


def clear(*users):
    for user in users:
        user.outbox.take()


def test_claimJoinsLobbyAndAnnounces(core):
    """
    A new user lands in #lobby; the members already there hear it once and the
    newcomer hears their new nickname, then the room they entered (its topic
    and members, themselves included), and no Joined about themselves.
    """
    alice = arrive(core, "alice")
    bob = User(Inbox(), EventWire)
    lobby = core.claimNick(bob, "bob")
    assert alice.outbox.take() == [events.Joined("#lobby", "bob")]
    assert bob.outbox.take() == [events.NowKnownAs(None, "bob"),
                                 events.Entered("#lobby", "bob", "", ("alice", "bob"))]
    assert lobby is core.rooms["#lobby"]
    assert bob.rooms == {"#lobby": lobby}


def test_sayReachesEveryOtherMemberOnceInOrder(core):
    """
    Room messages reach each other member exactly once, in the order said,
    and never the sender or anyone outside the room.
    """
    alice, bob, carol, dave = (arrive(core, n) for n in ["alice", "bob", "carol", "dave"])
    core.join(dave, "#elsewhere")
    core.part(dave, "#lobby")
    clear(alice, bob, carol, dave)
    core.say(alice, "#lobby", "one")
    core.say(bob, "#lobby", "two")
    core.say(alice, "#lobby", "three")
    said = lambda nick, text: events.Said("#lobby", nick, text, 1000.0)
    assert alice.outbox.take() == [said("bob", "two")]
    assert bob.outbox.take() == [said("alice", "one"), said("alice", "three")]
    assert carol.outbox.take() == [said("alice", "one"), said("bob", "two"), said("alice", "three")]
    assert dave.outbox.take() == []


def test_roomsAreIsolated(core):
    """
    A message in one room never reaches members of another, even members of
    the sender's other rooms.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    core.join(alice, "#dev")
    core.join(bob, "#dev")
    clear(alice, bob, carol)
    core.say(alice, "#dev", "dev talk")
    assert bob.outbox.take() == [events.Said("#dev", "alice", "dev talk", 1000.0)]
    assert carol.outbox.take() == []


def test_sayNamesItsRoom(core):
    """
    A user in several rooms talks in the room they name, whichever they
    joined last; a room they are not in is refused, and nobody hears a thing.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.join(alice, "#dev")
    clear(alice, bob)
    core.say(alice, "lobby", "hi lobby")
    assert bob.outbox.take() == [events.Said("#lobby", "alice", "hi lobby", 1000.0)]
    with pytest.raises(R.NotInRoom) as e:
        core.say(bob, "#dev", "let me in")
    assert e.value == R.NotInRoom("#dev")
    assert alice.outbox.take() == []


def test_tellReachesOnlyTheTarget(core):
    """
    A private message reaches its target and nobody else, whatever their
    rooms; the nickname is matched case-insensitively.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    clear(alice, bob, carol)
    core.tell(alice, "BOB", "psst")
    assert bob.outbox.take() == [events.PrivatelySaid("alice", "bob", "psst", 1000.0)]
    assert alice.outbox.take() == []
    assert carol.outbox.take() == []


@pytest.mark.parametrize("text", ["", "   "])
def test_emptyTextRefusedOnEveryPath(core, text):
    """
    An empty text (or only spaces) is refused, said, acted or told: no front
    end can post an empty line (IRC's "PRIVMSG #room :" is invalid), and
    nothing reaches anyone or the history.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    for talk in (lambda: core.say(alice, "#lobby", text),
                 lambda: core.say(alice, "#lobby", text, notice=True),
                 lambda: core.act(alice, "#lobby", text),
                 lambda: core.tell(alice, "bob", text)):
        with pytest.raises(R.Empty):
            talk()
    assert alice.outbox.take() == [] and bob.outbox.take() == []


def test_tellUnknownNick(core):
    """
    A private message to nobody is refused with the missing name.
    """
    alice = arrive(core, "alice")
    with pytest.raises(R.NoSuchUser) as e:
        core.tell(alice, "zed", "hi")
    assert e.value == R.NoSuchUser("zed")


def test_nickTakenIgnoringCase(core):
    """
    A nickname differing only in case from a taken one is refused, and the
    refused user can try again.
    """
    arrive(core, "Alice")
    user = User(Inbox(), EventWire)
    with pytest.raises(R.NicknameTaken) as e:
        core.claimNick(user, "aLiCe")
    assert e.value == R.NicknameTaken("aLiCe", False)
    assert user.nick is None and user.outbox.take() == []
    core.claimNick(user, "alice2")
    assert core.users["alice2"] is user


def test_invalidNickRefused(core):
    """
    An invalid nickname is refused with the rules, and nothing is claimed.
    """
    with pytest.raises(R.InvalidNickname) as e:
        core.claimNick(User(Inbox(), EventWire), "#lobby")
    assert e.value.nick == "#lobby" and "nickname" in e.value.reason
    assert core.users == {}


def test_renameAnnouncedToEachRoomAndFreesOldNick(core):
    """
    A rename is announced once in each of the user's rooms, the user is told
    their new nickname once, and the old nickname is free at once.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    core.join(alice, "#dev")
    core.join(bob, "#dev")
    clear(alice, bob, carol)
    core.rename(alice, "alicia")
    assert bob.outbox.take() == [events.Renamed("#lobby", "alice", "alicia"),
                                 events.Renamed("#dev", "alice", "alicia")]
    assert carol.outbox.take() == [events.Renamed("#lobby", "alice", "alicia")]
    assert alice.outbox.take() == [events.NowKnownAs("alice", "alicia")]
    newAlice = arrive(core, "alice")
    core.tell(bob, "alicia", "found you")
    assert alice.outbox.take() == [events.Joined("#lobby", "alice"),
                                   events.PrivatelySaid("bob", "alicia", "found you", 1000.0)]
    assert newAlice.outbox.take() == []


def test_renameCaseOnly(core):
    """
    Changing only the case of one's own nickname is allowed.
    """
    alice = arrive(core, "alice")
    core.rename(alice, "Alice")
    assert alice.nick == "Alice" and core.users["alice"] is alice
    assert alice.outbox.take() == [events.NowKnownAs("alice", "Alice")]


def test_userKeepsTheKeyOfTheNicknameItHasNow(core):
    """
    A user's nickname key (L{User.key}, kept rather than folded at each
    look-up) follows every rename: a later part and disconnect free the
    names and memberships under the nickname the user has then.
    """
    alice = arrive(core, "Alice")
    assert alice.key == "alice"
    core.join(alice, "#dev")
    core.rename(alice, "ALICIA")
    assert alice.key == "alicia"
    assert core.rooms["#dev"].members == {"alicia": alice}
    core.part(alice, "#dev")
    assert "#dev" not in core.rooms
    core.disconnect(alice, "gone")
    assert core.users == {}
    assert arrive(core, "alicia").key == "alicia"


def test_renameToTakenNickRefused(core):
    """
    One cannot rename to someone else's nickname.
    """
    alice = arrive(core, "alice")
    arrive(core, "bob")
    clear(alice)
    with pytest.raises(R.NicknameTaken) as e:
        core.rename(alice, "BOB")
    assert e.value == R.NicknameTaken("BOB", False)
    assert alice.nick == "alice" and alice.outbox.take() == []


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


def test_partLeavesOnlyTheNamedRoom(core):
    """
    Parting takes the user out of the room named and no other, keeping the
    others in the order joined (rejoining one does not move it); once out of
    every room, the user can talk in none.
    """
    alice = arrive(core, "alice")
    core.join(alice, "#a")
    core.join(alice, "#b")
    core.join(alice, "#a")
    assert core.part(alice, "#a") is not None
    assert list(alice.rooms) == ["#lobby", "#b"]
    core.part(alice, "#b")
    core.part(alice, "#lobby")
    assert alice.rooms == {}
    with pytest.raises(R.NotInRoom) as e:
        core.say(alice, "#lobby", "hello?")
    assert e.value == R.NotInRoom("#lobby")


def test_partNotMember(core):
    """
    Leaving a room one is not in is refused.
    """
    alice = arrive(core, "alice")
    with pytest.raises(R.NotInRoom) as e:
        core.part(alice, "#nowhere")
    assert e.value == R.NotInRoom("#nowhere")


def test_joinerIsShownTheRoom(core):
    """
    Whoever joins a room is shown its topic and its members in the order
    they joined, themselves last; the members already there hear the join
    once; nobody outside hears anything.
    """
    alice, bob, carol = (arrive(core, n) for n in ["alice", "bob", "carol"])
    core.join(bob, "#dev")
    core.setTopic(bob, "#dev", "bugs")
    core.join(carol, "#dev")
    clear(alice, bob, carol)
    room, joinedNow = core.join(alice, "dev")
    assert joinedNow and room is core.rooms["#dev"]
    assert alice.outbox.take() == [events.Entered("#dev", "alice", "bugs",
                                                  ("bob", "carol", "alice"))]
    assert bob.outbox.take() == [events.Joined("#dev", "alice")]
    assert carol.outbox.take() == [events.Joined("#dev", "alice")]
    core.join(carol, "#other")
    clear(alice, bob, carol)
    core.join(bob, "#other")
    assert carol.outbox.take() == [events.Joined("#other", "bob")]
    assert alice.outbox.take() == []


def test_joinTwiceAnnouncesNothing(core):
    """
    Joining a room one is already in announces nothing and says it was not
    joined now.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.join(alice, "#dev")
    clear(alice, bob)
    assert core.join(alice, "lobby") == (core.rooms["#lobby"], False)
    assert bob.outbox.take() == [] and alice.outbox.take() == []


def test_roomNamesIgnoreCase(core):
    """
    #Dev and #dev are one room, keeping the name it was created with.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    created, joinedNow = core.join(alice, "#Dev")
    assert joinedNow
    room, joinedNow = core.join(bob, "#dev")
    assert joinedNow and room is created
    assert room.name == "#Dev" and core.memberRoom(bob, "#DEV") is room


def test_topic(core):
    """
    Setting a topic stores it and tells the other members.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    clear(alice, bob)
    assert core.setTopic(alice, "#lobby", "cake") is core.rooms["#lobby"]
    assert core.rooms["#lobby"].topic == "cake"
    assert bob.outbox.take() == [events.TopicChanged("#lobby", "alice", "cake", 1000.0)]
    assert alice.outbox.take() == []


def test_unchangedTopicRefused(core):
    """
    Setting the topic a room already has is refused and announces nothing.
    """
    alice, bob = arrive(core, "alice"), arrive(core, "bob")
    core.setTopic(alice, "#lobby", "cake")
    clear(alice, bob)
    with pytest.raises(R.TopicUnchanged) as e:
        core.setTopic(bob, "#lobby", "cake")
    assert e.value == R.TopicUnchanged("#lobby", "cake")
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
    core.say(alice, "#lobby", "hello")
    assert carol.outbox.take() == [events.Quit("#lobby", "bob", "too slow"),
                                   events.Said("#lobby", "alice", "hello", 1000.0)]


def test_awayChangesReachThoseWhoShareARoom(core):
    """
    Going away and coming back is told once to each user who shares a room
    with the one who changed (however many rooms they share), and to
    nobody else; setting the same reason again tells nobody.
    """
    alice, bob, carol = arrive(core, "alice"), arrive(core, "bob"), arrive(core, "carol")
    core.join(alice, "#side")
    core.join(bob, "#side")
    core.part(carol, "#lobby")
    clear(alice, bob, carol)
    core.setAway(alice, "lunch")
    core.setAway(alice, "lunch")
    core.setAway(alice, "")
    assert bob.outbox.take() == [events.AwayChanged("alice", "lunch"),
                                 events.AwayChanged("alice", "")]
    assert alice.outbox.take() == [] and carol.outbox.take() == []


def test_awayJoinerIsToldToTheRoom(core):
    """
    Someone away who joins a room is told to its members as away, after
    their join (IRC's away-notify wants it); nobody away, nothing told.
    """
    alice, bob, carol = arrive(core, "alice"), arrive(core, "bob"), arrive(core, "carol")
    core.join(bob, "#side")
    core.setAway(alice, "lunch")
    clear(alice, bob, carol)
    core.join(alice, "#side")
    assert bob.outbox.take() == [events.Joined("#side", "alice"),
                                 events.AwayChanged("alice", "lunch")]
    clear(alice)
    core.join(carol, "#side")
    assert [bob.outbox.take(), alice.outbox.take()] == [[events.Joined("#side", "carol")]] * 2


def _listedOnEntering(user):
    return [e.listed for e in user.outbox.take() if isinstance(e, events.Entered)]


def test_newcomerIsGivenTheMembersSortedForListing(core, monkeypatch):
    """
    Each newcomer's L{events.Entered} carries the members' nicknames sorted
    as L{sortedNicks} sorts them (kept by the room from join to join, not
    sorted anew), after joins in any order, parts, renames and a room
    grown past L{LISTED_MAX} and back.
    """
    monkeypatch.setattr(chat, "LISTED_MAX", 4)
    users = {}
    for nick in ["dave", "Bob", "alice", "Carol"]:
        users[nick] = user = arrive(core, nick)
        core.join(user, "#dev")
        assert _listedOnEntering(user) == [
            tuple(sortedNicks(core.rooms["#dev"].names))]
    assert core.rooms["#dev"].names == ["dave", "Bob", "alice", "Carol"]
    assert core.rooms["#dev"].listing[1] == ["alice", "Bob", "Carol", "dave"]
    erin = arrive(core, "erin")
    core.join(erin, "#dev")
    assert _listedOnEntering(erin) == [None]
    core.part(users["Bob"], "#dev")
    core.rename(users["dave"], "Aaron")
    frank = arrive(core, "frank")
    core.join(frank, "#dev")
    assert _listedOnEntering(frank) == [None]
    core.part(erin, "#dev")
    core.part(frank, "#dev")
    ben = arrive(core, "ben")
    core.join(ben, "#dev")
    assert _listedOnEntering(ben) == [("Aaron", "alice", "ben", "Carol")]
    bea = arrive(core, "BEA")
    core.part(users["alice"], "#dev")
    core.join(bea, "#dev")
    assert _listedOnEntering(bea) == [("Aaron", "BEA", "ben", "Carol")]

"""
Moderation rules in the core, with no reactor or sockets: who may kick, ban
and mute, who may not, what everyone is told, and how long it lasts.  Users
act through their L{chatd.core.session.Session}, as front ends do, naming
the room of every request.
"""

import pytest

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.bans import ADDRESS, NICK, Ban, BanList
from trustsupport import Trust, clear, result


@pytest.fixture
def trust():
    return Trust()


def test_operatorKicksFromTheRoom(trust):
    """
    An identified operator kicks a member out of a room: every member, the
    kicked one included, is told once; the kicked user is no longer in the
    room but still connected.
    """
    op = trust.arrive("op", password="op-password")
    bob, carol = trust.arrive("bob"), trust.arrive("carol")
    clear(op, bob, carol)
    op.kick("#lobby", "bob", "calm down")
    kicked = events.Kicked("#lobby", "bob", "op", "calm down")
    assert [op.outbox.take(), bob.outbox.take(), carol.outbox.take()] == [
        [kicked], [kicked, events.PutOut("#lobby")], [kicked]]
    assert "bob" not in trust.members("#lobby")
    assert bob.rooms == [] and bob.connected and not bob.outbox.hungUp
    assert trust.core.user("bob").outbox is bob.outbox


def test_operatorMustBeIdentified(trust):
    """
    Nobody can use an operator's nickname without its password; the operator
    under another nickname is not an operator, may not kick, and is not
    protected from moderation either: protection follows proof.
    """
    impostor = trust.connect()
    with pytest.raises(R.PasswordRequired):
        impostor.claim("op")
    op = trust.arrive("op", password="op-password")
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    owner.join("#den")
    op.join("#den")
    op.rename("op_away")
    clear(op, bob)
    assert not op.isOperator
    with pytest.raises(R.NotModerator) as e:
        op.kick("#lobby", "bob")
    assert e.value == R.NotModerator("#lobby")
    assert bob.outbox.take() == [] and "bob" in trust.members("#lobby")
    owner.kick("#den", "op_away")
    assert "op_away" not in trust.members("#den")


def test_ordinaryUsersMayNotModerate(trust):
    """
    A user who is neither operator nor owner may not kick, ban, mute,
    unmute, unban or list bans.
    """
    alice, bob = trust.arrive("alice"), trust.arrive("bob")
    for attempt in (lambda: alice.kick("#lobby", "bob"),
                    lambda: alice.ban("#lobby", "bob"),
                    lambda: alice.mute("#lobby", "bob"),
                    lambda: alice.unmute("#lobby", "bob"),
                    lambda: alice.unban("#lobby", "bob"),
                    lambda: alice.bans("#lobby")):
        with pytest.raises(R.NotModerator) as e:
            attempt()
        assert e.value == R.NotModerator("#lobby")
    assert bob.outbox.take() == []


def test_moderatingNeedsMembership(trust):
    """
    Even an operator moderates only in a room they are in: naming another
    room is refused, and its members hear nothing.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    bob.join("#side")
    clear(bob)
    with pytest.raises(R.NotInRoom) as e:
        op.kick("#side", "bob")
    assert e.value == R.NotInRoom("#side")
    assert bob.outbox.take() == [] and bob.isIn(trust.core.rooms["#side"])


def test_registeredCreatorOwnsTheRoom(trust):
    """
    The registered, identified creator of a room owns it and may kick there,
    but not in the lobby or in a room someone else created.
    """
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    owner.join("#den")
    bob.join("#den")
    assert trust.core.rooms["#den"].owner == "owner"
    clear(owner, bob)
    owner.kick("#den", "bob", "")
    assert bob.outbox.take() == [events.Kicked("#den", "bob", "owner", ""),
                                 events.PutOut("#den")]
    with pytest.raises(R.NotModerator) as e:
        owner.kick("#lobby", "bob")
    assert e.value == R.NotModerator("#lobby")
    bob.join("#bobs")
    owner.join("#bobs")
    with pytest.raises(R.NotModerator) as e:
        owner.kick("#bobs", "bob")
    assert e.value == R.NotModerator("#bobs")


def test_creatorModeratesWhileTheyStay(trust):
    """
    The creator of a room moderates it while they are in it, as the creator
    of a channel is its operator on IRC servers, registered or not; not
    being identified, they own nothing: the room is not kept.  Nobody else
    there moderates it, and the lobby has no creator.
    """
    alice, bob, carol = trust.arrive("alice"), trust.arrive("bob"), trust.arrive("carol")
    alice.join("#free")
    bob.join("#free")
    carol.join("#free")
    room = trust.core.rooms["#free"]
    assert room.owner is None and room.creator is trust.core.user("alice")
    assert [m.nick for m in alice.moderators(room)] == ["alice"]
    with pytest.raises(R.NotModerator) as e:
        bob.kick("#free", "carol")
    assert e.value == R.NotModerator("#free")
    with pytest.raises(R.NotModerator):
        alice.kick("#lobby", "bob")
    clear(alice, bob, carol)
    alice.kick("#free", "bob", "out")
    kicked = events.Kicked("#free", "bob", "alice", "out")
    assert [alice.outbox.take(), bob.outbox.take(), carol.outbox.take()] == [
        [kicked], [kicked, events.PutOut("#free")], [kicked]]
    alice.mute("#free", "carol")
    with pytest.raises(R.Muted):
        carol.say("#free", "hello?")
    alice.unmute("#free", "carol")
    alice.part("#free")
    assert room.creator is None and carol.moderators(room) == []
    alice.join("#free")
    with pytest.raises(R.NotModerator):
        alice.kick("#free", "carol")
    alice.part("#free")
    carol.part("#free")
    assert "#free" not in trust.core.rooms and "#free" not in trust.core.kept


def test_creatorCannotTouchOperatorsOrOwners(trust):
    """
    A creator's power stops at those who protect everyone: an identified
    operator is no target for them, and a kept room's first joiner is no
    creator, so its registered owner keeps it.
    """
    alice = trust.arrive("alice")
    op = trust.arrive("op", password="op-password")
    alice.join("#free")
    op.join("#free")
    clear(alice, op)
    for attempt in (lambda: alice.kick("#free", "op"), lambda: alice.mute("#free", "op")):
        with pytest.raises(R.IsModerator):
            attempt()
    with pytest.raises(R.IsOperator):
        alice.ban("#free", "op")
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    owner.part("#den")
    room, _ = alice.join("#den")
    assert room.owner == "owner" and room.creator is None
    with pytest.raises(R.NotModerator):
        alice.ban("#den", "bob")


def test_mutedCreatorLosesTheRoom(trust):
    """
    An operator who mutes a room's creator takes their moderation away too:
    a creator could otherwise lift their own mute.
    """
    alice, bob = trust.arrive("alice"), trust.arrive("bob")
    op = trust.arrive("op", password="op-password")
    for person in (alice, bob, op):
        person.join("#free")
    clear(bob)
    op.mute("#free", "alice")
    assert bob.outbox.take() == [events.Muted("#free", "alice", "op", None, demoted=True)]
    room = trust.core.rooms["#free"]
    assert room.creator is None and [m.nick for m in op.moderators(room)] == ["op"]
    with pytest.raises(R.NotModerator):
        alice.unmute("#free", "alice")
    with pytest.raises(R.Muted):
        alice.say("#free", "unfair")


def test_creatorsBansEndWithTheRoom(trust):
    """
    A creator bans from their room alone, the ban is never stored, and it
    ends when the room empties: creating a room once does not keep its
    name from anyone afterwards.
    """
    alice, bob = trust.arrive("alice"), trust.arrive("bob")
    alice.join("#free")
    bob.join("#free")
    clear(alice, bob)
    alice.ban("#free", "bob", None, "")
    assert bob.outbox.take() == [events.Banned("#free", "bob", "alice", None, "", False),
                                 events.Kicked("#free", "bob", "alice", "banned"),
                                 events.PutOut("#free")]
    assert "bob" not in trust.members("#free") and bob.connected
    with pytest.raises(R.Banned):
        bob.join("#free")
    # Named as the room is spelt, however the join spelt it.
    with pytest.raises(R.Banned) as e:
        bob.join("#FREE")
    assert e.value.room == "#free"
    bob.join("#other")
    assert trust.accounts.bans() == []
    alice.part("#free")
    bob.join("#free")
    assert trust.core.rooms["#free"].creator is trust.core.user("bob")
    assert trust.core.moderation.bans.all() == []


def test_moderatorsAreNotTargets(trust):
    """
    A room owner cannot kick, mute or ban an operator; nobody can kick
    themselves or the room's owner.
    """
    owner = trust.arrive("owner", password="owner-password")
    op = trust.arrive("op", password="op-password")
    owner.join("#den")
    op.join("#den")
    with pytest.raises(R.IsModerator) as e:
        owner.kick("#den", "op")
    assert e.value == R.IsModerator("op", "#den")
    with pytest.raises(R.IsModerator) as e:
        owner.mute("#den", "op")
    assert e.value == R.IsModerator("op", "#den")
    with pytest.raises(R.IsOperator) as e:
        owner.ban("#den", "op")
    assert e.value == R.IsOperator("op")
    with pytest.raises(R.IsModerator) as e:
        op.kick("#den", "owner")
    assert e.value == R.IsModerator("owner", "#den")
    with pytest.raises(R.NotToYourself) as e:
        op.kick("#den", "op")
    assert e.value == R.NotToYourself()
    assert {"op", "owner"} <= set(trust.members("#den"))


def test_serverBanByNickname(trust):
    """
    An operator's ban puts the user out of the server at once: the room hears
    the ban and the quit, the banned user hears the ban and is hung up; the
    nickname cannot be taken again until the ban ends, and the ban is stored.
    """
    op = trust.arrive("op", password="op-password")
    troll, carol = trust.arrive("troll", host="192.0.2.66"), trust.arrive("carol")
    clear(op, troll, carol)
    op.ban("#lobby", "troll", 3600, "spam")
    banned = events.Banned("#lobby", "troll", "op", 3600, "spam", True)
    assert carol.outbox.take() == [banned, events.Quit("#lobby", "troll", "banned")]
    assert troll.outbox.take() == [banned, events.Expelled("op", 3600, "spam")]
    assert troll.outbox.hungUp and not troll.connected
    assert trust.core.user("troll") is None
    assert list(trust.accounts.stored.values()) == [
        Ban(NICK, "troll", "", 1000 + 3600, "spam", "op", 1000)]
    with pytest.raises(R.Banned) as e:
        trust.arrive("TROLL")
    assert e.value == R.Banned("", 3600, "spam")
    trust.clock.advance(3600)
    trust.arrive("troll")
    assert trust.accounts.stored == {}


def test_mutedMembersAwayIsNotPushedIntoTheRoom(trust):
    """
    A muted member's away message is not pushed to those who share only
    the muting room with them (set again and again, or shown again at each
    join, it would be their voice there); those who share another room are
    told; anyone may still ask (/whois).
    """
    op = trust.arrive("op", password="op-password")
    bob, carol, dave = trust.arrive("bob"), trust.arrive("carol"), trust.arrive("dave")
    for user in (op, bob, dave):
        user.join("#side")
    carol.part("#lobby")
    carol.join("#side")
    op.mute("#side", "bob", 600)
    bob.part("#lobby")
    clear(op, bob, carol, dave)
    bob.setAway("buy my stuff")
    bob.part("#side")
    bob.join("#side")
    assert [e for e in carol.outbox.take() if type(e) is events.AwayChanged] == []
    dave.join("#elsewhere")
    bob.join("#elsewhere")
    assert events.AwayChanged("bob", "buy my stuff") in dave.outbox.take()
    assert carol.whois("bob").away == "buy my stuff"


def test_aUsersQuitCannotPassForAServerBan(trust):
    """
    A user's own quit words reach their rooms marked as theirs (as IRC
    servers mark them), so "/quit banned" does not read as the server's
    ban; a real ban's quit is the server's word alone.
    """
    op = trust.arrive("op", password="op-password")
    liar, troll, carol = trust.arrive("liar"), trust.arrive("troll"), trust.arrive("carol")
    clear(op, liar, troll, carol)
    liar.quit("banned", said=True)
    op.ban("#lobby", "troll", 3600, "spam")
    assert carol.outbox.take() == [
        events.Quit("#lobby", "liar", "Quit: banned"),
        events.Banned("#lobby", "troll", "op", 3600, "spam", True),
        events.Quit("#lobby", "troll", "banned")]


def test_ghostDoesNotLiftANicknameBan(trust):
    """
    The right password does not take a banned nickname back: /ghost from
    another nickname is refused as the ban says, and nobody becomes it.
    """
    op = trust.arrive("op", password="op-password")
    trust.arrive("owner", password="owner-password")
    op.ban("#lobby", "owner", 3600, "spam")
    someone = trust.arrive("someone")
    with pytest.raises(R.Banned) as e:
        someone.ghost("owner", "owner-password")
    assert e.value == R.Banned("", 3600, "spam")
    assert someone.nick == "someone"
    assert trust.core.user("owner") is None


def test_serverBanByAddress(trust):
    """
    A ban on an address puts out everyone connecting from it and refuses new
    connections from it, whatever nickname they would choose; other
    addresses are not touched.
    """
    op = trust.arrive("op", password="op-password")
    one = trust.arrive("one", host="198.51.100.7")
    two = trust.arrive("two", host="198.51.100.7")
    other = trust.arrive("other", host="198.51.100.8")
    op.ban("#lobby", "198.51.100.7", None, "")
    assert one.outbox.hungUp and two.outbox.hungUp and not other.outbox.hungUp
    with pytest.raises(R.Banned) as e:
        trust.arrive("fresh", host="198.51.100.7")
    assert e.value == R.Banned("", None, "")
    assert trust.accounts.stored[(ADDRESS, "198.51.100.7", "")].until is None


def test_serverBanByRange(trust):
    """
    A ban on a range of addresses (CIDR) puts out everyone connecting from
    inside it and refuses new connections from inside it; addresses outside
    are not touched; /unban finds it under another spelling of the range.
    """
    op = trust.arrive("op", password="op-password")
    inside = [trust.arrive("one", host="198.51.100.7"),
              trust.arrive("two", host="198.51.100.200")]
    outside = trust.arrive("other", host="198.51.101.1")
    op.ban("#lobby", "198.51.100.0/24", None, "")
    assert [u.outbox.hungUp for u in inside + [outside]] == [True, True, False]
    with pytest.raises(R.Banned) as e:
        trust.arrive("fresh", host="198.51.100.9")
    assert e.value == R.Banned("", None, "")
    assert (ADDRESS, "198.51.100.0/24", "") in trust.accounts.stored
    clear(op)
    op.unban("#lobby", "198.51.100.77/24")
    assert op.outbox.take() == [events.Unbanned("#lobby", "198.51.100.0/24", "op")]
    assert trust.accounts.stored == {}
    trust.arrive("fresh", host="198.51.100.9")


def test_ipv6RangeAndSpellings(trust):
    """
    IPv6 addresses and ranges match however they are spelled (case, zeros);
    a range covers only its own addresses.
    """
    op = trust.arrive("op", password="op-password")
    op.ban("#lobby", "2001:DB8::/32", 60, "")
    with pytest.raises(R.Banned):
        trust.arrive("in", host="2001:db8:0:0::5")
    trust.arrive("out", host="2001:db9::1")
    op.ban("#lobby", "2001:0db9:0000::0001", None, "")
    with pytest.raises(R.Banned):
        trust.arrive("again", host="2001:db9::1")
    trust.clock.advance(60)
    trust.arrive("later", host="2001:db8::5")


def test_ipv4ClientsOfADualStackListener(trust):
    """
    An IPv4 client of an IPv6 listener arrives as ::ffff:a.b.c.d: bans on
    its IPv4 address or range cover it, a ban typed in the mapped form covers
    the plain IPv4 address, and the moderator's own-address guard sees
    through it.
    """
    op = trust.arrive("op", password="op-password", host="::ffff:192.0.2.1")
    with pytest.raises(R.CoversOwnAddress) as e:
        op.ban("#lobby", "192.0.2.0/24")
    assert e.value == R.CoversOwnAddress("192.0.2.0/24")
    op.ban("#lobby", "198.51.100.7")
    op.ban("#lobby", "203.0.113.0/24")
    op.ban("#lobby", "::FFFF:198.51.100.9")
    for host in ("::ffff:198.51.100.7", "::ffff:203.0.113.5", "198.51.100.9"):
        with pytest.raises(R.Banned):
            trust.arrive("x", host=host)
    trust.arrive("fine", host="::ffff:198.51.100.8")


@pytest.mark.parametrize("target", ["10.0.0.0/33", "10.0.0/8x", "fe80::/200"])
def test_badRangeRefused(trust, target):
    """
    A range that is not a valid CIDR block is refused, and nothing is banned.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(R.InvalidBanTarget) as e:
        op.ban("#lobby", target)
    assert e.value == R.InvalidBanTarget(target)
    assert op.bans("#lobby") == []


def test_banCoveringYourOwnAddressRefused(trust):
    """
    A moderator cannot ban an address or range they connect from themselves
    (on a default server everyone shares 127.0.0.1: it would ban everyone).
    """
    op = trust.arrive("op", password="op-password")
    for target in ("192.0.2.1", "192.0.2.0/24"):
        with pytest.raises(R.CoversOwnAddress) as e:
            op.ban("#lobby", target)
        assert e.value == R.CoversOwnAddress(target)
    assert op.bans("#lobby") == []


def test_roomBanByOwner(trust):
    """
    A room owner's ban puts the user out of that room only, kicked with
    the ban's reason for everyone there to see, and keeps them from
    joining it again; they stay connected and in their other rooms.
    """
    owner = trust.arrive("owner", password="owner-password")
    bob, carol = trust.arrive("bob"), trust.arrive("carol")
    owner.join("#den")
    bob.join("#den")
    carol.join("#den")
    clear(owner, bob, carol)
    owner.ban("#den", "bob", None, "rude")
    banned = events.Banned("#den", "bob", "owner", None, "rude", False)
    kicked = events.Kicked("#den", "bob", "owner", "rude")
    assert owner.outbox.take() == [banned, kicked]
    assert carol.outbox.take() == [banned, kicked]
    assert bob.outbox.take() == [banned, kicked, events.PutOut("#den")]
    assert trust.members("#den") == ["owner", "carol"]
    assert [room.name for room in bob.rooms] == ["#lobby"] and not bob.outbox.hungUp
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value == R.Banned("#den", None, "rude")
    owner.unban("#den", "bob")
    assert owner.outbox.take() == [events.Unbanned("#den", "bob", "owner")]
    bob.join("#den")


def test_unbanLiftsAServerBan(trust):
    """
    An operator's /unban lifts a server ban, in memory and in the store.
    """
    op = trust.arrive("op", password="op-password")
    op.ban("#lobby", "troll")
    clear(op)
    op.unban("#lobby", "troll")
    assert op.outbox.take() == [events.Unbanned("#lobby", "troll", "op")]
    assert trust.accounts.stored == {}
    trust.arrive("troll")
    with pytest.raises(R.NotBanned) as e:
        op.unban("#lobby", "troll")
    assert e.value == R.NotBanned("troll")


def test_unbanOfARoomNamedLiftsThatRoomsBanFirst(trust):
    """
    An operator's /unban #ROOM NICK, when both the room and the server ban
    NICK, lifts the room's ban (the one named); the server's is lifted by
    the next /unban.
    """
    op = trust.arrive("op", password="op-password")
    creator = trust.arrive("creator")
    creator.join("#den")
    creator.ban("#den", "zed", None, "room ban")
    op.ban("#lobby", "zed", None, "server ban")
    op.unban("#den", "zed")
    assert [(b.room, b.reason) for b in op.bans("#den")] == [("", "server ban")]
    op.unban("#den", "zed")
    assert op.bans("#den") == []


def test_restoredBansHold():
    """
    Bans handed over from the store at start (an earlier run's) are in force.
    """
    ban = Ban(NICK, "troll", "", None, "spam", "op", 500)
    trust = Trust(bans=[ban])
    with pytest.raises(R.Banned) as e:
        trust.arrive("troll")
    assert e.value == R.Banned("", None, "spam")
    op = trust.arrive("op", password="op-password")
    assert op.bans("#lobby") == [ban]


def test_muteStopsTalkingUntilItEnds(trust):
    """
    A muted member cannot say, act or set the topic in that room (others
    hear nothing), can elsewhere, and talks again once the mute ends.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    op.join("#side")
    bob.join("#side")
    clear(op, bob)
    op.mute("#lobby", "bob", 600)
    assert bob.outbox.take() == [events.Muted("#lobby", "bob", "op", 600)]
    for attempt in (lambda: bob.say("#lobby", "hi"), lambda: bob.act("#lobby", "waves"),
                    lambda: bob.setTopic("#lobby", "mine")):
        with pytest.raises(R.Muted) as e:
            attempt()
        assert e.value == R.Muted("#lobby")
    assert op.outbox.take() == [events.Muted("#lobby", "bob", "op", 600)]
    bob.say("#side", "over here")
    assert op.outbox.take() == [events.Said("#side", "bob", "over here", 1000.0)]
    trust.clock.advance(600)
    bob.say("#lobby", "back")
    assert [type(e) for e in op.outbox.take()] == [events.Said]


def test_unmute(trust):
    """
    /unmute lets a member talk again at once and is announced.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    op.mute("#lobby", "bob")
    clear(op, bob)
    op.unmute("#lobby", "bob")
    assert bob.outbox.take() == [events.Unmuted("#lobby", "bob", "op")]
    bob.say("#lobby", "free")
    with pytest.raises(R.NotMuted) as e:
        op.unmute("#lobby", "bob")
    assert e.value == R.NotMuted("bob", "#lobby")


def test_banTargetMustBeNickOrAddress(trust):
    """
    A ban target that is neither a nickname nor an address is refused.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(R.InvalidBanTarget) as e:
        op.ban("#lobby", "#room")
    assert e.value == R.InvalidBanTarget("#room")


def test_roomBanFollowsTheUserAcrossNicknames(trust):
    """
    Someone room-banned by nickname cannot get back in by taking another
    nickname, whether or not they were in the room when banned; once the
    ban is lifted they can.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    bob = trust.arrive("bob")
    owner.ban("#den", "bob", None, "")
    bob.rename("notbob")
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value == R.Banned("#den", None, "")
    owner.unban("#den", "bob")
    bob.join("#den")
    assert bob.isIn(trust.core.rooms["#den"])


def test_timedRoomBanSaysItsTimeLeftUnderAnyNickname(trust):
    """
    Someone room-banned by nickname for 10 minutes, put out of the room,
    is told the time left whether they ask under the banned nickname or
    under another one (kept out as the person the ban covered), and under
    the banned one again.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    bob = trust.arrive("bob")
    bob.join("#den")
    owner.ban("#den", "bob", 600, "")
    trust.clock.advance(60)
    for nick in ("bob", "notbob", "bob"):
        if bob.nick != nick:
            bob.rename(nick)
        with pytest.raises(R.Banned) as e:
            bob.join("#den")
        assert e.value == R.Banned("#den", 540, ""), nick
    trust.clock.advance(540)
    bob.join("#den")
    assert bob.isIn(trust.core.rooms["#den"])


def test_roomBanRefusalSaysTheLongestTimeLeft(trust):
    """
    Someone held out of a room by several timed bans (as the person one
    covered, and by the nickname and address they ask under) is told the
    time left of the one that holds longest, not of whichever was found
    first; a ban until lifted outlasts any.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    bob = trust.arrive("bob", host="198.51.100.7")
    bob.join("#den")
    owner.ban("#den", "bob", 600, "")
    owner.ban("#den", "notbob", 300, "")
    bob.rename("notbob")
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value.seconds == 600
    owner.ban("#den", "198.51.100.7", 900, "")
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value.seconds == 900
    owner.ban("#den", "notbob", None, "")
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value.seconds is None


def test_aShorterBanDoesNotShortenTheHoldOnWhomItCovers(trust):
    """
    Someone put out by a 10 minute ban who takes another nickname, which is
    then banned for 5 minutes, stays out for the 10: the shorter ban does
    not replace the longer one's hold on them.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    bob = trust.arrive("bob")
    bob.join("#den")
    owner.ban("#den", "bob", 600, "")
    bob.rename("notbob")
    owner.ban("#den", "notbob", 300, "")
    trust.clock.advance(400)
    with pytest.raises(R.Banned) as e:
        bob.join("#den")
    assert e.value.seconds == 200
    trust.clock.advance(200)
    bob.join("#den")


def test_muteSurvivesARenameAndANewConnection(trust):
    """
    A muted user cannot shed the mute: /nick is refused while muted (and the
    mute is the connection's anyway), and an identified user who comes back
    on a new connection, taking their nickname back with /ghost, is still
    muted through their account.
    """
    op = trust.arrive("op", password="op-password")
    trust.accounts.passwords["chatty"] = "chatty-password"
    chatty = trust.arrive("chatty", password="chatty-password")
    bob = trust.arrive("bob")
    op.mute("#lobby", "chatty", 600)
    op.mute("#lobby", "bob")
    with pytest.raises(R.NoRenameWhileMuted) as e:
        bob.rename("notbob")
    assert e.value == R.NoRenameWhileMuted("#lobby")
    with pytest.raises(R.NoRenameWhileMuted):
        bob.ghost("owner", "owner-password")
    assert bob.nick == "bob"
    bob.part("#lobby")
    bob.rename("notbob")
    bob.join("#lobby")
    with pytest.raises(R.Muted):
        bob.say("#lobby", "I am someone else now")
    again = trust.connect(host="192.0.2.50")
    result(again.ghost("chatty", "chatty-password"))
    assert chatty.outbox.hungUp and again.nick == "chatty"
    clear(op)
    with pytest.raises(R.Muted):
        again.say("#lobby", "fresh start")
    assert op.outbox.take() == []
    trust.clock.advance(600)
    again.say("#lobby", "the mute ended")
    op.unmute("#lobby", "notbob")
    bob.say("#lobby", "unmuted")


def test_muteHoldsTheNicknameAcrossAReconnect(trust):
    """
    A mute also holds the nickname, while the room lives: an unproved user
    who comes back under it, on a new connection from anywhere, is still
    muted (before, the connection alone was); under a new nickname on a new
    connection they are not (a mute does not take the address, which
    strangers share); /unmute of the nickname lifts it.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob", host="192.0.2.7")
    op.mute("#lobby", "bob", 600)
    bob.quit("brb")
    again = trust.arrive("bob", host="198.51.100.9")
    clear(op)
    with pytest.raises(R.Muted) as e:
        again.say("#lobby", "fresh start")
    assert e.value == R.Muted("#lobby")
    with pytest.raises(R.NoRenameWhileMuted):
        again.rename("notbob")
    other = trust.arrive("robert", host="192.0.2.7")
    clear(op)
    other.say("#lobby", "a new name")
    assert op.outbox.take() == [events.Said("#lobby", "robert", "a new name", 1000.0)]
    again.quit("gone")
    op.unmute("#lobby", "bob")
    third = trust.arrive("bob", host="192.0.2.7")
    third.say("#lobby", "unmuted")
    assert op.outbox.take()[-1] == events.Said("#lobby", "bob", "unmuted", 1000.0)


def test_unmuteLiftsTheNicknameTheMuteWasUnder(trust):
    """
    A muted user who parted and came back under another nickname, once
    unmuted under it, may take their first nickname back and talk.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    op.mute("#lobby", "bob")
    bob.part("#lobby")
    bob.rename("notbob")
    bob.join("#lobby")
    op.unmute("#lobby", "notbob")
    bob.rename("bob")
    clear(op)
    bob.say("#lobby", "me again")
    assert op.outbox.take() == [events.Said("#lobby", "bob", "me again", 1000.0)]


def test_nicknameMuteDoesNotSilenceAnOperatorWhoProvesIt():
    """
    A stranger muted under an operator's nickname before it was registered
    does not leave the operator muted once they register and prove it.
    """
    trust = Trust(operators=["op", "op2"])
    op = trust.arrive("op", password="op-password")
    stranger = trust.arrive("op2")
    op.mute("#lobby", "op2")
    stranger.quit("gone")
    real = trust.arrive("op2")
    result(real.register("op2-password"))
    assert real.isOperator
    clear(op)
    real.say("#lobby", "it is me")
    assert op.outbox.take() == [events.Said("#lobby", "op2", "it is me", 1000.0)]


def test_serverBanOnARegisteredNicknameCoversItsAccount(trust):
    """
    A server ban on a registered nickname holds against its owner under any
    nickname: /ghost is refused, and so is proving the account by taking the
    nickname with its password from a fresh connection.
    """
    op = trust.arrive("op", password="op-password")
    trust.accounts.passwords["troll"] = "troll-password"
    trust.arrive("troll", password="troll-password")
    op.ban("#lobby", "troll", None, "")
    fresh = trust.connect(host="192.0.2.60")
    with pytest.raises(R.Banned):
        fresh.ghost("troll", "troll-password")
    with pytest.raises(R.Banned):
        fresh.claim("troll", "troll-password")
    assert trust.core.user("troll") is None


@pytest.mark.parametrize("target", ["0.0.0.0/0", "::/0", "0.0.0.0/0.0.0.0"])
def test_noBanOnEveryone(trust, target):
    """
    A ban on every address of a family is refused, from any address.
    """
    owner = trust.arrive("owner", password="owner-password", host="::1")
    owner.join("#den")
    op = trust.arrive("op", password="op-password", host="198.51.100.1")
    for moderator, room in ((owner, "#den"), (op, "#lobby")):
        with pytest.raises(R.CoversEveryone) as e:
            moderator.ban(room, target)
        assert e.value == R.CoversEveryone(target)
    assert op.bans("#lobby") == []


def test_ownAddressRuleCoversBothFamilies(trust):
    """
    A moderator on ::1 cannot ban 127.0.0.1 (every local IPv4 user), nor one
    on 127.0.0.1 ::1, nor a range holding either.
    """
    owner = trust.arrive("owner", password="owner-password", host="::1")
    owner.join("#den")
    for target in ("127.0.0.1", "127.0.0.0/8", "::1"):
        with pytest.raises(R.CoversOwnAddress):
            owner.ban("#den", target)
    op = trust.arrive("op", password="op-password", host="127.0.0.1")
    for target in ("::1", "::/64", "::ffff:127.0.0.1"):
        with pytest.raises(R.CoversOwnAddress):
            op.ban("#lobby", target)


def test_noBanCoversAnOperator(trust):
    """
    A ban on the address of a connected, identified operator is refused;
    and an operator connecting from a banned address, or joining a room
    that bans them, gets in all the same.
    """
    op = trust.arrive("op", password="op-password", host="198.51.100.5")
    owner = trust.arrive("owner", password="owner-password", host="192.0.2.9")
    owner.join("#den")
    op.join("#den")
    with pytest.raises(R.CoversOperator) as e:
        owner.ban("#den", "198.51.100.0/24")
    assert e.value == R.CoversOperator("198.51.100.0/24", "op")
    op.quit("bye")
    owner.ban("#den", "198.51.100.0/24")
    trust.core.moderation.bans.add(Ban(ADDRESS, "198.51.100.0/24", "", None, "", "x", 0))
    with pytest.raises(R.Banned):
        trust.arrive("someone", host="198.51.100.6")
    back = trust.arrive("op", password="op-password", host="198.51.100.5")
    back.join("#den")
    assert back.isIn(trust.core.rooms["#den"])


def test_operatorLiftsAnyBanFromAnywhere(trust):
    """
    An operator lists and lifts a room's ban from outside the room (and the
    room is told); a room's owner lifts their own room's ban from elsewhere.
    """
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    owner.join("#den")
    owner.ban("#den", "bob", None, "")
    owner.ban("#den", "carol", None, "")
    op = trust.arrive("op", password="op-password")
    assert [b.target for b in op.bans("#lobby")] == ["bob", "carol"]
    clear(owner, op)
    op.unban("#den", "bob")
    assert owner.outbox.take() == [events.Unbanned("#den", "bob", "op")]
    assert op.outbox.take() == [events.Unbanned("#den", "bob", "op")]
    bob.join("#den")
    owner.part("#den")
    clear(owner)
    owner.unban("#den", "carol")
    assert owner.outbox.take() == [events.Unbanned("#den", "carol", "owner")]
    with pytest.raises(R.NotModerator):
        bob.unban("#den", "carol")


def test_ownedRoomIsKeptWhenItEmpties(trust):
    """
    A room created by its registered owner keeps owner, topic and bans when
    it empties: whoever joins it next does not own it, and the banned stay
    out.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.join("#den")
    owner.setTopic("#den", "the owner's den")
    owner.ban("#den", "troll", None, "")
    owner.part("#den")
    assert "#den" not in trust.core.rooms
    assert trust.accounts.kept["#den"] == ("#den", "owner", "the owner's den", None)
    newcomer = trust.arrive("newcomer")
    room, _ = newcomer.join("#den")
    assert room.owner == "owner" and room.topic == "the owner's den"
    with pytest.raises(R.NotModerator):
        newcomer.unban("#den", "troll")
    with pytest.raises(R.Banned):
        trust.arrive("troll").join("#den")


def test_keptRoomsComeBackAfterARestart(trust):
    """
    The rooms stored by an earlier run are kept rooms again, with owner and
    topic.
    """
    trust.core.restoreRooms([("#Den", "owner", "back again", 7)])
    visitor = trust.arrive("visitor")
    room, _ = visitor.join("#den")
    assert (room.name, room.owner, room.topic, room.firstId) == (
        "#Den", "owner", "back again", 7)


def test_aRoomCreatedAgainDoesNotHandOverItsPast():
    """
    A room without an owner that empties and is created again shows its new
    members none of the earlier room's lines (replay and search alike); a
    kept room shows its whole history, and so does the lobby.
    """
    from support import MemoryHistory

    trust = Trust()
    history = MemoryHistory()
    trust.core.history = history
    alice = trust.arrive("alice")
    owner = trust.arrive("owner", password="owner-password")
    for room in ("#free", "#den"):
        owner.join(room) if room == "#den" else alice.join(room)
    alice.say("#free", "secret plans")
    owner.say("#den", "kept words")
    alice.say("#lobby", "lobby words")
    alice.part("#free")
    owner.part("#den")
    alice.quit("bye")
    newcomer = trust.arrive("newcomer")
    newcomer.join("#free")
    newcomer.join("#den")

    def read(deferred):
        history.answer()
        return [e.text for e in result(deferred)]

    assert read(newcomer.recent("#free", 50)) == []
    assert read(newcomer.search(["secret"], 20)) == []
    assert read(newcomer.recent("#den", 50)) == ["kept words"]
    assert read(newcomer.recent("#lobby", 50)) == ["lobby words"]
    newcomer.say("#free", "new secret")
    assert read(newcomer.recent("#free", 50)) == ["new secret"]
    assert read(newcomer.search(["secret"], 20)) == ["new secret"]


@pytest.mark.parametrize("target", ["[::1]", "1.2.3.4:80", "a.b", "1.2.3.4%x", "..."])
def test_banTargetsThatMatchNobodyAreRefused(trust, target):
    """
    A ban must be able to hold someone: a host name, a port, brackets or
    a zone are not addresses a peer connects from, and are refused.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(R.InvalidBanTarget):
        op.ban("#lobby", target)


@pytest.mark.parametrize("target", ["128.0.0.0/1", "0.0.0.0/7", "2000::/3"])
def test_banOnHalfOfEveryoneRefused(trust, target):
    """
    A range wider than a /8 of IPv4 or a /16 of IPv6 covers (nearly)
    everyone, and is refused like 0.0.0.0/0.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(R.CoversEveryone):
        op.ban("#lobby", target)


def test_mappedRangesAndSingleAddressRangesAreWhatTheyMean(trust):
    """
    ::ffff:198.51.100.0/120 bans the IPv4 range it maps (so it holds IPv4
    clients), and 198.51.100.7/32 is the address 198.51.100.7, lifted by
    either spelling.
    """
    op = trust.arrive("op", password="op-password")
    op.ban("#lobby", "::ffff:198.51.100.0/120")
    with pytest.raises(R.Banned):
        trust.arrive("visitor", host="198.51.100.9")
    op.ban("#lobby", "203.0.113.7/32")
    op.unban("#lobby", "203.0.113.7")
    trust.arrive("returning", host="203.0.113.7")


def test_creatorLiftsOnlyACreatorsMute(trust):
    """
    A room's creator lifts or changes only the mutes a creator set: an
    operator's mute, of the user or of the account they proved (once they
    come back on a new connection too), is not theirs to lift nor to
    shorten, and nobody is told anything; the operator lifts it.
    """
    trust.accounts.passwords["bob"] = "bob-password"
    alice, carol = trust.arrive("alice"), trust.arrive("carol")
    bob = trust.arrive("bob", password="bob-password")
    op = trust.arrive("op", password="op-password")
    for person in (alice, bob, carol, op):
        person.join("#free")
    op.mute("#free", "bob")
    alice.mute("#free", "carol")
    clear(alice, bob, carol, op)
    with pytest.raises(R.MutedByHigher) as e:
        alice.unmute("#free", "bob")
    assert e.value == R.MutedByHigher("bob", "#free")
    with pytest.raises(R.MutedByHigher):
        alice.mute("#free", "bob", 1)
    bob.quit("back soon")
    bob = trust.arrive("bob", password="bob-password")
    bob.join("#free")
    clear(alice, bob, carol, op)
    with pytest.raises(R.MutedByHigher):
        alice.unmute("#free", "bob")
    with pytest.raises(R.Muted):
        bob.say("#free", "still muted?")
    assert [p.outbox.take() for p in (alice, bob, carol, op)] == [[], [], [], []]
    alice.unmute("#free", "carol")
    unmuted = events.Unmuted("#free", "carol", "alice")
    assert [p.outbox.take() for p in (alice, bob, carol, op)] == [[unmuted]] * 4
    op.unmute("#free", "bob")
    assert bob.outbox.take() == [events.Unmuted("#free", "bob", "op")]
    alice.mute("#free", "bob")
    alice.unmute("#free", "bob")
    assert bob.outbox.take() == [events.Muted("#free", "bob", "alice", None),
                                 events.Unmuted("#free", "bob", "alice")]


def test_ownerCannotLiftAnOperatorsMute(trust):
    """
    Ranks hold for owners too: an operator's mute in an owned room is the
    operator's to lift; the owner's own mute is the owner's.
    """
    owner = trust.arrive("owner", password="owner-password")
    op = trust.arrive("op", password="op-password")
    bob, carol = trust.arrive("bob"), trust.arrive("carol")
    for person in (owner, op, bob, carol):
        person.join("#den")
    op.mute("#den", "bob")
    owner.mute("#den", "carol")
    with pytest.raises(R.MutedByHigher):
        owner.unmute("#den", "bob")
    owner.unmute("#den", "carol")
    op.unmute("#den", "bob")
    with pytest.raises(R.NotMuted):
        owner.unmute("#den", "bob")


def test_anAddressIsBannedUnderOneSpelling(trust):
    """
    An address or range is banned, announced and listed in its one
    spelling: /32 of an address is that address, so banning both spellings
    makes one ban, replaced (its duration and reason) by the second.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    clear(op, bob)
    op.ban("#lobby", "203.0.113.7", None, "")
    op.ban("#lobby", "203.0.113.7/32", 60, "again")
    op.ban("#lobby", "2001:DB8:0::1/128")
    op.ban("#lobby", "198.51.100.77/24")
    # (Covering nobody here, they are told to the operator alone.)
    assert bob.outbox.take() == []
    assert op.outbox.take() == [
        events.Banned("#lobby", "203.0.113.7", "op", None, "", True),
        events.Banned("#lobby", "203.0.113.7", "op", 60, "again", True),
        events.Banned("#lobby", "2001:db8::1", "op", None, "", True),
        events.Banned("#lobby", "198.51.100.0/24", "op", None, "", True)]
    assert [(ban.target, ban.reason) for ban in op.bans("#lobby")] == [
        ("203.0.113.7", "again"), ("2001:db8::1", ""), ("198.51.100.0/24", "")]


def test_creatorLiftsOnlyACreatorsRoomBanAndMute(trust):
    """
    Where a room has both a creator and an owner (an owner learnt of while
    the room is live), the creator may neither lift nor replace the owner's
    ban, nor lift the owner's mute; the owner lifts the creator's.
    """
    maud = trust.arrive("maud")
    maud.join("#den")
    trust.core.rooms["#den"].owner = "owner"
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    for person in (owner, bob):
        person.join("#den")
    owner.ban("#den", "troll", None, "for good")
    clear(maud, owner, bob)
    with pytest.raises(R.BannedByHigher) as e:
        maud.unban("#den", "Troll")
    assert e.value == R.BannedByHigher("Troll", "#den")
    with pytest.raises(R.BannedByHigher):
        maud.ban("#den", "troll", 1)
    assert [(ban.target, ban.by, ban.until) for ban in owner.bans("#den")] == [
        ("troll", "owner", None)]
    owner.mute("#den", "bob")
    with pytest.raises(R.MutedByHigher):
        maud.unmute("#den", "bob")
    maud.ban("#den", "spammer")
    owner.unban("#den", "spammer")
    owner.unmute("#den", "bob")
    maud.mute("#den", "bob")
    owner.unmute("#den", "bob")
    unbanned = events.Unbanned("#den", "spammer", "owner")
    assert bob.outbox.take() == [
        events.Muted("#den", "bob", "owner", None),
        events.Banned("#den", "spammer", "maud", None, "", False), unbanned,
        events.Unmuted("#den", "bob", "owner"), events.Muted("#den", "bob", "maud", None),
        events.Unmuted("#den", "bob", "owner")]


def test_creatorCannotLiftAnOperatorsMuteOfANickname(trust):
    """
    An operator's mute of a user who proved no nickname holds the nickname
    (they come back under it on a new connection): the room's creator may
    not lift it, with the user there or gone; the operator may.
    """
    alice, dave = trust.arrive("alice"), trust.arrive("dave")
    op = trust.arrive("op", password="op-password")
    for person in (alice, dave, op):
        person.join("#free")
    op.mute("#free", "dave")
    dave.quit("brb")
    with pytest.raises(R.MutedByHigher):
        alice.unmute("#free", "dave")
    dave = trust.arrive("dave", host="198.51.100.3")
    dave.join("#free")
    with pytest.raises(R.MutedByHigher):
        alice.unmute("#free", "dave")
    with pytest.raises(R.Muted):
        dave.say("#free", "still muted?")
    op.unmute("#free", "dave")
    clear(op)
    dave.say("#free", "free")
    assert op.outbox.take() == [events.Said("#free", "dave", "free", 1000.0)]


def test_mutedMembersLeaveWithoutAWord(trust):
    """
    A muted member's part and quit reasons are not heard in the room that
    mutes them (else /part TEXT and /join again would be their voice there),
    and are in a room that does not; reasons the server gives still show.
    """
    op = trust.arrive("op", password="op-password")
    bob, carol = trust.arrive("bob"), trust.arrive("carol")
    for user in (op, bob, carol):
        user.join("#side")
    op.mute("#lobby", "bob", 600)
    clear(op, bob, carol)
    bob.part("#lobby", "buy my stuff")
    bob.join("#lobby")
    assert carol.outbox.take() == [events.Parted("#lobby", "bob", ""),
                                   events.Joined("#lobby", "bob")]
    bob.quit("buy it now", said=True)
    # (#lobby joined again last: the user's rooms in the order joined.)
    assert carol.outbox.take() == [events.Quit("#side", "bob", "Quit: buy it now"),
                                   events.Quit("#lobby", "bob", "")]
    dave = trust.arrive("dave")
    op.mute("#lobby", "dave", 600)
    clear(op, dave, carol)
    dave.quit("connection lost")
    assert carol.outbox.take() == [events.Quit("#lobby", "dave", "connection lost")]


def test_banListTellsThePlacesWithBans():
    """
    L{BanList.anyIn} is true exactly where L{BanList.find} could find or
    end a ban: the server's bans (place C{""}, which is no room) and a
    room's, whatever the spelling, ended ones included until dropped.
    """
    bans = BanList()
    assert not bans.anyIn("") and not bans.anyIn("#dev")
    inDev = Ban(NICK, "Alice", "#Dev", 3.0, "", "op", 1.0)
    bans.add(inDev)
    assert bans.anyIn("#dev") and bans.anyIn("#DEV") and not bans.anyIn("#lobby")
    # The server's place is asked of whenever any ban exists (its bans
    # are not listed by place).
    assert bans.anyIn("")
    assert bans.find("alice", None, "#dev", 5.0) == (None, [inDev])
    assert not bans.anyIn("#dev")
    bans.add(Ban(ADDRESS, "10.0.0.0/24", "", None, "", "op", 1.0))
    assert bans.anyIn("") and not bans.anyIn("#dev")
    assert bans.find("bob", "10.0.0.9", "", 5.0)[0] is not None


def test_banListFindsTheBanThatHoldsLongest():
    """
    L{BanList.find} answers, of the bans in force on a nickname and an
    address, the one that ends last (one until lifted before any).
    """
    bans = BanList()
    short = Ban(NICK, "alice", "", 10.0, "", "op", 1.0)
    long = Ban(ADDRESS, "10.0.0.0/24", "", 20.0, "", "op", 1.0)
    bans.add(short)
    bans.add(long)
    assert bans.find("alice", "10.0.0.9", "", 5.0) == (long, [])
    ever = Ban(ADDRESS, "10.0.0.9", "", None, "", "op", 1.0)
    bans.add(ever)
    assert bans.find("alice", "10.0.0.9", "", 5.0) == (ever, [])

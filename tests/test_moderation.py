"""
Moderation rules in the core, with no reactor or sockets: who may kick, ban
and mute, who may not, what everyone is told, and how long it lasts.
"""

import pytest

from chatd.core import events
from chatd.core.chat import ChatError
from chatd.core.bans import ADDRESS, NICK, Ban
from trustsupport import Trust, clear


@pytest.fixture
def trust():
    return Trust()


def test_operatorKicksFromTheRoom(trust):
    """
    An identified operator kicks a member out of the current room: every
    member, the kicked one included, is told once; the kicked user is no
    longer in the room but still connected.
    """
    op = trust.arrive("op", password="op-password")
    bob, carol = trust.arrive("bob"), trust.arrive("carol")
    clear(op, bob, carol)
    trust.core.kick(op, "bob", "calm down")
    kicked = events.Kicked("#lobby", "bob", "op", "calm down")
    assert [op.outbox.take(), bob.outbox.take(), carol.outbox.take()] == [
        [kicked], [kicked, events.PutOut("#lobby")], [kicked]]
    assert "bob" not in trust.core.rooms["#lobby"].members
    assert bob.current is None and not bob.outbox.hungUp
    assert trust.core.users["bob"] is bob


def test_operatorMustBeIdentified(trust):
    """
    Using an operator's nickname is not enough: until identified, "op" may
    not kick, and nothing is announced.
    """
    op = trust.arrive("op")
    bob = trust.arrive("bob")
    clear(op, bob)
    with pytest.raises(ChatError) as e:
        trust.core.kick(op, "bob")
    assert str(e.value) == "you are not an operator nor the owner of #lobby"
    assert bob.outbox.take() == [] and "bob" in trust.core.rooms["#lobby"].members


def test_ordinaryUsersMayNotModerate(trust):
    """
    A user who is neither operator nor owner may not kick, ban, mute, unban
    or list bans.
    """
    alice, bob = trust.arrive("alice"), trust.arrive("bob")
    refusal = "you are not an operator nor the owner of #lobby"
    for attempt in (lambda: trust.core.kick(alice, "bob"),
                    lambda: trust.core.ban(alice, "bob"),
                    lambda: trust.core.mute(alice, "bob"),
                    lambda: trust.core.unmute(alice, "bob"),
                    lambda: trust.core.unban(alice, "bob"),
                    lambda: trust.core.listBans(alice)):
        with pytest.raises(ChatError) as e:
            attempt()
        assert str(e.value) == refusal
    assert bob.outbox.take() == []


def test_registeredCreatorOwnsTheRoom(trust):
    """
    The registered, identified creator of a room owns it and may kick there,
    but not in the lobby or in another room.
    """
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    trust.core.join(owner, "#den")
    trust.core.join(bob, "#den")
    assert trust.core.rooms["#den"].owner == "owner"
    clear(owner, bob)
    trust.core.kick(owner, "bob", "")
    assert bob.outbox.take() == [events.Kicked("#den", "bob", "owner", ""),
                                 events.PutOut("#den")]
    trust.core.join(owner, "#lobby")
    with pytest.raises(ChatError):
        trust.core.kick(owner, "bob")


def test_unidentifiedCreatorOwnsNothing(trust):
    """
    A room created by someone not identified has no owner, so its creator
    cannot moderate it.
    """
    alice, bob = trust.arrive("alice"), trust.arrive("bob")
    trust.core.join(alice, "#free")
    trust.core.join(bob, "#free")
    assert trust.core.rooms["#free"].owner is None
    with pytest.raises(ChatError):
        trust.core.kick(alice, "bob")


def test_moderatorsAreNotTargets(trust):
    """
    A room owner cannot kick, mute or ban an operator; nobody can kick
    themselves or the room's owner.
    """
    owner = trust.arrive("owner", password="owner-password")
    op = trust.arrive("op", password="op-password")
    trust.core.join(owner, "#den")
    trust.core.join(op, "#den")
    with pytest.raises(ChatError) as e:
        trust.core.kick(owner, "op")
    assert str(e.value) == "op is a moderator of #den"
    with pytest.raises(ChatError):
        trust.core.mute(owner, "op")
    with pytest.raises(ChatError) as e:
        trust.core.ban(owner, "op")
    assert str(e.value) == "op is an operator"
    with pytest.raises(ChatError) as e:
        trust.core.kick(op, "owner")
    assert str(e.value) == "owner is a moderator of #den"
    with pytest.raises(ChatError) as e:
        trust.core.kick(op, "op")
    assert str(e.value) == "you cannot do that to yourself"


def test_serverBanByNickname(trust):
    """
    An operator's ban puts the user out of the server at once: the room hears
    the ban and the quit, the banned user hears the ban and is hung up; the
    nickname cannot be taken again until the ban ends, and the ban is stored.
    """
    op = trust.arrive("op", password="op-password")
    troll, carol = trust.arrive("troll", host="192.0.2.66"), trust.arrive("carol")
    clear(op, troll, carol)
    trust.core.ban(op, "troll", 3600, "spam")
    banned = events.Banned("#lobby", "troll", "op", 3600, "spam", True)
    assert carol.outbox.take() == [banned, events.Quit("#lobby", "troll", "banned")]
    assert troll.outbox.take() == [banned, events.Expelled("op", 3600, "spam")]
    assert troll.outbox.hungUp and "troll" not in trust.core.users
    assert list(trust.accounts.stored.values()) == [
        Ban(NICK, "troll", "", 1000 + 3600, "spam", "op", 1000)]
    with pytest.raises(ChatError) as e:
        trust.arrive("TROLL")
    assert str(e.value) == "you are banned from this server for 3600 more seconds (spam)"
    trust.clock.advance(3600)
    trust.arrive("troll")
    assert trust.accounts.stored == {}


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
    trust.core.ban(op, "198.51.100.7", None, "")
    assert one.outbox.hungUp and two.outbox.hungUp and not other.outbox.hungUp
    with pytest.raises(ChatError) as e:
        trust.arrive("fresh", host="198.51.100.7")
    assert str(e.value) == "you are banned from this server"
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
    trust.core.ban(op, "198.51.100.0/24", None, "")
    assert [u.outbox.hungUp for u in inside + [outside]] == [True, True, False]
    with pytest.raises(ChatError) as e:
        trust.arrive("fresh", host="198.51.100.9")
    assert str(e.value) == "you are banned from this server"
    assert (ADDRESS, "198.51.100.0/24", "") in trust.accounts.stored
    clear(op)
    trust.core.unban(op, "198.51.100.77/24")
    assert op.outbox.take() == [events.Unbanned("#lobby", "198.51.100.0/24", "op")]
    assert trust.accounts.stored == {}
    trust.arrive("fresh", host="198.51.100.9")


def test_ipv6RangeAndSpellings(trust):
    """
    IPv6 addresses and ranges match however they are spelled (case, zeros);
    a range covers only its own addresses.
    """
    op = trust.arrive("op", password="op-password")
    trust.core.ban(op, "2001:DB8::/32", 60, "")
    with pytest.raises(ChatError):
        trust.arrive("in", host="2001:db8:0:0::5")
    trust.arrive("out", host="2001:db9::1")
    trust.core.ban(op, "2001:0db9:0000::0001", None, "")
    with pytest.raises(ChatError):
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
    with pytest.raises(ChatError):
        trust.core.ban(op, "192.0.2.0/24")
    trust.core.ban(op, "198.51.100.7")
    trust.core.ban(op, "203.0.113.0/24")
    trust.core.ban(op, "::FFFF:198.51.100.9")
    for host in ("::ffff:198.51.100.7", "::ffff:203.0.113.5", "198.51.100.9"):
        with pytest.raises(ChatError):
            trust.arrive("x", host=host)
    trust.arrive("fine", host="::ffff:198.51.100.8")


@pytest.mark.parametrize("target", ["10.0.0.0/33", "10.0.0/8x", "fe80::/200"])
def test_badRangeRefused(trust, target):
    """
    A range that is not a valid CIDR block is refused, and nothing is banned.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(ChatError) as e:
        trust.core.ban(op, target)
    assert str(e.value) == f"cannot ban {target}: not a nickname nor an address"
    assert trust.core.listBans(op) == []


def test_banCoveringYourOwnAddressRefused(trust):
    """
    A moderator cannot ban an address or range they connect from themselves
    (on a default server everyone shares 127.0.0.1: it would ban everyone).
    """
    op = trust.arrive("op", password="op-password")
    for target in ("192.0.2.1", "192.0.2.0/24"):
        with pytest.raises(ChatError) as e:
            trust.core.ban(op, target)
        assert str(e.value) == f"{target} covers your own address"
    assert trust.core.listBans(op) == []


def test_roomBanByOwner(trust):
    """
    A room owner's ban puts the user out of that room only and keeps them
    from joining it again; they stay connected and in their other rooms.
    """
    owner = trust.arrive("owner", password="owner-password")
    bob = trust.arrive("bob")
    trust.core.join(owner, "#den")
    trust.core.join(bob, "#den")
    clear(owner, bob)
    trust.core.ban(owner, "bob", None, "rude")
    banned = events.Banned("#den", "bob", "owner", None, "rude", False)
    assert owner.outbox.take() == [banned]
    assert bob.outbox.take() == [banned, events.PutOut("#den")]
    assert list(bob.rooms) == ["#lobby"] and not bob.outbox.hungUp
    with pytest.raises(ChatError) as e:
        trust.core.join(bob, "#den")
    assert str(e.value) == "you are banned from #den (rude)"
    trust.core.unban(owner, "bob")
    assert owner.outbox.take() == [events.Unbanned("#den", "bob", "owner")]
    trust.core.join(bob, "#den")


def test_unbanLiftsAServerBan(trust):
    """
    An operator's /unban lifts a server ban, in memory and in the store.
    """
    op = trust.arrive("op", password="op-password")
    trust.core.ban(op, "troll")
    clear(op)
    trust.core.unban(op, "troll")
    assert op.outbox.take() == [events.Unbanned("#lobby", "troll", "op")]
    assert trust.accounts.stored == {}
    trust.arrive("troll")
    with pytest.raises(ChatError) as e:
        trust.core.unban(op, "troll")
    assert str(e.value) == "troll is not banned here"


def test_restoredBansHold():
    """
    Bans handed over from the store at start (an earlier run's) are in force.
    """
    ban = Ban(NICK, "troll", "", None, "spam", "op", 500)
    trust = Trust(bans=[ban])
    with pytest.raises(ChatError):
        trust.arrive("troll")
    op = trust.arrive("op", password="op-password")
    assert trust.core.listBans(op) == [ban]


def test_muteStopsTalkingUntilItEnds(trust):
    """
    A muted member cannot say, act or set the topic in that room (others
    hear nothing), can elsewhere, and talks again once the mute ends.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    clear(op, bob)
    trust.core.mute(op, "bob", 600)
    assert bob.outbox.take() == [events.Muted("#lobby", "bob", "op", 600)]
    for attempt in (lambda: trust.core.say(bob, "hi"), lambda: trust.core.act(bob, "waves"),
                    lambda: trust.core.setTopic(bob, "mine")):
        with pytest.raises(ChatError) as e:
            attempt()
        assert str(e.value) == "you are muted in #lobby"
    assert op.outbox.take() == [events.Muted("#lobby", "bob", "op", 600)]
    trust.clock.advance(600)
    trust.core.say(bob, "back")
    assert [type(e) for e in op.outbox.take()] == [events.Said]


def test_unmute(trust):
    """
    /unmute lets a member talk again at once and is announced.
    """
    op = trust.arrive("op", password="op-password")
    bob = trust.arrive("bob")
    trust.core.mute(op, "bob")
    clear(op, bob)
    trust.core.unmute(op, "bob")
    assert bob.outbox.take() == [events.Unmuted("#lobby", "bob", "op")]
    trust.core.say(bob, "free")
    with pytest.raises(ChatError) as e:
        trust.core.unmute(op, "bob")
    assert str(e.value) == "bob is not muted in #lobby"


def test_banTargetMustBeNickOrAddress(trust):
    """
    A ban target that is neither a nickname nor an address is refused.
    """
    op = trust.arrive("op", password="op-password")
    with pytest.raises(ChatError) as e:
        trust.core.ban(op, "#room")
    assert str(e.value) == "cannot ban #room: not a nickname nor an address"


def test_roomBanFollowsTheUserAcrossNicknames(trust):
    """
    Someone room-banned by nickname cannot get back in by taking another
    nickname, whether or not they were in the room when banned; once the
    ban is lifted they can.
    """
    owner = trust.arrive("owner", password="owner-password")
    trust.core.join(owner, "#den")
    bob = trust.arrive("bob")
    trust.core.ban(owner, "bob", None, "")
    trust.core.rename(bob, "notbob")
    with pytest.raises(ChatError) as e:
        trust.core.join(bob, "#den")
    assert str(e.value) == "you are banned from #den"
    trust.core.unban(owner, "bob")
    trust.core.join(bob, "#den")

"""
Kept rooms shared by several daemons, with no reactor or sockets: the first
to keep a room owns it on every daemon (the store refuses another owner, and
every core adopts the stored one), and no ban keeps an identified owner out
of their own room.
"""

import pytest

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.bans import ADDRESS, NICK, Ban
from trustsupport import Trust, clear


@pytest.fixture
def trust():
    trust = Trust()
    trust.accounts.passwords.update(olga="olga-password", mallory="mallory-password")
    return trust


def olgasRoom(trust):
    """
    The room #olga2 as another daemon sharing the store left it: kept for
    olga, with her topic; this core has not heard of it.
    """
    trust.accounts.kept["#olga2"] = ("#olga2", "olga", "olga's plans", 7)


def test_roomKeptElsewhereIsTheOwnersHere(trust):
    """
    Told of a room kept through another daemon, the core keeps it too:
    whoever joins it next neither creates nor owns it, and may not ban its
    owner from it.
    """
    trust.core.storedRoomKept("#olga2", "olga", "olga's plans", 7)
    mallory = trust.arrive("mallory", password="mallory-password")
    room, _ = mallory.join("#olga2")
    assert (room.owner, room.topic, room.firstId, room.creator) == (
        "olga", "olga's plans", 7, None)
    with pytest.raises(R.NotModerator):
        mallory.ban("#olga2", "olga")
    assert trust.core.moderation.bans.all() == []


def test_keepingARoomOwnedElsewhereLoses(trust):
    """
    A registered user who creates a room the store keeps for someone else
    already (kept through another daemon, not heard of here yet) neither
    owns nor moderates it: the room takes the stored owner, topic and
    history, and her attempt changed nothing stored.
    """
    olgasRoom(trust)
    mallory = trust.arrive("mallory", password="mallory-password")
    room, _ = mallory.join("#olga2")
    assert (room.owner, room.topic, room.firstId, room.creator) == (
        "olga", "olga's plans", 7, None)
    assert trust.accounts.kept == {"#olga2": ("#olga2", "olga", "olga's plans", 7)}
    with pytest.raises(R.NotModerator):
        mallory.ban("#olga2", "olga")
    # Her count of owned rooms is as if she had never tried.
    assert trust.core._owned == {"olga": 1}


def test_keptTopicChangedElsewhereIsTheNewOne(trust):
    """
    A kept room's new topic, stored through another daemon, is the one a
    newcomer here finds; a room with members here keeps the topic they set.
    """
    trust.core.storedRoomKept("#olga2", "olga", "old", 7)
    trust.core.storedRoomKept("#olga2", "olga", "new", 7)
    bob = trust.arrive("bob")
    room, _ = bob.join("#olga2")
    assert room.topic == "new"
    bob.setTopic("#olga2", "bob's")
    trust.core.storedRoomKept("#olga2", "olga", "new", 7)
    assert room.topic == "bob's"


def test_ownerIsNeverBannedFromTheirOwnRoom(trust):
    """
    A room ban naming an identified owner is refused; one that covers their
    address puts out everyone else it covers but not them; one stored
    elsewhere (another daemon's creator of a room of that name) does not
    keep them out; a server ban still does.
    """
    maud = trust.arrive("maud", host="198.51.100.9")
    maud.join("#den")
    # An owner this core learns of while the room is live (a mirror, or a
    # store that kept it first): the creator, not an owner, stays.
    trust.core.rooms["#den"].owner = "owner"
    trust.core.rooms["#den"].creator = maud.session._user
    owner = trust.arrive("owner", host="203.0.113.5", password="owner-password")
    neighbour = trust.arrive("neighbour", host="203.0.113.5")
    owner.join("#den")
    neighbour.join("#den")
    clear(maud, owner, neighbour)
    with pytest.raises(R.IsModerator) as refused:
        maud.ban("#den", "Owner")
    assert refused.value == R.IsModerator("Owner", "#den")
    maud.ban("#den", "203.0.113.5")
    banned = events.Banned("#den", "203.0.113.5", "maud", None, "", False)
    kicked = events.Kicked("#den", "neighbour", "maud", "banned")
    assert owner.outbox.take() == [banned, kicked]
    assert neighbour.outbox.take() == [banned, kicked, events.PutOut("#den")]
    assert "owner" in trust.members("#den") and "neighbour" not in trust.members("#den")

    owner.part("#den")
    trust.core.moderation.storedBanAdded(Ban(NICK, "owner", "#den", None, "", "x", 1.0))
    trust.core.moderation.storedBanAdded(Ban(ADDRESS, "203.0.113.5", "#den", None, "",
                                             "x", 1.0))
    owner.join("#den")
    assert "owner" in trust.members("#den")
    # Proof makes the owner: under another nickname, the bans hold.
    owner.part("#den")
    owner.rename("owner_away")
    with pytest.raises(R.Banned):
        owner.join("#den")


def test_brokerMirrorKeepsTheStoredOwner():
    """
    Two brokered daemons sharing one account store: olga's room, kept on A,
    is created on B by mallory, registered and identified.  B's store says
    the room is olga's, so B gives it to olga; A, mirroring mallory's join,
    takes the room it keeps (olga's) rather than a new one someone else
    could own; mallory may not ban olga, who joins her room on A.
    """
    from brokersupport import Cluster
    from support import MemoryAccounts
    from test_broker import login

    accounts = MemoryAccounts()
    accounts.passwords.update(olga="olga-password", mallory="mallory-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    olga = login(cluster, a, "olga", "olga-password")
    olga.send("/join #olga2")
    olga.send("/topic olga's plans")
    olga.send("/part #olga2")
    cluster.settle()
    # B heard nothing of it (a store that announces nothing).
    b.core.rooms.pop("#olga2", None)
    b.core.kept.pop("#olga2", None)
    mallory = login(cluster, b, "mallory", "mallory-password")
    mallory.send("/join #olga2")
    cluster.settle()
    for node in (a, b):
        room = node.core.rooms["#olga2"]
        assert (room.owner, room.topic, room.creator) == ("olga", "olga's plans", None)
    mallory.lines()
    mallory.send("/ban olga")
    cluster.settle()
    assert mallory.lines()[0].startswith("!!! ")
    assert a.core.moderation.bans.all() == [] and b.core.moderation.bans.all() == []
    olga.lines()
    olga.send("/join #olga2")
    cluster.settle()
    assert "olga" in a.core.rooms["#olga2"].members

"""
The trust commands over the line protocol (StringTransport, no reactor): how
their arguments parse and exactly which lines each user gets.
"""

import pytest

from chatd.line import wire
from support import MemoryAccounts, MemoryServer


@pytest.fixture
def server():
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    return MemoryServer(accounts=accounts, operators=["boss"])


def operator(server):
    boss = server.connect("boss")
    boss.send("/identify boss-password")
    assert boss.lines() == ["=== you are identified as boss"]
    return boss


@pytest.mark.parametrize("line, announced", [
    ("/ban troll 10m spam", "-- #lobby boss banned troll from the server for 10m (spam)"),
    ("/ban troll spam and more", "-- #lobby boss banned troll from the server (spam and more)"),
    ("/ban troll 10x", "-- #lobby boss banned troll from the server (10x)"),
    ("/ban troll 1d", "-- #lobby boss banned troll from the server for 1d"),
    ("/ban troll", "-- #lobby boss banned troll from the server"),
])
def test_banArguments(server, line, announced):
    """
    /ban reads an optional duration after the target and takes the rest as
    the reason; the room and the operator see the same announcement.
    """
    boss = operator(server)
    watcher = server.connect("watcher")
    boss.lines()
    boss.send(line)
    assert boss.lines() == [announced]
    assert watcher.lines() == [announced]


def test_bannedUserIsToldAndDisconnected(server):
    """
    The banned user hears the ban, then why they are let go, and the
    connection closes.
    """
    troll = server.connect("troll")
    boss = operator(server)
    troll.lines()
    boss.send("/ban troll 2h flooding")
    assert troll.lines() == [
        "-- #lobby boss banned troll from the server for 2h (flooding)",
        "-!- boss banned you from this server for 2h (flooding)"]
    assert not troll.transport.connected


def test_bannedAddressIsRefusedOnConnecting(server):
    """
    A connection from a banned address is told why and closed before it is
    asked for a nickname.
    """
    boss = operator(server)
    boss.send("/ban 198.51.100.0/24")
    boss.lines()
    refused = server.connect(host="198.51.100.7")
    assert refused.lines() == ["!!! you are banned from this server"]
    assert not refused.transport.connected


def test_banOnYourOwnAddressRefused(server):
    """
    A moderator's ban on the address they connect from (here 127.0.0.1, as
    every local user) is refused with a reason, and nobody is put out.
    """
    boss = operator(server)
    alice = server.connect("alice")
    boss.lines()
    boss.send("/ban 127.0.0.1")
    assert boss.lines() == ["!!! 127.0.0.1 covers your own address"]
    assert alice.lines() == [] and alice.transport.connected


def test_muteAndDurations(server):
    """
    /mute takes an optional duration; a word that is not one, or one over a
    year, is refused.
    """
    boss = operator(server)
    bob = server.connect("bob")
    boss.lines()
    boss.send("/mute bob 2h")
    assert boss.lines() == ["-- #lobby boss muted bob for 2h"]
    boss.send("/mute bob soon")
    assert boss.lines() == ["!!! a duration looks like 90s, 10m, 2h or 1d"]
    boss.send("/ban bob 400d")
    assert boss.lines() == ["!!! a duration is at most 365d"]
    bob.lines()
    bob.send("hello?")
    assert bob.lines() == ["!!! you are muted in #lobby"]
    boss.send("/unmute bob")
    assert bob.lines() == ["-- #lobby boss unmuted bob"]


def test_bansList(server):
    """
    /bans lists what the operator may lift, with time left and reason.
    """
    boss = operator(server)
    boss.send("/ban pest 10m noisy")
    boss.send("/ban 192.0.2.8")
    boss.lines()
    server.clock.advance(60)
    boss.send("/bans")
    assert boss.lines() == ["=== 2 bans",
                            "=== pest from the server for 9m more, by boss (noisy)",
                            "=== 192.0.2.8 from the server until lifted, by boss"]


def test_accountCommandReplies(server):
    """
    /register, /identify, /password and /ghost reply in one line each, and
    their usage errors say how to type them.
    """
    bob = server.connect("bob")
    bob.send("/identify whatever-pw")
    assert bob.lines() == ["!!! bob is not registered"]
    bob.send("/register short")
    assert bob.lines() == ["!!! a password has at least 8 characters and no spaces"]
    bob.send("/register bobs-password")
    assert bob.lines() == ["=== bob is registered to you and you are identified; "
                           "next time, /identify PASSWORD"]
    bob.send("/password bobs-password")
    assert bob.lines() == ["!!! usage: /password OLD NEW"]
    bob.send("/password bobs-password bobs-new-password")
    assert bob.lines() == ["=== your password is changed"]
    bob.send("/ghost bob")
    assert bob.lines() == ["!!! usage: /ghost NICK PASSWORD"]
    bob.send("/kick")
    assert bob.lines() == ["!!! usage: /kick NICK [REASON]"]


def test_registeredNickNeedsIdentifying(server):
    """
    Choosing a registered nickname shows the join replies, then the notice
    with the time to identify; the guest rename comes when it passes.
    """
    impostor = server.connect()
    impostor.lines()
    impostor.send("boss")
    assert impostor.lines() == [
        "=== you are now boss", "=== joined #lobby", "=== #lobby members (1): boss",
        "-!- boss is a registered nickname: /identify PASSWORD within 1m, "
        "or you will be renamed"]
    server.clock.advance(60)
    notice, reply = impostor.lines()
    guest = reply.rsplit(" ", 1)[1]
    assert notice == f"-!- you did not identify as boss in time; you are now {guest}"
    assert reply == f"=== you are now {guest}" and guest.startswith("Guest")


@pytest.mark.parametrize("line", [
    "-- #lobby troll was kicked by boss (enough)",
    "-- #lobby boss banned troll from the server for 2h (spam)",
    "-- #lobby boss lifted the ban on troll",
    "-- #lobby boss muted chatty for 10m",
    "-- #lobby boss unmuted chatty",
])
def test_moderationLinesAreRoomEvents(line):
    """
    Clients parse every moderation announcement as a room event of its room.
    """
    parsed = wire.parseLine(line)
    assert (parsed.kind, parsed.room) == (wire.ROOM_EVENT, "#lobby")

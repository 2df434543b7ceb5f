"""
The trust commands over the line protocol (StringTransport, no reactor): how
their arguments parse and exactly which lines each user gets.
"""

import pytest

from chatd.line import wire
from support import MemoryAccounts, MemoryServer, guessedWrongFromLoopback


@pytest.fixture
def server():
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    return MemoryServer(accounts=accounts, operators=["boss"])


def operator(server):
    boss = server.connect()
    boss.lines()
    boss.send("/nick boss boss-password")
    assert boss.lines()[:2] == ["=== you are identified as boss", "=== you are now boss"]
    return boss


@pytest.mark.parametrize("line, announced", [
    ("/ban troll 10m spam", "-- #lobby boss banned troll from the server for 10m (spam)"),
    ("/ban troll spam and more", "-- #lobby boss banned troll from the server (spam and more)"),
    ("/ban troll 1d", "-- #lobby boss banned troll from the server for 1d"),
    ("/ban troll", "-- #lobby boss banned troll from the server"),
])
def test_banArguments(server, line, announced):
    """
    /ban reads an optional duration after the target and takes the rest as
    the reason; the troll's room and the operator see the same
    announcement.
    """
    boss = operator(server)
    troll = server.connect("troll")
    watcher = server.connect("watcher")
    boss.lines(), troll.lines()
    boss.send(line)
    assert boss.lines() == [announced, "-- #lobby troll has quit (banned)"]
    assert watcher.lines() == [announced, "-- #lobby troll has quit (banned)"]


@pytest.mark.parametrize("typo", ["10x", "1w spam", "10min", "1h30m", "90", "2 hours", "-5m",
                                  "+5m", ".5h", "\u00bdh", "\uff11h"])
def test_banDurationMistyped(server, typo):
    """
    A word after the target that starts with a digit is a duration, and one
    mistyped is refused, as /mute refuses it, rather than read as the
    start of a reason (which made a ban meant for a week or 90 minutes one
    until lifted).
    """
    boss = operator(server)
    troll = server.connect("troll")
    boss.lines(), troll.lines()
    boss.send(f"/ban troll {typo}")
    assert boss.lines() == [f"!!! {typo.split()[0]} is not a duration: one looks like 90s, "
                            "10m, 2h or 1d"]
    assert troll.lines() == []
    boss.send("/bans")
    assert boss.lines() == ["=== 0 bans"]


def test_serverBanToldWhereItsTargetWasSeen(server):
    """
    An operator's server ban is announced in the rooms of those it puts
    out, and to the operator, not in the operator's own room, whose members
    never met them.
    """
    boss = operator(server)
    troll = server.connect("troll")
    watcher, bystander = server.connect("watcher"), server.connect("bystander")
    for person in (boss, bystander):
        person.send("/join #elsewhere")
    troll.send("/part #lobby")
    troll.send("/join #den")
    watcher.send("/join #den")
    for person in (boss, troll, watcher, bystander):
        person.lines()
    boss.send("/ban troll 5m why-not")
    announced = "boss banned troll from the server for 5m (why-not)"
    assert boss.lines() == [f"-- #elsewhere {announced}"]
    assert watcher.lines() == [f"-- #den {announced}", "-- #den troll has quit (banned)"]
    assert bystander.lines() == []


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


def test_bannedAddressIsRefusedItsNicknames(server):
    """
    A connection from a banned address is refused every nickname it tries,
    with the reason; the operator, proving their nickname, gets in from it
    all the same.
    """
    boss = operator(server)
    boss.send("/ban 198.51.100.0/24")
    boss.lines()
    refused = server.connect(host="198.51.100.7")
    refused.lines()
    refused.send("someone")
    assert refused.lines() == ["!!! you are banned from this server",
                               "??? Choose another nickname:"]
    again = server.connect(host="198.51.100.8")
    again.lines()
    again.send("/nick boss boss-password")
    assert again.lines()[:3] == [
        "=== you are identified as boss", "=== you are now boss", "=== joined #lobby"]
    assert not boss.transport.connected


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
    assert boss.lines() == ["!!! soon is not a duration: one looks like 90s, 10m, 2h or 1d"]
    boss.send("/ban bob 400d")
    assert boss.lines() == ["!!! a duration is at most 365d"]
    bob.lines()
    bob.send("hello?")
    assert bob.lines() == ["!!! you are muted in #lobby"]
    boss.send("/unmute bob")
    assert bob.lines() == ["-- #lobby boss unmuted bob"]


def test_mutedUsersPartAndQuitWithoutTheirReason(server):
    """
    Over the line protocol, a muted user's /part and /quit reasons are not
    shown in the room that mutes them; the departures themselves are.
    """
    boss = operator(server)
    bob = server.connect("bob")
    boss.send("/mute bob 2h")
    bob.send("/part #lobby buy my stuff")
    bob.send("/join #lobby")
    bob.send("/quit buy it now")
    server.clock.advance(0)
    assert boss.lines() == ["-- #lobby bob has joined", "-- #lobby boss muted bob for 2h",
                            "-- #lobby bob has left", "-- #lobby bob has joined",
                            "-- #lobby bob has quit"]


def test_linesForARoomOneWasPutOutOfGoNowhereElse(server):
    """
    Put out of the room they were talking in (a kick), a line-protocol user
    is not moved to another: what they type next was meant for that room
    (a paste cut by the kick went on in the lobby), so it is refused until
    they choose a room with /join.  Leaving by /part still moves them to
    the room joined most recently, as before.
    """
    boss = operator(server)
    bob = server.connect("bob")
    carol = server.connect("carol")
    for user in (boss, bob):
        user.send("/join #private")
    bob.lines()
    boss.send("/kick bob enough")
    assert bob.lines() == ["-- #private bob was kicked by boss (enough)", "=== left #private"]
    carol.lines()
    bob.send("the rest of what I was saying in private")
    assert bob.lines() == ["!!! you were put out of #private: /join a room to choose where "
                           "your lines go"]
    assert carol.lines() == []
    bob.send("/join #lobby")
    bob.lines()
    bob.send("hello lobby")
    assert carol.lines() == ["#lobby <bob> hello lobby"]
    bob.send("/join #elsewhere")
    bob.send("/part")
    assert bob.lines()[-1] == "=== now talking in #lobby"
    bob.send("back")
    assert carol.lines() == ["#lobby <bob> back"]


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
    bob.send("/history ²")
    assert bob.lines() == ["!!! usage: /history [N], N a number from 1 to 500"]
    bob.send("/register short")
    assert bob.lines() == ["!!! a password has at least 8 characters and no spaces"]
    bob.send("/register bobs-password")
    assert bob.lines() == ["=== bob is registered to you and you are identified; "
                           "from now on it takes this password"]
    bob.send("/password bobs-password")
    assert bob.lines() == ["!!! usage: /password OLD NEW"]
    bob.send("/password bobs-password bobs-new-password")
    assert bob.lines() == ["=== your password is changed"]
    bob.send("/ghost bob")
    assert bob.lines() == ["!!! usage: /ghost NICK PASSWORD"]
    bob.send("/kick")
    assert bob.lines() == ["!!! usage: /kick NICK [REASON]"]


def test_registeredNicknameAsksForItsPassword(server):
    """
    Choosing a registered nickname at the prompt asks for its password on
    the same connection; a wrong one is refused and the password asked
    again; the right one brings the owner in, identified.  Nobody is ever
    shown under that nickname meanwhile.
    """
    watcher = server.connect("watcher")
    owner = server.connect()
    owner.lines()
    owner.send("boss")
    assert owner.lines() == ["??? boss is registered: password (or another nickname)"]
    owner.send("wrong-password")
    assert owner.lines() == ["!!! wrong password for boss",
                             "??? boss is registered: password again (or another nickname)"]
    # The next try is a password again, never a nickname shown to everyone.
    owner.send("boss-password")
    assert owner.lines() == ["=== you are identified as boss", "=== you are now boss",
                             "=== joined #lobby", "=== #lobby members (2): boss watcher"]
    assert watcher.lines() == ["-- #lobby boss has joined"]


def test_passwordBeingChangedAsksForItAgainAtThePrompt():
    """
    The password of a nickname whose owner is changing it, given at the
    prompt, is refused for the moment and asked for again, rather than
    taken for a nickname.
    """
    from twisted.internet.defer import Deferred

    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    server = MemoryServer(accounts=accounts)
    boss = operator(server)
    checking, verify = Deferred(), accounts.verify
    accounts.verify = lambda nick, password: checking
    boss.send("/password boss-password fresh-password")
    accounts.verify = verify
    other = server.connect()
    other.lines()
    other.send("boss")
    other.lines()
    other.send("boss-password")
    assert other.lines() == [
        "!!! the password of boss is being changed; try again in a moment",
        "??? boss is registered: password again (or another nickname)"]
    checking.callback(True)
    assert "=== your password is changed" in boss.lines()


def test_nicknameAndPasswordOnOneLineAtThePrompt(server):
    """
    A nickname and its password typed on one line at the prompt are taken
    as /nick NAME PASSWORD: the owner comes in, and the password is never
    refused as a bad nickname (to be typed again alone, where it would
    become one).
    """
    watcher = server.connect("watcher")
    owner = server.connect()
    owner.lines()
    owner.send("boss boss-password")
    assert owner.lines() == ["=== you are identified as boss", "=== you are now boss",
                             "=== joined #lobby", "=== #lobby members (2): boss watcher"]
    assert watcher.lines() == ["-- #lobby boss has joined"]


def test_afterAWrongPasswordAnotherNicknameStillWorks(server):
    """
    Asked for the password again after a wrong one, an answer that cannot be
    a password is another nickname, and nobody saw the wrong try.
    """
    watcher = server.connect("watcher")
    owner = server.connect()
    owner.lines()
    owner.send("boss")
    owner.send("wrong-password")
    owner.lines()
    owner.send("bossy")
    assert owner.lines() == ["=== you are now bossy", "=== joined #lobby",
                             "=== #lobby members (2): bossy watcher"]
    assert watcher.lines() == ["-- #lobby bossy has joined"]


def test_passwordPromptTakesAnotherNickname(server):
    """
    At the password prompt, an answer that cannot be a password (shorter
    than 8 characters) is another nickname; /nick works there too.
    """
    one, two = server.connect(), server.connect()
    one.lines(), two.lines()
    one.send("boss")
    one.lines()
    one.send("bob")
    assert one.lines()[:2] == ["=== you are now bob", "=== joined #lobby"]
    two.send("boss")
    two.lines()
    two.send("/nick carol")
    assert two.lines()[:2] == ["=== you are now carol", "=== joined #lobby"]


def test_nickToARegisteredNicknameNeedsItsPassword(server):
    """
    /nick to a registered nickname without its password is refused and
    changes nothing; with a wrong one too; with the right one it is done.
    Having proved it once, its owner may come back to it without it.
    """
    bob = server.connect("bob")
    watcher = server.connect("watcher")
    bob.lines()
    bob.send("/nick boss")
    assert bob.lines() == ["!!! boss is registered: /nick boss PASSWORD if it is yours"]
    bob.send("/nick boss wrong-password")
    assert bob.lines() == ["!!! wrong password for boss"]
    watcher.lines()
    bob.send("/nick boss boss-password")
    assert bob.lines() == ["=== you are identified as boss", "=== you are now boss"]
    assert watcher.lines() == ["-- #lobby bob is now known as boss"]
    bob.send("/nick bob")
    bob.send("/nick boss")
    assert bob.lines() == ["=== you are now bob", "=== you are now boss"]


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


def test_linesWaitForThePasswordAtThePrompt():
    """
    Lines typed after a password at the nickname prompt wait until it is
    checked: then they go to the room under the nickname it proved, in
    order, rather than being taken for nicknames.
    """
    from twisted.internet.defer import Deferred

    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    server = MemoryServer(accounts=accounts)
    watcher = server.connect("watcher")
    pending = Deferred()
    accounts.verify = lambda nick, password: pending
    boss = server.connect()
    boss.lines()
    boss.sendBytes(b"boss\nboss-password\nhi\nall here\n")
    assert boss.lines() == ["??? boss is registered: password (or another nickname)"]
    watcher.lines()
    pending.callback(True)
    assert boss.lines()[:2] == ["=== you are identified as boss", "=== you are now boss"]
    assert watcher.lines() == ["-- #lobby boss has joined", "#lobby <boss> hi",
                               "#lobby <boss> all here"]


@pytest.mark.parametrize("typedAhead, last", [
    (b"/ghost boss wrong-password-2\n", "??? Choose a nickname:"),
    (b"/nick boss wrong-password-2\n",
     "??? boss is registered: password again (or another nickname)"),
    (b"wrong-password-2\n", "??? boss is registered: password again (or another nickname)"),
])
def test_oneAnswerPerWrongPasswordTypedAhead(typedAhead, last):
    """
    A wrong password at the nickname prompt, and another try typed before
    its answer came (a /ghost, a /nick, the password alone): each gets its
    one error and one prompt, in order, and no prompt is asked while the
    next try is being checked (found by a trial: the first's answer was
    followed by a second prompt, "Choose a nickname:", once the try typed
    after it had started).
    """
    from twisted.internet.defer import Deferred

    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    server = MemoryServer(accounts=accounts)
    checks = []

    def verify(nick, password):
        checks.append(Deferred())
        return checks[-1]

    accounts.verify = verify
    guesser = server.connect()
    guesser.lines()
    guesser.sendBytes(b"boss wrong-password-1\n" + typedAhead)
    assert guesser.lines() == []
    checks[0].callback(False)
    assert guesser.lines() == ["!!! wrong password for boss",
                               "??? boss is registered: password again (or another nickname)"]
    checks[1].callback(False)
    assert guesser.lines() == ["!!! wrong password for boss", last]


def test_passwordDelayNeverOutlastsTheLoginTimeout(server):
    """
    After many wrong passwords from one address the right one waits up to
    a minute, as long as the login timeout: the timeout does not run while
    the server makes the owner wait, so the owner gets in.
    """
    guessedWrongFromLoopback(server.core, "boss")
    owner = server.connect()
    owner.send("boss")
    owner.send("boss-password")
    owner.lines()
    server.clock.pump([1] * 61)
    assert owner.lines()[:2] == ["=== you are identified as boss", "=== you are now boss"]
    assert not owner.transport.disconnecting


def test_aConnectionLetGoSaysWhy(server):
    """
    A connection the core lets go (its nickname taken back by its owner)
    ends with that reason, for the log, not as a plain closed connection.
    """
    stale = server.connect()
    stale.send("/nick boss boss-password")
    owner = server.connect()
    owner.send("/nick boss boss-password")
    assert not stale.transport.connected
    assert stale.proto.conn.quitReason == "ghosted"

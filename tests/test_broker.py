"""
Several daemons sharing rooms, in memory: the real cores, front ends and
brokered fan-outs, on a fake of the Redis commands chatd uses, with every
write and read run when the test says (L{brokersupport.Cluster.settle}).
"""

import dataclasses

import pytest

from brokersupport import Cluster, SharedHistory
from support import MemoryHistory
from chatd.broker import codec
from chatd.broker.fanout import BrokeredFanout, RemoteUser
from chatd.core import events


def login(cluster, node, nick, password=None):
    """
    Connect to C{node} and take C{nick}, with its C{password} if registered.
    """
    client = node.connect()
    client.lines()
    client.send(nick if password is None else f"/nick {nick} {password}")
    cluster.settle()
    got = client.lines()
    assert f"=== you are now {nick}" in got, got
    return client


def said(lines):
    return [line for line in lines if line.startswith("#")]


@pytest.fixture
def cluster():
    return Cluster("A", "B")


def test_codecRoundTripsEveryEvent():
    """
    Every event class of the core is in the registry and comes back equal
    from its bytes; anything else is refused.
    """
    classes = [c for c in vars(events).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c)]
    assert set(codec.REGISTRY.values()) == set(classes)
    samples = {int: 3, float: 1.5, str: "x é", bool: True}
    for cls in classes:
        values = {}
        for field in dataclasses.fields(cls):
            kind = field.type if isinstance(field.type, type) else str
            if "tuple" in str(field.type):
                values[field.name] = ("a", "b")
            elif "float" in str(field.type):
                values[field.name] = 2.5
            elif "int" in str(field.type):
                values[field.name] = 7
            else:
                values[field.name] = samples.get(kind, "x")
        event = cls(**values)
        assert codec.loads(codec.dumps({"e": event}))["e"] == event
    with pytest.raises(codec.UnknownEvent):
        codec.eventFromJSON({"t": "os.system", "command": "true"})


def test_linesAcrossDaemonsExactlyOnceInOneOrder(cluster):
    """
    Two users on each daemon in one room: each line reaches every other
    member exactly once, and every member sees the lines in the same order,
    though each daemon's users spoke before any daemon read the stream.
    """
    a, b = cluster.nodes
    alice, carol = login(cluster, a, "alice"), login(cluster, a, "carol")
    bob, dave = login(cluster, b, "bob"), login(cluster, b, "dave")
    for c in (alice, bob, carol, dave):
        c.lines()
    for i in range(5):
        alice.send(f"a{i}")
        bob.send(f"b{i}")
    cluster.settle()
    seen = {name: said(c.lines()) for name, c in
            (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave))}
    everything = seen["carol"]
    assert sorted(everything) == sorted(
        [f"#lobby <alice> a{i}" for i in range(5)] + [f"#lobby <bob> b{i}" for i in range(5)])
    assert seen["dave"] == everything
    assert seen["alice"] == [line for line in everything if "<alice>" not in line]
    assert seen["bob"] == [line for line in everything if "<bob>" not in line]


def test_joinsAndMembersAcrossDaemons(cluster):
    """
    Whoever joins on one daemon is announced on the other, listed by /who
    and /rooms there, and sees the members of both in their welcome.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    assert "-- #lobby bob has joined" in alice.lines()
    bob.send("/join #dev")
    cluster.settle()
    bob.lines()
    alice.send("/join #dev")
    cluster.settle()
    assert alice.lines()[:2] == ["=== joined #dev", "=== #dev members (2): alice bob"]
    assert bob.lines() == ["-- #dev alice has joined"]
    alice.send("/rooms")
    alice.send("/who #lobby")
    got = alice.lines()
    assert got[0] == "=== 2 rooms"
    assert sorted(got[1:3]) == ["=== #dev (2)", "=== #lobby (2)"]
    assert got[3:] == ["=== #lobby members (2): alice bob"]


def test_privateMessageAcrossDaemonsReachesOnlyItsTarget():
    """
    /msg to a user on another daemon reaches them alone, and nothing of it
    stays in Redis once read.
    """
    cluster = Cluster("A", "B")
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    carol = login(cluster, b, "carol")
    for c in (alice, bob, carol):
        c.lines()
    alice.send("/msg bob psst")
    cluster.settle()
    assert alice.lines() == ["=== to bob: psst"]
    assert bob.lines() == ["*alice* psst"]
    assert carol.lines() == []
    kept = [f for name in cluster.redis.streams for _, f in cluster.redis.entries(name)]
    assert not [f for f in kept if b"psst" in f[b"d"]]


def test_topicAcrossDaemons(cluster):
    """
    A topic set on one daemon is announced on the other and shown to whoever
    joins there later.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    alice.send("/topic release on Friday")
    cluster.settle()
    assert "-- #lobby alice set the topic: release on Friday" in bob.lines()
    bob.send("/topic")
    assert "release on Friday" in bob.lines()[0]


def test_nicknameTakenOnAnotherDaemon(cluster):
    """
    A nickname in use on one daemon is refused on the other, and free on
    both once its user quits.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    other = b.connect()
    other.lines()
    other.send("Alice")
    cluster.settle()
    assert other.lines()[0] == "!!! the nickname Alice is taken"
    alice.send("/quit")
    cluster.settle()
    other.send("alice")
    cluster.settle()
    assert "=== you are now alice" in other.lines()


def test_nicknameRaceExactlyOneWins(cluster):
    """
    Two daemons accept one nickname at the same moment (neither has heard of
    the other's): Redis gives it to exactly one; the other's user is told so
    and let go, and nobody ever sees the loser arrive.
    """
    a, b = cluster.nodes
    watcher = login(cluster, a, "watcher")
    watcher.lines()
    first, second = a.connect(), b.connect()
    first.lines()
    second.lines()
    first.send("alice")
    second.send("alice")
    cluster.settle()
    got = [first.lines(), second.lines()]
    winners = [g for g in got if "=== you are now alice" in g]
    losers = [g for g in got if any("Closing your connection" in line for line in g)]
    assert len(winners) == 1 and len(losers) == 1, got
    assert not any("you are now" in line for line in losers[0])
    assert watcher.lines().count("-- #lobby alice has joined") == 1
    for node in (a, b):
        assert [u.nick for u in node.core.rooms["#lobby"].members.values()].count("alice") == 1


def test_lostDaemonUsersQuit(cluster):
    """
    A daemon that stops (its heartbeat is no longer read) is lost after the
    lease: its users quit for the others with "node lost", and their
    nicknames are free.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    login(cluster, b, "bob")
    alice.lines()
    cluster.nodes.remove(b)  # no longer writes nor reads: as after kill -9
    b.fanout._heart.stop()
    for _ in range(int(BrokeredFanout.LEASE) + 2):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    assert alice.lines() == ["-- #lobby bob has quit (node lost)"]
    alice.send("/who")
    assert alice.lines() == ["=== #lobby members (1): alice"]
    login(cluster, a, "bob")


def test_lateDaemonSeesCurrentRooms(cluster):
    """
    A daemon that joins the cluster late learns who is where from the
    others.
    """
    a, b = cluster.nodes
    login(cluster, a, "alice").send("/join #dev")
    cluster.settle()
    c = cluster.add("C")
    carol = login(cluster, c, "carol")
    carol.send("/rooms")
    carol.send("/who #dev")
    got = carol.lines()[-4:]
    assert got[0] == "=== 2 rooms"
    assert sorted(got[1:3]) == ["=== #dev (1)", "=== #lobby (2)"]
    assert got[3:] == ["=== #dev members (1): alice"]


def test_partingUserSeesNothingMore(cluster):
    """
    Who leaves a room sees no line of it after their "left", even one said
    on another daemon before their part reached the stream.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    alice.lines()
    bob.send("before")
    alice.send("/part #lobby")
    cluster.settle()
    got = alice.lines()
    assert got[0] == "=== left #lobby"
    assert "#lobby <bob> before" not in got[1:]
    assert "-- #lobby alice has left" in bob.lines()


def test_brokerOutageLocalUsersGoOn(cluster):
    """
    While Redis cannot be reached, users of one daemon still talk to each
    other; once it is back the other daemon gets those lines, once each, and
    nobody gets anything twice.
    """
    a, b = cluster.nodes
    alice, carol = login(cluster, a, "alice"), login(cluster, a, "carol")
    bob = login(cluster, b, "bob")
    for c in (alice, bob, carol):
        c.lines()
    cluster.redis.down = True
    cluster.settle()
    alice.send("while away")
    cluster.settle()
    assert carol.lines() == ["#lobby <alice> while away"]
    assert bob.lines() == []
    cluster.redis.down = False
    cluster.settle()
    alice.send("back")
    cluster.settle()
    assert bob.lines() == ["#lobby <alice> while away", "#lobby <alice> back"]
    assert carol.lines() == ["#lobby <alice> back"]


def test_brokerRestartWithoutData(cluster):
    """
    Redis restarts empty: the daemons claim their nicknames again, tell each
    other who is where, and chat goes on without duplicates.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    alice.lines()
    bob.lines()
    cluster.redis.down = True
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    cluster.redis.restart()
    cluster.redis.down = False
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    assert cluster.redis.get(b"chatd:nick:alice") == b"A"
    assert cluster.redis.get(b"chatd:nick:bob") == b"B"
    alice.send("after")
    cluster.settle()
    assert bob.lines() == ["#lobby <alice> after"]
    other = b.connect()
    other.lines()
    other.send("alice")
    cluster.settle()
    assert other.lines()[0] == "!!! the nickname alice is taken"


def test_kickAcrossDaemons():
    """
    An operator on one daemon kicks a user on another: everyone in the room
    sees it once, the user is out of the room on their own daemon too, and
    stays connected.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(op="op-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts, operators=["op"])
    b = cluster.add("B", accounts=accounts, operators=["op"])
    op = login(cluster, a, "op", "op-password")
    bob = login(cluster, b, "bob")
    carol = login(cluster, b, "carol")
    for c in (op, bob, carol):
        c.lines()
    op.send("/kick bob spam")
    cluster.settle()
    assert op.lines() == ["-- #lobby bob was kicked by op (spam)"]
    assert carol.lines() == ["-- #lobby bob was kicked by op (spam)"]
    assert bob.lines() == ["-- #lobby bob was kicked by op (spam)", "=== left #lobby"]
    assert bob.transport.connected
    assert "bob" not in b.core.rooms["#lobby"].members
    assert "bob" not in a.core.rooms["#lobby"].members
    carol.send("hello")
    cluster.settle()
    assert bob.lines() == []


def operatorCluster():
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(op="op-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts, operators=["op"])
    b = cluster.add("B", accounts=accounts, operators=["op"])
    op = login(cluster, a, "op", "op-password")
    return cluster, a, b, op


def test_muteAcrossDaemons():
    """
    A user muted by an operator on another daemon cannot talk until unmuted.
    """
    cluster, a, b, op = operatorCluster()
    bob = login(cluster, b, "bob")
    op.send("/mute bob")
    cluster.settle()
    bob.lines()
    op.lines()
    bob.send("can you hear me")
    cluster.settle()
    assert bob.lines()[0].startswith("!!! ")
    assert op.lines() == []
    op.send("/unmute bob")
    cluster.settle()
    bob.send("now?")
    cluster.settle()
    assert op.lines()[-1] == "#lobby <bob> now?"


def test_muteHoldsTheNicknameOnEveryDaemon():
    """
    A mute set on another daemon holds the muted nickname there too: the
    muted user, reconnecting under it, is still muted; unmuted, they talk.
    """
    cluster, a, b, op = operatorCluster()
    bob = login(cluster, b, "bob")
    op.send("/mute bob")
    cluster.settle()
    mutedOnReturn(cluster, op, bob, b, "bob")


def mutedOnReturn(cluster, op, mutee, node, nick):
    """
    C{mutee}, muted in the lobby, quits and comes back on C{node} as
    C{nick}: still muted, nobody hears them; unmuted by C{op}, heard.
    """
    mutee.send("/quit")
    cluster.settle()
    mutee = login(cluster, node, nick)
    op.lines()
    mutee.send("can you hear me")
    cluster.settle()
    assert mutee.lines() == ["!!! you are muted in #lobby"]
    assert op.lines() == []
    op.send(f"/unmute {nick}")
    cluster.settle()
    mutee.send("now?")
    cluster.settle()
    assert op.lines()[-1] == f"#lobby <{nick}> now?"


def test_serverBanAcrossDaemons():
    """
    An operator's ban of a user on another daemon: everyone sees them quit
    once, and they are told why and let go.
    """
    cluster, a, b, op = operatorCluster()
    bob = login(cluster, b, "bob")
    carol = login(cluster, b, "carol")
    for c in (op, bob, carol):
        c.lines()
    op.send("/ban bob 1h spam")
    cluster.settle()
    quits = [line for line in carol.lines() if "bob" in line and "quit" in line]
    assert quits == ["-- #lobby bob has quit (banned)"]
    assert [line for line in op.lines() if "quit" in line] == quits
    assert not bob.transport.connected
    assert "bob" not in b.core.users and "bob" not in a.core.users


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1",
                                 "redis://127.0.0.1:notaport", "redis://127.0.0.1:6379/x"])
def test_brokerOptionRefusesWhatIsNotARedisAddress(url):
    """
    --broker takes redis://HOST:PORT[/DB] and refuses anything else with a
    usage error.
    """
    from twisted.python import usage

    from chatd.tap import Options

    with pytest.raises(usage.UsageError, match="--broker"):
        Options().parseOptions(["--db", "none", "--broker", url])


def test_brokerOptionDefaultsToNone():
    """
    Without --broker the daemon is alone; with it, the address is kept.
    """
    from chatd.tap import Options

    options = Options()
    options.parseOptions(["--db", "none"])
    assert options["broker"] is None
    options = Options()
    options.parseOptions(["--db", "none", "--broker", "redis://10.0.0.5:6379/2"])
    assert options["broker"] == "redis://10.0.0.5:6379/2"


def test_renameAcrossDaemons(cluster):
    """
    A rename is announced on the other daemon and the old nickname is free
    there at once, the new one taken.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    bob.lines()
    alice.send("/nick alicia")
    cluster.settle()
    assert bob.lines() == ["-- #lobby alice is now known as alicia"]
    assert cluster.redis.get(b"chatd:nick:alice") is None
    assert cluster.redis.get(b"chatd:nick:alicia") == b"A"
    other = b.connect()
    other.lines()
    other.send("alicia")
    cluster.settle()
    assert other.lines()[0] == "!!! the nickname alicia is taken"
    other.send("alice")
    cluster.settle()
    assert "=== you are now alice" in other.lines()


def test_heartbeatKeepsNicknamesAcrossRedisLosingThem(cluster):
    """
    Redis forgets a nickname (a restart): the holder's heartbeat takes it
    back, and claiming it again after the restart keeps its user connected.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    cluster.redis.delete(b"chatd:nick:alice")
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    assert cluster.redis.get(b"chatd:nick:alice") == b"A"
    a.fanout.linkReset()
    cluster.settle()
    assert alice.transport.connected
    assert cluster.redis.get(b"chatd:nick:alice") == b"A"


def test_ghostAcrossDaemons():
    """
    /ghost of a registered nickname held on another daemon (both daemons
    share the accounts): the stale holder is told and let go there, the
    owner gets the nickname here, and every daemon knows who holds it now.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(bob="bob-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    c = cluster.add("C", accounts=accounts)
    stale = login(cluster, b, "bob", "bob-password")
    carol = login(cluster, c, "carol")
    owner = login(cluster, a, "robert")
    for client in (stale, carol, owner):
        client.lines()
    owner.send("/ghost bob bob-password")
    cluster.settle()
    assert "=== you are now bob" in owner.lines()
    assert not stale.transport.connected
    got = carol.lines()
    assert got == ["-- #lobby bob has quit (ghosted)",
                   "-- #lobby robert is now known as bob"], got
    assert cluster.redis.get(b"chatd:nick:bob") == b"A"
    for node in (b, c):
        assert node.core.users["bob"].node == "A"
    carol.send("/msg bob hi")
    cluster.settle()
    assert owner.lines() == ["*carol* hi"]


def _bobHeldOnB():
    """
    Two daemons sharing accounts, the registered bob logged in on B with a
    watcher beside him, their output so far read.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(bob="bob-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    stale = login(cluster, b, "bob", "bob-password")
    watcher = login(cluster, b, "watcher")
    stale.lines(), watcher.lines()
    return cluster, a, b, stale, watcher


def test_ghostAtThePromptFromAnotherDaemonIsSeenArriving():
    """
    The owner of a registered nickname held on another daemon takes it
    back at the nickname prompt: the members on the stale holder's daemon
    see the holder quit and the owner join, and find them in the room
    after (found checking ghosts across daemons: the join was not shown
    there, nor the owner listed, the holder's own departure not yet read
    back when it came).
    """
    cluster, a, b, stale, watcher = _bobHeldOnB()
    owner = a.connect()
    owner.lines()
    owner.send("/ghost bob bob-password")
    cluster.settle()
    assert "=== you are now bob" in owner.lines()
    assert not stale.transport.connected
    assert watcher.lines() == ["-- #lobby bob has quit (ghosted)", "-- #lobby bob has joined"]
    watcher.send("/who")
    cluster.settle()
    assert watcher.lines() == ["=== #lobby members (2): bob watcher"]
    assert b.core.users["bob"].node == "A"


def test_ircPassTakesBackANicknameHeldOnAnotherDaemon():
    """
    An IRC client giving PASS for a registered nickname held on another
    daemon gets it at registration: the stale holder is let go there, its
    room sees it quit, and every daemon knows who holds it now.
    """
    from chatd.irc.protocol import IrcFactory

    cluster, a, b, stale, watcher = _bobHeldOnB()
    owner = a.connect(factory=IrcFactory(a.core, a.gate))
    owner.send("PASS bob-password")
    owner.send("NICK bob")
    owner.send("USER bob 0 * :Bob")
    cluster.settle()
    assert owner.lines()[0] == ":irc.chatd 001 bob :Welcome to the chatd IRC Network bob!~bob@chatd"
    assert not stale.transport.connected
    assert watcher.lines() == ["-- #lobby bob has quit (ghosted)"]
    assert cluster.redis.get(b"chatd:nick:bob") == b"A"
    assert b.core.users["bob"].node == "A"


def test_registeredIsIdentifiedOnAnotherDaemon():
    """
    Registering a nickname on one daemon shows its owner identified on the
    others (found by a new-user trial: /whois there said "not identified").
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    uno = login(cluster, a, "uno")
    dos = login(cluster, b, "dos")
    dos.send("/whois uno")
    cluster.settle()
    assert dos.lines()[0].startswith("=== uno: not identified; ")
    uno.send("/register unopass-123")
    cluster.settle()
    dos.send("/whois uno")
    cluster.settle()
    assert dos.lines()[0].startswith("=== uno: identified; ")


def test_identifiedOnAnotherDaemon():
    """
    An operator identified on one daemon is known as identified, and so as
    an operator, on the others, a late one too: /whois says so, and a room
    owner there cannot kick them.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(op="op-password", owner="owner-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts, operators=["op"])
    b = cluster.add("B", accounts=accounts, operators=["op"])
    owner = login(cluster, b, "owner", "owner-password")
    owner.send("/join #mine")
    cluster.settle()
    op = login(cluster, a, "op", "op-password")
    op.send("/join #mine")
    cluster.settle()
    owner.lines()
    owner.send("/whois op")
    assert owner.lines()[0].startswith("=== op: identified; operator; in #lobby #mine; ")
    owner.send("/kick op")
    cluster.settle()
    assert owner.lines() == ["!!! op is a moderator of #mine"]
    late = cluster.add("C", accounts=accounts, operators=["op"])
    assert late.core.moderation.isOperator(late.core.users["op"])


def test_awayAcrossDaemons(cluster):
    """
    Within a heartbeat of going away on one daemon, a private message from
    another gets the away reply, and /whois there shows it.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    bob = login(cluster, b, "bob")
    bob.send("/away lunch")
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    alice.lines()
    alice.send("/msg bob back soon?")
    cluster.settle()
    assert alice.lines() == ["=== to bob: back soon?", "=== bob is away: lunch"]
    alice.send("/whois bob")
    assert "away: lunch" in alice.lines()[0]
    bob.send("/away")
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    alice.send("/msg bob hi")
    cluster.settle()
    assert alice.lines() == ["=== to bob: hi"]


def test_roomOwnerKnownOnOtherDaemons():
    """
    Whoever made a room while identified owns it on every daemon: they may
    kick its members wherever those are, and nobody can kick them.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(owner="owner-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    owner = login(cluster, a, "owner", "owner-password")
    owner.send("/join #mine")
    cluster.settle()
    bob = login(cluster, b, "bob")
    bob.send("/join #mine")
    cluster.settle()
    assert b.core.rooms["#mine"].owner == "owner"
    bob.lines()
    bob.send("/kick owner")
    cluster.settle()
    assert bob.lines()[0].startswith("!!! ")
    assert "owner" in b.core.rooms["#mine"].members
    assert cluster.add("C", accounts=accounts).core.rooms["#mine"].owner == "owner"


def test_snapshotDuringAClaimKeepsTheNewcomer(cluster):
    """
    A daemon asked who is here while a newcomer's claim is still out
    includes them: the others, who may have read the newcomer's arrival
    already, do not forget them.
    """
    a, b = cluster.nodes
    watcher = login(cluster, b, "watcher")
    alice = a.connect()
    alice.send("alice")  # the claim is queued, not yet written
    b.fanout._publish({"k": "syncreq"})
    b.link.write()
    a.link.read()  # A answers with its snapshot, queued after the claim
    cluster.settle()
    assert "=== you are now alice" in alice.lines()
    watcher.send("/who")
    assert watcher.lines()[-1] == "=== #lobby members (2): alice watcher"


def test_awayChangesToldOnOtherDaemons(cluster):
    """
    An away change on one daemon reaches, with the next heartbeat, the
    users of another who share a room with the one who changed (each
    daemon telling its own users: IRC's away-notify).
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    login(cluster, b, "bob")
    cluster.settle()
    alice.lines()
    told = []
    original = a.core.fanout.toEach
    a.core.fanout.toEach = lambda users, event: (
        told.append(([u.nick for u in users], event)), original(users, event))
    b.core.setAway(b.core.users["bob"], "lunch")
    cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    assert told == [(["alice"], events.AwayChanged("bob", "lunch"))]
    assert alice.lines() == []


def test_linesSaidElsewhereMoveTheHistoryClock():
    """
    A daemon is told the id of each line said on another one as it reads it
    from the stream (so that, on a shared store, its next ids sort after
    it); of its own lines, nothing.
    """
    cluster = Cluster()
    a = cluster.add("a", history=MemoryHistory())
    b = cluster.add("b", history=MemoryHistory())
    a.connect("alice")
    bob = b.connect("bob")
    cluster.settle()
    bob.send("hello")
    bob.send("/me waves")
    bob.send("/topic cake")
    cluster.settle()
    said = [e.id for e in b.core.history.lines]
    assert len(said) == 3
    assert a.core.history.seen == said
    assert b.core.history.seen == []


def test_creatorCannotLiftAnOperatorsMuteFromAnotherDaemon():
    """
    A mute keeps the rank of whoever set it on every daemon: a room's
    creator on another daemon than the operator who muted someone there
    cannot lift it; the operator can.
    """
    cluster, a, b, op = operatorCluster()
    alice, bob = login(cluster, b, "alice"), login(cluster, b, "bob")
    for person in (alice, bob, op):
        person.send("/join #free")
        cluster.settle()
    op.send("/mute bob")
    cluster.settle()
    alice.lines(), op.lines()
    alice.send("/unmute bob")
    cluster.settle()
    assert alice.lines() == [
        "!!! bob was muted in #free by an operator or its owner: only they may change that"]
    op.send("/unmute bob")
    cluster.settle()
    assert alice.lines() == ["-- #free op unmuted bob"]


def sharedCluster():
    """
    Two daemons sharing one history store (as on one PostgreSQL), with
    alice in #dev on the first and bob in the lobby on the second.
    """
    shared = SharedHistory()
    cluster = Cluster()
    a = cluster.add("a", history=shared.view())
    b = cluster.add("b", history=shared.view())
    alice, bob = login(cluster, a, "alice"), login(cluster, b, "bob")
    alice.send("/join #dev")
    settleAll(cluster, shared)
    # (Lines said from now on are said after either daemon began reading.)
    cluster.clock.advance(1)
    alice.lines(), bob.lines()
    return shared, cluster, a, b, alice, bob


def settleAll(cluster, shared):
    """
    Let the stream, the writers and the readers all finish.
    """
    for _ in range(5):
        cluster.settle()
        shared.commit()
        shared.answer()
    cluster.settle()


REPLAYED = "~ 1970-01-01T00:00:01Z #dev <alice> "


def test_joinShowsALineSaidElsewhereJustBeforeItOnce():
    """
    A line said on another daemon just before a join, in the stream before
    it but not yet stored there when the joiner's replay is read, is shown
    to the joiner once: in the replay.  (Neither the store, which had not
    got it, nor the live lines, which start at the join, had it.)
    """
    shared, cluster, a, b, alice, bob = sharedCluster()
    alice.send("early")
    cluster.settle()
    bob.send("/join #dev")
    cluster.settle()
    shared.answer()
    settleAll(cluster, shared)
    alice.send("late")
    settleAll(cluster, shared)
    got = bob.lines()
    assert [line for line in got if "early" in line or "late" in line] == [
        REPLAYED + "early", "#dev <alice> late"], got


def test_lineCrossingAJoinIsShownOnceLive():
    """
    A line said on another daemon as someone joins, after the join in the
    stream but stored before the joiner's replay is read, is shown once:
    live, not in the replay too.
    """
    shared, cluster, a, b, alice, bob = sharedCluster()
    alice.send("crossing")
    bob.send("/join #dev")
    b.link.write()
    shared.commit()
    settleAll(cluster, shared)
    got = bob.lines()
    assert [line for line in got if "crossing" in line] == ["#dev <alice> crossing"], got


def test_lineStoredBeforeTheJoinerReadsItIsShownOnceLive():
    """
    A line said on another daemon as someone joins, after the join in the
    stream, stored before the joiner's replay is read and before the
    joiner's daemon read it from the stream, is shown once: live, when it
    arrives, not in the replay.  A line stored long before the join, which
    the daemon no longer remembers reading, is in the replay.
    """
    shared, cluster, a, b, alice, bob = sharedCluster()
    alice.send("old")
    settleAll(cluster, shared)
    for _ in range(int(BrokeredFanout.HEARD_SECONDS / BrokeredFanout.BEAT) + 1):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    alice.send("crossing")
    bob.send("/join #dev")
    b.link.write()
    b.link.read()
    shared.commit()
    shared.answer()
    settleAll(cluster, shared)
    alice.send("after")
    settleAll(cluster, shared)
    got = bob.lines()
    assert [line for line in got if "#dev <alice>" in line] == [
        "~ 1970-01-01T00:00:01Z #dev <alice> old", "#dev <alice> crossing",
        "#dev <alice> after"], got


def test_storeOfItsOwnReplaysItsOwnLinesAlone():
    """
    Daemons each with a store of their own (a SQLite file each) replay
    their own lines alone, as read when the joiner asked: nothing of what
    the stream said is added.
    """
    cluster = Cluster()
    a = cluster.add("a", history=MemoryHistory())
    b = cluster.add("b", history=MemoryHistory())
    alice, bob = login(cluster, a, "alice"), login(cluster, b, "bob")
    carol = login(cluster, b, "carol")
    for person in (alice, carol):
        person.send("/join #dev")
        cluster.settle()
    alice.send("from a")
    carol.send("from b")
    cluster.settle()
    bob.send("/join #dev")
    b.core.history.answer()
    cluster.settle()
    got = bob.lines()
    assert [line for line in got if "#dev <" in line] == [
        "~ 1970-01-01T00:00:00Z #dev <carol> from b"], got


def test_linesForgottenFromABusyRoomAreReplayedFromTheStore():
    """
    A daemon remembers at most L{BrokeredFanout.HEARD_LINES} of a room's
    lines: those it forgot, stored since, are in a join's replay (not taken
    for lines on their way).
    """
    shared, cluster, a, b, alice, bob = sharedCluster()
    b.fanout.HEARD_LINES = 2
    for _ in range(5):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    for word in ("one", "two", "three"):
        alice.send(word)
    settleAll(cluster, shared)
    bob.send("/join #dev")
    settleAll(cluster, shared)
    got = bob.lines()
    assert [line for line in got if "#dev <alice>" in line] == [
        "~ 1970-01-01T00:00:06Z #dev <alice> " + word for word in ("one", "two", "three")], got


@pytest.fixture
def failures():
    """
    The failures logged meanwhile (an exception in the fan-out's reading
    is logged, not raised).
    """
    from twisted.logger import globalLogPublisher

    logged = []

    def observe(event):
        if "log_failure" in event:
            logged.append(event["log_failure"])

    globalLogPublisher.addObserver(observe)
    yield logged
    globalLogPublisher.removeObserver(observe)


def renameRace(cluster, *after, meanwhile=None):
    """
    rca on A and rcb on B, with a watcher on each, all in #lobby: both ask
    for the nickname racex at the same moment, rcb then sends C{after}; and
    C{meanwhile} is called, if given, before anything is read or written.

    @return: the clients, and what each was sent, by nickname.
    """
    a, b = cluster.nodes
    clients = {"wa": login(cluster, a, "wa"), "wb": login(cluster, b, "wb"),
               "rca": login(cluster, a, "rca"), "rcb": login(cluster, b, "rcb")}
    for c in clients.values():
        c.lines()
    # A wins: its claim reaches Redis first.
    clients["rca"].send("/nick racex")
    clients["rcb"].send("/nick racex")
    for line in after:
        clients["rcb"].send(line)
    if meanwhile is not None:
        meanwhile()
    cluster.settle()
    return clients, {nick: c.lines() for nick, c in clients.items()}


def test_renameRaceLoserKeepsNicknameAndRooms(cluster, failures):
    """
    Two users on two daemons ask for one nickname at once: the winner is
    renamed; the loser is told, keeps their nickname, connection and rooms,
    and nobody sees them renamed or leave.
    """
    clients, got = renameRace(cluster)
    # The winner is told once, not also as a member of the room.
    assert got["rca"] == ["=== you are now racex"]
    assert got["rcb"] == ["!!! the nickname racex was taken on another server at the "
                          "same moment; you are still rcb",
                          "-- #lobby rca is now known as racex"]
    for watcher in ("wa", "wb"):
        assert got[watcher] == ["-- #lobby rca is now known as racex"]
    clients["rcb"].send("still here")
    cluster.settle()
    for watcher in ("wa", "wb"):
        assert clients[watcher].lines() == ["#lobby <rcb> still here"]
    for node in cluster.nodes:
        members = node.core.rooms["#lobby"].members
        assert sorted(members) == ["racex", "rcb", "wa", "wb"]
        assert members["rcb"].nick == "rcb"
    assert cluster.redis.get(b"chatd:nick:rcb") == b"B"
    assert cluster.redis.get(b"chatd:nick:racex") == b"A"
    assert failures == []


def test_renameRaceLoserLinesSaidMeanwhileAreShownUnderTheirNickname(cluster, failures):
    """
    What the loser of a rename race said before Redis answered is shown to
    everyone once, under the nickname they kept.
    """
    clients, got = renameRace(cluster, "hello", "/join #dev")
    assert got["rcb"][0].startswith("!!! the nickname racex was taken")
    assert got["rcb"][1:3] == ["=== joined #dev", "=== #dev members (1): rcb"]
    for watcher in ("wa", "wb"):
        assert got[watcher] == ["-- #lobby rca is now known as racex",
                                "#lobby <rcb> hello"]
    clients["wa"].send("/who #dev")
    assert clients["wa"].lines() == ["=== #dev members (1): rcb"]
    assert failures == []


def test_renameRaceLoserWhoLeavesMeanwhileIsSeenLeaving(cluster, failures):
    """
    The loser of a rename race who quits before Redis answers is seen to
    quit under the nickname everyone knew, on every daemon, and that
    nickname is free.
    """
    clients, got = renameRace(cluster, "/quit bye")
    for watcher in ("wa", "wb"):
        assert got[watcher] == ["-- #lobby rca is now known as racex",
                                "-- #lobby rcb has quit (Quit: bye)"]
    for node in cluster.nodes:
        assert "rcb" not in node.core.users and "racex" in node.core.users
    assert cluster.redis.get(b"chatd:nick:rcb") is None
    login(cluster, cluster.nodes[0], "rcb")
    assert failures == []


def renamedAsRedisGoes(cluster, *lines):
    """
    Log in wa (daemon A), wb and rcb (daemon B); Redis goes away for B as
    rcb sends C{lines} (a /nick among them), before the claim is answered,
    which is then given up.  Redis stays away for B.

    @return: the three clients, their output so far read.
    """
    a, b = cluster.nodes
    wa, wb, rcb = login(cluster, a, "wa"), login(cluster, b, "wb"), login(cluster, b, "rcb")
    for c in (wa, wb, rcb):
        c.lines()
    b.link.cut = True
    for line in lines:
        rcb.send(line)
    b.link.read()  # B finds Redis away before the claim is answered ...
    b.link.write()  # ... which is then given up.
    return wa, wb, rcb


def test_quitAfterARenameThatCouldNotBeUndoneKeepsItsWordsMarked(cluster, failures):
    """
    A user whose rename could not be undone (Redis answered after it) and
    who then quits with words is told quitting as the core tells any quit:
    the words marked as theirs, not passing for the server's reason.
    """
    wa, wb, rcb = renamedAsRedisGoes(cluster, "/nick racex", "/nick racey")
    rcb.send("/quit banned")
    cluster.nodes[1].link.cut = False
    cluster.settle()
    assert wb.lines()[-1] == "-- #lobby racey has quit (Quit: banned)"
    assert not any(line.endswith("(banned)") for line in wa.lines())


def test_renameWhileRedisIsAwayIsRefused(cluster, failures):
    """
    /nick while the daemon cannot reach Redis is refused: the user keeps
    their nickname, rooms and connection, and nobody sees a change.
    """
    a, b = cluster.nodes
    alice, carol = login(cluster, a, "alice"), login(cluster, a, "carol")
    bob = login(cluster, b, "bob")
    for c in (alice, bob, carol):
        c.lines()
    cluster.redis.down = True
    cluster.settle()
    alice.send("/nick dupe")
    alice.send("still me")
    cluster.settle()
    assert alice.lines() == [
        "!!! the other chat servers cannot be reached to check nicknames; try dupe "
        "again in a moment; you are still alice"]
    assert alice.transport.connected
    assert carol.lines() == ["#lobby <alice> still me"]
    cluster.redis.down = False
    cluster.settle()
    assert bob.lines() == ["#lobby <alice> still me"]
    alice.send("/nick dupe")
    cluster.settle()
    assert alice.lines() == ["=== you are now dupe"]
    assert bob.lines() == ["-- #lobby alice is now known as dupe"]
    assert carol.lines() == ["-- #lobby alice is now known as dupe"]
    assert failures == []


def test_renameRefusedInEachWireFormat():
    """
    A rename refused after the fact reads in IRC as a NICK refused at once
    (433 when taken, 437 when it cannot be checked: the client keeps its
    nickname), and in the browser as an error naming both nicknames.
    """
    import json

    from chatd.irc.wire import IrcWire
    from chatd.web.wire import WebWire

    irc = IrcWire(server="irc.test")
    taken = events.RenameRefused("racex", "rcb", True)
    away = events.RenameRefused("racex", "rcb", False)
    assert irc.personal(taken, "rcb") == (
        b":irc.test 433 rcb racex :Nickname is already in use\r\n")
    assert irc.personal(away, "rcb") == (
        b":irc.test 437 rcb racex :Nickname is temporarily unavailable\r\n")
    shown = json.loads(WebWire.encode(taken)[4:])
    assert (shown["type"], shown["code"], shown["nick"], shown["kept"]) == (
        "error", "nickname-taken", "racex", "rcb")
    assert json.loads(WebWire.encode(away)[4:])["code"] == "nickname-unconfirmed"


def stopped(cluster, node):
    """
    Stop C{node} as C{kill -STOP} would: it neither writes, reads nor
    beats, and its users' lines wait in it.
    """
    cluster.nodes.remove(node)
    node.fanout._heart.stop()


def resumed(cluster, node, beats=3):
    """
    Resume C{node} (C{kill -CONT}), then let C{beats} heartbeats go by.
    """
    cluster.nodes.append(node)
    node.fanout._heart.start(BrokeredFanout.BEAT, now=True)
    for _ in range(beats):
        cluster.settle()
        cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()


def test_lostDaemonBackAfterItsUsersNicknameWasTaken(failures):
    """
    A daemon stopped for longer than the lease, then back: the others took
    it for lost, and meanwhile a newcomer took one of its users' nickname.
    The newcomer stays in their rooms everywhere and is never shown
    leaving; the old user's lines from the stop are not shown as the
    newcomer's; the old user is let go; the daemon's other users are shown
    joining again where they were shown quitting; and the stopped daemon's
    users are not told that everyone else quit.
    """
    cluster = Cluster("A", "B")
    a, b = cluster.nodes
    qwatch = login(cluster, a, "qwatch")
    parted, pwatch = login(cluster, b, "parted"), login(cluster, b, "pwatch")
    for c in (qwatch, parted, pwatch):
        c.lines()
    stopped(cluster, b)
    parted.send("said while stopped")
    for _ in range(int(BrokeredFanout.LEASE) + 2):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    assert sorted(qwatch.lines()) == ["-- #lobby parted has quit (node lost)",
                                      "-- #lobby pwatch has quit (node lost)"]
    newcomer = login(cluster, a, "parted")
    newcomer.lines()
    assert qwatch.lines() == ["-- #lobby parted has joined"]
    resumed(cluster, b)
    assert not parted.transport.connected
    assert parted.lines()[-1] == ("-!- Closing your connection: the nickname parted was "
                                  "taken on another server while this one could not reach it")
    assert qwatch.lines() == ["-- #lobby pwatch has joined"]
    assert newcomer.lines() == ["-- #lobby pwatch has joined"]
    assert pwatch.lines() == ["#lobby <parted> said while stopped",
                              "-- #lobby parted has quit (nickname taken elsewhere)",
                              "-- #lobby parted has joined"]
    newcomer.send("I am new")
    pwatch.send("welcome back")
    cluster.settle()
    assert qwatch.lines() == ["#lobby <parted> I am new", "#lobby <pwatch> welcome back"]
    assert pwatch.lines() == ["#lobby <parted> I am new"]
    assert newcomer.lines() == ["#lobby <pwatch> welcome back"]
    for node in (a, b):
        assert sorted(node.core.rooms["#lobby"].members) == ["parted", "pwatch", "qwatch"]
    assert not isinstance(a.core.users["parted"], RemoteUser)
    assert b.core.users["parted"].node == "A"
    assert failures == []


def test_daemonCutOffFromRedisBackAfterItsUsersNicknameWasTaken(failures):
    """
    A daemon cut off from Redis for longer than the lease serves its users
    meanwhile; the others take it for lost, and a newcomer takes one of its
    users' nickname.  Once it is back, as after a stop: the newcomer keeps
    their place, the old user's lines are not shown as theirs, its other
    users are shown joining again, and its own users were never told that
    everyone else quit.
    """
    cluster = Cluster("A", "B")
    a, b = cluster.nodes
    qwatch = login(cluster, a, "qwatch")
    parted, pwatch = login(cluster, b, "parted"), login(cluster, b, "pwatch")
    for c in (qwatch, parted, pwatch):
        c.lines()
    b.link.cut = True
    cluster.settle()
    parted.send("said while cut off")
    for _ in range(int(BrokeredFanout.LEASE) + 2):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    assert pwatch.lines() == ["#lobby <parted> said while cut off"]
    newcomer = login(cluster, a, "parted")
    newcomer.lines()
    qwatch.lines()
    b.link.cut = False
    for _ in range(3):
        cluster.settle()
        cluster.clock.advance(BrokeredFanout.BEAT)
    cluster.settle()
    assert not parted.transport.connected
    assert qwatch.lines() == ["-- #lobby pwatch has joined"]
    assert newcomer.lines() == ["-- #lobby pwatch has joined"]
    assert pwatch.lines() == ["-- #lobby parted has quit (nickname taken elsewhere)",
                              "-- #lobby parted has joined"]
    newcomer.send("I am new")
    cluster.settle()
    assert qwatch.lines() == pwatch.lines() == ["#lobby <parted> I am new"]
    for node in (a, b):
        assert sorted(node.core.rooms["#lobby"].members) == ["parted", "pwatch", "qwatch"]
    assert failures == []


def test_muteKnownToADaemonThatJoinsLate(failures):
    """
    A mute set before a daemon joined the cluster (or restarted) holds
    there: the muted user, reconnecting to it under the same nickname, is
    still muted; unmuted, they talk.
    """
    cluster, a, b, op = operatorCluster()
    mutee = login(cluster, b, "mutee")
    op.send("/mute mutee 10m")
    cluster.settle()
    c = cluster.add("C")
    mutedOnReturn(cluster, op, mutee, c, "mutee")
    assert failures == []


def test_muteEndsOnTimeOnADaemonThatJoinsLate():
    """
    A mute for a while, told to a daemon that joined later, ends there when
    it ends everywhere.
    """
    cluster, a, b, op = operatorCluster()
    mutee = login(cluster, b, "mutee")
    op.send("/mute mutee 1m")
    cluster.settle()
    cluster.clock.advance(30)
    c = cluster.add("C")
    mutee.send("/quit")
    cluster.settle()
    mutee = login(cluster, c, "mutee")
    mutee.send("muted still")
    cluster.settle()
    assert mutee.lines() == ["!!! you are muted in #lobby"]
    cluster.clock.advance(31)
    op.lines()
    mutee.send("free now")
    cluster.settle()
    assert op.lines() == ["#lobby <mutee> free now"]


def test_unmuteNotUndoneByASnapshotMadeBeforeIt():
    """
    A snapshot made by a daemon that had not read an unmute yet does not
    bring the mute back where it was lifted.
    """
    cluster, a, b, op = operatorCluster()
    mutee = login(cluster, b, "mutee")
    op.send("/mute mutee")
    cluster.settle()
    stale = {"k": "snap", "n": "B", "users": [["mutee", ["#lobby"], None, ""]],
             "topics": {"#lobby": ""}, "owners": {},
             "mutes": {"#lobby": [["n", "mutee", None, 2]]}}
    op.send("/unmute mutee")
    cluster.settle()
    a.fanout._mirrorSnapshot("B", stale)
    mutee.send("/quit")
    cluster.settle()
    mutee = login(cluster, a, "mutee")
    op.lines()
    mutee.send("free")
    cluster.settle()
    assert op.lines() == ["#lobby <mutee> free"]


def test_daemonJoiningLateKeepsWhatOthersKnowOfEachOther(cluster):
    """
    The snapshots a late daemon asks for make the others' mirrors match,
    without making them anew: a user of another daemon keeps their idle
    time there.
    """
    a, b = cluster.nodes
    alice = login(cluster, a, "alice")
    login(cluster, b, "bob")
    cluster.clock.advance(120)
    cluster.add("C")
    alice.lines()
    alice.send("/whois bob")
    assert "idle 2m" in " ".join(alice.lines())


def test_renameRaceLoserDuringASnapshotIsNotShownArriving(cluster, failures):
    """
    Everyone is asked who is where while a rename is being claimed (a
    daemon starting, say): the snapshots name the loser of the race by the
    nickname they kept, so nobody sees them arrive or leave.
    """
    a, b = cluster.nodes
    clients, got = renameRace(cluster, meanwhile=b.fanout._publishSnapshot)
    for watcher in ("wa", "wb"):
        assert got[watcher] == ["-- #lobby rca is now known as racex"]
    for node in cluster.nodes:
        assert sorted(node.core.rooms["#lobby"].members) == ["racex", "rcb", "wa", "wb"]
    assert failures == []


def test_creatorBanHoldsOnEveryDaemon(cluster):
    """
    A room's creator bans a member on another daemon: the member is out of
    the room on both daemons, and is told so.  The ban (never stored) holds
    on the victim's daemon too: the connection it put out stays out under
    another nickname, a new one under the banned nickname is refused, and
    once the creator lifts it the victim may come back (found by a trial:
    only the creator's daemon refused them).  Each refusal says the time
    left, under the other nickname too.
    """
    a, b = cluster.nodes
    creator, victim = login(cluster, a, "creator"), login(cluster, b, "victim")
    creator.send("/join #cb")
    cluster.settle()
    victim.send("/join #cb")
    cluster.settle()
    creator.lines(), victim.lines()
    creator.send("/ban victim 10m bye")
    cluster.settle()
    assert "=== left #cb" in victim.lines()
    for node in (a, b):
        assert sorted(node.core.rooms["#cb"].members) == ["creator"]
    victim.send("/join #cb")
    cluster.settle()
    assert victim.lines() == ["!!! you are banned from #cb for 10m more (bye)"]
    victim.send("/nick other")
    victim.send("/join #cb")
    cluster.settle()
    got = victim.lines()
    assert got == ["=== you are now other", "!!! you are banned from #cb for 10m more (bye)"]
    again = login(cluster, b, "victim")
    again.send("/join #cb")
    cluster.settle()
    assert again.lines()[-1].startswith("!!! you are banned from #cb"), again.lines()
    creator.send("/unban victim")
    cluster.settle()
    again.send("/join #cb")
    cluster.settle()
    assert "=== joined #cb" in again.lines()


def test_renameRefusedToAnIrcClientKeepsItsNickname(cluster, failures):
    """
    An IRC client whose NICK loses a race to another daemon gets 433, as
    for a NICK refused at once, and no NICK line: it keeps its nickname,
    and what it says next is shown under it.
    """
    from chatd.irc.protocol import IrcFactory

    a, b = cluster.nodes
    watcher, rca = login(cluster, a, "watcher"), login(cluster, a, "rca")
    irc = b.connect(factory=IrcFactory(b.core, b.gate))
    irc.send("NICK rcb")
    irc.send("USER rcb 0 * :rcb")
    irc.send("JOIN #lobby")
    cluster.settle()
    irc.lines(), watcher.lines()
    rca.send("/nick racex")
    irc.send("NICK racex")
    cluster.settle()
    got = irc.lines()
    assert got[0].endswith(" 433 rcb racex :Nickname is already in use"), got
    assert got[1:] == [":rca!~rca@chatd NICK racex"]
    irc.send("PRIVMSG #lobby :still rcb")
    cluster.settle()
    assert watcher.lines() == ["-- #lobby rca is now known as racex", "#lobby <rcb> still rcb"]
    assert failures == []


def test_renameRaceLoserRenamedAgainMeanwhileIsSeenLeaving(cluster, failures):
    """
    The loser of a rename race who renamed again before Redis answered has
    no nickname to go back to: they are let go, and everyone who saw them
    sees them quit under the nickname they knew, on every daemon.
    """
    clients, got = renameRace(cluster, "/nick other")
    assert not clients["rcb"].transport.connected
    for watcher in ("wa", "wb"):
        assert got[watcher] == ["-- #lobby rca is now known as racex",
                                "-- #lobby rcb has quit (connection closed)"], got[watcher]
    for node in cluster.nodes:
        assert sorted(node.core.rooms["#lobby"].members) == ["racex", "wa", "wb"]
        assert not {"rcb", "other"} & set(node.core.users)
    assert cluster.redis.get(b"chatd:nick:rcb") is None
    assert cluster.redis.get(b"chatd:nick:other") is None
    assert failures == []


def test_snapshotWaitsForClaimsOnlySoLong(cluster):
    """
    A snapshot waits for the nickname claims out on its daemon, but not
    for longer than SNAPSHOT_PATIENCE: claims that keep coming (a crowd
    logging in) do not keep the others from learning who is where.
    """
    a, b = cluster.nodes
    login(cluster, b, "bob")

    def snapshots():
        found = [codec.loads(fields[b"d"]) for _, fields in cluster.redis.entries()]
        return [e for e in found if e["k"] == "snap" and e["n"] == "B"]

    before = len(snapshots())
    b.fanout._claims["stuck"] = None  # a claim that is never answered
    b.fanout._publishSnapshot()
    cluster.settle()
    assert len(snapshots()) == before
    cluster.clock.advance(BrokeredFanout.SNAPSHOT_PATIENCE)
    cluster.settle()
    assert len(snapshots()) == before + 1
    assert snapshots()[-1]["users"][0][0] == "bob"
    del b.fanout._claims["stuck"]


def test_manyUsersOfADaemonBackAreShownArrivingTogether(failures):
    """
    The users of a daemon taken for lost and back are shown arriving again
    in one line when they are many, as a crowd arriving is.
    """
    cluster = Cluster("A", "B")
    a, b = cluster.nodes
    watcher = login(cluster, a, "watcher")
    crowd = [login(cluster, b, f"u{i}") for i in range(6)]
    watcher.lines()
    stopped(cluster, b)
    for _ in range(int(BrokeredFanout.LEASE) + 2):
        cluster.clock.advance(BrokeredFanout.BEAT)
        cluster.settle()
    assert len(watcher.lines()) == 6
    resumed(cluster, b)
    assert watcher.lines() == ["-- #lobby u0, u1 and 4 others have joined"]
    assert all(c.transport.connected for c in crowd)
    assert failures == []


def test_ownEntryThatFailsDoesNotStopTheRead(cluster, failures):
    """
    Should applying one of this daemon's own entries fail (as a KeyError
    did, trial 16), the failure is logged and the rest of what was read in
    the same go is still delivered.
    """
    a, b = cluster.nodes
    alice, carol = login(cluster, a, "alice"), login(cluster, a, "carol")
    bob = login(cluster, b, "bob")
    for c in (alice, bob, carol):
        c.lines()
    applyRoom = a.fanout._applyRoom

    def failing(entry, own, stash):
        if own and getattr(entry["e"], "text", None) == "boom":
            raise KeyError("boom")
        return applyRoom(entry, own, stash)

    a.fanout._applyRoom = failing
    alice.send("boom")
    bob.send("after")
    cluster.settle()
    assert carol.lines() == ["#lobby <bob> after"]
    assert [f.type for f in failures] == [KeyError]


def test_renameUnconfirmedAfterRedisWentAwayIsUndoneEverywhere(cluster, failures):
    """
    Redis goes away between a /nick and its claim's answer: the daemon
    shows its own users the rename and what the user said meanwhile at
    once (as it does all it publishes while Redis is away), then the claim
    is given up.  Its users are shown the rename undone; the others, once
    Redis is back, get what the user said under the nickname they kept, and
    never the rename.
    """
    a, b = cluster.nodes
    wa, wb, rcb = renamedAsRedisGoes(cluster, "/nick racex", "hi")
    assert wb.lines() == ["-- #lobby rcb is now known as racex", "#lobby <racex> hi",
                          "-- #lobby racex is now known as rcb"]
    # The user is told only why: neither the rename nor its undoing comes
    # back to them as a room event.
    assert rcb.lines() == [
        "!!! the other chat servers cannot be reached to check nicknames; try racex again "
        "in a moment; you are still rcb"]
    b.link.cut = False
    cluster.settle()
    assert wa.lines() == ["#lobby <rcb> hi"]
    assert wb.lines() == []
    rcb.send("back")
    cluster.settle()
    assert wa.lines() == wb.lines() == ["#lobby <rcb> back"]
    for node in (a, b):
        assert sorted(node.core.rooms["#lobby"].members) == ["rcb", "wa", "wb"]
    assert failures == []


def test_loginUnconfirmedAfterRedisWentAwayIsSeenLeaving(cluster, failures):
    """
    Redis goes away between a login and its claim's answer: the daemon
    shows its users the newcomer at once, then the claim is given up and
    the newcomer let go: those users see them leave; the others never saw
    them.
    """
    a, b = cluster.nodes
    wa, wb = login(cluster, a, "wa"), login(cluster, b, "wb")
    wa.lines(), wb.lines()
    b.link.cut = True
    newbie = b.connect()
    newbie.lines()
    newbie.send("newbie")
    b.link.read()
    b.link.write()
    cluster.clock.advance(0)
    assert not newbie.transport.connected
    assert wb.lines() == ["-- #lobby newbie has joined",
                          "-- #lobby newbie has quit (connection closed)"]
    b.link.cut = False
    cluster.settle()
    assert wa.lines() == [] and wb.lines() == []
    assert "newbie" not in b.core.rooms["#lobby"].members
    assert failures == []


def test_wrongPasswordsSlowGuessingOnEveryDaemon():
    """
    Wrong passwords for a registered nickname on one daemon slow the next
    attempts from that address on the others too (found by a trial: each
    daemon counted its own, so N daemons gave a guesser N times the free
    attempts); the right password, checked on one, forgets them on all.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(reg="reg-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)

    def attempt(node, password):
        client = node.connect()
        client.lines()
        client.send(f"/nick reg {password}")
        cluster.settle()
        return client

    for i in range(3):
        assert attempt(a, f"wrong-{i}-guess").lines()[0] == "!!! wrong password for reg"
    delay = ("-!- many wrong passwords came from your address lately; your password "
             "for reg is checked in {}s")
    guesser = attempt(b, "wrong-3-guess")
    assert guesser.lines() == [delay.format(1)]
    cluster.clock.advance(1)
    cluster.settle()
    assert "!!! wrong password for reg" in guesser.lines()
    owner = attempt(a, "reg-password")
    assert owner.lines() == [delay.format(2)]
    cluster.clock.advance(2)
    cluster.settle()
    assert "=== you are now reg" in owner.lines()
    # Forgotten on B too: the next attempt there is checked at once.
    assert "!!! wrong password for reg" in attempt(b, "wrong-4-guess").lines()


def test_changedPasswordLocksOutOnEveryDaemon():
    """
    A connection on one daemon that proved a nickname's old password (and
    uses another nickname since) must give the new one once its owner
    changed it through another daemon.
    """
    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(reg="reg-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    thief = login(cluster, b, "reg", "reg-password")
    thief.send("/nick thief")
    owner = login(cluster, a, "reg", "reg-password")
    owner.send("/password reg-password fresh-password")
    cluster.settle()
    assert "=== your password is changed" in owner.lines()
    owner.send("/quit")
    cluster.settle()
    thief.lines()
    thief.send("/nick reg")
    cluster.settle()
    assert thief.lines() == ["!!! reg is registered: /nick reg PASSWORD if it is yours"]


def test_passwordChangeLetsGoWhoTookTheNicknameElsewhereMeanwhile():
    """
    A thief on one daemon who takes a nickname with its old password while
    its owner's change is checked on another (letting the changer go) holds
    it when the change is made: the change is made all the same, and the
    thief is let go, told why, so that the owner can take the nickname with
    the new password (found by trial T2: the holder was spared).
    """
    from twisted.internet.defer import Deferred

    from support import MemoryAccounts

    accounts = MemoryAccounts()
    accounts.passwords.update(reg="reg-password")
    cluster = Cluster()
    a = cluster.add("A", accounts=accounts)
    b = cluster.add("B", accounts=accounts)
    owner = login(cluster, a, "reg", "reg-password")
    thief = login(cluster, b, "thief")
    checking, verify = Deferred(), accounts.verify
    accounts.verify = lambda nick, password: checking
    owner.send("/password reg-password fresh-password")
    cluster.settle()
    accounts.verify = verify
    thief.send("/nick reg reg-password")
    cluster.settle()
    assert "-!- the owner of reg took the nickname back; goodbye" in owner.lines()
    thief.lines()
    checking.callback(True)
    cluster.settle()
    assert accounts.passwords["reg"] == "fresh-password"
    assert thief.lines() == ["-!- the owner of reg took the nickname back; goodbye"]
    assert "reg" not in a.core.users and "reg" not in b.core.users
    login(cluster, a, "reg", "fresh-password")


def test_quitShownInEveryRoomOnOtherDaemons(cluster):
    """
    A user of one daemon who quits is shown quitting in each of their
    rooms on the others, not only in the first (found by a re-check trial:
    a member of their second room on another daemon was never told).
    """
    a, b = cluster.nodes
    qz = login(cluster, a, "qz")
    lobbyOnly, roomOnly = login(cluster, b, "lobbyonly"), login(cluster, b, "roomonly")
    for client in (qz, roomOnly):
        client.send("/join #qroom")
        cluster.settle()
    roomOnly.send("/part #lobby")
    cluster.settle()
    lobbyOnly.lines(), roomOnly.lines()
    qz.send("/quit bye")
    cluster.settle()
    assert lobbyOnly.lines() == ["-- #lobby qz has quit (Quit: bye)"]
    assert roomOnly.lines() == ["-- #qroom qz has quit (Quit: bye)"]
    assert "qz" not in b.core.users


def test_aQuitFromEveryRoomIsToldOnceToAnIrcClient(cluster):
    """
    A user of several rooms quits on one daemon while something else comes
    between the quit's first room and the others for an IRC client on
    another daemon (a line said in another room reaches the stream before
    them; a private message reaches the client between two reads): the
    client gets one QUIT, the line members one quit line per room, and
    everything else exactly once (found by a trial: the QUIT came twice,
    each room's quit being its own entry in the stream).
    """
    from chatd.irc.protocol import IrcFactory

    a, b = cluster.nodes
    irc = b.connect(factory=IrcFactory(b.core, b.gate))
    irc.send("NICK watcher")
    irc.send("USER watcher 0 * :watcher")
    irc.send("JOIN #lobby,#a,#b")
    quitter, talker = login(cluster, a, "quitter"), login(cluster, b, "talker")
    for client in (quitter, talker):
        client.send("/join #a")
        client.send("/join #b")
    cluster.settle()
    irc.lines(), talker.lines()
    quitter.send("/quit bye")
    written = list(a.link.queue)
    a.link.queue.clear()
    a.link.queue.append(written.pop(0))
    a.link.write()
    talker.send("between")
    b.link.write()
    b.link.read()
    talker.send("/msg watcher psst")
    a.link.queue.extend(written)
    cluster.settle()
    assert irc.lines() == [":quitter!~quitter@chatd QUIT :Quit: bye",
                           ":talker!~talker@chatd PRIVMSG #b between",
                           ":talker!~talker@chatd PRIVMSG watcher psst"]
    assert talker.lines() == ["-- #lobby quitter has quit (Quit: bye)", "-- #a quitter has quit (Quit: bye)",
                              "-- #b quitter has quit (Quit: bye)", "=== to watcher: psst"]


def test_aQuitHeardWithoutItsWordsInOneRoomIsToldOnceToAnIrcClient(cluster):
    """
    A user muted in one of the rooms an IRC client on another daemon shares
    with them quits with words: the client gets one QUIT, though the muted
    room's quit is told without them.
    """
    from chatd.irc.protocol import IrcFactory

    a, b = cluster.nodes
    boss = login(cluster, b, "boss")
    boss.send("/join #b")
    cluster.settle()
    irc = b.connect(factory=IrcFactory(b.core, b.gate))
    irc.send("NICK watcher")
    irc.send("USER watcher 0 * :watcher")
    irc.send("JOIN #a,#b")
    quitter = login(cluster, a, "quitter")
    quitter.send("/join #a")
    quitter.send("/join #b")
    cluster.settle()
    boss.send("/mute quitter")
    cluster.settle()
    irc.lines(), boss.lines()
    quitter.send("/quit bye")
    cluster.settle()
    assert irc.lines() == [":quitter!~quitter@chatd QUIT :Quit: bye"]
    assert boss.lines() == ["-- #lobby quitter has quit (Quit: bye)", "-- #b quitter has quit"]


def test_ownRenameToldOnceOnACluster(cluster):
    """
    A rename is confirmed to its user once: on the line protocol by its
    reply alone, on IRC by one NICK, and not again as a room event when it
    comes back from the stream, in each of their rooms (found by a trial:
    IRC clients got NICK twice).
    """
    from chatd.irc.protocol import IrcFactory

    a, b = cluster.nodes
    watcher = login(cluster, b, "watcher")
    irc = a.connect(factory=IrcFactory(a.core, a.gate))
    irc.send("NICK ircy")
    irc.send("USER ircy 0 * :ircy")
    irc.send("JOIN #lobby,#two")
    line = login(cluster, a, "liney")
    line.send("/join #two")
    cluster.settle()
    irc.lines(), line.lines(), watcher.lines()
    irc.send("NICK ircz")
    line.send("/nick linez")
    cluster.settle()
    assert irc.lines() == [":ircy!~ircy@chatd NICK ircz",
                           ":liney!~liney@chatd NICK linez"]
    assert line.lines() == ["=== you are now linez", "-- #lobby ircy is now known as ircz",
                            "-- #two ircy is now known as ircz"]
    assert watcher.lines() == ["-- #lobby ircy is now known as ircz",
                               "-- #lobby liney is now known as linez"]



def test_mutedNewcomersQuitReasonNotHeardWhenTheirLoginCouldNotBeConfirmed():
    """
    A muted nickname logs in while Redis went away, and quits with words
    before its claim is given up and it is let go: the users who were shown
    it arriving are told it quit, without its words, as for any quit in a
    room that mutes the quitter.
    """
    cluster, a, b, op = operatorCluster()
    bob = login(cluster, b, "bob")
    wb = login(cluster, b, "wb")
    op.send("/mute bob")
    cluster.settle()
    bob.send("/quit")
    cluster.settle()
    op.lines(), wb.lines()
    b.link.cut = True
    newbie = b.connect()
    newbie.lines()
    newbie.send("bob")
    b.link.read()
    b.link.write()
    # Let go at the end of the turn; their quit comes first.
    newbie.send("/quit buy my stuff")
    cluster.clock.advance(0)
    b.link.cut = False
    cluster.settle()
    assert wb.lines() == ["-- #lobby bob has joined", "-- #lobby bob has quit"]
    assert op.lines() == []

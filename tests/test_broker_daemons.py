"""
Several C{twistd -n chat --broker redis://...} daemons on one throw-away
redis-server, with users on real sockets on each.
"""

import signal
import threading
import time

import pytest

from brokersupport import RedisServer, waitFor
from chatd.broker.fanout import BrokeredFanout
from support import Daemon

# How long the others may take to notice a daemon killed with -9: the lease,
# one heartbeat to notice it ran out, and slack for a busy machine.
NOTICED_WITHIN = BrokeredFanout.LEASE + BrokeredFanout.BEAT + 3


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.cleanup()


def startDaemons(redis, count):
    daemons = []
    for _ in range(count):
        daemons.append(Daemon("--broker", redis.url, "--flood-burst", "1000",
                              "--db", "none").start())
    for daemon in daemons:
        waitFor(lambda: "connected" in daemon.logText(), timeout=10)
    return daemons


@pytest.fixture
def three(redis):
    daemons = startDaemons(redis, 3)
    yield daemons
    for daemon in daemons:
        daemon.stop()


def login(daemon, nick):
    client = daemon.client()
    client.login(nick)
    return client


def waitLines(client, count):
    """
    The next C{count} lines the client gets (each read has the client's
    timeout).
    """
    return [client.readLine() for _ in range(count)]


def ask(client, command):
    """
    The one line that answers C{command}.
    """
    client.send(command)
    return client.readLine()


def test_threeDaemonsExactDeliveriesInOneOrder(three):
    """
    A user on each of three daemons in one room: every line reaches each
    other member exactly once, all in one order; a private message across
    daemons reaches its target alone.
    """
    a, b, c = three
    alice, bob, carol = login(a, "alice"), login(b, "bob"), login(c, "carol")
    # Everyone has seen everyone arrive before talking starts.
    alice.readUntil(lambda l: l == "-- #lobby carol has joined")
    bob.readUntil(lambda l: l == "-- #lobby carol has joined")
    for i in range(20):
        alice.send(f"a{i}")
        bob.send(f"b{i}")
        carol.send(f"c{i}")
    got = {name: waitLines(client, 40) for name, client in
           (("alice", alice), ("bob", bob), ("carol", carol))}
    everything = {f"#lobby <{n}> {n[0]}{i}" for n in ("alice", "bob", "carol")
                  for i in range(20)}
    for name, lines in got.items():
        assert set(lines) == {line for line in everything if f"<{name}>" not in line}
        assert len(lines) == 40
    # One order: any two members agree on the order of the lines both saw.
    for x, y in (("alice", "bob"), ("bob", "carol"), ("alice", "carol")):
        common = set(got[x]) & set(got[y])
        assert [l for l in got[x] if l in common] == [l for l in got[y] if l in common]
    alice.send("/msg carol psst")
    assert carol.readLine() == "*alice* psst"
    assert bob.sync() == []
    assert alice.sync() == ["=== to carol: psst"]
    bob.send("/who")
    assert bob.sync() == ["=== #lobby members (3): alice bob carol"]


def test_nicknameRaceAcrossDaemons(three):
    """
    Two daemons asked for one nickname at the same moment: exactly one user
    gets it, every time.
    """
    a, b, _ = three
    for round in range(10):
        nick = f"racer{round}"
        first, second = a.client(), b.client()
        for client in (first, second):
            client.readUntil(lambda l: l.startswith("??? "))
        start = threading.Barrier(2, timeout=10)

        def claim(client):
            start.wait()
            client.send(nick)

        threads = [threading.Thread(target=claim, args=(c,)) for c in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        answers = [client.readLine() for client in (first, second)]
        won = [a for a in answers if a == f"=== you are now {nick}"]
        assert len(won) == 1, answers
        lost = [a for a in answers if a != f"=== you are now {nick}"]
        assert lost[0] in (f"!!! the nickname {nick} is taken",
                           f"-!- Closing your connection: the nickname {nick} was taken "
                           "on another server at the same moment; connect again"), answers
        first.close()
        second.close()


def test_killedDaemonUsersQuit(three):
    """
    A daemon killed with -9 is noticed by the others within the documented
    time: its users quit with "node lost", and their nicknames are free.
    """
    a, b, c = three
    # (Each client kept: one dropped would close its connection.)
    alice, bob, carol = login(a, "alice"), login(b, "bob"), login(c, "carol")
    for client in (alice, bob):
        client.readUntil(lambda l: l == "-- #lobby carol has joined")
    started = time.monotonic()
    c.stop(signal.SIGKILL)
    assert alice.readUntil(lambda l: "carol" in l)[-1] == "-- #lobby carol has quit (node lost)"
    assert time.monotonic() - started < NOTICED_WITHIN
    assert bob.readUntil(lambda l: "carol" in l)[-1] == "-- #lobby carol has quit (node lost)"
    login(b, "carol")
    assert alice.readLine() == "-- #lobby carol has joined"


def test_redisRestartChatGoesOn(redis):
    """
    Redis restarts without its data: each daemon keeps serving its users
    meanwhile, reconnects, and chat across daemons goes on, without
    duplicates, with nicknames still held.
    """
    a, b = startDaemons(redis, 2)
    try:
        alice, carol, bob = login(a, "alice"), login(a, "carol"), login(b, "bob")
        alice.readUntil(lambda l: l == "-- #lobby bob has joined")
        carol.readUntil(lambda l: l == "-- #lobby bob has joined")
        redis.stop()
        alice.send("while redis is away")
        assert carol.readLine() == "#lobby <alice> while redis is away"
        redis.start()
        # Back: the line said meanwhile reaches the other daemon, once.
        assert bob.readLine() == "#lobby <alice> while redis is away"
        waitFor(lambda: a.logText().count("reconnected") and b.logText().count("reconnected"))
        bob.send("after the restart")
        assert alice.readLine() == "#lobby <bob> after the restart"
        assert carol.readLine() == "#lobby <bob> after the restart"
        assert alice.sync() == [] and carol.sync() == [] and bob.sync() == []
        other = b.client()
        other.readUntil(lambda l: l.startswith("??? "))
        other.send("alice")
        assert other.readLine() == "!!! the nickname alice is taken"
    finally:
        a.stop()
        b.stop()


def test_stoppedDaemonUsersQuitAtOnce(redis):
    """
    A daemon stopped with SIGTERM says so: its users quit for the others
    with "server shutdown", without waiting for the lease.
    """
    a, b = startDaemons(redis, 2)
    try:
        alice, bob = login(a, "alice"), login(b, "bob")
        alice.readUntil(lambda l: l == "-- #lobby bob has joined")
        started = time.monotonic()
        b.stop()
        assert alice.readLine() == "-- #lobby bob has quit (server shutdown)"
        assert time.monotonic() - started < BrokeredFanout.LEASE
        assert alice.sync() == []
    finally:
        a.stop()
        b.stop()


def test_oneDaemonAloneNeedsNoRedis():
    """
    Without --broker, building the service imports neither the Redis reply parser
    nor the broker.
    """
    import subprocess
    import sys

    code = ("import sys; from chatd.tap import Options, makeService; o = Options(); "
            "o.parseOptions(['--db', 'none']); makeService(o); "
            "print('hiredis' in sys.modules, 'chatd.broker.fanout' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_stoppedDaemonBackAfterItsUsersNicknameWasTaken(redis):
    """
    A daemon stopped (kill -STOP) for longer than the lease, then resumed,
    after a newcomer on another daemon took one of its users' nickname:
    the newcomer stays in #lobby and is never shown leaving, the old user's
    line from the stop is not shown as the newcomer's, the resumed daemon's
    other user is shown joining again, and its users were not told that
    everyone else quit.
    """
    a, b = startDaemons(redis, 2)
    try:
        qwatch = login(a, "qwatch")
        parted, pwatch = login(b, "parted"), login(b, "pwatch")
        qwatch.readUntil(lambda l: l == "-- #lobby pwatch has joined")
        pwatch.sync()
        b.process.send_signal(signal.SIGSTOP)
        try:
            parted.send("said while stopped")
            assert sorted(waitLines(qwatch, 2)) == [
                "-- #lobby parted has quit (node lost)", "-- #lobby pwatch has quit (node lost)"]
            newcomer = login(a, "parted")
            assert qwatch.readLine() == "-- #lobby parted has joined"
        finally:
            b.process.send_signal(signal.SIGCONT)
        assert qwatch.readLine() == "-- #lobby pwatch has joined"
        # (The newcomer came after pwatch was taken for lost.)
        assert newcomer.readLine() == "-- #lobby pwatch has joined"
        assert parted.readUntil(lambda l: l.startswith("-!- "))[-1] == (
            "-!- Closing your connection: the nickname parted was taken on another server "
            "while this one could not reach it")
        assert pwatch.readUntil(lambda l: "has joined" in l) == [
            "#lobby <parted> said while stopped",
            "-- #lobby parted has quit (nickname taken elsewhere)",
            "-- #lobby parted has joined"]
        newcomer.send("I am new")
        assert pwatch.readLine() == qwatch.readLine() == "#lobby <parted> I am new"
        assert newcomer.sync() == [] and qwatch.sync() == [] and pwatch.sync() == []
        newcomer.send("/whois parted")
        assert "#lobby" in " ".join(newcomer.sync())
        assert "Traceback" not in a.logText() + b.logText()
    finally:
        b.process.send_signal(signal.SIGCONT)
        a.stop()
        b.stop()


def test_muteHoldsOnADaemonStartedAfterIt(redis):
    """
    A mute set before a daemon started holds there: the muted user,
    reconnecting to it under the same nickname, is still muted.
    """
    a, b = startDaemons(redis, 2)
    c = None
    try:
        boss, mutee = login(a, "boss"), login(b, "mutee")
        boss.send("/join #mroom")
        boss.readUntil(lambda l: l.startswith("=== #mroom members"))
        # (Once mutee's daemon knows the room is boss's: mutee is no creator.)
        waitFor(lambda: "boss" in ask(mutee, "/who #mroom"))
        mutee.send("/join #mroom")
        boss.readUntil(lambda l: l == "-- #mroom mutee has joined")
        boss.send("/mute mutee 10m")
        assert mutee.readUntil(lambda l: "muted" in l)[-1] == "-- #mroom boss muted mutee for 10m"
        b.stop()
        (c,) = startDaemons(redis, 1)
        mutee = login(c, "mutee")
        mutee.send("/join #mroom")
        mutee.readUntil(lambda l: l.startswith("=== #mroom members"))
        mutee.send("can you hear me")
        mutee.send("/ping done")
        assert mutee.readUntil(lambda l: l == "=== pong done") == [
            "!!! you are muted in #mroom", "=== pong done"]
        assert "can you hear me" not in " ".join(boss.sync())
    finally:
        for daemon in (a, b, c):
            if daemon is not None:
                daemon.stop()


def test_renameRaceAcrossDaemonsKeepsTheLoser(three):
    """
    Two users on two daemons ask for one new nickname at the same moment:
    exactly one is renamed; the other is told, keeps their nickname and
    connection; a watcher on the third daemon sees one rename, no quit.
    """
    a, b, c = three
    watcher = login(c, "watcher")
    for round in range(3):
        first, second = login(a, f"rca{round}"), login(b, f"rcb{round}")
        for client in (watcher, first):
            client.readUntil(lambda l: l == f"-- #lobby rcb{round} has joined")
        first.sync(), second.sync()
        nick = f"racex{round}"
        start = threading.Barrier(2, timeout=10)

        def rename(client):
            start.wait()
            client.send(f"/nick {nick}")

        threads = [threading.Thread(target=rename, args=(c,)) for c in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # The loser may see the winner's rename before its own refusal: its
        # /nick can reach its daemon after the rename was announced there.
        readings = [client.readUntil(lambda l: l.startswith(("=== you are now", "!!! ")))
                    for client in (first, second)]
        answers = [reading[-1] for reading in readings]
        won = [i for i, answer in enumerate(answers) if answer == f"=== you are now {nick}"]
        assert len(won) == 1, answers
        loser = 1 - won[0]
        kept = (f"rca{round}", f"rcb{round}")[loser]
        assert answers[loser] in (
            f"!!! the nickname {nick} is taken",
            f"!!! the nickname {nick} was taken on another server at the same moment; "
            f"you are still {kept}"), answers
        renamed = (f"rca{round}", f"rcb{round}")[won[0]]
        assert readings[won[0]] == [answers[won[0]]]
        assert readings[loser][:-1] in (
            [], [f"-- #lobby {renamed} is now known as {nick}"]), readings
        assert watcher.readLine() == f"-- #lobby {renamed} is now known as {nick}"
        (first, second)[loser].send("still here")
        assert watcher.readLine() == f"#lobby <{kept}> still here"
        assert watcher.sync() == []
        first.send("/quit bye")
        second.send("/quit bye")
        assert sorted(waitLines(watcher, 2)) == sorted(
            f"-- #lobby {who} has quit (Quit: bye)" for who in (kept, nick))
        first.close()
        second.close()
    for daemon in three:
        assert "Traceback" not in daemon.logText()


def test_renameWhileRedisIsAwayIsRefused(redis):
    """
    /nick while the daemon cannot reach Redis is refused: the user keeps
    their nickname and connection, and nobody is told they left.
    """
    a, b = startDaemons(redis, 2)
    try:
        alice, carol, bob = login(a, "alice"), login(a, "carol"), login(b, "bob")
        carol.readUntil(lambda l: l == "-- #lobby bob has joined")
        alice.sync()
        redis.stop()
        waitFor(lambda: "broker unreachable" in a.logText())
        alice.send("/nick dupe")
        assert alice.readLine() == (
            "!!! the other chat servers cannot be reached to check nicknames; try dupe "
            "again in a moment; you are still alice")
        alice.send("still alice")
        assert carol.readLine() == "#lobby <alice> still alice"
        redis.start()
        assert bob.readLine() == "#lobby <alice> still alice"
        assert alice.sync() == [] and carol.sync() == [] and bob.sync() == []
        assert "Traceback" not in a.logText() + b.logText()
    finally:
        a.stop()
        b.stop()


def test_anIrcClientHearsEachQuitOnce(redis):
    """
    Users of three rooms quit on one daemon while a user of another sends
    private messages to an IRC client there: the client gets one QUIT per
    user, and every private message, exactly once (found by a trial: a
    message read between the quit's first room and its others made the
    QUIT come twice).
    """
    from ircsupport import IrcDaemon, IrcSocketClient

    fast = ("--broker", redis.url, "--db", "none", "--flood-burst", "100000",
            "--flood-rate", "100000", "--max-per-address", "200")
    a = Daemon(*fast).start()
    b = IrcDaemon(*fast).start()
    try:
        for daemon in (a, b):
            waitFor(lambda: "connected" in daemon.logText(), timeout=10)
        watcher = IrcSocketClient(b.ircPort)
        watcher.register("watcher")
        watcher.send("JOIN #a,#b")
        talker, marker = login(b, "talker"), login(a, "marker")
        marker.send("/join #a")
        quitters = []
        for n in range(QUITTERS):
            quitter = login(a, f"quitter{n}")
            quitter.send("/join #a")
            quitter.send("/join #b")
            quitter.sync()
            quitters.append(quitter)
        marker.sync()
        last = f":quitter{QUITTERS - 1}!~quitter{QUITTERS - 1}@chatd JOIN #b"
        watcher.readUntil(lambda l: l == last)
        for n, quitter in enumerate(quitters):
            # The messages in small writes, each read on its own, while the
            # quit is read on the other daemon and its rooms' entries come.
            for i in range(MESSAGES):
                talker.send(f"/msg watcher {n}-{i}")
                if i == MESSAGES // 2:
                    quitter.send("/quit bye")
                time.sleep(0.0002)
            talker.sync()
        marker.send("done")
        got = watcher.readUntil(lambda l: l.endswith(" PRIVMSG #a done"))
        quits = [l for l in got if " QUIT " in l]
        assert quits == [f":quitter{n}!~quitter{n}@chatd QUIT :Quit: bye" for n in range(QUITTERS)]
        messages = [l.rsplit(" ", 1)[1] for l in got if " PRIVMSG watcher " in l]
        assert messages == [f"{n}-{i}" for n in range(QUITTERS) for i in range(MESSAGES)]
    finally:
        a.stop()
        b.stop()


# Enough users, and private messages while each quits, that the defect
# the trial found showed in every run.
QUITTERS = 40
MESSAGES = 100

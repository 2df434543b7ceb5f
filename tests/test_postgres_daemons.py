"""
Several C{twistd -n chat} daemons on one throw-away Redis and one throw-away
PostgreSQL: history said on one is replayed, paged and searched on another,
accounts and server bans hold on all, and the chat goes on while PostgreSQL
is away.
"""

import threading
import time

import psycopg
import pytest

from brokersupport import RedisServer, waitFor
from support import Daemon
from trustsupport import register


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.cleanup()


def startDaemons(redis, pgurl, count):
    daemons = []
    try:
        for _ in range(count):
            daemons.append(Daemon("--broker", redis.url, "--db", pgurl, "--operator", "op",
                                  "--flood-burst", "1000").start())
        for daemon in daemons:
            waitFor(lambda: "connected" in daemon.logText(), timeout=10)
    except BaseException:
        for daemon in daemons:
            daemon.stop()
        raise
    return daemons


@pytest.fixture
def three(redis, pgurl):
    daemons = startDaemons(redis, pgurl, 3)
    yield daemons
    for daemon in daemons:
        daemon.stop()


def login(daemon, nick):
    client = daemon.client()
    client.login(nick)
    return client


def stamped(line):
    """
    A history line without its "~ " mark and time.
    """
    assert line.startswith("~ 20") and line[21:23] == "Z ", line
    return line[23:]


def storedLines(pgurl):
    with psycopg.connect(pgurl) as connection:
        return connection.execute("SELECT count(*) FROM messages").fetchone()[0]


def test_historySaidOnOneDaemonIsReadOnTheOthers(three, pgurl):
    """
    alice on A and bob on B answer each other in turn; carol, arriving later
    on C, has it all replayed in the order it was said, pages it with
    /history and finds it with /search.
    """
    a, b, c = three
    alice, bob = login(a, "alice"), login(b, "bob")
    alice.readUntil(lambda l: l == "-- #lobby bob has joined")
    said = []
    for i in range(5):
        alice.send(f"ping {i}")
        assert bob.readLine() == f"#lobby <alice> ping {i}"
        bob.send(f"pong {i}")
        assert alice.readLine() == f"#lobby <bob> pong {i}"
        said += [f"#lobby <alice> ping {i}", f"#lobby <bob> pong {i}"]
    waitFor(lambda: storedLines(pgurl) == 10)
    carol = c.client()
    joined = carol.login("carol")
    replay = carol.sync()
    assert [stamped(l) for l in joined + replay if l.startswith("~ ")] == said
    carol.send("/history 4")
    shown = carol.sync()
    assert shown[0] == "=== #lobby: the last 4 lines"
    assert [stamped(l) for l in shown[1:]] == said[-4:]
    carol.send("/search pong 3")
    assert [stamped(l) for l in carol.sync()[1:]] == ["#lobby <bob> pong 3"]


def test_accountsAndServerBansHoldOnEveryDaemon(three):
    """
    alice registers on A; on B, someone else choosing "alice" is asked for
    its password, and the right one makes them alice.  The operator, on A,
    bans a nickname from the server: on C it is refused.
    """
    a, b, c = three
    register(a.port, "alice", "tr0ub4dor&3")
    time.sleep(0.5)
    mallory = b.client()
    mallory.readUntil(lambda l: l.startswith("??? "))
    mallory.send("alice")
    assert mallory.readLine() == "??? alice is registered: password (or another nickname)"
    mallory.send("wrong-password")
    assert mallory.readLine() == "!!! wrong password for alice"
    owner = b.client()
    owner.readUntil(lambda l: l.startswith("??? "))
    owner.send("alice")
    owner.readLine()
    owner.send("tr0ub4dor&3")
    assert owner.readUntil(lambda l: l.startswith("=== #lobby members"))[:2] == [
        "=== you are identified as alice", "=== you are now alice"]

    register(a.port, "op", "op-password")
    op = a.client()
    op.readUntil(lambda l: l.startswith("??? "))
    op.send("op")
    op.readLine()
    op.send("op-password")
    op.readUntil(lambda l: l.startswith("=== #lobby members"))
    op.send("/ban troll 1h spam")
    op.sync()
    time.sleep(0.5)
    troll = c.client()
    troll.readUntil(lambda l: l.startswith("??? "))
    troll.send("troll")
    assert troll.readLine() == "!!! you are banned from this server for 1h more (spam)"


def test_chatGoesOnWhilePostgresIsAway(redis, pgurl, postgresServer):
    """
    PostgreSQL stops: alice on A and bob on B keep talking (each line
    reaches the other once); once it is back, the lines said meanwhile are
    in the history, read on B.
    """
    a, b = startDaemons(redis, pgurl, 2)
    try:
        alice, bob = login(a, "alice"), login(b, "bob")
        alice.readUntil(lambda l: l == "-- #lobby bob has joined")
        # Their joins' replays read and shown, before the database goes.
        assert alice.sync() == [] and bob.sync() == []
        postgresServer.stop()
        try:
            for i in range(3):
                alice.send(f"while away {i}")
                assert bob.readLine() == f"#lobby <alice> while away {i}"
            bob.send("still here")
            assert alice.readLine() == "#lobby <bob> still here"
        finally:
            postgresServer.start()
        waitFor(lambda: storedLines(pgurl) == 4, timeout=30)
        bob.send("/history 10")
        shown = bob.sync()
        assert [stamped(l) for l in shown[1:]] == [
            "#lobby <alice> while away 0", "#lobby <alice> while away 1",
            "#lobby <alice> while away 2", "#lobby <bob> still here"]
        assert "reachable again" in a.logText()
    finally:
        a.stop()
        b.stop()


def test_oneDaemonOnSQLiteNeedsNoPostgresClient(tmp_path):
    """
    With a SQLite --db, building the service imports neither psycopg nor
    the PostgreSQL stores.
    """
    import subprocess
    import sys

    code = ("import sys; from chatd.tap import Options, makeService; o = Options(); "
            f"o.parseOptions(['--db', 'sqlite:{tmp_path}/chat.sqlite3']); makeService(o); "
            "print('psycopg' in sys.modules, 'chatd.storage.postgres' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def identify(daemon, nick, password):
    """
    A client of C{daemon} that took the registered C{nick} with its password.
    """
    client = daemon.client()
    client.readUntil(lambda l: l.startswith("??? "))
    client.send(nick)
    client.readLine()
    client.send(password)
    assert client.readUntil(lambda l: l.startswith("=== #lobby members"))[:2] == [
        f"=== you are identified as {nick}", f"=== you are now {nick}"]
    return client


def storedRows(pgurl, sql):
    with psycopg.connect(pgurl) as connection:
        return [tuple(row) for row in connection.execute(sql)]


def test_keptRoomIsItsOwnersOnEveryDaemon(pgurl):
    """
    Daemons A and B share one PostgreSQL, no broker.  On A, olga keeps
    #olga2 (she registers, joins it, sets its topic, talks and leaves).  B,
    running all along, learns of it: on B, mallory, registered and
    identified, who joins #olga2 finds olga's topic and may not ban olga
    from it; nothing is stored of her attempt, and olga, back on A, joins
    her room and still owns it.
    """
    from test_ops_daemon import metricsPort, scrape, value

    a = Daemon("--db", pgurl, "--flood-burst", "1000").start()
    b = Daemon("--db", pgurl, "--flood-burst", "1000",
               "--metrics", "tcp:0:interface=127.0.0.1").start()
    try:
        register(a.port, "olga", "olga-password")
        register(b.port, "mallory", "mallory-password")
        port = metricsPort(b)
        before = value(scrape(port), "chatd_rooms_kept")
        olga = identify(a, "olga", "olga-password")
        for line in ("/join #olga2", "/topic olga's plans", "olga's words", "/part"):
            olga.send(line)
        olga.sync()
        waitFor(lambda: storedRows(pgurl, "SELECT name, owner_key, topic FROM rooms") == [
            ("#olga2", "olga", "olga's plans")], timeout=10)
        # B, running already, hears of it from the database.
        waitFor(lambda: value(scrape(port), "chatd_rooms_kept") == before + 1, timeout=10)

        mallory = identify(b, "mallory", "mallory-password")
        mallory.send("/join #olga2")
        joined = mallory.readUntil(lambda l: l.startswith("=== #olga2 members"))
        assert joined[:2] == ["=== joined #olga2", "=== #olga2 topic: olga's plans"]
        # The kept room's history, hers to read as anyone's who joins it.
        assert [l[23:] for l in mallory.sync()] == [
            "-- #olga2 olga set the topic: olga's plans", "#olga2 <olga> olga's words"]
        mallory.send("/ban olga")
        assert mallory.readLine() == ("!!! you do not moderate #olga2: operators, its owner "
                                      "and its creator do")
        mallory.send("/part")
        mallory.sync()
        assert storedRows(pgurl, "SELECT target FROM bans") == []
        assert storedRows(pgurl, "SELECT name, owner_key, topic FROM rooms") == [
            ("#olga2", "olga", "olga's plans")]

        olga.send("/join #olga2")
        joined = olga.readUntil(lambda l: l.startswith("=== #olga2 members"))
        assert joined[:2] == ["=== joined #olga2", "=== #olga2 topic: olga's plans"]
        olga.sync()
        olga.send("/ban mallory")
        assert olga.readLine() == "-- #olga2 olga banned mallory"
        waitFor(lambda: storedRows(pgurl, "SELECT target, room FROM bans") == [
            ("mallory", "#olga2")], timeout=10)
    finally:
        a.stop()
        b.stop()


def test_eachLineOnceAroundJoinsWhileAnotherDaemonTalks(redis, pgurl):
    """
    alice on A talks in #dev every 2 ms while bob on B joins and leaves it
    again and again: each time, what bob is shown of alice's lines (the
    replay, then live) is each line once, in order, with none missing
    between the replay and the live lines, though many lines were still on
    their way to PostgreSQL or through Redis as he joined.
    """
    a, b = (Daemon("--broker", redis.url, "--db", pgurl, "--flood-rate", "10000",
                   "--flood-burst", "10000").start() for _ in range(2))
    stop = threading.Event()
    talker = None
    try:
        for daemon in (a, b):
            waitFor(lambda: "connected" in daemon.logText(), timeout=10)
        alice, bob = login(a, "alice"), login(b, "bob")
        alice.send("/join #dev")
        alice.sync()

        def talk():
            for i in range(100_000):
                if stop.is_set():
                    return
                alice.send(f"n{i}")
                time.sleep(0.002)

        talker = threading.Thread(target=talk, daemon=True)
        talker.start()
        time.sleep(0.2)
        for attempt in range(15):
            bob.send("/join #dev")
            time.sleep(0.03 + 0.01 * (attempt % 4))
            bob.send("/part")
            shown = [line.rsplit(" ", 1)[1] for line in bob.sync() if "#dev <alice> n" in line]
            numbers = [int(word[1:]) for word in shown]
            assert numbers, attempt
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), (
                f"join {attempt}: {numbers}")
    finally:
        stop.set()
        if talker is not None:
            talker.join(5)
        a.stop()
        b.stop()

"""
What only the PostgreSQL stores do: several daemons' stores on one database
(ids unique and in the order lines were said, each reading what the others
stored, accounts and bans seen by all), the schema's versions, and a
database that goes away and comes back.  (What every store does is tested on
both databases in test_history_store, test_history_bounds and
test_account_store.)
"""

import time

import psycopg
import pytest
from argon2 import PasswordHasher

from chatd.core import events
from chatd.core.bans import NICK, Ban
from chatd.storage import AccountError, HistoryError, HistoryUnavailable, pgschema
from chatd.storage import postgres
from chatd.storage.postgres import PostgresAccounts, PostgresHistory, idParts
from test_history_bounds import Producer

pytestmark = pytest.mark.slow

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def openHistory(url, calls, **kwargs):
    store = PostgresHistory(url, calls, **kwargs)
    store.open()
    return store


def openAccounts(url, calls):
    store = PostgresAccounts(url, calls, hasher=FAST)
    store.open()
    return store


def said(store, room, nick, text, time=1000.0):
    event = events.Said(room, nick, text, time, store.nextId())
    store.append(event)
    return event


class Watcher:
    def __init__(self):
        self.added = []
        self.removed = []

    def storedBanAdded(self, ban):
        self.added.append(ban)

    def storedBanRemoved(self, ban):
        self.removed.append(ban)


def test_daemonsSharingADatabaseMakeUniqueIdsInTheOrderLinesAreSaid(pgurl, calls):
    """
    Two daemons' stores on one database hold different slots; the ids they
    make, taken in turn, are all different and grow in the order they were
    made, and fit in a JavaScript number, once each daemon has seen the
    other's lines as the broker delivers them.  (Without that, nothing orders
    two daemons' ids within one millisecond: CI saw the second store begin a
    new millisecond at count 0 before the first did, and the first's id of
    that millisecond, lower by slot, came after it.)
    """
    a, b = openHistory(pgurl, calls), openHistory(pgurl, calls)
    assert a.slot != b.slot
    made = []
    for i in range(500):
        for maker, other in ((a, b), (b, a)):
            made.append(maker.nextId())
            other.observed(made[-1])
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert max(made) < 2 ** 53
    assert {idParts(id)[2] for id in made} == {a.slot, b.slot}
    calls.wait(a.close())
    calls.wait(b.close())


def test_anIdSeenFromAnotherDaemonComesBeforeTheNextOwn(pgurl, calls):
    """
    Once told of an id another daemon made (a line it delivered), a store's
    next ids are greater, even within the same millisecond and from a lower
    slot: a reply sorts after what it answers.
    """
    b, a = openHistory(pgurl, calls), openHistory(pgurl, calls)
    assert b.slot < a.slot
    for _ in range(200):
        theirs = a.nextId()
        b.observed(theirs)
        assert b.nextId() > theirs
    calls.wait(a.close())
    calls.wait(b.close())


def test_linesWhoseIdsClashAreLoggedAndTheRestKept(pgurl, calls):
    """
    Should another daemon have stored a line with an id this one made (its
    slot taken over while the database was away), the rest of the batch is
    stored all the same, and the loss is logged.
    """
    from twisted.logger import LogLevel, formatEvent, globalLogPublisher

    a, b = openHistory(pgurl, calls), openHistory(pgurl, calls)
    theirs = said(a, "#a", "alice", "first")
    calls.wait(a.flush())
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        b.append(events.Said("#a", "bob", "same id", 1000.0, theirs.id))
        kept = said(b, "#a", "bob", "kept")
        calls.wait(b.flush())
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert calls.wait(b.recent("#a", 10)) == [theirs, kept]
    warnings = [formatEvent(e) for e in logged if e.get("log_level") == LogLevel.warn]
    assert warnings == [f"1 history lines were not stored: another daemon stored lines "
                        f"with their ids (slot {b.slot} was taken over while the database "
                        "was away)"]
    calls.wait(a.close())
    calls.wait(b.close())


def test_slotsRunOutWithAClearError(pgurl, calls, monkeypatch):
    """
    A database shared by as many daemons as there are slots (here 3, not
    64, to spare the server 64 daemons' connections) refuses one more,
    saying so; a daemon that goes frees its slot.
    """
    assert postgres.SLOTS == 64
    monkeypatch.setattr(postgres, "SLOTS", 3)
    stores = [openHistory(pgurl, calls) for _ in range(3)]
    with pytest.raises(HistoryError) as refused:
        openHistory(pgurl, calls)
    assert str(refused.value) == (
        f"3 daemons share the history database {pgschema.describe(pgurl)} already")
    calls.wait(stores.pop().close())
    extra = openHistory(pgurl, calls)
    calls.wait(extra.close())
    for store in stores:
        calls.wait(store.close())


def test_eachDaemonReadsWhatTheOthersStored(pgurl, calls):
    """
    A replay, a search and a room's last topic on daemon B find the lines
    daemon A stored, in the order said, B's own between them.  (Lines said
    on two daemons within the same millisecond are in the order of their
    slots: hence the pauses.)
    """
    a, b = openHistory(pgurl, calls), openHistory(pgurl, calls)
    first = said(a, "#dev", "alice", "cake from a")
    calls.wait(a.flush())
    time.sleep(0.002)
    second = said(b, "#dev", "bob", "cake from b")
    time.sleep(0.002)
    topic = events.TopicChanged("#dev", "alice", "release", 1001.0, a.nextId())
    a.append(topic)
    calls.wait(a.flush())
    assert calls.wait(b.recent("#DEV", 10)) == [first, second, topic]
    assert calls.wait(b.search(["#dev"], ["cake"], 10)) == [second, first]
    assert calls.wait(b.lastTopic("#dev")) == ("release", "alice", 1001.0)
    calls.wait(a.close())
    calls.wait(b.close())


def test_searchTakesWordsOfSeveralTokensAsPhrases(pgurl, calls):
    """
    A word the index splits (q.q.q) matches its tokens side by side and in
    order, as SQLite's FTS5 does with a quoted phrase; a word with no token
    asks nothing of the lines.
    """
    store = openHistory(pgurl, calls)
    together = said(store, "#a", "al", "see q.r.s now")
    said(store, "#a", "al", "q then s then r")
    assert calls.wait(store.search(["#a"], ["Q.R.S"], 10)) == [together]
    assert calls.wait(store.search(["#a"], ["q-r-s", "---"], 10)) == [together]
    assert calls.wait(store.search(["#a"], ["---"], 10)) == []
    calls.wait(store.close())


def test_accountsRegisteredOnOneDaemonHoldOnTheOthers(pgurl, calls):
    """
    A nickname registered through one daemon's store is known registered by
    another's that was open already (told by the database), whose password
    check accepts it, and which refuses to register it again.
    """
    a, b = openAccounts(pgurl, calls), openAccounts(pgurl, calls)
    calls.wait(a.register("Alice", "a-password"))
    calls.until(lambda: b.isRegistered("alice"))
    assert calls.wait(b.verify("ALICE", "a-password")) is True
    assert calls.wait(b.verify("alice", "wrong")) is False
    calls.wait(a.close())
    # Registered meanwhile, while b still thought it free: refused all the same.
    c = openAccounts(pgurl, calls)
    c.close()
    b._registered.discard("alice")
    with pytest.raises(AccountError) as refused:
        calls.wait(b.register("alice", "other-password"))
    assert str(refused.value) == "alice is already registered"
    calls.wait(b.close())


def test_bansChangedByOneDaemonReachTheOthers(pgurl, calls):
    """
    A ban stored by one daemon is told to the others' watchers, once; one
    replaced is told again; one lifted is told as removed.
    """
    a, b = openAccounts(pgurl, calls), openAccounts(pgurl, calls)
    watcher = Watcher()
    b.watch(watcher)
    ban = Ban(NICK, "Troll", "", None, "spam", "op", 100.0)
    calls.wait(a.addBan(ban))
    calls.until(lambda: watcher.added == [ban])
    renewed = Ban(NICK, "troll", "", 5000.0, "again", "op", 200.0)
    calls.wait(a.addBan(renewed))
    calls.until(lambda: watcher.added == [ban, renewed])
    calls.wait(a.removeBan(renewed))
    calls.until(lambda: watcher.removed == [renewed])
    assert b.bans() == []
    calls.wait(a.close())
    calls.wait(b.close())


def test_schemaCreatedOnceAndNewerRefused(pgurl, calls):
    """
    The first store to open an empty database creates the schema at the
    current version; a database at a newer version is refused, untouched,
    with a message naming it (without its password) and both versions.
    """
    store = openHistory(pgurl, calls)
    calls.wait(store.close())
    with psycopg.connect(pgurl, autocommit=True) as connection:
        assert connection.execute("SELECT version FROM chatd_schema").fetchall() == [
            (pgschema.VERSION,)]
        connection.execute("UPDATE chatd_schema SET version = version + 1")
    withPassword = pgurl.replace("postgres@", "postgres:secret@")
    with pytest.raises(HistoryError) as refused:
        openHistory(withPassword, calls)
    assert str(refused.value) == (
        f"the history database {pgschema.describe(pgurl)} has schema version "
        f"{pgschema.VERSION + 1}, written by a newer chatd; this one knows versions up "
        f"to {pgschema.VERSION}")
    assert "secret" not in pgschema.describe(withPassword)


def test_unreachableDatabaseRefusedAtStart(calls):
    """
    A database that cannot be reached when the daemon starts stops the
    start, saying where and why.
    """
    from brokersupport import freePort

    url = f"postgresql://chatd:secret@127.0.0.1:{freePort()}/chatd"
    with pytest.raises(HistoryError) as refused:
        openHistory(url, calls)
    message = str(refused.value)
    assert message.startswith("cannot use the history database "
                              f"postgresql://chatd@127.0.0.1:{url.split(':')[3]}")
    assert "secret" not in message


def test_linesWaitWhileTheDatabaseIsAwayAndArriveWhenItIsBack(postgresServer, pgurl, calls):
    """
    With the server stopped, lines are still taken (nothing fails), reads
    are refused as unavailable, and past the bound the producer is paused;
    once the server is back every line is stored, the producer resumes and
    reads work again.
    """
    store = openHistory(pgurl, calls, behindLines=50)
    producer = Producer()
    store.registerProducer(producer, True)
    before = said(store, "#a", "alice", "before")
    calls.wait(store.flush())
    postgresServer.stop()
    try:
        waiting = [said(store, "#a", "alice", f"while away {i}") for i in range(30)]
        calls.until(lambda: store._down)
        with pytest.raises(HistoryUnavailable):
            calls.wait(store.recent("#a", 10))
        while not producer.paused:
            waiting.append(said(store, "#a", "alice", "more"))
        assert len(waiting) == 51
    finally:
        postgresServer.start()
    calls.wait(producer.resumed, timeout=30)
    calls.wait(store.flush(), timeout=30)
    assert calls.wait(store.recent("#a", 100)) == [before] + waiting
    calls.wait(store.close())


def test_accountsRefusedWhileTheDatabaseIsAway(postgresServer, pgurl, calls):
    """
    With the server stopped, registering and checking passwords are refused
    (an AccountError, shown to the user), bans and registered nicknames are
    still known; once it is back, both work again, and the listener, back
    too, hears of a nickname another daemon registers.
    """
    store = openAccounts(pgurl, calls)
    calls.wait(store.register("alice", "a-password"))
    postgresServer.stop()
    try:
        for refused in (store.register("bob", "b-password"),
                        store.verify("alice", "a-password")):
            with pytest.raises(AccountError) as away:
                calls.wait(refused, timeout=20)
            assert str(away.value) == ("accounts cannot be reached at the moment; "
                                       "try again later")
        assert store.isRegistered("alice") and not store.isRegistered("bob")
    finally:
        postgresServer.start()
    other = openAccounts(pgurl, calls)
    calls.wait(other.register("carol", "c-password"))
    calls.wait(other.close())
    calls.until(lambda: store.isRegistered("carol"), timeout=20)
    assert calls.wait(store.verify("alice", "a-password")) is True
    calls.wait(store.close())


def test_closingWhileTheDatabaseIsAwayGivesUpAfterItsPatience(
        postgresServer, pgurl, calls, monkeypatch):
    """
    A store closed while its database is away tries for CLOSE_PATIENCE
    seconds more, then lets go, logging the lines it could not store.
    """
    from twisted.logger import formatEvent, globalLogPublisher

    monkeypatch.setattr(postgres, "CLOSE_PATIENCE", 0.5)
    store = openHistory(pgurl, calls)
    postgresServer.stop()
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        for i in range(3):
            said(store, "#a", "alice", f"lost {i}")
        calls.until(lambda: store._down)
        calls.wait(store.close(), timeout=20)
    finally:
        globalLogPublisher.removeObserver(logged.append)
        postgresServer.start()
    assert "3 history lines could not be stored" in [formatEvent(e) for e in logged]


class RoomWatcher:
    def __init__(self):
        self.kept = []

    def storedRoomKept(self, name, owner, topic, firstId):
        self.kept.append((name, owner, topic, firstId))


def test_roomsKeptByOneDaemonReachTheOthers(pgurl, calls):
    """
    A room kept through one daemon's store, and its new topic, are told to
    the others' room watchers; another owner keeping it after that changes
    nothing, and learns whose it is.  A store opened later is told of every
    kept room when it connects.
    """
    a, b = openAccounts(pgurl, calls), openAccounts(pgurl, calls)
    watcher = RoomWatcher()
    b.watchRooms(watcher)
    calls.wait(a.keepRoom("#olga2", "olga", "", 41))
    calls.until(lambda: watcher.kept[-1:] == [("#olga2", "olga", "", 41)])
    # (Twice, should b's listener have read every room as it connected.)
    assert set(watcher.kept) == {("#olga2", "olga", "", 41)}
    calls.wait(a.keepRoom("#olga2", "olga", "plans", 41))
    calls.until(lambda: watcher.kept[-1:] == [("#olga2", "olga", "plans", 41)])
    assert calls.wait(b.keepRoom("#OLGA2", "mallory", "mine", 99)) == (
        "#olga2", "olga", "plans", 41)
    c = openAccounts(pgurl, calls)
    late = RoomWatcher()
    c.watchRooms(late)
    calls.until(lambda: late.kept == [("#olga2", "olga", "plans", 41)])
    for store in (a, b, c):
        calls.wait(store.close())

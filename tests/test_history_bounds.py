"""
The history store's bounds: the writer's backlog (back-pressure on whatever
reads the connections), the two readers' queues, a read's deadline, the
size of a search, a room's last topic served like a replay, and the file's
permissions.  Driven as in test_history_store, with test doubles that stall
the database where a bound must hold while it is stuck; most run on SQLite
and on PostgreSQL (the backend fixture).
"""

import os
import sqlite3
import stat
import threading

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from chatd.core import events
from chatd.storage import HistoryBusy, QueryTooSlow, SearchTooComplex
from chatd.storage import threaded
from chatd.storage.sqlite import SQLiteHistory
from chatd.storage.threaded import SEARCH_TOKENS, searchTokens
from support import MemoryServer




class Stalled:
    """
    A store whose writer blocks in every commit, and whose query reader
    blocks in every search, until the test lets them go (mixed into each
    backend's store by L{stalled}).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writing = threading.Event()
        self.writing.set()
        self.searching = threading.Event()
        self.searching.set()
        self.commits = 0

    def _store(self, connection, rows):
        self.writing.wait(10)
        self.commits += 1
        super()._store(connection, rows)

    def _search(self, connection, *args):
        self.searching.wait(10)
        return super()._search(connection, *args)


class Producer:
    """
    Stands in for whatever reads every connection: counts pauses and
    resumes, and fires C{resumed} at each resume.
    """

    def __init__(self):
        self.paused = False
        self.pauses = self.resumes = 0
        self.resumed = Deferred()

    def pauseProducing(self):
        assert not self.paused, "paused twice"
        self.paused = True
        self.pauses += 1

    def resumeProducing(self):
        assert self.paused, "resumed while not paused"
        self.paused = False
        self.resumes += 1
        resumed, self.resumed = self.resumed, Deferred()
        resumed.callback(None)

    def stopProducing(self):
        pass


def stalled(backend, calls, **kwargs):
    """
    An open store of C{backend}'s that stalls when the test says so.
    """
    cls = type("Stalled" + backend.historyClass.__name__, (Stalled, backend.historyClass), {})
    return backend.history(calls, cls, **kwargs)


def said(store, room, nick, text, time=1000.0):
    event = events.Said(room, nick, text, time, store.nextId())
    store.append(event)
    return event


def stored(backend):
    return backend.query("SELECT count(*) FROM messages")[0][0]


def readUntilPaused(store, producer, text="x"):
    """
    Append lines as the daemon would read them: until told to pause.
    """
    count = 0
    while not producer.paused:
        said(store, "#a", "alice", text)
        count += 1
    return count


def test_stalledWriterPausesReadingOnceAndResumesOnce(backend, calls):
    """
    With the database stuck, the store takes lines until more than its bound wait,
    then pauses its producer, once, however many more lines come meanwhile
    (the rest of what was read already); once the database moves again and the
    writer is down to half the bound, the producer is resumed, once; every
    line is stored.  It happens again at the next stall.
    """
    store = stalled(backend, calls, behindLines=100)
    producer = Producer()
    store.registerProducer(producer, True)
    store.writing.clear()
    assert readUntilPaused(store, producer) == 101
    for i in range(50):
        said(store, "#a", "alice", "read before the pause took effect")
    assert (producer.pauses, producer.resumes) == (1, 0)
    assert store.mostBehind[0] == 101
    store.writing.set()
    calls.wait(producer.resumed)
    assert (producer.pauses, producer.resumes) == (1, 1)
    calls.wait(store.flush())
    assert stored(backend) == 151

    store.writing.clear()
    assert readUntilPaused(store, producer) == 101
    store.writing.set()
    calls.wait(producer.resumed)
    assert (producer.pauses, producer.resumes) == (2, 2)
    calls.wait(store.close())
    assert stored(backend) == 252


class EagerProducer(Producer):
    """
    A producer that, as it resumes, handles what it had read already: enough
    lines (with the database stuck again) to put the store over its bound.
    """

    def __init__(self, store, lines):
        super().__init__()
        self.store = store
        self.lines = lines
        self.inResume = False

    def pauseProducing(self):
        assert not self.inResume, "paused in the middle of resuming"
        super().pauseProducing()

    def resumeProducing(self):
        self.inResume = True
        super().resumeProducing()
        self.store.writing.clear()
        for i in range(self.lines):
            said(self.store, "#a", "alice", "read before the pause")
        self.inResume = False


def test_fallingBehindWhileResumingPausesAfterTheResume(backend, calls):
    """
    Lines appended while the producer resumes (what it had read already)
    that put the store over its bound again pause it once its resume is
    over, never in the middle of it (a gate resuming one connection after
    another would otherwise resume the rest after being paused).
    """
    store = stalled(backend, calls, behindLines=100)
    producer = EagerProducer(store, 200)
    store.registerProducer(producer, True)
    store.writing.clear()
    assert readUntilPaused(store, producer) == 101
    store.writing.set()
    calls.wait(producer.resumed)
    assert (producer.pauses, producer.resumes) == (2, 1)
    assert producer.paused
    producer.lines = 0
    store.writing.set()
    calls.wait(producer.resumed)
    assert (producer.pauses, producer.resumes) == (2, 2)
    calls.wait(store.close())
    assert stored(backend) == 301


def test_slowCommitIsLogged(backend, calls, monkeypatch):
    """
    A commit that takes longer than SLOW_COMMIT is logged as a warning that
    says input is not read meanwhile.
    """
    monkeypatch.setattr(threaded, "SLOW_COMMIT", 0.05)
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        store = stalled(backend, calls)
        store.writing.clear()
        said(store, "#a", "alice", "slow")
        flushed = store.flush()
        threading.Timer(0.1, store.writing.set).start()
        calls.wait(flushed)
        calls.wait(store.close())
    finally:
        globalLogPublisher.removeObserver(logged.append)
    warnings = [formatEvent(e) for e in logged if e.get("log_level") == LogLevel.warn]
    assert len(warnings) == 1
    assert warnings[0].startswith("storing 1 history lines took 0.")
    assert warnings[0].endswith("while the history writer is behind, no input is read")


def test_boundInBytesOfText(backend, calls):
    """
    Long lines reach the bound in bytes before the bound in lines.
    """
    store = stalled(backend, calls, behindLines=10_000, behindBytes=1000)
    producer = Producer()
    store.registerProducer(producer, True)
    store.writing.clear()
    assert readUntilPaused(store, producer, text="x" * 100) == 11
    store.writing.set()
    calls.wait(producer.resumed)
    calls.wait(store.close())
    assert stored(backend) == 11


def test_producerRegisteredWhileBehindIsPausedAtOnce(backend, calls):
    """
    A producer registered while the store is behind is paused at once; one
    unregistered is told nothing more; only push producers are taken.
    """
    store = stalled(backend, calls, behindLines=10)
    store.writing.clear()
    for i in range(20):
        said(store, "#a", "alice", "x")
    producer = Producer()
    store.registerProducer(producer, True)
    assert producer.paused
    store.unregisterProducer()
    store.writing.set()
    calls.wait(store.flush())
    assert producer.paused and producer.resumes == 0
    with pytest.raises(ValueError):
        store.registerProducer(Producer(), False)
    calls.wait(store.close())


def test_writerKeepsUpWithoutPausing(backend, calls):
    """
    A writer that keeps up never pauses anyone.
    """
    store = backend.history(calls)
    producer = Producer()
    store.registerProducer(producer, True)
    for i in range(5000):
        said(store, "#a", "alice", f"line {i}")
    calls.wait(store.close())
    assert producer.pauses == 0
    assert stored(backend) == 5000


def test_searchesWaitingBeyondTheBoundAreBusyButOtherReadsGoOn(backend, calls):
    """
    While searches are stuck, at most C{maxQueries} of them wait; one more is
    refused at once with HistoryBusy.  A join's replay, a last-topic look-up,
    /history and a CHATHISTORY page are answered meanwhile (their reader is
    not the searches'), and once the searches finish, searching works again.
    """
    store = stalled(backend, calls, maxQueries=3)
    line = said(store, "#a", "alice", "cake")
    store.searching.clear()
    waiting = [store.search(["#a"], ["cake"], 5) for i in range(3)]
    with pytest.raises(HistoryBusy) as busy:
        calls.wait(store.search(["#a"], ["cake"], 5))
    assert str(busy.value) == "history is busy; try again in a moment"
    assert calls.wait(store.recent("#a", 5)) == [line]
    assert calls.wait(store.page("#a", 5, before=("id", line.id + 1))) == [line]
    assert calls.wait(store.lastTopic("#a")) is None
    store.searching.set()
    assert [calls.wait(d) for d in waiting] == [[line], [line], [line]]
    assert calls.wait(store.search(["#a"], ["cake"], 5)) == [line]
    calls.wait(store.close())


def test_replaysWaitingBeyondTheirBoundAreBusy(backend, calls):
    """
    Replays have a bound too, far above any normal join rate: with the
    writer stuck, one more than C{maxReplays} is refused with HistoryBusy.
    """
    store = stalled(backend, calls, maxReplays=2)
    said(store, "#a", "alice", "hello")
    store.writing.clear()
    said(store, "#a", "alice", "stuck behind")
    waiting = [store.recent("#a", 5), store.lastTopic("#a")]
    with pytest.raises(HistoryBusy):
        calls.wait(store.recent("#a", 5))
    store.writing.set()
    assert len(calls.wait(waiting[0])) == 2
    assert calls.wait(waiting[1]) is None
    calls.wait(store.close())


def test_slowSearchIsStoppedAtTheDeadline(backend, calls):
    """
    A search that runs in the database longer than the store's deadline is
    stopped and fails with QueryTooSlow, saying so; the reader goes on.
    """
    store = backend.history(calls, querySeconds=0.0)
    for i in range(20000):
        said(store, "#big", "alice", f"common word {i}")
    said(store, "#small", "bob", "nothing to see")
    with pytest.raises(QueryTooSlow) as slow:
        calls.wait(store.search(["#small"], ["common"], 5))
    assert str(slow.value) == "the search took more than 0 s and was stopped"
    calls.wait(store.close())
    store = backend.history(calls)
    assert calls.wait(store.search(["#small"], ["common"], 5)) == []
    calls.wait(store.close())


def test_searchOfTooManyTokensIsRefused(backend, calls):
    """
    Words are counted in tokens, as the index splits them (q.q.q is three);
    a search of more than SEARCH_TOKENS is refused before it is queued, one
    of exactly SEARCH_TOKENS runs.
    """
    assert searchTokens(["q.q.q", "café", "a_b", "---"]) == 3 + 1 + 2 + 0
    store = backend.history(calls)
    line = said(store, "#a", "alice", " ".join(["q"] * 30))
    with pytest.raises(SearchTooComplex) as refused:
        calls.wait(store.search(["#a"], [".".join(["q"] * 1000)], 5))
    assert str(refused.value) == (
        f"a search may hold at most {SEARCH_TOKENS} words and parts of words "
        "(a.b.c counts as 3); this one holds 1000")
    assert calls.wait(store.search(["#a"], [".".join(["q"] * SEARCH_TOKENS)], 5)) == [line]
    calls.wait(store.close())


def test_lastTopic(backend, calls):
    """
    lastTopic gives the topic, its setter and time from the room's last
    topic line, as of the call (one appended just before is seen), in any
    case of the room's name, also after reopening; None for a room with no
    topic line, or whose last one cleared the topic.
    """
    store = backend.history(calls)
    assert calls.wait(store.lastTopic("#dev")) is None
    store.append(events.TopicChanged("#Dev", "alice", "old", 10.0, store.nextId()))
    store.append(events.TopicChanged("#Dev", "alice", "release on Friday", 20.0,
                                     store.nextId()))
    said(store, "#dev", "bob", "ok")
    store.append(events.TopicChanged("#other", "carol", "", 30.0, store.nextId()))
    assert calls.wait(store.lastTopic("#DEV")) == ("release on Friday", "alice", 20.0)
    assert calls.wait(store.lastTopic("#other")) is None
    calls.wait(store.close())
    store = backend.history(calls)
    assert calls.wait(store.lastTopic("#dev")) == ("release on Friday", "alice", 20.0)
    calls.wait(store.close())


def test_lastTopicUsesItsIndex(path, calls):
    """
    A room's last topic is found through the partial index of topic lines,
    not by walking the room's lines.
    """
    store = SQLiteHistory(path, calls)
    store.open()
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    plan = connection.execute(
        "EXPLAIN QUERY PLAN SELECT text, nick, time FROM messages "
        "WHERE room_key = ? AND kind = 'topic' AND id <= ? ORDER BY id DESC LIMIT 1",
        ("#a", 5)).fetchall()
    connection.close()
    assert "messages_topics" in " ".join(row[-1] for row in plan)


def test_databaseAndItsCompanionsArePrivate(tmp_path, calls):
    """
    A new database, its WAL and its shared-memory file are readable and
    writable by their owner only, and a new folder for them is the owner's
    alone, whatever the umask.
    """
    path = str(tmp_path / "new" / "chatd.sqlite3")
    old = os.umask(0o022)
    try:
        store = SQLiteHistory(path, calls)
        store.open()
        said(store, "#a", "alice", "hello")
        calls.wait(store.flush())
        for name in (path, path + "-wal", path + "-shm"):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        calls.wait(store.close())
    finally:
        os.umask(old)


def test_theStorePausesAndResumesAllInputThroughTheGate():
    """
    The daemon's producer for the history store (chatd.tap) pauses every
    open connection's input through the gate, and each one opened while
    paused; resuming resumes them all.
    """
    server = MemoryServer()
    producer = server.gate
    alice = server.connect("alice")
    producer.pauseProducing()
    bob = server.connect()
    assert alice.transport.producerState == "paused"
    assert bob.transport.producerState == "paused"
    producer.resumeProducing()
    assert alice.transport.producerState == "producing"
    assert bob.transport.producerState == "producing"
    carol = server.connect()
    assert carol.transport.producerState == "producing"

"""
The history store, on SQLite and on PostgreSQL (the backend fixture),
driven from the test's thread as the reactor would drive it: its threads
hand results back through a stand-in for C{callFromThread} (L{ThreadCalls}),
which the test runs while it waits.
"""

import os
import sqlite3
import sys
import threading
import time

import pytest

from chatd.core import events
from chatd.storage import HistoryError, schema, sqlite as sqliteStore, threaded as threadedStore
from chatd.storage.sqlite import (WRITER_CACHE_KIB, SQLiteHistory, firstIdFrom,
                                  matchExpression, timeBound)




def openStore(path, calls):
    store = SQLiteHistory(path, calls)
    store.open()
    return store


def assertIdsGoOn(backend, store, last):
    """
    The store's next id comes after C{last}: the next number, in an SQLite
    file of one daemon's own; a greater one in PostgreSQL, whose ids carry
    the time and the daemon's slot (chatd.storage.postgres).
    """
    following = store.nextId()
    if backend.name == "sqlite":
        assert following == last + 1
    else:
        assert following > last


def said(store, room, nick, text, time=1000.0):
    event = events.Said(room, nick, text, time, store.nextId())
    store.append(event)
    return event


def test_createsFolderAndKeepsLinesAcrossReopening(backend, calls):
    """
    The database (an SQLite file and its folder) is created on first open;
    every kind of room line comes back after closing and opening again,
    oldest first, with its id, time and the room's spelling, and new ids go
    on from the old ones.
    """
    store = backend.history(calls)
    kept = [
        said(store, "#Dev", "alice", "hello"),
        events.Acted("#Dev", "bob", "waves", 1001.5, store.nextId()),
        events.TopicChanged("#Dev", "alice", "cake", 1002.0, store.nextId()),
        events.Said("#Dev", "bob", "a notice", 1003.0, store.nextId(), notice=True),
    ]
    for event in kept[1:]:
        store.append(event)
    calls.wait(store.close())
    store = backend.history(calls)
    assert calls.wait(store.recent("#dev", 10)) == kept
    assertIdsGoOn(backend, store, kept[-1].id)
    calls.wait(store.close())


def test_appendTakesRoomLinesOnly(backend, calls):
    """
    A line that is not a room's is refused when it is appended (on the
    caller's thread), not later by the writer; a room line's room is found
    under any spelling at once.
    """
    store = backend.history(calls)
    with pytest.raises(TypeError):
        store.append(events.PrivatelySaid("al", "bo", "psst", 1000.0))
    line = said(store, "#Dev", "al", "hello")
    assert calls.wait(store.recent("#DEV", 5)) == [line]
    calls.wait(store.close())


def test_linesComeBackExactly(backend, calls):
    """
    Whatever a line holds (quotes, backslashes, text that looks like JSON or
    SQL, characters outside the BMP, combining marks) and whatever its time,
    it comes back from the file as it went in.
    """
    store = backend.history(calls)
    texts = ['"quoted" \\ back\\slash', '["json", 1, null]', "'); DROP TABLE messages; --",
             "emoji \U0001F600 and e\u0301", "\u2028 line separator \u00a0"]
    kept = [said(store, "#a", "al", text, time=1764110000.123456 + i)
            for i, text in enumerate(texts)]
    calls.wait(store.close())
    store = backend.history(calls)
    assert calls.wait(store.recent("#a", 10)) == kept
    calls.wait(store.close())


def test_recentIsTheLastLinesOfOneRoom(backend, calls):
    """
    recent() gives the last N lines of the named room only, oldest first.
    """
    store = backend.history(calls)
    lines = [said(store, "#a", "alice", f"a{i}") for i in range(5)]
    said(store, "#b", "bob", "elsewhere")
    assert calls.wait(store.recent("#A", 3)) == lines[2:]
    assert calls.wait(store.recent("#nowhere", 3)) == []
    calls.wait(store.close())


def test_roomWithNothingStoredAnswersAtOnce(path, calls):
    """
    recent() of a room that has never had a line stored answers before the
    store's threads are asked anything, in this run or after a reopening;
    rooms with lines from an earlier run are still read.  (SQLite only: in
    PostgreSQL another daemon may store a room's lines at any time.)
    """
    store = openStore(path, calls)
    kept = [said(store, "#a", "alice", "a1"), said(store, "#c", "carol", "c1")]
    calls.wait(store.close())
    store = openStore(path, calls)
    empty = store.recent("#b", 5)
    assert empty.called and empty.result == []
    assert calls.wait(store.recent("#A", 5)) == kept[:1]
    assert calls.wait(store.recent("#c", 5)) == kept[1:]
    calls.wait(store.close())


def test_readsSeeEveryLineAppendedBeforeThem(backend, calls):
    """
    A read asked right after an append, with no flush between, finds it:
    reads wait in the writer's queue until what came before is committed.
    """
    store = backend.history(calls)
    for i in range(1000):
        last = said(store, "#a", "alice", f"line {i}")
    assert calls.wait(store.recent("#a", 1)) == [last]
    assert calls.wait(store.search(["#a"], ["999"], 5)) == [last]
    calls.wait(store.close())


def test_readsSeeNoLineAppendedAfterThem(backend, calls):
    """
    A read asked before more lines are appended does not see them, however
    late it runs: they reach the asker live, and must not come twice.
    """
    store = backend.history(calls)
    first = said(store, "#a", "alice", "cake before")
    recent = store.recent("#a", 10)
    found = store.search(["#a"], ["cake"], 10)
    said(store, "#a", "alice", "cake after")
    calls.wait(store.flush())
    assert calls.wait(recent) == [first]
    assert calls.wait(found) == [first]
    calls.wait(store.close())


def test_searchOnlyInTheGivenRoomsNewestFirstBounded(backend, calls):
    """
    search() matches whole words (any case, accents ignored) that must all
    be present, only in the rooms given, newest first, at most C{limit}.
    """
    store = backend.history(calls)
    said(store, "#secret", "eve", "the cake is here")
    old = said(store, "#a", "alice", "Cake for everyone")
    mid = said(store, "#b", "bob", "more CAKE, café")
    new = said(store, "#a", "alice", "last cake")
    said(store, "#a", "alice", "pancakes do not count")
    assert calls.wait(store.search(["#a", "#B"], ["cake"], 10)) == [new, mid, old]
    assert calls.wait(store.search(["#a", "#b"], ["cake"], 2)) == [new, mid]
    assert calls.wait(store.search(["#a", "#b"], ["cafe", "cake"], 10)) == [mid]
    assert calls.wait(store.search([], ["cake"], 10)) == []
    calls.wait(store.close())


@pytest.mark.parametrize("word", ['"', "cake*", "NOT", "a OR b", "(", "^x", "---", "NEAR(a b)"])
def test_searchTakesWordsLiterally(backend, calls, word):
    """
    Words that are FTS5 query syntax are searched as text, never parsed: no
    error, and an operator finds only lines that hold it as a word.
    """
    store = backend.history(calls)
    said(store, "#a", "alice", "cakes and pies")
    found = calls.wait(store.search(["#a"], [word], 10))
    assert found == []
    calls.wait(store.close())


def test_matchExpressionQuotesEachWord():
    """
    Each word becomes one quoted FTS5 string, with quotes doubled.
    """
    assert matchExpression(['say "hi"', "OR"]) == '"say ""hi""" "OR"'


def test_pruneForgetsOlderLinesButNeverReusesIds(backend, calls):
    """
    prune() deletes exactly the lines older than the given time, also from
    search, in chunks; once every line is gone, ids still go on after the
    highest one ever used, across reopening.
    """
    store = backend.history(calls)
    for i in range(12000):
        last = said(store, "#a", "alice", f"word{i % 3}", time=float(i))
    assert calls.wait(store.prune(11990.0)) == 11990
    left = calls.wait(store.recent("#a", 100))
    assert [e.time for e in left] == [float(i) for i in range(11990, 12000)]
    assert len(calls.wait(store.search(["#a"], ["word0"], 100))) == 3
    assert calls.wait(store.prune(1e9)) == 10
    calls.wait(store.close())
    store = backend.history(calls)
    assertIdsGoOn(backend, store, last.id)
    calls.wait(store.close())


def test_pruneNeverForgetsALineSaidSinceItsTime(backend, calls):
    """
    Should the clock have gone back, a line said at or after the prune's
    time is kept even where older lines follow it.
    """
    store = backend.history(calls)
    times = [1.0, 2.0, 50.0, 3.0, 4.0, 60.0, 70.0]
    lines = [said(store, "#a", "alice", f"line {i}", time=t) for i, t in enumerate(times)]
    assert calls.wait(store.prune(10.0)) in (2, 4)
    left = calls.wait(store.recent("#a", 10))
    assert [e for e in left if e.time >= 10.0] == [lines[2], lines[5], lines[6]]
    calls.wait(store.close())


def test_firstIdFromFindsTheFirstLineAtOrAfterATime(path):
    """
    The binary search over ids finds the first id said at a time or later
    (strictly later when asked), whatever the gaps in the ids and however
    many lines share a time; L{None} past the last line or in an empty
    table.  A page's upper time bound is that id, its lower one the last
    id said at the time or earlier.
    """
    connection = schema.connect(path)
    assert firstIdFrom(connection, 0.0) is None
    ids = [3, 4, 9, 10, 11, 40, 41, 42, 100, 1000]
    times = [1.0, 2.0, 2.0, 2.0, 5.0, 5.5, 7.0, 7.0, 9.0, 12.0]
    connection.executemany(
        "INSERT INTO messages VALUES (?, ?, '#a', '#a', 'said', 'al', 'x')", zip(ids, times))
    for when in [0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 5.25, 5.5, 7.0, 8.0, 9.0, 12.0, 13.0]:
        for later in (False, True):
            expected = next((i for i, t in zip(ids, times)
                             if t > when or (t == when and not later)), None)
            assert firstIdFrom(connection, when, later) == expected, (when, later)
        assert timeBound(connection, when, False) == firstIdFrom(connection, when)
        assert timeBound(connection, when, True) == max(
            (i for i, t in zip(ids, times) if t <= when), default=None), when
    connection.close()


def test_linesStoredButNotYetIndexedAreIndexedLater(path, calls):
    """
    Lines stored but not yet indexed for search when the process died (the
    writer indexes after storing) become searchable after reopening, and
    pruning them keeps the index sound.
    """
    store = openStore(path, calls)
    lines = [said(store, "#a", "alice", f"word{i}", time=float(i)) for i in range(3000)]
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    connection.execute("UPDATE counters SET value = 0 WHERE name = 'indexed'")
    connection.execute("INSERT INTO messages_search (messages_search) VALUES ('delete-all')")
    connection.commit()
    connection.close()
    store = openStore(path, calls)
    assert calls.wait(store.search(["#a"], ["word2999"], 5)) == [lines[-1]]
    assert calls.wait(store.search(["#a"], ["word0"], 5)) == [lines[0]]
    assert calls.wait(store.prune(1500.0)) == 1500
    assert calls.wait(store.search(["#a"], ["word0"], 5)) == []
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    assert connection.execute(
        "INSERT INTO messages_search (messages_search, rank) VALUES ('integrity-check', 1)")
    connection.close()


def waitUntilIndexed(store, count, seconds=5.0):
    """
    Wait (at most C{seconds}) until the writer has indexed C{count} lines;
    return how many it has.
    """
    deadline = time.monotonic() + seconds
    while store._indexed < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return store._indexed


def test_idleWriterIndexesAFewLinesOnceIdleAndManyAtOnce(path, calls, monkeypatch):
    """
    The writer indexes a few stored lines once nothing has come to store
    for L{INDEX_IDLE} seconds, not after every commit (a transaction each);
    L{INDEX_SOON} lines waiting are indexed as soon as nothing is queued.
    """
    store = openStore(path, calls)
    for i in range(3):
        said(store, "#a", "alice", f"word{i}")
    calls.wait(store.flush())
    time.sleep(sqliteStore.INDEX_IDLE / 5)
    assert store._indexed == 0
    assert waitUntilIndexed(store, 3) == 3
    # Now only the count can make the writer index soon.
    monkeypatch.setattr(sqliteStore, "INDEX_IDLE", 60.0)
    for i in range(sqliteStore.INDEX_SOON):
        said(store, "#a", "alice", f"more{i}")
    calls.wait(store.flush())
    assert waitUntilIndexed(store, 3 + sqliteStore.INDEX_SOON) == 3 + sqliteStore.INDEX_SOON
    calls.wait(store.close())


def test_closeStoresEverythingPending(backend, calls):
    """
    Lines appended just before close() are all on disk once it fires.
    """
    store = backend.history(calls)
    for i in range(5000):
        last = said(store, "#a", "alice", f"line {i}")
    calls.wait(store.close())
    assert backend.query("SELECT count(*), max(id) FROM messages") == [(5000, last.id)]


def test_walModeAndSynchronousNormal(path, calls):
    """
    The database is in WAL mode, so readers never wait for the writer.
    """
    store = openStore(path, calls)
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


def test_writerPageCacheIsSmall(path, calls):
    """
    The writer's connection keeps a page cache of L{WRITER_CACHE_KIB}, not
    SQLite's default 2,000 KiB (which a burst filled and the daemon kept).
    """
    store = openStore(path, calls)
    seen = []
    done = store.flush()
    store._writes.put(lambda connection: seen.append(
        connection.execute("PRAGMA cache_size").fetchone()[0]))
    calls.wait(done)
    calls.wait(store.flush())
    calls.wait(store.close())
    assert seen == [-WRITER_CACHE_KIB]
    assert WRITER_CACHE_KIB < 2000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice values per thread")
def test_readersYieldToTheReactorAndTheWriterDoesNot(path, calls):
    """
    The readers run niced below the reactor thread; the writer, whose work
    is what the reactor hands it, runs beside it (niced, it fell behind).
    """
    store = openStore(path, calls)
    calls.wait(store.recent("#a", 1))
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    niceness = {thread.name: os.getpriority(os.PRIO_PROCESS, thread.native_id)
                for thread in threading.enumerate() if thread.name.startswith("chatd-history")}
    calls.wait(store.close())
    assert niceness == {"chatd-history-writer": own,
                        "chatd-history-replay": own + threadedStore.NICENESS,
                        "chatd-history-query": own + threadedStore.NICENESS}


def test_migratesAnOlderSchemaKeepingItsLines(path, calls, tmp_path):
    """
    A version-1 database (no search) is migrated on open: its lines are kept,
    become searchable, and the version is recorded.
    """
    (tmp_path / "data").mkdir()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(schema.MIGRATIONS[0] + ";PRAGMA user_version = 1;")
    connection.execute(
        "INSERT INTO messages VALUES (7, 1000.0, '#a', '#A', 'said', 'alice', 'old words')")
    connection.execute("UPDATE counters SET value = 7")
    connection.close()
    store = openStore(path, calls)
    old = events.Said("#A", "alice", "old words", 1000.0, 7)
    assert calls.wait(store.search(["#a"], ["old"], 5)) == [old]
    assert store.nextId() == 8
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    connection.close()


def test_migratingFromVersion5DropsTheTimeIndex(path, calls, tmp_path):
    """
    A version-5 database loses its index on the time (version 6) and keeps
    its lines, found by time bounds, searched and pruned as before.
    """
    (tmp_path / "data").mkdir()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(";".join(schema.MIGRATIONS[:5]) + ";PRAGMA user_version = 5;")
    connection.executemany(
        "INSERT INTO messages VALUES (?, ?, '#a', '#A', 'said', 'alice', ?)",
        [(id, 1000.0 + id, f"old words {id}") for id in range(1, 11)])
    connection.execute("UPDATE counters SET value = 10 WHERE name = 'last_id'")
    connection.close()
    store = openStore(path, calls)
    old = [events.Said("#A", "alice", f"old words {id}", 1000.0 + id, id) for id in range(1, 11)]
    assert calls.wait(store.page("#a", 3, before=("time", 1005.0))) == old[1:4]
    assert calls.wait(store.search(["#a"], ["old"], 2)) == old[:-3:-1]
    assert calls.wait(store.prune(1003.0)) == 2
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    assert connection.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                              "AND tbl_name = 'messages' ORDER BY name").fetchall() == [
        ("messages_by_room",), ("messages_topics",)]
    connection.close()


def test_newerSchemaRefused(path, tmp_path):
    """
    A database written by a newer chatd is refused, untouched, with a
    message naming the file and both versions.
    """
    (tmp_path / "data").mkdir()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    connection.close()
    with pytest.raises(HistoryError) as raised:
        schema.connect(path)
    assert str(raised.value) == (
        f"the history database {path} has schema version {schema.VERSION + 1}, "
        f"written by a newer chatd; this one knows versions up to {schema.VERSION}")


def test_corruptFileRefused(path, tmp_path):
    """
    A file that is not an SQLite database is refused with SQLite's reason.
    """
    (tmp_path / "data").mkdir()
    with open(path, "wb") as f:
        f.write(b"this is not a database, just some text" * 100)
    with pytest.raises(HistoryError) as raised:
        schema.connect(path)
    assert str(raised.value) == (
        f"cannot use the history database {path}: file is not a database")


def test_folderThatCannotBeCreatedRefused(tmp_path):
    """
    A path below a plain file cannot be created; the error names it.
    """
    (tmp_path / "file").write_text("")
    path = str(tmp_path / "file" / "chatd.sqlite3")
    with pytest.raises(HistoryError) as raised:
        schema.connect(path)
    assert str(raised.value) == (
        f"cannot create the history database {path}: {tmp_path / 'file'} "
        "is not a folder")


def test_transactionCommitsOrRollsBack(tmp_path):
    """
    schema.transaction commits what its block did when the block ends, and
    leaves nothing of it (and no open transaction) when the block raises.
    """
    connection = sqlite3.connect(str(tmp_path / "t.sqlite3"), isolation_level=None)
    connection.execute("CREATE TABLE t (x INTEGER)")
    with schema.transaction(connection):
        connection.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        with schema.transaction(connection):
            connection.execute("INSERT INTO t VALUES (2)")
            raise sqlite3.IntegrityError("refused")
    assert not connection.in_transaction
    assert connection.execute("SELECT x FROM t").fetchall() == [(1,)]
    connection.close()


def test_pageBetweenIdsAndTimes(backend, calls):
    """
    A page is the lines of one room strictly between two bounds (ids or
    times), oldest first: the newest of them, or the oldest when asked;
    a line appended after the request is not in it.
    """
    store = backend.history(calls)
    lines = [said(store, "#a", "al", f"line {i}", time=1000.0 + i) for i in range(10)]
    said(store, "#b", "bo", "elsewhere", time=1003.5)
    ids = [e.id for e in lines]
    asked = store.page("#a", 3)
    said(store, "#a", "al", "too late", time=2000.0)
    assert calls.wait(asked) == lines[7:]
    assert calls.wait(store.page("#a", 3, before=("id", ids[5]))) == lines[2:5]
    assert calls.wait(store.page("#a", 3, after=("id", ids[5]), oldest=True)) == lines[6:9]
    assert calls.wait(store.page("#A", 10, before=("time", 1004.0),
                                 after=("time", 1001.0))) == lines[2:4]
    assert calls.wait(store.page("#a", 2, after=("time", 1001.5), oldest=True)) == lines[2:4]
    assert calls.wait(store.page("#a", 5, before=("time", 999.0))) == []
    assert calls.wait(store.page("#nowhere", 5)) == []
    calls.wait(store.close())

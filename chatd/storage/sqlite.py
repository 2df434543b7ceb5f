"""
L{IHistoryStore} on an SQLite file.

Three threads of our own do every database call, so the reactor thread never
waits on SQLite:

- the writer owns the only writing connection.  Lines queue up for it; it
  takes everything waiting, at most once per L{BATCH_WINDOW}, and stores it
  with one C{executemany} and one commit (group commit).  An idle writer
  commits a lone line at once, so a quiet server loses nothing to a crash
  that it could have kept; a busy one commits about 100 times a second
  however many lines arrive.
- two readers, each with a connection of its own: one answers joins' replays
  (and a room's last topic), the other searches and C{/history} requests,
  so that however many searches wait, a join's replay never waits behind
  them.  With WAL they never wait for the writer, nor the writer for them.

Every queue has a bound (see the README's table):

- the writer's: lines appended but not yet committed are counted, in lines
  and in bytes of text, on the reactor thread (two additions per line).
  Past L{BEHIND_LINES} or L{BEHIND_BYTES} the store asks its registered
  producer (whatever reads the connections) to pause, once; when the writer
  is down to half of both it asks it to resume, once.  Lines are never
  refused nor dropped: the daemon stops reading instead, so a sender is
  slowed down, memory stays flat, and a C{kill -9} loses at most the bound
  (plus what had been read from sockets already when reading paused).
  L{BEHIND_BYTES} is small for a second of the writer's work on long lines
  (measured: ~20 MB/s of 900-byte lines stored and indexed) because the
  daemon's memory grows by about three bytes per byte of text waiting, and
  it should grow by at most 32 MB.
- each reader's: at most L{MAX_REPLAYS} replays and L{MAX_QUERIES} searches
  or C{/history} requests wait or run; one more fails at once with
  L{HistoryBusy}.  A read that runs longer than L{QUERY_SECONDS} in SQLite
  is stopped (L{QueryTooSlow}), and a search of more than L{SEARCH_TOKENS}
  tokens is refused before it is queued (L{SearchTooComplex}).

Indexing a line for full-text search costs several times more than storing
it, so the writer stores first and indexes when it has nothing to store
(L{INDEX_CHUNK} lines at a time).  A burst is on disk as fast as it comes, and
becomes searchable as soon as the writer catches up; a search catches up
first, so it still finds every line said before it.  Under a sustained load
the index may lag by at most L{INDEX_BEHIND} lines: past that, the writer
indexes a chunk after each commit, so that the lines it takes in are those
it can both store and index (and the back-pressure above says so), and a
search never makes the writer catch up on more than that.

The store's threads run at a lower priority than the reactor thread (on Linux):
measured on a busy 2-core machine, that kept live delivery at a few
milliseconds where equal priority let it reach tens.

Why plain threads with queues rather than Twisted's thread pool: the writer's
batching wants a loop that sees the whole backlog at once, and the pool would
add a L{Deferred} and a context switch per line; a queue put costs the reactor
thread well under a microsecond.

A read goes through the writer's queue first, as a marker: the writer hands it
to the reader once everything queued before it is committed.  So a read sees
every line appended before it was asked for, and never waits behind lines that
came later.
"""

import functools
import math
import os
import queue
import re
import sqlite3
import sys
import threading
import time

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.core import events
from chatd.core.names import roomKey
from chatd.storage import (HistoryBusy, HistoryError, IHistoryStore, QueryTooSlow,
                           SearchTooComplex, schema)
from chatd.storage.worker import STOP, answerJobs

BATCH_WINDOW = 0.010
"""Seconds the writer gathers lines before committing them together."""

PRUNE_CHUNK = 5000
"""Rows pruning deletes per transaction, so that lines never wait long."""

INDEX_CHUNK = 2000
"""Stored lines the idle writer indexes per transaction."""

NICENESS = 10
"""How much lower the store's threads run than the reactor thread (Linux)."""

BEHIND_LINES = 20_000
"""Lines appended but not yet committed past which reading is paused."""

BEHIND_BYTES = 6 * 1024 * 1024
"""Bytes of text (characters, as counted by C{len}) appended but not yet
committed past which reading is paused.  See bench/README-history.md for
how both bounds compare with what the writer does in a second."""

INDEX_BEHIND = 20_000
"""Stored lines the search index may lag behind under a sustained load."""

WRITER_CACHE_KIB = 512
"""The writer connection's page cache, in KiB (SQLite's default is 2,000).
The writer appends: it touches the right edge of each B-tree and the index's
newest segments, and what it misses is in the operating system's cache.
SQLite's default cache filled up within seconds of a burst and stayed: 2.5 MB
of the daemon's growth under bench.py's slow-reader load.  512 KiB stored as
many lines per second as the default within this machine's noise; 256 KiB
was measurably slower (bench/README.md)."""

MAX_REPLAYS = 1000
"""Replays (and last-topic look-ups) that may wait or run at once."""

MAX_QUERIES = 32
"""Searches and C{/history} requests that may wait or run at once."""

QUERY_SECONDS = 1.0
"""How long one read may run in SQLite before it is stopped."""

SEARCH_TOKENS = 24
"""Tokens (as the index splits words: C{q.q.q} is three) a search may hold."""

_PROGRESS_STEPS = 10_000
"""SQLite virtual machine steps between two looks at a read's deadline."""

SLOW_COMMIT = 2.0
"""Seconds a commit may take before the store warns in the log: while the
writer is behind, the daemon reads no input, so a stuck disk stops the chat."""

REPLAY, QUERY = "replay", "query"
"""The two readers: joins' replays first, searches and /history after."""

_INSERT = ("INSERT INTO messages (id, time, room_key, room, kind, nick, text) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = "id, time, room, kind, nick, text"
# The distinct room keys, one index look-up each (a skip scan of
# messages_by_room) rather than a walk over every stored line.
_ROOM_KEYS = """
    WITH RECURSIVE kept(key) AS (
        SELECT min(room_key) FROM messages
        UNION ALL
        SELECT (SELECT min(room_key) FROM messages WHERE room_key > key)
        FROM kept WHERE key IS NOT NULL)
    SELECT key FROM kept WHERE key IS NOT NULL"""
_LAST_TOPIC = ("SELECT text, nick, time FROM messages "
               "WHERE room_key = ? AND kind = 'topic' AND id <= ? ORDER BY id DESC LIMIT 1")
# A token as FTS5's unicode61 tokenizer sees one, near enough to count them.
_TOKEN = re.compile(r"[^\W_]+")
_EVENTS = {"said": events.Said, "acted": events.Acted, "topic": events.TopicChanged,
           "notice": functools.partial(events.Said, notice=True)}


def _row(event):
    kind = type(event)
    if kind is events.Said:
        return (event.id, event.time, roomKey(event.room), event.room,
                "notice" if event.notice else "said", event.nick, event.text)
    if kind is events.Acted:
        return (event.id, event.time, roomKey(event.room), event.room, "acted",
                event.nick, event.text)
    if kind is events.TopicChanged:
        return (event.id, event.time, roomKey(event.room), event.room, "topic",
                event.nick, event.topic)
    raise TypeError(f"not a room line: {event!r}")


def _yieldToTheReactor():
    """
    Lower the calling thread's scheduling priority, so that on a busy machine
    the reactor thread, which users wait on, gets the processor first: the
    store's work can wait a few milliseconds, live lines should not.  Linux
    keeps a nice value per thread; elsewhere this does nothing.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except OSError:
            pass


def toEvent(row):
    """
    The event stored as C{row}: (id, time, room, kind, nick, text).
    """
    id, time, room, kind, nick, text = row
    return _EVENTS[kind](room, nick, text, time, id)


def searchTokens(words):
    """
    How many tokens the full-text index makes of C{words}: C{q.q.q} is three.
    """
    return sum(len(_TOKEN.findall(word)) for word in words)


def matchExpression(words):
    """
    An FTS5 query for lines holding every one of C{words}, each taken
    literally (quoted), never as query syntax.
    """
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


@implementer(IHistoryStore)
class SQLiteHistory:
    """
    Room history in the SQLite file at C{path}.

    Nothing touches the file until L{open}.
    """

    _log = Logger()

    def __init__(self, path, reactor, batchWindow=BATCH_WINDOW,
                 behindLines=BEHIND_LINES, behindBytes=BEHIND_BYTES,
                 maxReplays=MAX_REPLAYS, maxQueries=MAX_QUERIES,
                 querySeconds=QUERY_SECONDS, indexBehind=INDEX_BEHIND):
        """
        @param reactor: an L{IReactorThreads}, whose C{callFromThread} the
            store's threads use to hand results to the reactor thread.
        @param behindLines: see L{BEHIND_LINES}; the other bounds likewise.
        """
        self.path = path
        self._reactor = reactor
        self._batchWindow = batchWindow
        self._writes = queue.SimpleQueue()
        self._lanes = {REPLAY: queue.SimpleQueue(), QUERY: queue.SimpleQueue()}
        self._closed = Deferred()
        self._readersLeft = len(self._lanes)
        # Back-pressure.  The reactor thread alone counts what it queued,
        # the writer alone what it finished (committed, or failed and
        # logged); the difference is how far behind the writer is.
        self._highLines, self._highBytes = behindLines, behindBytes
        self._lowLines, self._lowBytes = behindLines // 2, behindBytes // 2
        self._queuedLines = self._queuedBytes = 0
        self._doneLines = self._doneBytes = 0
        self._producer = None
        self._paused = False
        self._resumeAsked = False
        self._resuming = False
        self.pauses = 0
        """How many times the store has paused its producer (for benchmarks)."""
        self.mostBehind = (0, 0)
        """The most lines and bytes waiting when reading paused (for benchmarks;
        the lines already read from sockets then come on top)."""
        # Reads waiting or running in each lane, and their bounds.  Each
        # reader's deadline is read by its connection's progress handler.
        self._deadlines = {REPLAY: [math.inf], QUERY: [math.inf]}
        self._waiting = {REPLAY: 0, QUERY: 0}
        self._maxWaiting = {REPLAY: maxReplays, QUERY: maxQueries}
        self._querySeconds = querySeconds
        self._indexBehind = indexBehind
        self._opened = False
        self._lastId = 0
        self.onCommit = None
        """L{None}, or called from the writer thread after each commit of
        lines with the seconds it took and the time (POSIX) the oldest of
        those lines was said (for the metrics)."""
        # The keys of the rooms with anything stored or queued (pruning may
        # leave a few with nothing): most joins are to rooms without history,
        # and those need not wait for the reader.
        self._roomsKept = set()
        # Only the writer thread touches these once it runs: the highest id
        # stored and indexed, and whether idle indexing is worth trying.
        self._stored = self._indexed = 0
        self._indexing = True

    def open(self):
        """
        Open (creating or migrating) the database and start the threads.

        @raise chatd.storage.HistoryError: when the file cannot be used.
        """
        writing = schema.connect(self.path)
        try:
            writing.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            # The writer's own state, handed over before its thread starts:
            # the highest id stored, and the highest indexed for search.
            self._stored, self._indexed, used = writing.execute(
                "SELECT coalesce((SELECT max(id) FROM messages), 0), "
                "(SELECT value FROM counters WHERE name = 'indexed'), "
                "(SELECT value FROM counters WHERE name = 'last_id')").fetchone()
            self._roomsKept = {key for (key,) in writing.execute(_ROOM_KEYS)}
            readers = {}
            for lane in self._lanes:
                reading = readers[lane] = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False)
                reading.execute("PRAGMA query_only = ON")
        except sqlite3.Error as e:
            writing.close()
            for reading in readers.values():
                reading.close()
            raise HistoryError(
                f"cannot use the history database {self.path}: {e}") from None
        self._lastId = max(self._stored, used)
        self._opened = True
        # Daemon threads: should the reactor die without closing the store,
        # the process still exits, as after kill -9.
        threading.Thread(target=self._writeLoop, args=(writing,),
                         name="chatd-history-writer", daemon=True).start()
        for lane, reading in readers.items():
            threading.Thread(target=self._readLoop, args=(lane, reading),
                             name=f"chatd-history-{lane}", daemon=True).start()

    # IHistoryStore, called on the reactor thread

    def nextId(self):
        self._lastId += 1
        return self._lastId

    def append(self, event):
        row = _row(event)
        self._roomsKept.add(row[2])
        self._writes.put(row)
        self._queuedLines += 1
        self._queuedBytes += len(row[6])
        if not self._paused and (
                self._queuedLines - self._doneLines > self._highLines
                or self._queuedBytes - self._doneBytes > self._highBytes):
            self._fellBehind()

    @property
    def behind(self):
        """
        The lines, and bytes of text, appended and not yet committed.
        """
        return (self._queuedLines - self._doneLines, self._queuedBytes - self._doneBytes)

    def registerProducer(self, producer, streaming):
        if not streaming:
            raise ValueError("the history store only takes push producers")
        self._producer = producer
        if self._paused:
            producer.pauseProducing()

    def unregisterProducer(self):
        self._producer = None

    # A read is bounded by the last id handed out when it was asked: by the
    # time it runs, the writer may have committed later lines, which the
    # asker gets live.

    def recent(self, room, count, replay=True):
        key = roomKey(room)
        if key not in self._roomsKept:
            return succeed([])
        return self._read(REPLAY if replay else QUERY, self._recent,
                          key, count, self._lastId)

    def page(self, room, count, before=None, after=None, oldest=False):
        key = roomKey(room)
        if key not in self._roomsKept:
            return succeed([])
        return self._read(QUERY, self._page, key, count, before, after, oldest, self._lastId)

    def lastTopic(self, room):
        key = roomKey(room)
        if key not in self._roomsKept:
            return succeed(None)
        return self._read(REPLAY, self._lastTopic, key, self._lastId)

    def search(self, rooms, words, limit):
        words = list(words)
        tokens = searchTokens(words)
        if tokens > SEARCH_TOKENS:
            return fail(SearchTooComplex(
                f"a search may hold at most {SEARCH_TOKENS} words and parts of "
                f"words (a.b.c counts as 3); this one holds {tokens}"))
        return self._read(QUERY, self._search, sorted({roomKey(r) for r in rooms}),
                          words, limit, self._lastId, indexed=True, what="the search")

    def prune(self, before):
        done = Deferred()
        self._writes.put(self._pruneJob(before, done, 0))
        return done

    def flush(self):
        done = Deferred()
        self._writes.put(lambda connection: self._reactor.callFromThread(done.callback, None))
        return done

    def close(self):
        if not self._opened:
            return succeed(None)
        if self.pauses:
            self._log.info(
                "the history writer fell behind {pauses} times (at most {lines} lines, "
                "{bytes} bytes of text waiting when it did); reading was paused until "
                "it caught up",
                pauses=self.pauses, lines=self.mostBehind[0], bytes=self.mostBehind[1])
        self._writes.put(STOP)
        return self._closed

    def _read(self, lane, query, *args, indexed=False, what="reading history"):
        if self._waiting[lane] >= self._maxWaiting[lane]:
            return fail(HistoryBusy("history is busy; try again in a moment"))
        self._waiting[lane] += 1
        done = Deferred()
        done.addBoth(self._answered, lane)

        def ready(connection):
            if indexed:
                self._index(connection, None)
            self._lanes[lane].put(
                (lambda reading: self._timed(lane, what, reading, query, args), done))

        self._writes.put(ready)
        return done

    def _answered(self, result, lane):
        self._waiting[lane] -= 1
        return result

    def _fellBehind(self):
        """
        More is waiting to be stored than the bound: pause the producer.
        """
        self._paused = True
        self.pauses += 1
        self.mostBehind = (max(self.mostBehind[0], self._queuedLines - self._doneLines),
                           max(self.mostBehind[1], self._queuedBytes - self._doneBytes))
        if self._resuming:
            # Lines handled while the producer resumes (what it had read
            # already): it is paused again once its resume is over, never
            # in the middle of it.
            return
        if self._producer is not None:
            self._producer.pauseProducing()

    def _caughtUp(self):
        """
        On the reactor thread, once the writer found itself down to the low
        mark: resume the producer, unless more came meanwhile.
        """
        self._resumeAsked = False
        behindLines = self._queuedLines - self._doneLines
        behindBytes = self._queuedBytes - self._doneBytes
        self.mostBehind = (max(self.mostBehind[0], behindLines),
                           max(self.mostBehind[1], behindBytes))
        if not self._paused or behindLines > self._lowLines or behindBytes > self._lowBytes:
            # Still behind: the writer, which has those lines to commit,
            # looks again after its next commit.
            return
        self._paused = False
        producer = self._producer
        if producer is None:
            return
        self._resuming = True
        try:
            producer.resumeProducing()
        finally:
            self._resuming = False
        if self._paused and self._producer is producer:
            producer.pauseProducing()

    # The writer thread

    def _writeLoop(self, connection):
        _yieldToTheReactor()
        writes, window = self._writes, self._batchWindow
        lastCommit = float("-inf")
        stopping = False
        while True:
            if self._indexing and self._indexed < self._stored:
                try:
                    first = writes.get_nowait()
                except queue.Empty:
                    self._index(connection, INDEX_CHUNK)
                    continue
            else:
                first = writes.get()
            batch = [first]
            wait = lastCommit + window - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            lastCommit = time.monotonic()
            try:
                while True:
                    batch.append(writes.get_nowait())
            except queue.Empty:
                pass
            rows = []
            for item in batch:
                if type(item) is tuple:
                    rows.append(item)
                    continue
                self._commit(connection, rows)
                rows = []
                if item is STOP:
                    stopping = True
                    continue
                try:
                    item(connection)
                except Exception:
                    # A job's own errors go to its Deferred; anything else
                    # is a bug, which must not stop the writer.
                    self._reactor.callFromThread(
                        self._log.failure, "history writer job failed", Failure())
            self._commit(connection, rows)
            if (self._paused and not self._resumeAsked
                    and self._queuedLines - self._doneLines <= self._lowLines
                    and self._queuedBytes - self._doneBytes <= self._lowBytes):
                # Once per pause: the reactor thread decides (see _caughtUp).
                self._resumeAsked = True
                self._reactor.callFromThread(self._caughtUp)
            if self._indexing and self._stored - self._indexed > self._indexBehind:
                self._index(connection, INDEX_CHUNK)
            if stopping:
                if writes.empty():
                    break
                # Pruning queued more of itself: finish that first.
                writes.put(STOP)
                stopping = False
        connection.close()
        for lane in self._lanes.values():
            lane.put(STOP)

    def _commit(self, connection, rows):
        if not rows:
            return
        started = time.monotonic()
        try:
            self._store(connection, rows)
        except sqlite3.Error:
            failure = Failure()
            self._reactor.callFromThread(
                self._log.failure, "{count} history lines could not be stored",
                failure, count=len(rows))
        else:
            self._stored = rows[-1][0]
        took = time.monotonic() - started
        onCommit = self.onCommit
        if onCommit is not None:
            onCommit(took, rows[0][1])
        if took > SLOW_COMMIT:
            self._reactor.callFromThread(
                self._log.warn, "storing {count} history lines took {seconds:.1f} s; "
                "while the history writer is behind, no input is read",
                count=len(rows), seconds=took)
        # Finished with, stored or not: no longer waiting in memory.
        self._doneBytes += sum(len(row[6]) for row in rows)
        self._doneLines += len(rows)

    def _store(self, connection, rows):
        """
        Commit C{rows} in one transaction (a test double may stall here).
        """
        with schema.transaction(connection):
            connection.executemany(_INSERT, rows)
            # Ids only grow, so the batch's last is its highest.
            connection.execute("UPDATE counters SET value = ? "
                               "WHERE name = 'last_id' AND value < ?",
                               (rows[-1][0], rows[-1][0]))

    def _index(self, connection, limit):
        """
        Index up to C{limit} stored lines (all with L{None}) for search.
        """
        if self._indexed >= self._stored:
            return
        upTo = self._stored if limit is None else min(self._stored, self._indexed + limit)
        try:
            with schema.transaction(connection):
                connection.execute(
                    "INSERT INTO messages_search (rowid, text) "
                    "SELECT id, text FROM messages WHERE id > ? AND id <= ?",
                    (self._indexed, upTo))
                connection.execute("UPDATE counters SET value = ? WHERE name = 'indexed'",
                                   (upTo,))
        except sqlite3.Error:
            failure = Failure()
            self._reactor.callFromThread(
                self._log.failure, "indexing history failed", failure)
            # The idle writer stops trying; the next search or prune tries
            # again.
            self._indexing = False
            return
        self._indexed = upTo
        self._indexing = True

    def _pruneJob(self, before, done, deleted):
        def prune(connection):
            # Only indexed lines may be deleted: the trigger takes them out of
            # the index, which must hold them.
            self._index(connection, None)
            try:
                with schema.transaction(connection):
                    count = connection.execute(
                        "DELETE FROM messages WHERE id IN "
                        "(SELECT id FROM messages WHERE time < ? AND id <= ? LIMIT ?)",
                        (before, self._indexed, PRUNE_CHUNK)).rowcount
            except sqlite3.Error:
                self._reactor.callFromThread(done.errback, Failure())
                return
            if count < PRUNE_CHUNK:
                self._reactor.callFromThread(done.callback, deleted + count)
            else:
                # The rest goes behind the lines that arrived meanwhile.
                self._writes.put(self._pruneJob(before, done, deleted + count))
        return prune

    # The reader threads

    def _readLoop(self, lane, connection):
        _yieldToTheReactor()
        deadline = self._deadlines[lane]
        # Returning true stops the statement running (OperationalError).
        connection.set_progress_handler(lambda: time.monotonic() > deadline[0],
                                        _PROGRESS_STEPS)
        closed = Deferred()
        closed.addCallback(self._readerClosed)
        answerJobs(self._lanes[lane], connection, self._reactor, closed)

    def _readerClosed(self, _):
        self._readersLeft -= 1
        if not self._readersLeft:
            self._closed.callback(None)

    def _timed(self, lane, what, connection, query, args):
        """
        Run C{query} on C{lane}'s reader, stopped after L{QUERY_SECONDS}.
        """
        deadline = self._deadlines[lane]
        deadline[0] = time.monotonic() + self._querySeconds
        try:
            return query(connection, *args)
        except sqlite3.OperationalError:
            if time.monotonic() > deadline[0]:
                raise QueryTooSlow(f"{what} took more than {self._querySeconds:g} s "
                                   "and was stopped") from None
            raise
        finally:
            deadline[0] = math.inf

    @staticmethod
    def _recent(connection, key, count, upTo):
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND id <= ? "
            "ORDER BY id DESC LIMIT ?", (key, upTo, count)).fetchall()
        return [toEvent(row) for row in reversed(rows)]

    @staticmethod
    def _page(connection, key, count, before, after, oldest, upTo):
        # A time bound becomes the id of the first line at or past it (ids
        # and times rise together), found through the time index: the range
        # read itself walks the room's index alone.
        high, low = upTo + 1, 0
        if before is not None:
            if before[0] == "time":
                row = connection.execute("SELECT id FROM messages WHERE time >= ? "
                                         "ORDER BY time LIMIT 1", (before[1],)).fetchone()
                high = min(high, row[0]) if row else high
            else:
                high = min(high, before[1])
        if after is not None:
            if after[0] == "time":
                row = connection.execute("SELECT id FROM messages WHERE time <= ? "
                                         "ORDER BY time DESC LIMIT 1", (after[1],)).fetchone()
                low = max(low, row[0]) if row else low
            else:
                low = max(low, after[1])
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND id > ? AND id < ? "
            f"ORDER BY id {'ASC' if oldest else 'DESC'} LIMIT ?",
            (key, low, high, count)).fetchall()
        return [toEvent(row) for row in (rows if oldest else reversed(rows))]

    @staticmethod
    def _lastTopic(connection, key, upTo):
        row = connection.execute(_LAST_TOPIC, (key, upTo)).fetchone()
        if row is None or not row[0]:
            return None
        return row

    @staticmethod
    def _search(connection, keys, words, limit, upTo):
        if not keys or not words:
            return []
        columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        rows = connection.execute(
            f"SELECT {columns} FROM messages_search AS s "
            "JOIN messages AS m ON m.id = s.rowid "
            "WHERE messages_search MATCH ? AND s.rowid <= ? "
            f"AND m.room_key IN ({', '.join('?' * len(keys))}) "
            "ORDER BY s.rowid DESC LIMIT ?",
            (matchExpression(words), upTo, *keys, limit)).fetchall()
        return [toEvent(row) for row in rows]

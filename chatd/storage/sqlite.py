"""
L{IHistoryStore} on an SQLite file.

Two threads of our own do every database call, so the reactor thread never
waits on SQLite:

- the writer owns the only writing connection.  Lines queue up for it; it
  takes everything waiting, at most once per L{BATCH_WINDOW}, and stores it
  with one C{executemany} and one commit (group commit).  An idle writer
  commits a lone line at once, so a quiet server loses nothing to a crash
  that it could have kept; a busy one commits about 100 times a second
  however many lines arrive.
- the reader owns a second connection and answers replay and search.  With
  WAL it never waits for the writer, nor the writer for it.

Indexing a line for full-text search costs several times more than storing
it, so the writer stores first and indexes when it has nothing to store
(L{INDEX_CHUNK} lines at a time).  A burst is on disk as fast as it comes, and
becomes searchable as soon as the writer catches up; a search catches up
first, so it still finds every line said before it.

Both threads run at a lower priority than the reactor thread (on Linux):
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

import os
import queue
import sqlite3
import sys
import threading
import time

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.core import events
from chatd.core.names import roomKey
from chatd.storage import HistoryError, IHistoryStore, schema
from chatd.storage.worker import STOP, answerJobs

BATCH_WINDOW = 0.010
"""Seconds the writer gathers lines before committing them together."""

PRUNE_CHUNK = 5000
"""Rows pruning deletes per transaction, so that lines never wait long."""

INDEX_CHUNK = 2000
"""Stored lines the idle writer indexes per transaction."""

NICENESS = 10
"""How much lower the store's threads run than the reactor thread (Linux)."""

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
_EVENTS = {"said": events.Said, "acted": events.Acted, "topic": events.TopicChanged}


def _row(event):
    kind = type(event)
    if kind is events.Said:
        return (event.id, event.time, roomKey(event.room), event.room, "said",
                event.nick, event.text)
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

    def __init__(self, path, reactor, batchWindow=BATCH_WINDOW):
        """
        @param reactor: an L{IReactorThreads}, whose C{callFromThread} the
            store's threads use to hand results to the reactor thread.
        """
        self.path = path
        self._reactor = reactor
        self._batchWindow = batchWindow
        self._writes = queue.SimpleQueue()
        self._reads = queue.SimpleQueue()
        self._closed = Deferred()
        self._opened = False
        self._lastId = 0
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
            # The writer's own state, handed over before its thread starts:
            # the highest id stored, and the highest indexed for search.
            self._stored, self._indexed, used = writing.execute(
                "SELECT coalesce((SELECT max(id) FROM messages), 0), "
                "(SELECT value FROM counters WHERE name = 'indexed'), "
                "(SELECT value FROM counters WHERE name = 'last_id')").fetchone()
            self._roomsKept = {key for (key,) in writing.execute(_ROOM_KEYS)}
            reading = sqlite3.connect(self.path, isolation_level=None,
                                      check_same_thread=False)
            reading.execute("PRAGMA query_only = ON")
        except sqlite3.Error as e:
            writing.close()
            raise HistoryError(
                f"cannot use the history database {self.path}: {e}") from None
        self._lastId = max(self._stored, used)
        self._opened = True
        # Daemon threads: should the reactor die without closing the store,
        # the process still exits, as after kill -9.
        threading.Thread(target=self._writeLoop, args=(writing,),
                         name="chatd-history-writer", daemon=True).start()
        threading.Thread(target=self._readLoop, args=(reading,),
                         name="chatd-history-reader", daemon=True).start()

    # IHistoryStore, called on the reactor thread

    def nextId(self):
        self._lastId += 1
        return self._lastId

    def append(self, event):
        row = _row(event)
        self._roomsKept.add(row[2])
        self._writes.put(row)

    # A read is bounded by the last id handed out when it was asked: by the
    # time it runs, the writer may have committed later lines, which the
    # asker gets live.

    def recent(self, room, count):
        key = roomKey(room)
        if key not in self._roomsKept:
            return succeed([])
        return self._read(self._recent, key, count, self._lastId)

    def search(self, rooms, words, limit):
        return self._read(self._search, sorted({roomKey(r) for r in rooms}),
                          list(words), limit, self._lastId, indexed=True)

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
        self._writes.put(STOP)
        return self._closed

    def _read(self, query, *args, indexed=False):
        done = Deferred()

        def ready(connection):
            if indexed:
                self._index(connection, None)
            self._reads.put((lambda reading: query(reading, *args), done))

        self._writes.put(ready)
        return done

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
            if stopping:
                if writes.empty():
                    break
                # Pruning queued more of itself: finish that first.
                writes.put(STOP)
                stopping = False
        connection.close()
        self._reads.put(STOP)

    def _commit(self, connection, rows):
        if not rows:
            return
        try:
            with schema.transaction(connection):
                connection.executemany(_INSERT, rows)
                # Ids only grow, so the batch's last is its highest.
                connection.execute("UPDATE counters SET value = ? "
                                   "WHERE name = 'last_id' AND value < ?",
                                   (rows[-1][0], rows[-1][0]))
        except sqlite3.Error:
            failure = Failure()
            self._reactor.callFromThread(
                self._log.failure, "{count} history lines could not be stored",
                failure, count=len(rows))
        else:
            self._stored = rows[-1][0]

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

    # The reader thread

    def _readLoop(self, connection):
        _yieldToTheReactor()
        answerJobs(self._reads, connection, self._reactor, self._closed)

    @staticmethod
    def _recent(connection, key, count, upTo):
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND id <= ? "
            "ORDER BY id DESC LIMIT ?", (key, upTo, count)).fetchall()
        return [toEvent(row) for row in reversed(rows)]

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

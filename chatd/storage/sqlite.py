"""
L{IHistoryStore} on an SQLite file.

The threads, queues and bounds are L{chatd.storage.threaded}'s; this module
says how SQLite stores, finds and forgets lines.  With WAL, the readers never
wait for the writer, nor the writer for them.  A read that runs longer than
its deadline is stopped by SQLite's progress handler.

Indexing a line for full-text search costs several times more than storing
it, so the writer stores first and indexes when it has nothing to store
(L{INDEX_CHUNK} lines at a time: at once when L{INDEX_SOON} lines wait, else
once nothing has come for L{INDEX_IDLE} seconds).  A burst is on disk as fast
as it comes, and becomes searchable as soon as the writer catches up; a
search catches up first, so it still finds every line said before it.  Under a sustained load
the index may lag by at most L{INDEX_BEHIND} lines: past that, the writer
indexes a chunk after each commit, so that the lines it takes in are those
it can both store and index (and the back-pressure says so), and a search
never makes the writer catch up on more than that.
"""

import functools
import sqlite3
import time

from twisted.python.failure import Failure
from zope.interface import implementer

from chatd.core.names import roomKey
from chatd.storage import HistoryError, IHistoryStore, schema
from chatd.storage.threaded import (BATCH_WINDOW, BEHIND_BYTES, BEHIND_LINES, MAX_QUERIES,
                                    MAX_REPLAYS, QUERY_SECONDS, ThreadedHistory, pageRows,
                                    toEvent)

INDEX_CHUNK = 2000
"""Stored lines the idle writer indexes per transaction."""

INDEX_BEHIND = 20_000
"""Stored lines the search index may lag behind under a sustained load."""

INDEX_SOON = 200
"""Stored lines the idle writer indexes as soon as nothing is queued; fewer
wait until nothing has come to store for L{INDEX_IDLE} seconds.  Each
indexing is a transaction, and FTS5 writes a segment per transaction: at a
moderate rate (100 lines/s) the writer indexed one line after every commit,
twice the transactions and the GIL's comings and goings (bench/README.md).
A search indexes what is left first, so it still finds every line."""

INDEX_IDLE = 0.5
"""Seconds without lines to store after which the writer indexes any."""

WRITER_CACHE_KIB = 512
"""The writer connection's page cache, in KiB (SQLite's default is 2,000).
The writer appends: it touches the right edge of each B-tree and the index's
newest segments, and what it misses is in the operating system's cache.
SQLite's default cache filled up within seconds of a burst and stayed: 2.5 MB
of the daemon's growth under bench.py's slow-reader load.  512 KiB stored as
many lines per second as the default within this machine's noise; 256 KiB
was measurably slower (bench/README.md)."""

_PROGRESS_STEPS = 10_000
"""SQLite virtual machine steps between two looks at a read's deadline."""

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
_FIRST_FROM = "SELECT id, time FROM messages WHERE id >= ? ORDER BY id LIMIT 1"
_LAST_TOPIC = ("SELECT text, nick, time FROM messages "
               "WHERE room_key = ? AND kind = 'topic' AND id <= ? ORDER BY id DESC LIMIT 1")


def matchExpression(words):
    """
    An FTS5 query for lines holding every one of C{words}, each taken
    literally (quoted), never as query syntax.
    """
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def firstIdFrom(connection, when, later=False):
    """
    The id of the first line said at C{when} or later (strictly later with
    C{later}), or L{None}.

    Ids and times rise together, so this is a binary search over the ids,
    each step one look-up in the table's own B-tree: no index on the time,
    which cost a quarter of storing a line (bench/README.md).
    """
    low, high = connection.execute("SELECT min(id), max(id) FROM messages").fetchone()
    found = None
    while low is not None and low <= high:
        # Invariant: the answer, if any, is found or in [low, high].
        middle = (low + high) // 2
        id, time = connection.execute(_FIRST_FROM, (middle,)).fetchone()
        if id > high:
            high = middle - 1
        elif time > when or (time == when and not later):
            found, high = id, middle - 1
        else:
            low = id + 1
    return found


def timeBound(connection, when, after):
    """
    L{chatd.storage.threaded.pageRows}'s id for a time bound: the first line
    said at C{when} or later, or with C{after} the last said at C{when} or
    earlier; L{None} if there is none.
    """
    if not after:
        return firstIdFrom(connection, when)
    later = firstIdFrom(connection, when, later=True)
    if later is None:
        return connection.execute("SELECT max(id) FROM messages").fetchone()[0]
    return connection.execute("SELECT max(id) FROM messages WHERE id < ?",
                              (later,)).fetchone()[0]


@implementer(IHistoryStore)
class SQLiteHistory(ThreadedHistory):
    """
    Room history in the SQLite file at C{path}.

    Nothing touches the file until L{open}.
    """

    shared = False

    errors = sqlite3.Error

    def __init__(self, path, reactor, batchWindow=BATCH_WINDOW,
                 behindLines=BEHIND_LINES, behindBytes=BEHIND_BYTES,
                 maxReplays=MAX_REPLAYS, maxQueries=MAX_QUERIES,
                 querySeconds=QUERY_SECONDS, indexBehind=INDEX_BEHIND):
        """
        @param reactor: an L{IReactorThreads}, whose C{callFromThread} the
            store's threads use to hand results to the reactor thread.
        @param behindLines: see L{BEHIND_LINES}; the other bounds likewise.
        """
        super().__init__(reactor, batchWindow, behindLines, behindBytes, maxReplays,
                         maxQueries, querySeconds)
        self.path = path
        self._indexBehind = indexBehind
        # The keys of the rooms with anything stored or queued (pruning may
        # leave a few with nothing): most joins are to rooms without history,
        # and those need not wait for the reader.
        self._roomsKept = set()
        # The spellings whose keys are in _roomsKept, so that a line's
        # append folds no name (reactor thread only).
        self._roomNames = set()
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
        readers = {}
        try:
            writing.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            # The writer's own state, handed over before its thread starts:
            # the highest id stored, and the highest indexed for search.
            self._stored, self._indexed, used = writing.execute(
                "SELECT coalesce((SELECT max(id) FROM messages), 0), "
                "(SELECT value FROM counters WHERE name = 'indexed'), "
                "(SELECT value FROM counters WHERE name = 'last_id')").fetchone()
            self._roomsKept = {key for (key,) in writing.execute(_ROOM_KEYS)}
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
        self._start(writing, readers)

    # IHistoryStore, called on the reactor thread

    def nextId(self):
        self._lastId += 1
        return self._lastId

    def observed(self, id):
        # One daemon's own file: other daemons' ids are not of this file.
        pass

    # ThreadedHistory's hooks

    def _appended(self, event):
        room = event.room
        if room not in self._roomNames:
            # Each spelling's key once, not a key per line.
            self._roomNames.add(room)
            self._roomsKept.add(roomKey(room))

    def _mayHold(self, key):
        return key in self._roomsKept

    def _idleWork(self):
        if not self._indexing or self._indexed >= self._stored:
            return None
        return 0 if self._stored - self._indexed >= INDEX_SOON else INDEX_IDLE

    def _doIdleWork(self, connection):
        self._index(connection, INDEX_CHUNK)

    def _afterCommit(self, connection):
        if self._indexing and self._stored - self._indexed > self._indexBehind:
            self._index(connection, INDEX_CHUNK)

    def _beforeRead(self, connection, indexed):
        if indexed:
            self._index(connection, None)

    def _committed(self, rows):
        self._stored = rows[-1][0]

    def _prepareReader(self, lane, connection):
        deadline = self._deadlines[lane]
        # Returning true stops the statement running (OperationalError).
        connection.set_progress_handler(lambda: time.monotonic() > deadline[0],
                                        _PROGRESS_STEPS)

    def _timedOut(self, lane, error):
        return (isinstance(error, sqlite3.OperationalError)
                and time.monotonic() > self._deadlines[lane][0])

    # The writer thread

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

    def _pruneChunk(self, connection, before, chunk):
        # Only indexed lines may be deleted: the trigger takes them out of
        # the index, which must hold them.
        self._index(connection, None)
        # The oldest lines first, along the ids (there is no index on the
        # time); the time is checked too, so that should the clock have
        # gone back, no line said since `before` is deleted.
        newer = firstIdFrom(connection, before)
        upTo = self._indexed if newer is None else min(self._indexed, newer - 1)
        with schema.transaction(connection):
            return connection.execute(
                "DELETE FROM messages WHERE id IN "
                "(SELECT id FROM messages WHERE id <= ? AND time < ? LIMIT ?)",
                (upTo, before, chunk)).rowcount

    # The reader threads

    @staticmethod
    def _recent(connection, key, count, upTo):
        rows = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND id <= ? "
            "ORDER BY id DESC LIMIT ?", (key, upTo, count)).fetchall()
        return [toEvent(row) for row in reversed(rows)]

    @staticmethod
    def _page(connection, key, count, before, after, oldest, upTo):
        def fetch(sql, args, one=False):
            cursor = connection.execute(sql, args)
            return cursor.fetchone() if one else cursor.fetchall()
        return [toEvent(row) for row in pageRows(
            fetch, "?", key, count, before, after, oldest, upTo,
            functools.partial(timeBound, connection))]

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

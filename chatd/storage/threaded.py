"""
What every L{IHistoryStore} of chatd's does the same way, whichever database
is behind it: a writer thread that commits lines in groups, a bound on what
waits for it (back-pressure on whatever reads the connections), and two
reader threads with bounded queues and a deadline per read.
L{chatd.storage.sqlite} and L{chatd.storage.postgres} say how their database
stores, finds and forgets lines.

Three threads of our own do every database call, so the reactor thread never
waits on the database:

- the writer owns the only writing connection.  Lines queue up for it; it
  takes everything waiting, at most once per L{BATCH_WINDOW}, and stores it
  in one transaction (group commit).  An idle writer commits a lone line at
  once, so a quiet server loses nothing to a crash that it could have kept; a
  busy one commits about 100 times a second however many lines arrive.
- two readers, each with a connection of its own: one answers reads of a
  room's lines by position (joins' replays, a room's last topic, C{/history}
  and IRC C{CHATHISTORY} pages: short reads along the room's index), the
  other free-text searches, so that however many searches wait (each may
  take up to L{QUERY_SECONDS}), a replay or a page never waits behind them.

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
  (measured: ~20 MB/s of 900-byte lines stored and indexed in SQLite)
  because the daemon's memory grows by about three bytes per byte of text
  waiting, and it should grow by at most 32 MB.
- each reader's: at most L{MAX_REPLAYS} replays and pages, and
  L{MAX_QUERIES} searches, wait or run; one more fails at once with
  L{HistoryBusy}.  (A connection has at most one read it asked for waiting
  or running: see L{chatd.edge.connection.Connection.showHistory}.)  A
  read that runs longer than L{QUERY_SECONDS} in the database is stopped
  (L{QueryTooSlow}), and a search of more than L{SEARCH_TOKENS} tokens is
  refused before it is queued (L{SearchTooComplex}).

The readers run at a lower priority than the reactor thread (on Linux): a
search may take a while, and live delivery should not wait for it.  The
writer does not: its work is what the reactor thread hands it, and niced on
a saturated machine it fell thousands of lines behind, each waiting in
memory (bench/README.md, session 24), with live delivery no faster.

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
import sys
import threading
import time
import unicodedata

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.core import events
from chatd.core.names import roomKey
from chatd.storage import HistoryBusy, QueryTooSlow, SearchTooComplex
from chatd.storage.worker import STOP, answerJobs

BATCH_WINDOW = 0.010
"""Seconds the writer gathers lines before committing them together."""

PRUNE_CHUNK = 5000
"""Rows pruning deletes per transaction, so that lines never wait long."""

NICENESS = 10
"""How much lower the readers run than the reactor thread (Linux)."""

BEHIND_LINES = 20_000
"""Lines appended but not yet committed past which reading is paused."""

BEHIND_BYTES = 6 * 1024 * 1024
"""Bytes of text (characters, as counted by C{len}) appended but not yet
committed past which reading is paused.  See bench/README-history.md for
how both bounds compare with what the writer does in a second."""

MAX_REPLAYS = 1000
"""Replays, last-topic look-ups, C{/history} and C{CHATHISTORY} pages that
may wait or run at once."""

MAX_QUERIES = 32
"""Searches that may wait or run at once."""

QUERY_SECONDS = 1.0
"""How long one read may run in the database before it is stopped."""

SEARCH_TOKENS = 24
"""Tokens (as the index splits words: C{q.q.q} is three) a search may hold."""

SLOW_COMMIT = 2.0
"""Seconds a commit may take before the store warns in the log: while the
writer is behind, the daemon reads no input, so a stuck disk stops the chat."""

REPLAY, QUERY = "replay", "query"
"""The two readers: reads by position (replays, /history), and searches."""

# A token as SQLite FTS5's unicode61 tokenizer sees one, near enough to count
# them (and, in PostgreSQL, to make them).
_TOKEN = re.compile(r"[^\W_]+")
_ROOM_LINES = frozenset({events.Said, events.Acted, events.TopicChanged})
_EVENTS = {"said": events.Said, "acted": events.Acted, "topic": events.TopicChanged,
           "notice": functools.partial(events.Said, notice=True)}


def toRow(event):
    """
    The row that stores the room line C{event}: (id, time, room key, room,
    kind, nick, text).
    """
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


def pageRows(fetch, mark, key, count, before, after, oldest, upTo, timeBound):
    """
    The rows of L{IHistoryStore.page}'s answer, oldest first, from the
    messages table of either database: C{fetch(sql, args, one=False)} runs
    C{sql}, whose parameters are written C{mark}.

    A time bound becomes an id bound (ids and times rise together), so that
    the range read itself walks the room's index alone: C{timeBound(when,
    after)} is the id of the first line said at C{when} or later, or with
    C{after} of the last said at C{when} or earlier; L{None} if there is none.
    """
    high, low = upTo + 1, 0
    if before is not None:
        if before[0] == "time":
            bound = timeBound(before[1], False)
            high = min(high, bound) if bound is not None else high
        else:
            high = min(high, before[1])
    if after is not None:
        if after[0] == "time":
            bound = timeBound(after[1], True)
            low = max(low, bound) if bound is not None else low
        else:
            low = max(low, after[1])
    rows = fetch(f"SELECT id, time, room, kind, nick, text FROM messages WHERE room_key = {mark} "
                 f"AND id > {mark} AND id < {mark} ORDER BY id {'ASC' if oldest else 'DESC'} "
                 f"LIMIT {mark}", (key, low, high, count))
    return rows if oldest else rows[::-1]


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


def foldedTokens(text):
    """
    The tokens of C{text} as SQLite's C{unicode61} tokenizer with
    C{remove_diacritics 2} indexes them: lower case, accents and other
    combining marks taken off (C{Café} is C{cafe}).
    """
    if text.isascii():
        # Most lines: nothing to decompose (five times faster).
        return _TOKEN.findall(text.lower())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(bare.lower())


def _yieldToTheReactor():
    """
    Lower the calling thread's scheduling priority, so that on a busy machine
    the reactor thread, which users wait on, gets the processor first: a
    read can wait a few milliseconds, live lines should not.  Linux keeps a
    nice value per thread; elsewhere this does nothing.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except OSError:
            pass


class ThreadedHistory:
    """
    The threads, queues and bounds of a history store; a subclass says how
    its database connects, stores, reads and forgets.

    A subclass sets L{errors} and provides C{nextId}, C{open} (which calls
    L{_start}), C{_store}, C{_pruneChunk}, C{_recent}, C{_page},
    C{_lastTopic}, C{_search} and C{_timedOut}; it may override the other
    hooks.

    @cvar errors: the exception class of the database's errors.
    """

    _log = Logger()
    errors = Exception

    def __init__(self, reactor, batchWindow=BATCH_WINDOW,
                 behindLines=BEHIND_LINES, behindBytes=BEHIND_BYTES,
                 maxReplays=MAX_REPLAYS, maxQueries=MAX_QUERIES,
                 querySeconds=QUERY_SECONDS):
        """
        @param reactor: an L{IReactorThreads}, whose C{callFromThread} the
            store's threads use to hand results to the reactor thread.
        @param behindLines: see L{BEHIND_LINES}; the other bounds likewise.
        """
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
        # reader's deadline is read by whatever stops its queries.
        self._deadlines = {REPLAY: [math.inf], QUERY: [math.inf]}
        self._waiting = {REPLAY: 0, QUERY: 0}
        self._maxWaiting = {REPLAY: maxReplays, QUERY: maxQueries}
        self._querySeconds = querySeconds
        self._opened = False
        self._lastId = 0
        self.onCommit = None
        """L{None}, or called from the writer thread after each commit of
        lines with the seconds it took and the time (POSIX) the oldest of
        those lines was said (for the metrics)."""

    def _start(self, writing, readers):
        """
        Start the writer on the connection C{writing} and each reader on its
        own, C{readers} by lane.
        """
        self._opened = True
        # Daemon threads: should the reactor die without closing the store,
        # the process still exits, as after kill -9.
        threading.Thread(target=self._writeLoop, args=(writing,),
                         name="chatd-history-writer", daemon=True).start()
        for lane, reading in readers.items():
            threading.Thread(target=self._readLoop, args=(lane, reading),
                             name=f"chatd-history-{lane}", daemon=True).start()

    # Hooks a subclass may override

    def _readBound(self):
        """
        The highest id a read asked now may return: the lines stored with a
        higher one reach the asker live.
        """
        return self._lastId

    def _mayHold(self, key):
        """
        Whether the room with the key C{key} may have lines stored (L{False}
        answers its reads at once, without the threads).
        """
        return True

    def _readsRefused(self):
        """
        L{None}, or a failed L{Deferred} with which to refuse every read now
        (the database cannot be reached, say).
        """
        return None

    def _idleWork(self):
        """
        Whether the writer has work of its own (L{_doIdleWork}) to do while
        nothing is queued: L{None} if not, else the seconds it first waits
        for something to store (0 to do it as soon as nothing is queued).
        """
        return None

    def _doIdleWork(self, connection):
        pass

    def _afterCommit(self, connection):
        """
        Called on the writer after each batch is committed.
        """

    def _beforeRead(self, connection, indexed):
        """
        Called on the writer when a read's turn comes, before it goes to its
        reader; C{indexed} is whether it is a search.
        """

    def _prepareReader(self, lane, connection):
        """
        Called on C{lane}'s reader thread before its first read.
        """

    # IHistoryStore, called on the reactor thread

    def append(self, event):
        # The event itself waits for the writer, which makes its row: the
        # reactor thread does less per line, and a waiting line holds no
        # tuple of its own (bench/README.md).
        kind = type(event)
        if kind is events.TopicChanged:
            size = len(event.topic)
        elif kind is events.Said or kind is events.Acted:
            size = len(event.text)
        else:
            raise TypeError(f"not a room line: {event!r}")
        self._appended(event)
        self._writes.put(event)
        self._queuedLines += 1
        self._queuedBytes += size
        if not self._paused and (
                self._queuedLines - self._doneLines > self._highLines
                or self._queuedBytes - self._doneBytes > self._highBytes):
            self._fellBehind()

    def _appended(self, event):
        """
        Called on the reactor thread with each room line appended.
        """

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

    def mayHold(self, room):
        return self._mayHold(roomKey(room))

    def recent(self, room, count):
        key = roomKey(room)
        if not self._mayHold(key):
            return succeed([])
        return self._read(REPLAY, self._recent, key, count, self._readBound())

    def page(self, room, count, before=None, after=None, oldest=False):
        key = roomKey(room)
        if not self._mayHold(key):
            return succeed([])
        return self._read(REPLAY, self._page, key, count, before, after, oldest,
                          self._readBound())

    def lastTopic(self, room):
        key = roomKey(room)
        if not self._mayHold(key):
            return succeed(None)
        return self._read(REPLAY, self._lastTopic, key, self._readBound())

    def search(self, rooms, words, limit):
        words = list(words)
        tokens = searchTokens(words)
        if tokens > SEARCH_TOKENS:
            return fail(SearchTooComplex(
                f"a search may hold at most {SEARCH_TOKENS} words and parts of "
                f"words (a.b.c counts as 3); this one holds {tokens}"))
        return self._read(QUERY, self._search, sorted({roomKey(r) for r in rooms}),
                          words, limit, self._readBound(), indexed=True, what="the search")

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
        refused = self._readsRefused()
        if refused is not None:
            return refused
        if self._waiting[lane] >= self._maxWaiting[lane]:
            return fail(HistoryBusy("history is busy; try again in a moment"))
        self._waiting[lane] += 1
        done = Deferred()
        done.addBoth(self._answered, lane)

        def ready(connection):
            self._beforeRead(connection, indexed)
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
        writes, window = self._writes, self._batchWindow
        lastCommit = float("-inf")
        stopping = False
        while True:
            idleAfter = self._idleWork()
            if idleAfter is not None:
                try:
                    first = writes.get(timeout=idleAfter) if idleAfter else writes.get_nowait()
                except queue.Empty:
                    self._doIdleWork(connection)
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
                if type(item) in _ROOM_LINES:
                    rows.append(toRow(item))
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
            self._afterCommit(connection)
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
        except self.errors:
            failure = Failure()
            self._reactor.callFromThread(
                self._log.failure, "{count} history lines could not be stored",
                failure, count=len(rows))
        else:
            self._committed(rows)
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

    def _committed(self, rows):
        """
        Called on the writer once C{rows} are committed.
        """

    def _pruneJob(self, before, done, deleted):
        def prune(connection):
            try:
                count = self._pruneChunk(connection, before, PRUNE_CHUNK)
            except self.errors:
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
        self._prepareReader(lane, connection)
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
        except self.errors as e:
            if self._timedOut(lane, e):
                raise QueryTooSlow(f"{what} took more than {self._querySeconds:g} s "
                                   "and was stopped") from None
            raise
        finally:
            deadline[0] = math.inf

"""
L{IHistoryStore} and L{IAccountStore} on a PostgreSQL database
(C{--db postgresql://...}) that several daemons may share.

Both are driven the way their SQLite counterparts are (L{ThreadedHistory},
L{ThreadedAccounts}): psycopg 3, one connection per thread of the store's own,
no pool.  Each thread runs its jobs one after the other, so a pool would only
hand the same connection back; the writer's group commit, its bound and
back-pressure and the readers' lanes are the same code for both databases.
(Twisted's C{adbapi} would give every statement a L{Deferred} and a trip
through the reactor's thread pool: no group commit, no separate lane for
replays.)

Ids.  C{nextId} must answer at once, ids are shown to users (the web
client pages history with them) and a room's first id is compared with the
ids of lines said on any daemon, so they must follow the order lines were
said in across daemons: a sequence read per line would wait for the
database, and blocks of a sequence would be out of order between daemons.
An id is made of the time in milliseconds, a count within the millisecond
and the daemon's slot: C{(ms << 12) | (count << 6) | slot}.  The slot (0 to
63) is an advisory lock the writer's connection holds, so no two daemons
sharing the database hold one slot at once, and a dead daemon's slot is free
as soon as its connection is gone.  Ids stay below 2**53, exact in
JavaScript.  Daemons on several machines need their clocks in step (NTP): a
line's place among other daemons' lines is as exact as their clocks.

PostgreSQL unreachable.  The chat goes on: lines wait in the writer's
bounded queue while the writer tries again (every L{RETRY_SECONDS} at most);
past the bound, the daemon stops reading its connections' input until the
database is back (back-pressure, as for a slow disk), so nothing said is
lost.  Reads are refused meanwhile (L{HistoryUnavailable}), and so are
registrations and password checks.  At shutdown the writer tries for
L{CLOSE_PATIENCE} seconds more, then logs how many lines it could not
store.

Search matches whole words, any case, accents ignored, every word present,
as the SQLite store's FTS5 index does: each line keeps its folded tokens
(L{foldedTokens}), found through a GIN index on their array; a word of
several tokens (C{q.q.q}) must have them side by side, in order.
"""

import threading
import time

import psycopg
from psycopg import errors as pgerrors
from twisted.internet.defer import fail
from twisted.logger import Logger
from zope.interface import implementer

from chatd.storage import (AccountError, HistoryError, HistoryUnavailable, IAccountStore,
                           IHistoryStore, pgschema)
from chatd.storage.accounts import MAX_HASHING, ThreadedAccounts, readBans, readRoom, \
    readRooms
from chatd.storage.threaded import (BATCH_WINDOW, BEHIND_BYTES, BEHIND_LINES, MAX_QUERIES,
                                    MAX_REPLAYS, QUERY_SECONDS, ThreadedHistory,
                                    foldedTokens, pageRows, toEvent)

EPOCH_MS = 1_735_689_600_000
"""2025-01-01 in POSIX milliseconds: ids count from there."""

SLOTS = 64
"""Daemons that may share one database at once (6 bits of each id)."""

PER_MS = 64
"""Ids one daemon makes per millisecond before borrowing the next one."""

RETRY_SECONDS = 2.0
"""The longest wait between two tries to reach an unreachable database."""

CLOSE_PATIENCE = 10.0
"""Seconds a closing store keeps trying to store what waits."""

_SLOT_LOCK = 0x63686174
_COLUMNS = "id, time, room, kind, nick, text"
# COPY rather than INSERTs: 2.5 times the lines per second (bench/history_bench.py).
_COPY = "COPY messages (id, time, room_key, room, kind, nick, text, words) FROM STDIN"
_INSERT = ("INSERT INTO messages (id, time, room_key, room, kind, nick, text, words) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
_UNAVAILABLE = "history cannot be reached at the moment; try again later"


def idParts(id):
    """
    The (milliseconds since L{EPOCH_MS}, count, slot) an id is made of.
    """
    return id >> 12, (id >> 6) & (PER_MS - 1), id & (SLOTS - 1)


def _makeId(ms, count, slot):
    return (ms << 12) | (count << 6) | slot


def _nowMs():
    return int(time.time() * 1000) - EPOCH_MS


@implementer(IHistoryStore)
class PostgresHistory(ThreadedHistory):
    """
    Room history in the PostgreSQL database at C{url} (a libpq connection
    string or URI).  Nothing connects until L{open}.
    """

    shared = True

    errors = psycopg.Error
    _log = Logger()

    def __init__(self, url, reactor, batchWindow=BATCH_WINDOW,
                 behindLines=BEHIND_LINES, behindBytes=BEHIND_BYTES,
                 maxReplays=MAX_REPLAYS, maxQueries=MAX_QUERIES,
                 querySeconds=QUERY_SECONDS):
        super().__init__(reactor, batchWindow, behindLines, behindBytes, maxReplays,
                         maxQueries, querySeconds)
        self._url = url
        self.path = pgschema.describe(url)
        """Where the history is, as the log may show it (no password)."""
        self._ms = self._count = 0
        self.slot = None
        """This daemon's slot among those sharing the database (in every id)."""
        self._writerMade = 0
        self._down = False
        self._closing = None

    def open(self):
        """
        Create or migrate the schema, take a slot and start the threads.

        @raise chatd.storage.HistoryError: when the database cannot be used.
        """
        pgschema.migrate(self._url)
        writing = pgschema.Reconnecting(self._url)
        # (0 would mean no deadline at all.)
        timeout = f"SET statement_timeout = {max(1, int(self._querySeconds * 1000))}"
        readers = {lane: pgschema.Reconnecting(
            self._url, (timeout, "SET default_transaction_read_only = on"))
            for lane in self._lanes}
        try:
            connection = self._writer(writing)
            highest = connection.execute(
                "SELECT greatest((SELECT max(id) FROM messages), "
                "(SELECT value FROM counters WHERE name = 'last_id'))").fetchone()[0] or 0
            for reading in readers.values():
                reading.get()
        except psycopg.Error as e:
            for holder in (writing, *readers.values()):
                holder.drop()
            raise HistoryError(f"cannot use the history database {self.path}: "
                               f"{str(e).strip()}") from None
        self._ms, self._count, _ = idParts(highest)
        self._lastId = highest
        self._start(writing, readers)

    # IHistoryStore, called on the reactor thread

    def nextId(self):
        now = _nowMs()
        if now > self._ms:
            self._ms, self._count = now, 0
        else:
            self._count += 1
            if self._count == PER_MS:
                self._ms, self._count = self._ms + 1, 0
        self._lastId = _makeId(self._ms, self._count, self.slot)
        return self._lastId

    def observed(self, id):
        ms, count, _ = idParts(id)
        if (ms, count) > (self._ms, self._count):
            self._ms, self._count = ms, count

    def close(self):
        if self._closing is None:
            self._closing = time.monotonic()
        return super().close()

    # ThreadedHistory's hooks

    def _readBound(self):
        """
        Every line said before now, on any daemon: the highest id of this
        millisecond.  This daemon's next id comes after it.
        """
        now = _nowMs()
        if now >= self._ms:
            self._ms, self._count = now, PER_MS - 1
        return max(self._lastId, _makeId(now, PER_MS - 1, SLOTS - 1))

    def _readsRefused(self):
        if self._down:
            return fail(HistoryUnavailable(_UNAVAILABLE))
        return None

    def _timedOut(self, lane, error):
        return isinstance(error, pgerrors.QueryCanceled)

    # The writer thread

    def _writer(self, holder):
        """
        The writer's connection, holding this daemon's slot: the one it had
        if it is still free after a reconnection, else another.

        @raise HistoryError: when every slot is taken.
        """
        connection = holder.get()
        if holder.made != self._writerMade:
            self._writerMade = holder.made
            wanted = [self.slot] if self.slot is not None else []
            for slot in wanted + [s for s in range(SLOTS) if s != self.slot]:
                if connection.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                      (_SLOT_LOCK, slot)).fetchone()[0]:
                    if self.slot is not None and slot != self.slot:
                        self._reactor.callFromThread(
                            self._log.warn, "history: slot {old} was taken while the "
                            "database was away; this daemon's ids use slot {new} now",
                            old=self.slot, new=slot)
                    self.slot = slot
                    break
            else:
                holder.drop()
                raise HistoryError(f"{SLOTS} daemons share the history database "
                                   f"{self.path} already")
        return connection

    def _store(self, holder, rows):
        """
        Commit C{rows} in one transaction, trying again while the database
        cannot be reached (a test double may stall here).
        """
        rows = [row + (" ".join(foldedTokens(row[6])),) for row in rows]
        delay = 0.1
        while True:
            try:
                connection = self._writer(holder)
                with connection.transaction():
                    with connection.cursor().copy(_COPY) as copy:
                        for row in rows:
                            copy.write_row(row)
            except pgerrors.UniqueViolation:
                self._storeClashing(connection, rows)
            except (psycopg.OperationalError, HistoryError) as e:
                holder.drop()
                if not self._down:
                    self._down = True
                    self._reactor.callFromThread(
                        self._log.warn, "history database {path} unreachable ({why}); "
                        "lines wait for it (reading pauses past the bound)",
                        path=self.path, why=str(e).strip())
                if (self._closing is not None
                        and time.monotonic() - self._closing > CLOSE_PATIENCE):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, RETRY_SECONDS)
                continue
            if self._down:
                self._down = False
                self._reactor.callFromThread(
                    self._log.info, "history database {path} reachable again",
                    path=self.path)
            return

    def _storeClashing(self, connection, rows):
        """
        Store C{rows}, some of whose ids are stored already: another daemon
        took this one's slot while its connection was away (a restart of
        the server) and made the same id in the same millisecond.  The rest
        of the batch is kept; the lines whose ids clash are logged and lost.
        """
        with connection.transaction():
            with connection.cursor() as cursor:
                cursor.executemany(_INSERT + " ON CONFLICT (id) DO NOTHING", rows)
                stored = cursor.rowcount
        self._reactor.callFromThread(
            self._log.warn, "{count} history lines were not stored: another daemon "
            "stored lines with their ids (slot {slot} was taken over while the "
            "database was away)", count=len(rows) - stored, slot=self.slot)

    def _pruneChunk(self, holder, before, chunk):
        try:
            connection = self._writer(holder)
            with connection.transaction():
                count, top = connection.execute(
                    "WITH gone AS (DELETE FROM messages WHERE id IN "
                    "(SELECT id FROM messages WHERE time < %s LIMIT %s) RETURNING id) "
                    "SELECT count(*), max(id) FROM gone", (before, chunk)).fetchone()
                # Ids never come back, even once every line is gone.
                connection.execute("UPDATE counters SET value = greatest(value, %s) "
                                   "WHERE name = 'last_id'", (top or 0,))
        except psycopg.OperationalError:
            holder.drop()
            raise
        return count

    # The reader threads

    def _fetch(self, holder, sql, args, one=False):
        """
        Run C{sql} on a reader's connection, made again once should the server
        have dropped it (restarted, say).

        @raise HistoryUnavailable: when the database cannot be reached.
        """
        for attempt in (1, 2):
            try:
                cursor = holder.get().execute(sql, args)
                return cursor.fetchone() if one else cursor.fetchall()
            except pgerrors.QueryCanceled:
                raise
            except psycopg.OperationalError:
                holder.drop()
                if attempt == 2:
                    raise HistoryUnavailable(_UNAVAILABLE) from None

    def _recent(self, holder, key, count, upTo):
        rows = self._fetch(holder, f"SELECT {_COLUMNS} FROM messages WHERE room_key = %s "
                           "AND id <= %s ORDER BY id DESC LIMIT %s", (key, upTo, count))
        return [toEvent(row) for row in reversed(rows)]

    def _page(self, holder, key, count, before, after, oldest, upTo):
        def fetch(sql, args, one=False):
            return self._fetch(holder, sql, args, one)

        def timeBound(when, after):
            # Through the time index.
            row = fetch("SELECT id FROM messages WHERE time <= %s ORDER BY time DESC LIMIT 1"
                        if after else
                        "SELECT id FROM messages WHERE time >= %s ORDER BY time LIMIT 1",
                        (when,), one=True)
            return row[0] if row else None

        return [toEvent(row) for row in pageRows(fetch, "%s", key, count, before, after,
                                                  oldest, upTo, timeBound)]

    def _lastTopic(self, holder, key, upTo):
        row = self._fetch(holder, "SELECT text, nick, time FROM messages "
                          "WHERE room_key = %s AND kind = 'topic' AND id <= %s "
                          "ORDER BY id DESC LIMIT 1", (key, upTo), one=True)
        if row is None or not row[0]:
            return None
        return row

    def _search(self, holder, keys, words, limit, upTo):
        # As FTS5 does: a word without a token (punctuation) asks nothing.
        tokens = [found for found in map(foldedTokens, words) if found]
        if not keys or not tokens:
            return []
        # Tokens have no %, _ nor backslash: nothing to escape in LIKE.
        phrases = [f"% {' '.join(found)} %" for found in tokens if len(found) > 1]
        rows = self._fetch(
            holder, f"SELECT {_COLUMNS} FROM messages "
            "WHERE string_to_array(words, ' ') @> %s::text[] AND room_key = ANY(%s) "
            "AND id <= %s AND (' ' || words || ' ') LIKE ALL (%s::text[]) "
            "ORDER BY id DESC LIMIT %s",
            (sorted({token for found in tokens for token in found}), keys, upTo, phrases,
             limit))
        return [toEvent(row) for row in rows]


class _QuestionMarks:
    """
    A reader's C{execute} for SQL written with C{?} for its parameters (as
    L{ThreadedAccounts} writes it for either database), on a connection made
    again once should the server have dropped it.
    """

    def __init__(self, holder):
        self._holder = holder

    def execute(self, sql, args=()):
        for attempt in (1, 2):
            try:
                return self._holder.get().execute(sql.replace("?", "%s"), args)
            except psycopg.OperationalError:
                self._holder.drop()
                if attempt == 2:
                    raise AccountError("accounts cannot be reached at the moment; "
                                       "try again later") from None

    def close(self):
        self._holder.drop()


@implementer(IAccountStore)
class PostgresAccounts(ThreadedAccounts):
    """
    Accounts, bans and kept rooms in the PostgreSQL database at C{url}.
    Nothing connects until L{open}.

    Other daemons sharing the database register nicknames, change bans and
    keep rooms while this one runs: a thread of its own listens for what the
    schema's triggers announce (C{LISTEN}), and reads again everything
    announced (and everything, after a reconnection, to catch up on what it
    missed).
    """

    duplicate = pgerrors.UniqueViolation
    _log = Logger()

    def __init__(self, url, reactor, hasher=None, maxHashing=MAX_HASHING):
        super().__init__(pgschema.describe(url), reactor, hasher, maxHashing)
        self._url = url
        self._watcher = None
        self._roomWatcher = None
        self._stopping = threading.Event()
        self._listener = None

    def open(self):
        """
        Create or migrate the schema, read the registered nicknames and the
        bans, and start the threads.

        @raise chatd.storage.HistoryError: when the database cannot be used.
        """
        pgschema.migrate(self._url)
        connection = _QuestionMarks(pgschema.Reconnecting(self._url))
        try:
            self._read(connection)
        except (psycopg.Error, AccountError) as e:
            connection.close()
            raise HistoryError(f"cannot use the history database {self.path}: "
                               f"{str(e).strip()}") from None
        self._start(connection)
        self._listener = threading.Thread(target=self._listen, args=(list(self._bans),),
                                          name="chatd-accounts-listener", daemon=True)
        self._listener.start()

    def watch(self, watcher):
        self._watcher = watcher

    def watchRooms(self, watcher):
        self._roomWatcher = watcher

    def close(self):
        self._stopping.set()
        return super().close()

    # Told by the listener, on the reactor thread

    def _registeredElsewhere(self, keys):
        self._registered.update(keys)

    def _roomsKept(self, rows):
        if self._roomWatcher is not None:
            for row in rows:
                self._roomWatcher.storedRoomKept(*row)

    def _bansChanged(self, added, removed):
        gone = {ban.key for ban in removed + added}
        self._bans = [ban for ban in self._bans if ban.key not in gone] + added
        if self._watcher is None:
            return
        for ban in removed:
            self._watcher.storedBanRemoved(ban)
        for ban in added:
            self._watcher.storedBanAdded(ban)

    # The listener's thread

    def _listen(self, known):
        """
        Until the store closes: listen, and tell the reactor thread what
        changed since C{known}, the bans it knows.
        """
        known = {ban.key: ban for ban in known}
        connection = None
        while not self._stopping.is_set():
            try:
                if connection is None:
                    connection = pgschema.connect(self._url)
                    connection.execute("LISTEN chatd_accounts")
                    connection.execute("LISTEN chatd_bans")
                    connection.execute("LISTEN chatd_rooms")
                    # Whatever was announced while nobody listened.
                    keys = [key for (key,) in
                            connection.execute("SELECT nick_key FROM accounts")]
                    self._reactor.callFromThread(self._registeredElsewhere, keys)
                    known = self._compareBans(connection, known)
                    self._reactor.callFromThread(self._roomsKept, readRooms(connection))
                bans = False
                rooms = []
                for notice in connection.notifies(timeout=0.5, stop_after=1):
                    if notice.channel == "chatd_accounts":
                        self._reactor.callFromThread(self._registeredElsewhere,
                                                     [notice.payload])
                    elif notice.channel == "chatd_rooms":
                        rooms.append(notice.payload)
                    else:
                        bans = True
                if bans:
                    known = self._compareBans(connection, known)
                # Read once the notices are: each row as it is now, after
                # every change announced so far.
                rows = [readRoom(connection, key, "%s") for key in rooms]
                if rows:
                    self._reactor.callFromThread(self._roomsKept,
                                                 [row for row in rows if row is not None])
            except psycopg.Error:
                if connection is not None:
                    connection.close()
                    connection = None
                self._stopping.wait(1.0)
        if connection is not None:
            connection.close()

    def _compareBans(self, connection, known):
        now = {ban.key: ban for ban in readBans(connection)}
        added = [ban for key, ban in now.items() if known.get(key) != ban]
        removed = [ban for key, ban in known.items() if key not in now]
        if added or removed:
            self._reactor.callFromThread(self._bansChanged, added, removed)
        return now

"""
L{IAccountStore} in the history's database: L{ThreadedAccounts}, what is the
same whichever database keeps them, and L{SQLiteAccounts}, in the history's
SQLite file (schema version 3 and up).  (L{chatd.storage.postgres} has the
PostgreSQL one.)

One thread of our own does every database call and every password hash, in
the order asked, so the reactor thread never waits for the database nor for
argon2, which is slow on purpose.  The registered nicknames and the bans are
read once when the store opens and kept in memory, so the core can ask about
them at once; writes go to the thread and reach the database in order.
"""

import queue
import sqlite3
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from chatd.core.bans import Ban, banKey
from chatd.core.names import nickKey, roomKey
from chatd.storage import AccountError, AccountsBusy, IAccountStore, schema
from chatd.storage.worker import STOP, answerJobs

_BAN_COLUMNS = 'kind, target, room, until, reason, "by", time'
_ROOM_COLUMNS = "name, owner_key, topic, first_id"

MAX_HASHING = 16
"""Password jobs that may wait or run at once.  Each takes argon2's time
(0.26-0.31 s at its default costs, measured on this project's busy 2-core
machine), so the last one waits a few seconds at most."""


class ThreadedAccounts:
    """
    Accounts and bans in a database, with one thread of their own.  A
    subclass's C{open} reads them (L{_read}) and starts the thread
    (L{_start}).  Jobs get a connection whose C{execute} takes SQL with C{?}
    for its parameters, as SQLite's does, and which SQLite and PostgreSQL
    both understand.

    @cvar duplicate: the exception the database raises for a key stored
        already.
    """

    duplicate = Exception

    def __init__(self, path, reactor, hasher=None, maxHashing=MAX_HASHING):
        """
        @param reactor: an L{IReactorThreads}, whose C{callFromThread} the
            store's thread uses to hand results to the reactor thread.
        @param hasher: an L{argon2.PasswordHasher}; argon2's recommended
            costs by default.
        @param maxHashing: see L{MAX_HASHING}.
        """
        self._hashing = 0
        self._maxHashing = maxHashing
        self.path = path
        self._reactor = reactor
        self._hasher = hasher or PasswordHasher()
        self._jobs = queue.SimpleQueue()
        self._registered = set()
        self._bans = []
        self._rooms = []
        self._closed = Deferred()
        self._opened = False

    def _read(self, connection):
        """
        Read the registered nicknames, the bans and the kept rooms through
        C{connection}.
        """
        self._registered = {key for (key,) in
                            connection.execute("SELECT nick_key FROM accounts")}
        self._bans = readBans(connection)
        self._rooms = readRooms(connection)

    def _start(self, connection):
        """
        Start the store's thread, which uses C{connection}.
        """
        # Verifying a nickname nobody registered costs as much as a real
        # one, so timing does not tell which nicknames are registered.
        self._decoy = self._hasher.hash("not a password")
        self._opened = True
        # Each job is one statement at most: autocommit is its transaction.
        threading.Thread(target=answerJobs,
                         args=(self._jobs, connection, self._reactor, self._closed),
                         name="chatd-accounts", daemon=True).start()

    # IAccountStore, called on the reactor thread

    def isRegistered(self, nick):
        return nickKey(nick) in self._registered

    def register(self, nick, password):
        key = nickKey(nick)
        if key in self._registered:
            return _failed(AccountError(f"{nick} is already registered"))
        if self._hashing >= self._maxHashing:
            return _busy()
        # Taken now, so a second /register meanwhile is refused at once.
        self._registered.add(key)

        def register(connection):
            try:
                connection.execute(
                    "INSERT INTO accounts (nick_key, nick, password_hash, created) "
                    "VALUES (?, ?, ?, ?)",
                    (key, nick, self._hasher.hash(password), time.time()))
            except self.duplicate:
                # Registered meanwhile by another daemon sharing the database.
                raise AccountError(f"{nick} is already registered") from None

        done = self._hash(register)
        done.addErrback(lambda failure: (self._registered.discard(key), failure)[1])
        return done

    def verify(self, nick, password):
        key = nickKey(nick)

        def verify(connection):
            row = connection.execute("SELECT password_hash FROM accounts WHERE nick_key = ?",
                                     (key,)).fetchone()
            try:
                self._hasher.verify(row[0] if row else self._decoy, password)
            except (VerificationError, InvalidHashError):
                return False
            return row is not None

        return self._hash(verify)

    def changePassword(self, nick, password):
        key = nickKey(nick)

        def change(connection):
            connection.execute("UPDATE accounts SET password_hash = ? WHERE nick_key = ?",
                               (self._hasher.hash(password), key))

        return self._hash(change)

    def bans(self):
        return list(self._bans)

    def addBan(self, ban):
        def add(connection):
            # A room ban is stored only by the room's stored owner (or for a
            # room nobody keeps): a daemon that thinks another its owner
            # for a moment (it created the room before hearing it was kept
            # elsewhere) stores nothing.  (The WHERE also tells SQLite that
            # ON CONFLICT is not the SELECT's.)
            connection.execute(
                f"INSERT INTO bans (target_key, room_key, {_BAN_COLUMNS}) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM rooms "
                "WHERE room_key = ? AND owner_key <> ?) "
                "ON CONFLICT (kind, target_key, room_key) DO UPDATE SET "
                "target = excluded.target, room = excluded.room, until = excluded.until, "
                'reason = excluded.reason, "by" = excluded."by", time = excluded.time',
                (ban.key[1], ban.key[2], ban.kind, ban.target, ban.room, ban.until,
                 ban.reason, ban.by, ban.time, ban.key[2], nickKey(ban.by)))

        return self._do(add)

    def removeBan(self, ban):
        kind, targetKey, roomKey = banKey(ban.kind, ban.target, ban.room)

        def remove(connection):
            connection.execute(
                "DELETE FROM bans WHERE kind = ? AND target_key = ? AND room_key = ?",
                (kind, targetKey, roomKey))

        return self._do(remove)

    def rooms(self):
        return list(self._rooms)

    def keepRoom(self, name, owner, topic, firstId):
        key = roomKey(name)

        def keep(connection):
            # The first to keep a room owns it: another owner's row (kept
            # meanwhile through another daemon sharing the database) is
            # left as it is, and its caller learns who owns the room.
            connection.execute(
                "INSERT INTO rooms (room_key, name, owner_key, topic, first_id, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_key) DO UPDATE SET "
                "topic = excluded.topic WHERE rooms.owner_key = excluded.owner_key",
                (key, name, owner, topic, firstId, time.time()))
            return readRoom(connection, key)

        return self._do(keep)

    def close(self):
        if not self._opened:
            return succeed(None)
        self._jobs.put(STOP)
        return self._closed

    def _do(self, job):
        done = Deferred()
        self._jobs.put((job, done))
        return done

    def _hash(self, job):
        """
        Queue C{job}, which hashes a password, unless too many already wait.
        """
        if self._hashing >= self._maxHashing:
            return _busy()
        self._hashing += 1
        done = self._do(job)
        done.addBoth(self._hashed)
        return done

    def _hashed(self, result):
        self._hashing -= 1
        return result


@implementer(IAccountStore)
class SQLiteAccounts(ThreadedAccounts):
    """
    Accounts and bans in the SQLite file at C{path}.  Nothing touches the
    file until L{open}.
    """

    duplicate = sqlite3.IntegrityError

    def open(self):
        """
        Open (creating or migrating) the database, read the registered
        nicknames and the bans, and start the thread.

        @raise chatd.storage.HistoryError: when the file cannot be used.
        """
        connection = schema.connect(self.path)
        self._read(connection)
        self._start(connection)

    def watch(self, watcher):
        # Nothing else writes this file while the daemon runs.
        pass

    watchRooms = watch


def readRooms(connection):
    """
    Every kept room stored, oldest first, read through C{connection}, as
    (name, owner's nickname key, topic, first history id) tuples.
    """
    return [tuple(row) for row in connection.execute(
        f"SELECT {_ROOM_COLUMNS} FROM rooms ORDER BY created")]


def readRoom(connection, key, mark="?"):
    """
    The kept room stored under the room key C{key}, read through
    C{connection} (whose parameters are written C{mark}), as L{readRooms}
    gives them, or L{None}.
    """
    row = connection.execute(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE room_key = {mark}",
                             (key,)).fetchone()
    return None if row is None else tuple(row)


def readBans(connection):
    """
    Every ban stored, oldest first, read through C{connection}.
    """
    return [Ban(*row) for row in connection.execute(
        f"SELECT {_BAN_COLUMNS} FROM bans ORDER BY time, kind, target_key, room_key")]


def _busy():
    return _failed(AccountsBusy("too many password checks are waiting; "
                                "try again in a moment"))


def _failed(exception):
    done = Deferred()
    done.errback(exception)
    return done

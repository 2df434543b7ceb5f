"""
The SQLite history schema: its versions, the migrations between them, and
opening a database file safely.

The schema version lives in C{PRAGMA user_version}: version N means the first
N entries of L{MIGRATIONS} have been applied.  Each migration runs in one
transaction, so a database is always at some exact version.  A database at a
version this chatd does not know was written by a newer chatd and is refused
rather than misread.
"""

import os
import sqlite3
from contextlib import contextmanager

from chatd.storage import HistoryError

MIGRATIONS = [
    # 1: the messages.  room_key is the room's name folded as chatd.core.names
    # compares it; room keeps the spelling shown at the time.  The counters
    # row remembers the highest id ever used, so that no id is used twice,
    # even once pruning has deleted every row.
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        room_key TEXT NOT NULL,
        room TEXT NOT NULL,
        kind TEXT NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room_key, id);
    CREATE INDEX messages_by_time ON messages (time);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters VALUES ('last_id', 0);
    """,
    # 2: full-text search over the text.  The writer indexes stored lines
    # a little after storing them (see chatd.storage.sqlite), so the insert
    # path stays fast; the counter 'indexed' is the highest id indexed.
    # Pruning only deletes indexed lines, and the trigger keeps the index in
    # step.  Results come newest first, never by relevance, so no column
    # sizes are kept for ranking: one B-tree insert less per line.
    """
    CREATE VIRTUAL TABLE messages_search USING fts5(
        text, content='messages', content_rowid='id', columnsize=0,
        tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_search (messages_search, rowid, text)
            VALUES ('delete', old.id, old.text);
    END;
    INSERT INTO messages_search (messages_search) VALUES ('rebuild');
    INSERT INTO counters
        SELECT 'indexed', coalesce(max(id), 0) FROM messages;
    """,
    # 3: registered nicknames and bans (chatd.storage.accounts).  Keys are
    # folded as chatd.core.names and chatd.core.bans compare them; room_key is
    # '' for a ban from the whole server.  password_hash is an argon2 PHC
    # string: the salt and the cost travel with the hash.
    """
    CREATE TABLE accounts (
        nick_key TEXT PRIMARY KEY,
        nick TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        target_key TEXT NOT NULL,
        room_key TEXT NOT NULL,
        target TEXT NOT NULL,
        room TEXT NOT NULL,
        until REAL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (kind, target_key, room_key)
    );
    """,
    # 4: the rooms kept when they empty, those with a registered owner
    # (chatd.core.chat): owner_key is the owner's folded nickname, first_id
    # the history id from which the room's lines are its own (NULL: all).
    """
    CREATE TABLE rooms (
        room_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner_key TEXT NOT NULL,
        topic TEXT NOT NULL,
        first_id INTEGER,
        created REAL NOT NULL
    );
    """,
    # 5: a room's last topic, found at once however many lines the room has
    # (a partial index: only topic lines are in it).
    """
    CREATE INDEX messages_topics ON messages (room_key, id) WHERE kind = 'topic';
    """,
    # 6: no index on the time.  Ids and times rise together, so pruning and
    # a page's time bounds find their ids by a binary search over the ids
    # (chatd.storage.sqlite.firstIdFrom); keeping the index up to date cost
    # about a quarter of the writer's time per stored line.
    """
    DROP INDEX messages_by_time;
    """,
]

VERSION = len(MIGRATIONS)


def connect(path, readOnly=False):
    """
    Open the history database at C{path}, creating it (0600) and its folder
    (0700) when missing and migrating it to L{VERSION}, or, with C{readOnly}, open an
    existing one for reading only.

    @return: an L{sqlite3.Connection} in autocommit mode (transactions are
        explicit), usable from any one thread at a time.
    @raise HistoryError: when the file cannot be used, saying why.
    """
    try:
        if readOnly:
            connection = sqlite3.connect(f"file:{_uriPath(path)}?mode=ro", uri=True,
                                         isolation_level=None, check_same_thread=False)
        else:
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, mode=0o700, exist_ok=True)
            _createPrivately(path)
            connection = sqlite3.connect(path, isolation_level=None,
                                         check_same_thread=False)
    except FileExistsError as e:
        raise HistoryError(f"cannot create the history database {path}: "
                           f"{e.filename} is not a folder") from None
    except OSError as e:
        raise HistoryError(f"cannot create the history database {path}: "
                           f"{e.strerror}: {e.filename}") from None
    except sqlite3.Error as e:
        raise HistoryError(f"cannot open the history database {path}: {e}") from None
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise HistoryError(
                f"the history database {path} has schema version {version}, written "
                f"by a newer chatd; this one knows versions up to {VERSION}")
        if readOnly:
            if version < 1:
                raise HistoryError(f"{path} holds no chatd history")
            connection.execute("PRAGMA query_only = ON")
            return connection
        # WAL: readers never wait for the writer; synchronous=NORMAL: a
        # commit is not fsynced, so a crashed process loses nothing committed
        # and only a crashed machine may lose the last commits.
        if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise HistoryError(f"the history database {path} cannot use WAL mode")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA busy_timeout = 5000")
        _migrate(connection, version)
    except HistoryError:
        connection.close()
        raise
    except sqlite3.Error as e:
        connection.close()
        raise HistoryError(f"cannot use the history database {path}: {e}") from None
    return connection


@contextmanager
def transaction(connection):
    """
    Run the C{with} block in one transaction on an autocommit connection:
    committed when the block ends, rolled back (and the error raised again)
    when it, or the commit, fails.
    """
    connection.execute("BEGIN")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _migrate(connection, version):
    for target in range(version + 1, VERSION + 1):
        try:
            # One script, one transaction: the version moves with the schema.
            connection.executescript(
                "BEGIN IMMEDIATE;" + MIGRATIONS[target - 1]
                + f";PRAGMA user_version = {target}; COMMIT;")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise


def _createPrivately(path):
    """
    Create the file at C{path}, empty, readable and writable by its owner
    only (0600), unless it exists.  SQLite gives the WAL and shared-memory
    files it makes beside a database the database's permissions, so they are
    private too.  An existing file keeps the permissions it has.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _uriPath(path):
    # Characters with a meaning in a URI must be escaped in its path.
    return os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")

"""
The PostgreSQL schema: its versions, the migrations between them, and
connections that come back after the server does.

The schema version lives in the table C{chatd_schema}: version N means the
first N entries of L{MIGRATIONS} have been applied.  Each migration runs in
one transaction, under an advisory lock, so that several daemons starting at
once on one database migrate it once, and a database is always at some exact
version.  A database at a version this chatd does not know was written by a
newer chatd and is refused rather than misread.

The tables are those of the SQLite schema (L{chatd.storage.schema}), less
SQLite's full-text index: a line's search words (L{foldedTokens}, folded as
SQLite's tokenizer folds them) are kept beside it and found through a GIN
index on their array.  Triggers announce accounts, bans and kept rooms
(C{NOTIFY}) to the other daemons sharing the database
(L{chatd.storage.postgres}).
"""

import psycopg

from chatd.storage import HistoryError

MIGRATIONS = [
    # 1: everything the SQLite schema has at its version 5.  room_key is the
    # room's name folded as chatd.core.names compares it; room keeps the
    # spelling shown at the time.  words: the line's search tokens, folded,
    # one space between each.  Ids are made by the daemons
    # (chatd.storage.postgres.Ids); the counter 'last_id' keeps the highest
    # one pruning deleted, so that none is used twice.
    """
    CREATE TABLE messages (
        id bigint PRIMARY KEY,
        time double precision NOT NULL,
        room_key text NOT NULL,
        room text NOT NULL,
        kind text NOT NULL,
        nick text NOT NULL,
        text text NOT NULL,
        words text NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room_key, id);
    CREATE INDEX messages_by_time ON messages (time);
    CREATE INDEX messages_topics ON messages (room_key, id) WHERE kind = 'topic';
    CREATE INDEX messages_search ON messages USING gin (string_to_array(words, ' '));
    CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO counters VALUES ('last_id', 0);
    CREATE TABLE accounts (
        nick_key text PRIMARY KEY,
        nick text NOT NULL,
        password_hash text NOT NULL,
        created double precision NOT NULL
    );
    CREATE TABLE bans (
        kind text NOT NULL,
        target_key text NOT NULL,
        room_key text NOT NULL,
        target text NOT NULL,
        room text NOT NULL,
        until double precision,
        reason text NOT NULL,
        "by" text NOT NULL,
        time double precision NOT NULL,
        PRIMARY KEY (kind, target_key, room_key)
    );
    CREATE TABLE rooms (
        room_key text PRIMARY KEY,
        name text NOT NULL,
        owner_key text NOT NULL,
        topic text NOT NULL,
        first_id bigint,
        created double precision NOT NULL
    );
    CREATE FUNCTION chatd_account_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('chatd_accounts', NEW.nick_key);
        RETURN NULL;
    END $$;
    CREATE TRIGGER accounts_announced AFTER INSERT ON accounts
        FOR EACH ROW EXECUTE FUNCTION chatd_account_added();
    CREATE FUNCTION chatd_bans_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('chatd_bans', '');
        RETURN NULL;
    END $$;
    CREATE TRIGGER bans_announced AFTER INSERT OR UPDATE OR DELETE ON bans
        FOR EACH STATEMENT EXECUTE FUNCTION chatd_bans_changed();
    """,
    # 2: kept rooms are announced too (their key), so that every daemon
    # knows the rooms kept through the others, and who owns them.
    """
    CREATE FUNCTION chatd_room_kept() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('chatd_rooms', NEW.room_key);
        RETURN NULL;
    END $$;
    CREATE TRIGGER rooms_announced AFTER INSERT OR UPDATE ON rooms
        FOR EACH ROW EXECUTE FUNCTION chatd_room_kept();
    """,
]

VERSION = len(MIGRATIONS)

_LOCK = 0x63686174
"""The advisory lock key (b"chat") under which the schema is migrated."""


def connect(url, setup=()):
    """
    A new connection to the database at C{url}, in autocommit mode, with
    the statements C{setup} run on it.

    @raise psycopg.Error: when the server cannot be reached or refuses.
    """
    connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
    try:
        for statement in setup:
            connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


def migrate(url):
    """
    Bring the database at C{url} to L{VERSION}, creating the schema on an
    empty database.

    @raise HistoryError: when the database cannot be reached or used, or was
        written by a newer chatd, saying why.
    """
    shown = describe(url)
    try:
        with connect(url) as connection:
            for target in range(1, VERSION + 1):
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                    connection.execute(
                        "CREATE TABLE IF NOT EXISTS chatd_schema (version integer NOT NULL)")
                    row = connection.execute("SELECT version FROM chatd_schema").fetchone()
                    version = 0 if row is None else row[0]
                    if version > VERSION:
                        raise HistoryError(
                            f"the history database {shown} has schema version {version}, "
                            f"written by a newer chatd; this one knows versions up to "
                            f"{VERSION}")
                    if version >= target:
                        continue
                    connection.execute(MIGRATIONS[target - 1])
                    if row is None:
                        connection.execute("INSERT INTO chatd_schema VALUES (%s)", (target,))
                    else:
                        connection.execute("UPDATE chatd_schema SET version = %s", (target,))
    except psycopg.Error as e:
        raise HistoryError(f"cannot use the history database {shown}: "
                           f"{str(e).strip()}") from None


def describe(url):
    """
    C{url} as logs may show it: without its password.
    """
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable PostgreSQL address)"
    info.pop("password", None)
    host = info.get("host", "")
    port = info.get("port", "")
    user = info.get("user", "")
    return (f"postgresql://{user + '@' if user else ''}{host}{':' + port if port else ''}"
            f"/{info.get('dbname', '')}")


class Reconnecting:
    """
    A connection made again, at its next use, after the server dropped it:
    each of a store's threads keeps one.

    @ivar setup: statements run on each new connection.
    """

    def __init__(self, url, setup=()):
        self._url = url
        self.setup = setup
        self._connection = None
        self.made = 0
        """How many connections this has made: a new one has lost the old
        one's session state (its advisory locks)."""

    def get(self):
        """
        The connection, made now when there is none or the last one broke.

        @raise psycopg.OperationalError: when the server cannot be reached.
        """
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            self.drop()
            connection = self._connection = connect(self._url, self.setup)
            self.made += 1
        return connection

    def drop(self):
        """
        Let go of the connection, if any; the next L{get} makes a new one.
        """
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
            self._connection = None

    close = drop

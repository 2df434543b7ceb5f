"""
The account store, on SQLite and on PostgreSQL (the backend fixture), driven
from the test's thread as the reactor would drive it (L{ThreadCalls} stands
in for C{callFromThread}): argon2 hashes, verification, bans that outlive the
process, and the shared schema.
"""

import sqlite3
import threading

import pytest
from argon2 import PasswordHasher

from chatd.core.bans import ADDRESS, NICK, Ban
from chatd.storage import AccountError, AccountsBusy, schema
from chatd.storage.accounts import SQLiteAccounts
from chatd.storage.sqlite import SQLiteHistory

# Cheap costs: these tests are about what is stored, not about argon2.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def openStore(backend, calls):
    return backend.accounts(calls, hasher=FAST)


def test_registerStoresOnlyASaltedHash(backend, calls):
    """
    A registered password is stored as an argon2id hash, salted (two equal
    passwords hash differently), and never in the clear anywhere in the file
    (an SQLite file: PostgreSQL's files are the server's).
    """
    store = openStore(backend, calls)
    calls.wait(store.register("Alice", "same-password"))
    calls.wait(store.register("bob", "same-password"))
    calls.wait(store.close())
    rows = backend.query(
        "SELECT nick_key, nick, password_hash FROM accounts ORDER BY nick_key")
    assert [(key, nick) for key, nick, _ in rows] == [("alice", "Alice"), ("bob", "bob")]
    assert all(h.startswith("$argon2id$") for _, _, h in rows)
    assert rows[0][2] != rows[1][2]
    if backend.name != "sqlite":
        return
    path = backend.where
    for name in (path, path + "-wal"):
        try:
            with open(name, "rb") as f:
                assert b"same-password" not in f.read()
        except FileNotFoundError:
            pass


def test_verifyAndChangePassword(backend, calls):
    """
    verify is true only for the right password of a registered nickname (in
    any case); after changePassword only the new one verifies, also after
    reopening.
    """
    store = openStore(backend, calls)
    calls.wait(store.register("alice", "first-password"))
    assert calls.wait(store.verify("ALICE", "first-password")) is True
    assert calls.wait(store.verify("alice", "wrong")) is False
    assert calls.wait(store.verify("nobody", "first-password")) is False
    calls.wait(store.changePassword("alice", "second-password"))
    calls.wait(store.close())
    store = openStore(backend, calls)
    assert store.isRegistered("Alice") and not store.isRegistered("bob")
    assert calls.wait(store.verify("alice", "first-password")) is False
    assert calls.wait(store.verify("alice", "second-password")) is True
    calls.wait(store.close())


def test_registerTwiceIsRefused(backend, calls):
    """
    A nickname registers once, whatever its case.
    """
    store = openStore(backend, calls)
    calls.wait(store.register("alice", "first-password"))
    with pytest.raises(AccountError) as e:
        calls.wait(store.register("Alice", "other-password"))
    assert str(e.value) == "Alice is already registered"
    calls.wait(store.close())


def test_bansPersistAcrossReopening(backend, calls):
    """
    Bans added are read back by the next store on the same file; a ban
    added again for the same target and place replaces the old one; removed
    bans are gone.
    """
    store = openStore(backend, calls)
    server = Ban(NICK, "Troll", "", None, "spam", "op", 100.0)
    room = Ban(ADDRESS, "192.0.2.9", "#den", 5000.0, "", "owner", 200.0)
    gone = Ban(NICK, "pest", "", None, "", "op", 300.0)
    for ban in (server, room, gone):
        calls.wait(store.addBan(ban))
    renewed = Ban(NICK, "troll", "", 9000.0, "again", "op", 400.0)
    calls.wait(store.addBan(renewed))
    calls.wait(store.removeBan(gone))
    calls.wait(store.close())
    store = openStore(backend, calls)
    assert store.bans() == [room, renewed]
    calls.wait(store.close())


def test_sharesTheHistoryDatabase(path, calls):
    """
    The account store lives in the history's file: whichever opens it first
    brings it to the current schema version, and both work side by side.
    """
    history = SQLiteHistory(path, calls)
    history.open()
    store = SQLiteAccounts(path, calls, hasher=FAST)
    store.open()
    calls.wait(store.register("alice", "a-password"))
    calls.wait(history.close())
    calls.wait(store.close())
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
    assert schema.VERSION >= 3
    assert connection.execute("SELECT count(*) FROM accounts").fetchone() == (1,)


def test_keptRoomsOutliveTheProcess(backend, calls):
    """
    A kept room is stored with its owner, topic and first history id; a new
    topic from its owner replaces the old one and nothing else; the next
    store reads them back.  An SQLite database file is created readable by
    its owner alone.
    """
    import os
    import stat

    store = openStore(backend, calls)
    assert calls.wait(store.keepRoom("#Den", "owner", "", 41)) == ("#Den", "owner", "", 41)
    assert calls.wait(store.keepRoom("#den", "owner", "new topic", 99)) == (
        "#Den", "owner", "new topic", 41)
    calls.wait(store.keepRoom("#attic", "owner", "dusty", None))
    calls.wait(store.close())
    if backend.name == "sqlite":
        assert stat.S_IMODE(os.stat(backend.where).st_mode) == 0o600
    store = openStore(backend, calls)
    assert sorted(store.rooms()) == [("#Den", "owner", "new topic", 41),
                                     ("#attic", "owner", "dusty", None)]


def test_keptRoomIsItsFirstKeepersAlone(backend, calls):
    """
    Keeping a room stored with another owner (kept first through another
    daemon sharing the database) changes nothing, neither its owner nor its
    topic, and answers with the room as stored: the loser learns who owns
    it.
    """
    store = openStore(backend, calls)
    calls.wait(store.keepRoom("#olga2", "olga", "olga's", 41))
    assert calls.wait(store.keepRoom("#OLGA2", "mallory", "mine now", 99)) == (
        "#olga2", "olga", "olga's", 41)
    calls.wait(store.close())
    assert backend.query("SELECT name, owner_key, topic, first_id FROM rooms") == [
        ("#olga2", "olga", "olga's", 41)]


def test_roomBansStoredOnlyByTheStoredOwner(backend, calls):
    """
    A ban on a kept room is stored only when its owner set it: a daemon
    that thought someone else owned the room for a moment (they created it
    before it heard the room was kept elsewhere) stores nothing of theirs.
    Bans on the server and on rooms nobody keeps are stored as before.
    """
    store = openStore(backend, calls)
    calls.wait(store.keepRoom("#olga2", "olga", "", 41))
    calls.wait(store.addBan(Ban(NICK, "olga", "#OLGA2", None, "", "mallory", 1.0)))
    calls.wait(store.addBan(Ban(NICK, "bob", "#olga2", None, "", "mallory", 2.0)))
    byOwner = Ban(NICK, "bob", "#olga2", 500.0, "", "Olga", 3.0)
    elsewhere = Ban(NICK, "olga", "#free", None, "", "mallory", 4.0)
    server = Ban(ADDRESS, "10.0.0.0/8", "", None, "", "op", 5.0)
    for ban in (byOwner, elsewhere, server):
        calls.wait(store.addBan(ban))
    calls.wait(store.addBan(Ban(NICK, "bob", "#olga2", None, "", "mallory", 6.0)))
    calls.wait(store.close())
    assert openStore(backend, calls).bans() == [byOwner, elsewhere, server]


class StalledHasher:
    """
    A password hasher that blocks in every hash and check until let go.
    """

    def __init__(self):
        self.going = threading.Event()

    def hash(self, password):
        self.going.wait(10)
        return FAST.hash(password)

    def verify(self, hashed, password):
        self.going.wait(10)
        return FAST.verify(hashed, password)


def test_passwordJobsBeyondTheBoundAreBusy(backend, calls):
    """
    While hashing is stuck, at most C{maxHashing} password jobs wait; one
    more register, verify or changePassword fails at once with AccountsBusy
    (an AccountError, which the core shows as a refusal), and a refused
    register does not keep the nickname.  Ban writes are still taken.  Once
    hashing moves, the waiting jobs finish and new ones are taken again.
    """
    hasher = StalledHasher()
    hasher.going.set()
    store = backend.accounts(calls, hasher=hasher, maxHashing=2)
    hasher.going.clear()
    waiting = [store.register("alice", "a-password"), store.verify("alice", "a-password")]
    for refused in (store.register("bob", "b-password"), store.verify("alice", "x"),
                    store.changePassword("alice", "new-password")):
        with pytest.raises(AccountsBusy) as busy:
            calls.wait(refused)
        assert isinstance(busy.value, AccountError)
    assert str(busy.value) == "too many password checks are waiting; try again in a moment"
    assert not store.isRegistered("bob")
    ban = Ban(NICK, "troll", "", None, "", "op", 1.0)
    added = store.addBan(ban)
    hasher.going.set()
    assert calls.wait(waiting[0]) is None
    assert calls.wait(waiting[1]) is True
    calls.wait(added)
    calls.wait(store.register("bob", "b-password"))
    calls.wait(store.close())

"""
History kept by a real daemon (a C{twistd} subprocess) across stops and
crashes, the start refusing a database it cannot use, and the export tool.
"""

import signal
import sqlite3
import subprocess
import sys

import pytest

from chatd.storage import schema
from support import Daemon, startFailure


@pytest.fixture(autouse=True)
def daemons(monkeypatch):
    """
    Every daemon a test starts, killed at the end should the test fail
    before stopping it.
    """
    started = []
    original = Daemon.start

    def start(daemon, *args, **kwargs):
        started.append(daemon)
        return original(daemon, *args, **kwargs)

    monkeypatch.setattr(Daemon, "start", start)
    yield
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)


def start(tmp_path, *args):
    # These tests say thousands of lines at once to fill the history; flood
    # control has its own tests.
    flood = ("--flood-burst", "100000", "--flood-rate", "100000")
    return Daemon(*args, *flood, cwd=tmp_path).start()


def login(daemon, nick):
    client = daemon.client()
    client.login(nick)
    return client


def said(client, lines):
    """
    Send C{lines} to the current room and wait until the server has acted on
    them all.
    """
    client.sendBytes("".join(line + "\n" for line in lines).encode("utf-8"))
    client.sync()


def stamped(line):
    """
    A history line without its "~ " mark and time.
    """
    assert line.startswith("~ 20") and line[21:23] == "Z ", line
    return line[23:]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_restartKeepsHistory(tmp_path, stop):
    """
    Lines said just before the daemon is stopped (SIGTERM, or Ctrl-C's
    SIGINT) are all flushed: after a restart on the same database, joining
    replays the last 20 oldest first, /history shows all of them, /search
    finds an old line, and the lobby's topic is back.
    """
    db = f"sqlite:{tmp_path}/chat.sqlite3"
    daemon = start(tmp_path, "--db", db)
    alice = login(daemon, "alice")
    lines = [f"line {i}" for i in range(3000)]
    said(alice, ["the first words", "/me waves", "/topic cake"] + lines)
    daemon.stop(stop)
    alice.close()

    daemon = start(tmp_path, "--db", db)
    bob = login(daemon, "bob")
    replay = bob.sync()
    assert [stamped(l) for l in replay] == [f"#lobby <alice> {l}" for l in lines[-20:]]
    bob.send("/history 500")
    shown = bob.sync()
    assert shown[0] == "=== #lobby: the last 500 lines"
    assert [stamped(l) for l in shown[1:]] == [f"#lobby <alice> {l}" for l in lines[-500:]]
    bob.send("/search first words")
    assert [stamped(l) for l in bob.sync()[1:]] == ["#lobby <alice> the first words"]
    # The lobby's topic is what it was.
    bob.send("/topic")
    assert bob.sync() == ["=== #lobby topic: cake"]
    bob.close()
    daemon.stop()


def test_killedDaemonKeepsEverythingCommitted(tmp_path):
    """
    After kill -9, the database opens cleanly and holds every line up to the
    last commit.  The barrier is a /history: reads wait in the writer's queue
    behind the lines said before them, so its answer means they are
    committed.
    """
    path = tmp_path / "chat.sqlite3"
    daemon = start(tmp_path, "--db", f"sqlite:{path}")
    alice, bob = login(daemon, "alice"), login(daemon, "bob")
    lines = [f"message {i}" for i in range(5000)]
    alice.sendBytes("".join(line + "\n" for line in lines).encode())
    alice.send("/history 1")
    reply = alice.readUntil(lambda l: l.startswith("~ "))
    assert stamped(reply[-1]) == "#lobby <alice> message 4999"
    daemon.stop(signal.SIGKILL)
    alice.close()
    bob.close()

    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert connection.execute(
        "SELECT text FROM messages ORDER BY id").fetchall() == [(l,) for l in lines]
    connection.close()
    daemon = start(tmp_path, "--db", f"sqlite:{path}")
    carol = login(daemon, "carol")
    carol.sync()
    carol.send("/search 4999")
    assert [stamped(l) for l in carol.sync()[1:]] == ["#lobby <alice> message 4999"]
    carol.close()
    daemon.stop()


def test_defaultDatabaseInTheUsersDataFolder(tmp_path):
    """
    Without --db, history goes to $XDG_DATA_HOME/chatd/chatd.sqlite3,
    created with its folder on first start.
    """
    daemon = Daemon(cwd=tmp_path, dataHome=str(tmp_path / "data-home")).start()
    alice = login(daemon, "alice")
    said(alice, ["kept by default"])
    alice.close()
    daemon.stop()
    path = tmp_path / "data-home" / "chatd" / "chatd.sqlite3"
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT text FROM messages").fetchall() == [("kept by default",)]
    connection.close()


def test_noHistory(tmp_path):
    """
    With --db none nothing is written and /history says there is none.
    """
    daemon = start(tmp_path, "--db", "none")
    alice = login(daemon, "alice")
    said(alice, ["not kept"])
    alice.send("/history")
    assert alice.sync() == ["!!! this server keeps no history"]
    alice.close()
    daemon.stop()
    assert list(tmp_path.iterdir()) == []


def startError(tmp_path, db):
    status, output = startFailure("--db", db, cwd=tmp_path)
    assert status != 0
    assert "Traceback" not in output
    assert "listening" not in output
    errors = [line.split("[stderr#error] ", 1)[1] for line in output.splitlines()
              if "[stderr#error] " in line]
    assert len(errors) == 1, output
    return errors[0]


def test_newerSchemaStopsTheStart(tmp_path):
    """
    A database from a newer chatd stops the start: one clear line, a
    non-zero exit, and the file is left as it was.
    """
    path = tmp_path / "chat.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {schema.VERSION + 5}")
    connection.close()
    assert startError(tmp_path, f"sqlite:{path}") == (
        f"chatd: the history database {path} has schema version "
        f"{schema.VERSION + 5}, written by a newer chatd; this one knows versions "
        f"up to {schema.VERSION}")


def test_unusablePathStopsTheStart(tmp_path):
    """
    A database path that cannot be created stops the start with one line.
    """
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "chat.sqlite3"
    assert startError(tmp_path, f"sqlite:{path}") == (
        f"chatd: cannot create the history database {path}: "
        f"{tmp_path / 'file'} is not a folder")


def test_corruptDatabaseStopsTheStart(tmp_path):
    """
    A file that is not a database stops the start with one line.
    """
    path = tmp_path / "chat.sqlite3"
    path.write_bytes(b"garbage, not SQLite " * 500)
    assert startError(tmp_path, f"sqlite:{path}") == (
        f"chatd: cannot use the history database {path}: file is not a database")


def test_exportReproducesTheRoom(tmp_path):
    """
    chatd-export writes a room's lines oldest first, as text or JSON lines,
    while the daemon still runs.
    """
    path = tmp_path / "chat.sqlite3"
    daemon = start(tmp_path, "--db", f"sqlite:{path}")
    alice = login(daemon, "alice")
    said(alice, ["/join #Dev", "héllo", "/me waves", "/topic plans", "/join #lobby",
                 "not in dev"])
    alice.send("/history 1")
    alice.sync()

    def export(*args):
        done = subprocess.run([sys.executable, "-m", "chatd.export", "--db",
                               f"sqlite:{path}", *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    text = export("dev")
    assert [line[21:] for line in text] == [
        "#Dev <alice> héllo", "* #Dev alice waves", "-- #Dev alice set the topic: plans"]
    jsonl = export("--format", "jsonl", "#dev")
    assert [line.split('"room"')[1] for line in jsonl] == [
        ': "#Dev", "kind": "said", "nick": "alice", "text": "héllo"}',
        ': "#Dev", "kind": "acted", "nick": "alice", "text": "waves"}',
        ': "#Dev", "kind": "topic", "nick": "alice", "text": "plans"}',
    ]
    alice.close()
    daemon.stop()


def test_joinDuringATorrentSeesEachLineOnce(tmp_path):
    """
    Someone who joins a room while it is flooded sees its recent lines as
    history and the rest live, each line exactly once and in order (the
    replay ends where the live lines begin), and is not dropped for the live
    lines that waited for the replay.
    """
    daemon = start(tmp_path, "--db", f"sqlite:{tmp_path}/chat.sqlite3")
    alice, bob = login(daemon, "alice"), login(daemon, "bob")
    alice.send("/join #flood")
    alice.sync()
    count = 20000
    alice.sendBytes("".join(f"n {i}\n" for i in range(count)).encode())
    bob.send("/join #flood")
    bob.readUntil(lambda l: l.startswith("=== #flood members"))
    lines = bob.readUntil(lambda l: l.endswith(f" n {count - 1}"))
    replayed = len([l for l in lines if l.startswith("~ ")])
    assert replayed <= 20
    shown = [stamped(l) for l in lines[:replayed]] + lines[replayed:]
    assert shown == [f"#flood <alice> n {i}" for i in range(count - len(shown), count)]
    alice.close()
    bob.close()
    daemon.stop()

"""
chatd-export as a command: what its exit status says, and its version.
"""

import subprocess
import sys

from chatd import __version__
from chatd.core.names import roomKey
from chatd.storage import schema


def _export(*args):
    return subprocess.run([sys.executable, "-m", "chatd.export", *args],
                          capture_output=True, text=True, timeout=30)


def _database(tmp_path):
    """
    A history database holding one line said in #dev.
    """
    path = tmp_path / "chat.sqlite3"
    connection = schema.connect(str(path))
    with schema.transaction(connection):
        connection.execute(
            "INSERT INTO messages (id, time, room_key, room, kind, nick, text) "
            "VALUES (1, 1764633600.0, ?, '#dev', 'said', 'alice', 'hello')", (roomKey("#dev"),))
    connection.close()
    return path


def test_noHistoryIsStatusOne(tmp_path):
    """
    A room with no history (a misspelt one) writes nothing, says so and
    exits with status 1, so that a script does not take the empty output for
    a backup; a room with history exits with 0.
    """
    path = _database(tmp_path)
    done = _export("--db", f"sqlite:{path}", "#nosuch")
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "chatd-export: no history for #nosuch\n")
    done = _export("--db", f"sqlite:{path}", "#dev")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "2025-12-02T00:00:00Z #dev <alice> hello\n", "")


def test_unreadableDatabaseIsStatusOne(tmp_path):
    """
    A database that cannot be read is one line and status 1.
    """
    done = _export("--db", f"sqlite:{tmp_path / 'missing' / 'chat.sqlite3'}", "#dev")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("chatd-export: ") and len(done.stderr.splitlines()) == 1


def test_usageErrorIsStatusTwo(tmp_path):
    """
    A usage error (no room, an unknown format) is status 2, with the usage.
    """
    for args in [(), ("--format", "xml", "#dev")]:
        done = _export(*args)
        assert done.returncode == 2
        assert done.stderr.startswith("chatd-export: ")
        assert "Usage: chatd-export [options] #ROOM" in done.stderr


def test_databaseItCannotRead():
    """
    A PostgreSQL database is pointed to psql's \\copy (it was refused as
    "expected sqlite:PATH or none", and none then as needing a database).
    """
    done = _export("--db", "postgresql://chatd@localhost/chatd", "#dev")
    assert done.returncode == 2
    assert done.stderr.startswith(
        'chatd-export: --db: only SQLite files are read; from PostgreSQL, psql -c "\\copy ')
    done = _export("--db", "none", "#dev")
    assert done.returncode == 2
    assert done.stderr.startswith("chatd-export: --db: a database to read is needed (sqlite:PATH)")


def test_version():
    """
    --version names chatd-export and chatd's version, not Twisted's.
    """
    done = _export("--version")
    assert (done.returncode, done.stdout) == (0, f"chatd-export (chatd) {__version__}\n")

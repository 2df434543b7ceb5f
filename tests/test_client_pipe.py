"""
chat-client in pipe mode, end to end against a real daemon in a subprocess:
scripts send lines, read what comes back, and know whether it was delivered.
"""

import os
import socket
import sys

import pytest

from clientsupport import TWISTD, ClientProcess, runClient, startDaemon
from support import LineClient


@pytest.fixture
def daemon(tmp_path):
    d = startDaemon(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def watcher(daemon):
    """
    A user in #lobby and #ops, to see what the client's lines do.
    """
    client = LineClient(daemon.port)
    client.login("watcher")
    client.send("/join #ops")
    client.readUntil(lambda l: l.startswith("=== #ops members"))
    yield client
    client.close()


def _text(completed):
    return (completed.stdout.decode("utf-8").splitlines(),
            completed.stderr.decode("utf-8").splitlines())


def test_scriptLinesAreDelivered(tmp_path, daemon, watcher):
    """
    printf '/join #ops\\nhello\\n' | chat-client --nick bot: the lines reach
    the room before the client exits with status 0, and stdout holds every
    line the server sent, plain, ending with the server's goodbye.
    """
    done = runClient(tmp_path, daemon.port, "bot", "/join #ops\nhello\nnon-ASCII: é € 漢字\n")
    out, err = _text(done)
    assert done.returncode == 0, err
    assert out[0].startswith("-!- Welcome to chatd")
    assert out[1].startswith("??? Choose a nickname")
    assert out[2:] == [
        "=== you are now bot",
        "=== joined #lobby",
        "=== #lobby members (2): bot watcher",
        "=== joined #ops",
        "=== #ops members (2): bot watcher",
        "=== bye",
    ]
    assert err == [f"chat-client: connected to 127.0.0.1:{daemon.port}"]
    assert watcher.sync() == [
        "-- #lobby bot has joined",
        "-- #ops bot has joined",
        "#ops <bot> hello",
        "#ops <bot> non-ASCII: é € 漢字",
        "-- #lobby bot has quit",
        "-- #ops bot has quit",
    ]


def test_receivedLinesPrinted(tmp_path, daemon, watcher):
    """
    Lines for the client while its script runs are printed as they came.
    """
    bot = ClientProcess(tmp_path, daemon.port, "bot")
    try:
        bot.out.readUntil(lambda l: l.startswith("=== #lobby members"))
        watcher.send("/msg bot psst")
        watcher.send("/join #lobby")
        watcher.send("hi bot")
        watcher.sync()
        assert bot.out.readUntil(lambda l: "hi bot" in l) == [
            "*watcher* psst", "#lobby <watcher> hi bot"]
        assert bot.close() == 0
    finally:
        bot.kill()


def test_takenNickname(tmp_path, daemon, watcher):
    """
    When the nickname is taken the client picks nick_ and says so on stderr.
    """
    done = runClient(tmp_path, daemon.port, "watcher", "hello\n")
    out, err = _text(done)
    assert done.returncode == 0
    assert "!!! the nickname watcher is taken" in out
    assert "=== you are now watcher_" in out
    assert "chat-client: nickname watcher refused; trying watcher_" in err


def test_pythonDashM(tmp_path, daemon, watcher):
    """
    python -m chatd.client is the same command.
    """
    done = runClient(tmp_path, daemon.port, "bot", "hello\n",
                     command=(sys.executable, "-m", "chatd.client"))
    assert done.returncode == 0
    assert watcher.sync()[:2] == ["-- #lobby bot has joined", "#lobby <bot> hello"]


def test_unreachable(tmp_path):
    """
    A server that cannot be reached: a clear message and status 1, at once.
    """
    with socket.socket() as reserved:
        # Bound but not listening: connections to it are refused.
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        done = runClient(tmp_path, port, "bot", "hello\n")
    out, err = _text(done)
    assert done.returncode == 1
    assert out == []
    assert err == [f"chat-client: cannot reach 127.0.0.1:{port}: Connection refused"]


def test_underTwistd(tmp_path, daemon, watcher):
    """
    twistd -n chat-client works the same, and twistd's own log goes to the
    client's log file, not to stdout.
    """
    done = runClient(tmp_path, daemon.port, "bot", "hello\n",
                     command=(TWISTD, "-n", "--pidfile=", "chat-client"))
    out, err = _text(done)
    assert done.returncode == 0, err
    assert out[2:] == ["=== you are now bot", "=== joined #lobby",
                       "=== #lobby members (2): bot watcher", "=== bye"]
    assert watcher.sync()[:2] == ["-- #lobby bot has joined", "#lobby <bot> hello"]
    with open(os.path.join(tmp_path, "client-bot.log")) as log:
        assert "twistd" in log.read()


def test_reconnectsAfterRestart(tmp_path):
    """
    When the daemon restarts (on the same port), the client says so, comes
    back by itself with its nickname and rooms, and its lines flow again.
    """
    first = startDaemon(tmp_path)
    port = first.port
    bot = ClientProcess(tmp_path, port, "bot")
    try:
        bot.send("/join #ops")
        bot.out.readUntil(lambda l: l == "=== #ops members (1): bot")
        first.stop()
        second = startDaemon(tmp_path, port)
        try:
            bot.out.readUntil(lambda l: l == "-!- The server is going down. Goodbye.")
            after = bot.out.readUntil(lambda l: l.startswith("=== #ops members"))
            assert after[2:] == [
                "=== you are now bot", "=== joined #lobby", "=== #lobby members (1): bot",
                "=== now talking in #lobby",
                "=== joined #ops", "=== #ops members (1): bot"]
            watcher = LineClient(port)
            watcher.login("watcher")
            watcher.send("/join #ops")
            watcher.readUntil(lambda l: l.startswith("=== #ops members"))
            bot.send("back again")
            assert watcher.readLine() == "#ops <bot> back again"
            assert bot.close() == 0
            notes = bot.err.rest()
            # Retries may be refused while the new daemon starts: those notes
            # vary, the rest does not.
            retries = [n for n in notes if "trying again" in n or "cannot reach" in n]
            assert [n for n in notes if n not in retries] == [
                f"chat-client: connected to 127.0.0.1:{port}",
                f"chat-client: connection to 127.0.0.1:{port} lost (closed by the server)",
                f"chat-client: connected to 127.0.0.1:{port}",
            ]
            assert retries[0].startswith("chat-client: trying again in ")
            watcher.close()
        finally:
            second.stop()
    finally:
        bot.kill()

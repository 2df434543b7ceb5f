"""
chat-client in pipe mode, end to end against a real daemon in a subprocess:
scripts send lines, read what comes back, and know whether it was delivered.
"""

import os
import socket
import subprocess
import sys
import threading

import pytest

from clientsupport import CHAT_CLIENT, TIMEOUT, TWISTD, ClientProcess, runClient, startDaemon
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


def test_scriptEndingWithQuit(tmp_path, daemon, watcher):
    """
    A script whose last line is C{/quit WORDS}: its lines are said, then it
    quits with those words and exits 0; the end of its input that follows
    at once is no second quit (which gave up with status 1, silently), and
    a line after the /quit is not sent, saying so.
    """
    done = runClient(tmp_path, daemon.port, "bot", "hello three\n/quit see you\nlate\n")
    out, err = _text(done)
    assert done.returncode == 0, err
    assert out[-1] == "=== bye"
    assert err == ["chat-client: not sent, after /quit: late",
                   f"chat-client: connected to 127.0.0.1:{daemon.port}"]
    assert watcher.sync() == [
        "-- #lobby bot has joined",
        "#lobby <bot> hello three",
        "-- #lobby bot has quit (Quit: see you)",
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
    assert "chat-client: the nickname watcher is taken; trying watcher_" in err


def test_pythonDashM(tmp_path, daemon, watcher):
    """
    python -m chatd.client is the same command.
    """
    done = runClient(tmp_path, daemon.port, "bot", "hello\n",
                     command=(sys.executable, "-m", "chatd.client"))
    assert done.returncode == 0
    assert watcher.sync()[:2] == ["-- #lobby bot has joined", "#lobby <bot> hello"]


def _closedPort():
    """
    A port on 127.0.0.1 that refuses connections: bound, not listening (keep
    the socket open while using it).
    """
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    return reserved, reserved.getsockname()[1]


@pytest.mark.parametrize("stdin", [None, "hello\n", "", "hello\n/quit bye\n"],
                         ids=["devnull", "lines", "empty", "quit"])
def test_unreachable(tmp_path, stdin):
    """
    A server that cannot be reached: one clear line and status 1, at once,
    whatever the input: lines, none at all (a pipe closed at once), or
    /dev/null (the issue: it exited 0 silently).
    """
    reserved, port = _closedPort()
    with reserved:
        done = runClient(tmp_path, port, "bot", stdin)
    out, err = _text(done)
    assert done.returncode == 1
    assert out == []
    assert err == [f"chat-client: cannot reach 127.0.0.1:{port}: Connection refused"]


def test_unreachableWithInputStillOpen(tmp_path):
    """
    Nor does a script whose input has not ended (tail -f | chat-client) wait
    for it: an unreachable server is status 1 at once.
    """
    reserved, port = _closedPort()
    with reserved:
        client = subprocess.Popen(
            [CHAT_CLIENT, "--nick", "bot", "--log", str(tmp_path / "bot.log"),
             "127.0.0.1", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert client.wait(TIMEOUT) == 1
            assert client.stderr.read().decode() == (
                f"chat-client: cannot reach 127.0.0.1:{port}: Connection refused\n")
        finally:
            client.kill()
            client.wait()
            for stream in (client.stdin, client.stdout, client.stderr):
                stream.close()


def test_eightyLinesDeliveredInOrder(tmp_path):
    """
    Every line of an 80-line input reaches another member of the room, each
    exactly once and in order, before the client exits with status 0; the
    client's own pings never show on its stdout.  The server slows the
    client down: the default burst of 20 lines, then 50 a second (the
    default 5 a second would only make the same pacing last 12 s).
    """
    daemon = startDaemon(tmp_path, options=("--flood-rate", "50"))
    watcher = LineClient(daemon.port)
    try:
        watcher.login("watcher")
        watcher.send("/join #dev")
        watcher.readUntil(lambda l: l.startswith("=== #dev members"))
        lines = [f"line {n} of 80" for n in range(1, 81)]
        done = runClient(tmp_path, daemon.port, "bot", "/join #dev\n" + "\n".join(lines) + "\n",
                         timeout=120)
        out, err = _text(done)
        assert done.returncode == 0, err
        assert err == [f"chat-client: connected to 127.0.0.1:{daemon.port}"]
        # Told once per flood that it is being slowed down.
        slowed = "-!- you are sending fast; your lines are being delayed"
        assert slowed in out
        assert [line for line in out[2:] if line != slowed] == [
            "=== you are now bot", "=== joined #lobby", "=== #lobby members (2): bot watcher",
            "=== joined #dev", "=== #dev members (2): bot watcher", "=== bye"]
        assert not [line for line in out if "pong" in line or line.startswith("!!!")]
        heard = watcher.readUntil(lambda l: l == "-- #dev bot has quit")
        assert [l for l in heard if l.startswith("#dev <bot> ")] == [
            "#dev <bot> " + line for line in lines]
    finally:
        watcher.close()
        daemon.stop()


class SilentServer:
    """
    Not chatd: a server that logs the client in, then takes its lines
    without ever answering them, and closes the connection after C{after}
    of them.
    """

    def __init__(self, after):
        self.after = after
        self.received = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1)
        self._socket.settimeout(TIMEOUT)
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self._socket.accept()
        with connection:
            connection.settimeout(TIMEOUT)
            connection.sendall(b"??? Choose a nickname:\r\n")
            data = b""
            while b"\n" not in data:
                data += connection.recv(4096)
            connection.sendall(b"=== you are now bot\r\n")
            lines = data.split(b"\n")[1:]
            while len([l for l in lines if not l.startswith(b"/ping")]) < self.after:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                data += chunk
                lines = data.split(b"\n")[1:]
            self.received = [l.decode() for l in lines]

    def close(self):
        self._socket.close()


def test_lostWithLinesUnconfirmed(tmp_path):
    """
    A connection lost while lines wait for the server's confirmation ends a
    script with status 1 and one line saying how many were not confirmed;
    the client neither waits on nor reconnects.
    """
    server = SilentServer(after=3)
    try:
        done = runClient(tmp_path, server.port, "bot", "one\ntwo\nthree\n")
    finally:
        server.close()
    out, err = _text(done)
    assert done.returncode == 1
    assert [l for l in server.received if l and not l.startswith("/ping")] == [
        "one", "two", "three"]
    assert err == [
        f"chat-client: connected to 127.0.0.1:{server.port}",
        f"chat-client: connection to 127.0.0.1:{server.port} lost (closed by the server) "
        "before the server confirmed 3 lines"]


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

"""
chat-client in terminal mode, on a real terminal: tmux runs it, types into it
(send-keys) and reads the screen (capture-pane), while a plain socket client
talks to it through a real daemon.
"""

import os
import subprocess
import time

import pytest

from clientsupport import CHAT_CLIENT, startDaemon
from support import LineClient, requireTool
from chatd.client.terminal import textWidth



@pytest.fixture(autouse=True)
def tmuxInstalled():
    # Skipped without tmux, unless CHATD_REQUIRE_TOOLS demands it.
    requireTool("tmux")

WAIT = 15


class Tmux:
    """
    A tmux server of our own (its own socket, so no one else's is touched)
    with one 120x30 window.
    """

    def __init__(self, folder, command):
        self.socket = f"chatd-test-{os.getpid()}-{id(self)}"
        self._tmux("new-session", "-d", "-x", "120", "-y", "30", "-c", str(folder),
                   "env", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "sh", "-c", command)

    def _tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, timeout=WAIT).stdout.decode("utf-8")

    def type(self, text):
        self._tmux("send-keys", "-l", text)

    def keys(self, *keys):
        self._tmux("send-keys", *keys)

    def rows(self, scrolled=False):
        """
        The screen (with C{scrolled}, and the rows scrolled off it), trailing
        blank rows left off.
        """
        rows = self._tmux("capture-pane", "-p", *(["-S", "-"] if scrolled else [])).split("\n")
        while rows and not rows[-1].strip():
            rows.pop()
        return rows

    def cursor(self):
        x, y = self._tmux("display-message", "-p", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def waitFor(self, predicate):
        """
        Poll the screen until C{predicate(rows)} holds: a terminal has no
        barrier to wait on.
        """
        deadline = time.monotonic() + WAIT
        while True:
            rows = self.rows()
            if predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError("screen never matched:\n" + "\n".join(rows))
            time.sleep(0.05)

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def daemon(tmp_path):
    d = startDaemon(tmp_path)
    yield d
    d.stop()


def test_typedLineSurvivesAndArrivesIntact(tmp_path, daemon):
    """
    A half-typed line with é ü € 漢字 stays whole, cursor in place, while
    several messages arrive above it; sent, it reaches another user intact;
    Ctrl-C then leaves with status 0, the terminal settings as they were and
    no traceback.
    """
    log = tmp_path / "alice.log"
    # (The terminal state is saved before EXIT shows, which the test waits for.)
    tmux = Tmux(tmp_path, f"stty -g > before; {CHAT_CLIENT} --nick alice --log {log} "
                          f"127.0.0.1 {daemon.port}; status=$?; stty -g > after; "
                          "echo EXIT=$status; sleep 60")
    bob = LineClient(daemon.port)
    try:
        tmux.waitFor(lambda rows: rows[-1:] == ["[alice #lobby]"])
        bob.login("bob")
        typed = "half typed é ü € 漢字"
        tmux.type(typed)
        prompt = "[alice #lobby] "
        tmux.waitFor(lambda rows: rows[-1] == prompt + typed)
        tmux.keys("Left", "Left")
        for text in ["one", "two", "three"]:
            bob.send(text)
        bob.send("/me waves")
        rows = tmux.waitFor(lambda rows: rows[-2:-1] == ["* #lobby bob waves"])
        assert rows[-6:] == [
            "-- #lobby bob has joined",
            "#lobby <bob> one",
            "#lobby <bob> two",
            "#lobby <bob> three",
            "* #lobby bob waves",
            prompt + typed,
        ]
        assert tmux.cursor() == (textWidth(prompt + typed) - 4, len(rows) - 1)
        tmux.keys("End", "Enter")
        assert bob.readLine() == "#lobby <alice> " + typed
        tmux.waitFor(lambda rows: rows[-2:] == ["#lobby <alice> " + typed, "[alice #lobby]"])
        tmux.keys("C-c")
        tmux.waitFor(lambda rows: "EXIT=0" in rows)
        assert bob.readLine() == "-- #lobby alice has quit"
        assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()
        assert "Traceback" not in log.read_text()
    finally:
        bob.close()
        tmux.close()


def test_historyAndReconnect(tmp_path):
    """
    On a terminal: Up brings back the line sent before; when the daemon
    restarts the client says so and comes back by itself, back in its room.
    """
    first = startDaemon(tmp_path)
    port = first.port
    tmux = Tmux(tmp_path, f"{CHAT_CLIENT} --nick alice --log {tmp_path / 'a.log'} "
                          f"127.0.0.1 {port}; sleep 60")
    second = None
    try:
        tmux.waitFor(lambda rows: rows[-1:] == ["[alice #lobby]"])
        tmux.type("/join #ops")
        tmux.keys("Enter")
        tmux.waitFor(lambda rows: rows[-1:] == ["[alice #ops]"])
        first.stop()
        tmux.waitFor(lambda rows: rows[-1:] == ["[offline]"])
        second = startDaemon(tmp_path, port)
        rows = tmux.waitFor(lambda rows: rows[-1:] == ["[alice #ops]"]
                            and rows[-2].startswith("=== #ops members"))
        assert "[chat-client] connection to 127.0.0.1:%d lost (closed by the server)" % port \
            in rows
        tmux.keys("Up")
        tmux.waitFor(lambda rows: rows[-1:] == ["[alice #ops] /join #ops"])
    finally:
        tmux.close()
        first.stop()
        if second is not None:
            second.stop()


def test_refusedLineShownAsRefused(tmp_path, daemon):
    """
    On a terminal a line the server refuses (a message to nobody, a line
    over the server's 2048 bytes) is shown as refused, after the server's
    error, and never as said; a line taken is shown as said, once.
    """
    tmux = Tmux(tmp_path, f"{CHAT_CLIENT} --nick alice --log {tmp_path / 'a.log'} "
                          f"127.0.0.1 {daemon.port}; sleep 60")
    bob = LineClient(daemon.port)
    try:
        tmux.waitFor(lambda rows: rows[-1:] == ["[alice #lobby]"])
        bob.login("bob")
        tmux.type("/msg nobody psst")
        tmux.keys("Enter")
        long = "y" * 2100
        tmux.type(long)
        tmux.keys("Enter")
        tmux.type("taken")
        tmux.keys("Enter")
        rows = tmux.waitFor(lambda rows: rows[-2:-1] == ["#lobby <alice> taken"])
        assert bob.readLine() == "#lobby <alice> taken"
        assert "!!! no such user: nobody" in rows
        assert "[chat-client] refused by the server, not said: /msg nobody psst" in rows
        assert rows.index("!!! no such user: nobody") < rows.index(
            "[chat-client] refused by the server, not said: /msg nobody psst")
        assert any(row.startswith("!!! line too long") for row in rows)
        # The refused long line is named (wrapped over several rows), never said.
        assert any(row.startswith("[chat-client] refused by the server, not said: yyy")
                   for row in rows)
        assert not [row for row in rows if "*nobody*" in row or row.startswith("#lobby <alice> y")]
        assert rows.count("#lobby <alice> taken") == 1
    finally:
        bob.close()
        tmux.close()


def test_untrustedCertificateOnATerminal(tmp_path):
    """
    On a terminal too, a certificate that fails verification is said once,
    in one clear line, and the client ends with status 1 instead of trying
    again every few seconds.
    """
    from clientsupport import selfSignedCertificate

    cert, key = selfSignedCertificate(tmp_path)
    daemon = startDaemon(tmp_path, listen="ssl:{port}:interface=127.0.0.1:"
                                          f"privateKey={key}:certKey={cert}")
    tmux = Tmux(tmp_path, f"{CHAT_CLIENT} --tls --nick alice --log {tmp_path / 'a.log'} "
                          f"localhost {daemon.port}; echo EXIT=$?; sleep 60")
    try:
        rows = tmux.waitFor(lambda rows: "EXIT=1" in rows)
        # The note is wider than the 120 columns: it wraps.
        screen = "".join(rows[:rows.index("EXIT=1")])
        assert screen == ("[chat-client] the server's certificate is not trusted: no "
                          "certificate authority this client trusts signed it (certificate "
                          "verify failed); connect with --tls HOST PORT --ca FILE to trust the "
                          "server's certificate or the CA that signed it")
    finally:
        tmux.close()
        daemon.stop()


def test_pasteShownAsSaidAsTheServerTakesIt(tmp_path):
    """
    The issue's paste: 30 lines pasted at once, each followed by its ping,
    on the default burst of 20 and then 50 lines a second (the server slows
    a fast sender down; the default 5 a second would only make it last 8 s).
    Each line shows as said once, in order, as the server takes it, and
    reaches the others whole.
    """
    daemon = startDaemon(tmp_path, options=("--flood-rate", "50"))
    tmux = Tmux(tmp_path, f"{CHAT_CLIENT} --nick dave --log {tmp_path / 'd.log'} "
                          f"127.0.0.1 {daemon.port}; sleep 60")
    bob = LineClient(daemon.port, timeout=WAIT * 4)
    try:
        tmux.waitFor(lambda rows: rows[-1:] == ["[dave #lobby]"])
        bob.login("bob")
        tmux.waitFor(lambda rows: "-- #lobby bob has joined" in rows)
        lines = [f"pasted {n}" for n in range(1, 31)]
        (tmp_path / "paste.txt").write_text("\n".join(lines) + "\n")
        tmux._tmux("load-buffer", str(tmp_path / "paste.txt"))
        tmux._tmux("paste-buffer")
        heard = bob.readUntil(lambda l: l == "#lobby <dave> pasted 30")
        assert [l for l in heard if l.startswith("#lobby <dave> ")] == [
            "#lobby <dave> " + line for line in lines]
        tmux.waitFor(lambda rows: rows[-2:] == ["#lobby <dave> pasted 30", "[dave #lobby]"])
        rows = tmux.rows(scrolled=True)
        assert [row for row in rows if row.startswith("#lobby <dave> ")] == [
            "#lobby <dave> " + line for line in lines]
        assert not [row for row in rows if row.startswith(("!!!", "[chat-client] refused"))]
        # Paced, as on the default rate: the scenario is still a flood.
        assert "-!- you are sending fast; your lines are being delayed" in rows, rows
    finally:
        bob.close()
        tmux.close()
        daemon.stop()

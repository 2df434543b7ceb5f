"""
End to end with the programs people really use: C{nc} and C{telnet}
against C{twistd -n chat}, next to a raw socket.
"""

import queue
import subprocess
import threading

import pytest

from support import Daemon, requireTool, settle


class Terminal:
    """
    A program (nc, telnet) whose stdin we type into and whose stdout we read
    line by line, with a timeout on every read.
    """

    def __init__(self, *command):
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8").rstrip("\r\n"))
        self.lines.put(None)

    def type(self, text):
        self.process.stdin.write(text.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def typeBytes(self, data):
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def readUntil(self, predicate, timeout=10):
        seen = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise EOFError(f"closed after {seen}")
            seen.append(line)
            if predicate(line):
                return seen

    def sync(self):
        """
        Lines up to the reply to a barrier command (see LineClient.sync).
        """
        self.type("/ping sync")
        return self.readUntil(lambda l: l == "=== pong sync")[:-1]

    def close(self):
        self.process.kill()
        self.process.wait(10)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon().start()
    yield d
    d.stop()


def login(term, nick):
    term.readUntil(lambda l: l.startswith("??? "))
    term.type(nick)
    term.readUntil(lambda l: l.startswith("=== #lobby members"))


def test_ncTelnetAndSocketChat(daemon):
    """
    Three people, on nc, telnet and a raw socket, chat across two rooms and
    exchange private messages; each line reaches exactly the people it should.
    """
    requireTool("nc")
    requireTool("telnet")
    nc = Terminal("nc", "127.0.0.1", str(daemon.port))
    telnet = Terminal("telnet", "127.0.0.1", str(daemon.port))
    raw = daemon.client()
    try:
        login(nc, "nc_user")
        login(telnet, "telnet_user")
        raw.login("raw_user")
        for t in (nc, telnet):
            t.type("/join #ops")
            t.readUntil(lambda l: l.startswith("=== #ops members"))
        nc.sync(), telnet.sync(), raw.sync()

        nc.type("hello from nc in ops")
        telnet.type("/me waves from telnet")
        raw.send("/msg nc_user hi from a socket")
        telnet.type("/join #lobby")
        telnet.type("back in the lobby")
        ncGot, telnetGot, rawGot = settle(nc, telnet, raw)

        # Lines from different senders may interleave; each sender's stay in
        # order.
        fromTelnet = ["* #ops telnet_user waves from telnet",
                      "#lobby <telnet_user> back in the lobby"]
        assert sorted(ncGot) == sorted(fromTelnet + ["*raw_user* hi from a socket"])
        assert [l for l in ncGot if "telnet_user" in l] == fromTelnet
        assert sorted(telnetGot) == ["#ops <nc_user> hello from nc in ops",
                                     "=== now talking in #lobby"]
        # (raw_user's own confirmation and telnet_user's line come from two
        # senders at once: either may come first.)
        assert sorted(rawGot) == sorted(["=== to nc_user: hi from a socket",
                                         "#lobby <telnet_user> back in the lobby"])
    finally:
        nc.close(), telnet.close(), raw.close()


def test_ncEscapeSequencesNeverReachOthers(daemon):
    """
    Escape sequences and control bytes typed through nc arrive at a telnet
    user stripped; the text around them arrives intact.
    """
    requireTool("nc")
    requireTool("telnet")
    nc = Terminal("nc", "127.0.0.1", str(daemon.port))
    telnet = Terminal("telnet", "127.0.0.1", str(daemon.port))
    try:
        login(nc, "nc_evil")
        login(telnet, "telnet_victim")
        nc.sync(), telnet.sync()
        nc.typeBytes(b"\x1b[2J\x1b[1;1Hclear\x1b[31m red \x07bell\x1b]0;title\x07 end\n")
        assert settle(nc, telnet)[1] == ["#lobby <nc_evil> clear red bell end"]
    finally:
        nc.close(), telnet.close()


def test_telnetCrLfAndUtf8(daemon):
    """
    telnet sends CRLF; the text, non-ASCII included, arrives without the CR.
    """
    requireTool("telnet")
    requireTool("nc")
    telnet = Terminal("telnet", "127.0.0.1", str(daemon.port))
    nc = Terminal("nc", "127.0.0.1", str(daemon.port))
    try:
        login(telnet, "t_utf")
        login(nc, "n_utf")
        telnet.sync(), nc.sync()
        telnet.typeBytes("grüße, €5, 漢字\r\n".encode())
        assert settle(telnet, nc)[1] == ["#lobby <t_utf> grüße, €5, 漢字"]
    finally:
        telnet.close(), nc.close()


@pytest.mark.slow
def test_pasteOfEightyLinesArrivesWhole():
    """
    Eighty lines pasted at once into nc, on the default burst of 20 and
    then 50 a second (the default 5 a second would only make the same
    pacing last 12 s): none is refused; every other member gets each of them
    once, in order; the sender is told once that it is being slowed, and
    what it sends after the paste is answered after it.
    """
    requireTool("nc")
    daemon = Daemon("--flood-rate", "50").start()
    nc = Terminal("nc", "127.0.0.1", str(daemon.port))
    others = [daemon.client(), daemon.client()]
    try:
        login(nc, "paster")
        for nick, other in zip(("reader_1", "reader_2"), others):
            other.login(nick)
        for other in others:
            other.sync()
        nc.sync()
        paste = [f"pasted line {i:02d} of 80" for i in range(80)]
        nc.typeBytes("".join(line + "\n" for line in paste).encode())
        nc.type("/ping after the paste")
        # 60 lines past the burst at 50 a second: 1.2 s.
        told = nc.readUntil(lambda l: l == "=== pong after the paste", timeout=60)
        assert told == ["-!- you are sending fast; your lines are being delayed",
                        "=== pong after the paste"]
        for other in others:
            got = other.readUntil(lambda l: l.endswith("pasted line 79 of 80"))
            assert got == [f"#lobby <paster> {line}" for line in paste]
            assert other.sync() == []
    finally:
        nc.close()
        for other in others:
            other.close()
        daemon.stop()


def test_ncEndingItsInputStillGetsEveryAnswer(tmp_path):
    """
    A script that pipes lines into nc -N (which half-closes the connection
    at the end of its input) gets every answer before the connection
    closes: the join's replay and /history from the store, and the pong of
    its last line; then the daemon closes, and nc exits.
    """
    requireTool("nc")
    d = Daemon("--db", f"sqlite:{tmp_path / 'chat.sqlite3'}").start()
    try:
        talker = d.client()
        talker.login("talker")
        talker.send("something to remember")
        talker.sync()
        done = subprocess.run(
            ["nc", "-N", "127.0.0.1", str(d.port)], input=b"reader\n/history 5\n/ping done\n",
            capture_output=True, timeout=20)
        lines = done.stdout.decode().splitlines()
        assert lines[-1] == "=== pong done"
        remembered = [l for l in lines if l.endswith("#lobby <talker> something to remember")]
        assert len(remembered) == 2  # the replay, and /history
        assert "=== #lobby: the last 1 line" in lines
        talker.close()
    finally:
        d.stop()

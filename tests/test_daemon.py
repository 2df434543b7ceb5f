"""
The daemon as users run it: C{twistd -n chat} in a subprocess, several
clients on real loopback sockets.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import Daemon, LineClient, settle, twistdPath

ROOT = Path(__file__).resolve().parent.parent
# The login line as twistd's default text observer writes it: local time,
# RFC 3339, the logger's namespace and level.
LOGIN_LINE = (r"(?m)^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{{4}} "
              r"\[chatd\.core\.chat\.ChatCore#info\] {nick} logged in from 127\.0\.0\.1$")


@pytest.fixture(scope="module")
def daemon():
    # These tests send dozens of lines at once to check delivery; flood
    # control has its own tests.
    d = Daemon("--flood-burst", "1000").start()
    yield d
    d.stop()


def test_threeClientsTwoRoomsExactDelivery(daemon):
    """
    Over real sockets, every other member of a room gets each message exactly
    once and in order, other rooms get nothing, and a private message reaches
    only its target.
    """
    alice, bob, carol = daemon.client(), daemon.client(), daemon.client()
    alice.login("d_alice")
    bob.login("d_bob")
    carol.login("d_carol")
    for c in (alice, bob):
        c.send("/join #d_dev")
        c.readUntil(lambda l: l.startswith("=== #d_dev members"))
    alice.sync(), bob.sync(), carol.sync()
    for i in range(50):
        alice.send(f"dev {i}")
        bob.send(f"bob dev {i}")
    carol.send("lobby only")
    alice.send("/msg d_carol secret")
    got = dict(zip((alice, bob, carol), settle(alice, bob, carol)))
    dev = lambda lines: [l for l in lines if l.startswith("#d_dev ")]
    assert dev(got[bob]) == [f"#d_dev <d_alice> dev {i}" for i in range(50)]
    assert dev(got[alice]) == [f"#d_dev <d_bob> bob dev {i}" for i in range(50)]
    assert [l for l in got[bob] if not l.startswith("#d_dev ")] == ["#lobby <d_carol> lobby only"]
    # (carol's line and alice's own confirmation come from two senders.)
    assert sorted(l for l in got[alice] if not l.startswith("#d_dev ")) == [
        "#lobby <d_carol> lobby only", "=== to d_carol: secret"]
    assert got[carol] == ["*d_alice* secret"]
    for c in (alice, bob, carol):
        c.close()


def test_privateMessageExactlyOnce(daemon):
    """
    A private message reaches its target once and no other connection.
    """
    alice, bob, carol = daemon.client(), daemon.client(), daemon.client()
    alice.login("p_alice"), bob.login("p_bob"), carol.login("p_carol")
    alice.sync(), bob.sync(), carol.sync()
    alice.send("/msg p_bob just for you")
    alice.sync()
    assert bob.sync() == ["*p_alice* just for you"]
    assert carol.sync() == []
    assert alice.sync() == []
    for c in (alice, bob, carol):
        c.close()


def test_nickCollisionAcrossConnections(daemon):
    """
    A nickname in use on one connection is refused on another, in any case,
    and is free again once the first connection closes.
    """
    first, second = daemon.client(), daemon.client()
    first.login("Coll")
    second.readUntil(lambda l: l.startswith("??? "))
    second.send("cOLL")
    assert second.readLine() == "!!! the nickname cOLL is taken"
    assert second.readLine() == "??? Choose another nickname:"
    first.send("/quit")
    first.readUntil(lambda l: l == "=== bye")
    first.close()
    second.send("cOLL")
    assert second.readLine() == "=== you are now cOLL"
    second.close()


def test_garbageSenderCannotDisturbOthers(daemon):
    """
    A client sending random bytes, escape sequences, telnet negotiation and a
    huge line neither disturbs nor reaches the others as anything but clean
    text; the conversation around it is delivered exactly.
    """
    # The evil client's telnet requests are refused with telnet bytes, which
    # are not UTF-8.
    alice, bob, evil = daemon.client(), daemon.client(), LineClient(daemon.port, errors="replace")
    alice.login("g_alice"), bob.login("g_bob"), evil.login("g_evil")
    for c in (alice, bob, evil):
        c.send("/join #g")
        c.readUntil(lambda l: l.startswith("=== #g members"))
    alice.sync(), bob.sync()
    alice.send("before")
    alice.sync()
    evil.sendBytes(bytes(range(256)) * 4 + b"\n")
    evil.sendBytes(b"\x1b[2J\x1b[H\x1b]0;owned\x07\xff\xfd\x18\x9b31m\n")
    evil.sendBytes(b"A" * 100000 + b"\n")
    evil.sendBytes(b"\xc3")
    evil.sendBytes(b"\xa9t\xc3\xa9\n")
    evil.sync()
    alice.send("after")
    alice.sync()
    got = bob.sync()
    assert got[0] == "#g <g_alice> before"
    assert got[-1] == "#g <g_alice> after"
    assert "#g <g_evil> été" in got
    for line in got:
        assert not any(ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 for ch in line), line
    assert not any("A" * 1000 in line for line in got)
    for c in (alice, bob, evil):
        c.close()


def test_portInUseFailsClearly(daemon):
    """
    Starting on a port already in use exits non-zero with one clear line
    instead of running with no listener.
    """
    result = subprocess.run(
        [twistdPath(), "-n", "--pidfile=", "chat", "--listen", f"tcp:{daemon.port}:interface=127.0.0.1"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"cannot listen on tcp:{daemon.port}:interface=127.0.0.1: Address already in use" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_portOutOfRangeFailsClearly():
    """
    A port out of range, which only binding refuses, exits non-zero with
    one clear line too, not a traceback.
    """
    result = subprocess.run(
        [twistdPath(), "-n", "--pidfile=", "chat", "--db", "none", "--listen", "tcp:99999"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "cannot listen on tcp:99999: bind(): port must be 0-65535" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_badListenDescriptionIsUsageError():
    """
    A malformed --listen description is refused before anything starts.
    """
    result = subprocess.run([twistdPath(), "-n", "--pidfile=", "chat", "--listen", "tcp:notaport"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--listen tcp:notaport" in result.stdout + result.stderr


def test_severalListeners():
    """
    --listen may be given more than once; every listener serves the same
    rooms.
    """
    d = Daemon("--listen", "tcp:0:interface=127.0.0.1").start()
    try:
        deadline = time.monotonic() + 10
        while d.logText().count("chatd listening on") < 2:
            assert time.monotonic() < deadline, d.logText()
            time.sleep(0.01)
        ports = [int(l.rsplit(":", 1)[1]) for l in d.log if "chatd listening on" in l]
        a, b = LineClient(ports[0]), LineClient(ports[1])
        a.login("l_a")
        b.login("l_b")
        a.sync()
        b.send("hi over there")
        b.sync()
        assert a.sync() == ["#lobby <l_b> hi over there"]
    finally:
        d.stop()


def test_sigtermTellsUsersAndExits():
    """
    SIGTERM tells every connected user the server is going down, then the
    daemon closes their connections and exits.
    """
    d = Daemon().start()
    a = d.client()
    a.login("s_a")
    a.sync()
    status = d.stop()
    lines = []
    try:
        while True:
            lines.append(a.readLine())
    except EOFError:
        pass
    assert lines == ["-!- The server is going down. Goodbye."]
    assert status in (0, -15)


def test_logNamesEventsNotContents():
    """
    The log records connections, nicknames and disconnects with their reason,
    and never what people said.
    """
    d = Daemon().start()
    try:
        a, b = d.client(), d.client()
        a.login("log_a")
        b.login("log_b")
        a.send("top secret words")
        a.send("/msg log_b whispered words")
        a.sync()
        b.sync()
        a.send("/quit")
        a.readUntil(lambda l: l == "=== bye")
        b.readUntil(lambda l: "has quit" in l)
    finally:
        d.stop()
    log = d.logText()
    assert "chatd listening on 127.0.0.1:" in log
    assert re.search(LOGIN_LINE.format(nick="log_a"), log)
    assert re.search(r"^\S+ \[chatd\.edge\.connection\.Connection#info\] log_a "
                     r"\(127\.0\.0\.1:\d+\) disconnected: quit$", log, re.M)
    assert "secret" not in log and "whispered" not in log


def test_tacRunsFromCheckout(tmp_path):
    """
    C{twistd -n --pidfile= -y chatd.tac}, run from another folder, builds the
    service with its defaults: it listens on 127.0.0.1:55555, or, where
    something already holds that port, says so.
    """
    result = subprocess.Popen(
        [twistdPath(), "-n", "--pidfile=", "-y", str(ROOT / "chatd.tac")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        for line in result.stdout:
            if "chatd listening on" in line or "cannot listen" in line:
                break
        assert "chatd listening on 127.0.0.1:55555" in line or "cannot listen on tcp:55555" in line
    finally:
        result.terminate()
        result.wait(20)


PROBE_TAC = """
import sys
sys.path.insert(0, {root!r})
from twisted.application import service
from twisted.logger import Logger, globalLogPublisher
from chatd import tap

class Formatters(service.Service):
    # Started after chatd's services: says how twistd's observers format.
    def startService(self):
        Logger().info("formatters: {{names}}", names=sorted(
            type(getattr(o, "formatEvent", o)).__name__ for o in globalLogPublisher._observers))

config = tap.Options()
config.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--db", "none"])
application = service.Application("chatd")
top = tap.makeService(config)
Formatters().setServiceParent(top)
top.setServiceParent(application)
"""


@pytest.mark.parametrize("logfile", [False, True])
def test_twistdsObserverWritesWithChatdsText(tmp_path, logfile):
    """
    Under twistd (C{-n}, to standard output or to C{--logfile}), the
    observer twistd chose formats with chatd's L{ClassicText} once the
    service has started, and goes on writing where twistd said.
    """
    (tmp_path / "probe.tac").write_text(PROBE_TAC.format(root=str(ROOT)))
    logPath = tmp_path / "chatd.log"
    command = [twistdPath(), "-n", "--pidfile="]
    if logfile:
        command += ["--logfile", str(logPath)]
    with open(tmp_path / "stdout", "w") as out:
        process = subprocess.Popen(command + ["-y", "probe.tac"], cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        written = logPath if logfile else tmp_path / "stdout"
        match = _waitFor(written, r"(?m)^\S+ \[\S+\] formatters: (.*)$")
        assert match.group(1) == "['ClassicText']"
    finally:
        process.terminate()
        process.wait(20)


def _waitFor(path, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            match = re.search(pattern, path.read_text())
            if match:
                return match
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in {path}")


def test_daemonizes(tmp_path):
    """
    Plain C{twistd chat} daemonizes as twistd does: the command returns, a
    pidfile and logfile appear, and the daemon serves until signalled.
    """
    pidfile, logfile = tmp_path / "chatd.pid", tmp_path / "chatd.log"
    result = subprocess.run(
        [twistdPath(), f"--pidfile={pidfile}", f"--logfile={logfile}", "chat",
         "--listen", "tcp:0:interface=127.0.0.1"], cwd=tmp_path, timeout=30)
    assert result.returncode == 0
    port = int(_waitFor(logfile, r"chatd listening on 127.0.0.1:(\d+)").group(1))
    pid = int(pidfile.read_text())
    try:
        client = LineClient(port)
        client.login("daemon_user")
        client.close()
        _waitFor(logfile, LOGIN_LINE.format(nick="daemon_user"))
    finally:
        os.kill(pid, signal.SIGTERM)
    _waitFor(logfile, r"Server Shut Down")


class RegexMatch(str):
    """
    Equal to any string the pattern matches in full, for exact line lists
    with a part that varies (a time).
    """

    def __eq__(self, other):
        return re.fullmatch(str(self), other) is not None

    __hash__ = str.__hash__


def test_twistRunsChat():
    """
    The newer C{twist} runner starts the same plugin, with history and
    accounts as under twistd: a line said is stored, searched and replayed,
    and a nickname can be registered.
    """
    twist = str(Path(twistdPath()).with_name("twist"))
    d = Daemon(runner=[twist, "--log-format=text", "chat"]).start()
    try:
        client = d.client()
        client.login("twist_user")
        client.send("kept under twist")
        client.send("/history")
        assert client.readUntil(lambda l: "kept under twist" in l) == [
            "=== #lobby: the last 1 line",
            RegexMatch(r"~ \S+ #lobby <twist_user> kept under twist")]
        client.send("/search twist")
        assert client.readLine() == "=== 1 line in your rooms with twist, newest first"
        assert client.readLine() == RegexMatch(r"~ \S+ #lobby <twist_user> kept under twist")
        client.send("/register long-enough")
        assert client.readLine().startswith("=== twist_user is registered to you")
        other = d.client()
        other.login("twist_other")
        assert other.readLine().endswith("#lobby <twist_user> kept under twist")
        client.close(), other.close()
    finally:
        d.stop()

"""
The limits against a real daemon (C{twistd -n chat} in a subprocess), tried
as an attacker would: a client that never reads, a connection storm, and
SIGTERM while hundreds of clients talk.
"""

import re
import signal
import socket
import struct
import time

import pytest

from crowd import Crowd, allowOpenFiles
from support import Daemon, LineClient, settle

GOING_DOWN = "-!- The server is going down. Goodbye."


def test_neverReadingClientDroppedOthersUndisturbed():
    """
    A client that never reads is disconnected once its send queue has stayed
    past --send-queue for --send-queue-grace, with the reason in the log,
    while two others talking through it (in bursts far over the limit) get
    every line exactly once.
    """
    daemon = Daemon("--send-queue", "16384", "--send-queue-grace", "0.5",
                    "--flood-burst", "100000",
                    "--flood-rate", "100000").start()
    stuck = socket.socket()
    try:
        # A small receive window, so the kernel holds little on its behalf.
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", daemon.port))
        stuck.sendall(b"stuck\n")
        alice, bob = daemon.client(), daemon.client()
        alice.login("alice")
        bob.login("bob")
        alice.sync(), bob.sync()
        sent, others = 0, []
        deadline = time.monotonic() + 30
        while "dropping stuck" not in daemon.logText():
            assert time.monotonic() < deadline, "the reader that never reads was never dropped"
            for i in range(sent, sent + 100):
                alice.send(f"{i:07d} " + "x" * 500)
            sent += 100
            # Bob gets each line once and in order, whatever else comes.
            got = bob.readUntil(lambda l: l.startswith(f"#lobby <alice> {sent - 1:07d} "))
            fromAlice = [l for l in got if l.startswith("#lobby <alice> ")]
            assert fromAlice == [f"#lobby <alice> {i:07d} " + "x" * 500
                                 for i in range(sent - 100, sent)]
            others += [l for l in got if not l.startswith("#lobby <alice> ")]
        # Its quit is announced with the turn's departures, which may come
        # after a /ping read meanwhile: waited for, then nothing else.
        quit = "-- #lobby stuck has quit (send queue exceeded)"
        if quit not in others:
            others += bob.readUntil(lambda l: l == quit)
        others += bob.sync()
        assert others == [quit]
        assert re.search(r"dropping stuck \(127\.0\.0\.1:\d+\): not reading; \d+ bytes "
                         r"waiting to be sent \(limit 16384 bytes, for at most 0\.5 "
                         r"seconds\)", daemon.logText())
        assert alice.sync() == [quit]
    finally:
        stuck.close()
        daemon.stop()


def test_connectionStormRefusedConversationGoesOn():
    """
    A script opening hundreds of connections from one address gets one line
    saying why for each connection past --max-per-address and is closed,
    from any loopback address; two users keep talking throughout, and
    closed connections free their places.
    """
    assert allowOpenFiles(1024)
    daemon = Daemon("--max-per-address", "20", "--max-connections", "30").start()
    crowd = Crowd(daemon.port)
    alice = LineClient(daemon.port, host="127.0.0.1")
    bob = LineClient(daemon.port, host="127.0.0.1")
    try:
        alice.login("alice")
        bob.login("bob")
        storm = []
        for i in range(12):
            # In waves the size of a listen backlog, so that the kernel, not
            # the daemon, never has to drop a connection attempt.
            wave = [crowd.connect() for _ in range(25)]
            storm += wave
            alice.send(f"during the storm {i}")
            crowd.pump(lambda: all(m.closed or any(l.startswith("??? ") for l in m.lines)
                                   for m in wave))
        refused = [m for m in storm if m.closed]
        assert len(refused) == 282
        for member in refused:
            assert member.lines == [
                "-!- Connection refused: too many connections from 127.0.0.1 "
                "(counted with all of loopback)"]
        aliceGot, bobGot = settle(alice, bob)
        assert aliceGot == ["-- #lobby bob has joined"]
        assert bobGot == [
            f"#lobby <alice> during the storm {i}" for i in range(12)]
        # Another loopback address is the same place: it gains nothing.
        # (--max-connections, which needs another address group, is
        # checked in memory: test_limits.test_globalConnectionLimit.)
        others = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10,
                                           source_address=("127.0.0.2", 0))]
        refusal = others[0].makefile("rb").read()
        assert refusal == (b"-!- Connection refused: too many connections from 127.0.0.2 "
                           b"(counted with all of loopback)\r\n")
        # Closing connections frees places: the next one is admitted.
        for member in storm:
            crowd.close(member)
        carol = admitted(daemon.port)
        carol.login("carol")
        alice.send("after the storm")
        # (Joining, carol is first shown the lobby's history: "~ " lines.)
        live = [l for l in settle(alice, carol)[1] if not l.startswith("~ ")]
        assert live == ["#lobby <alice> after the storm"]
        carol.close()
        for sock in others:
            sock.close()
    finally:
        crowd.closeAll()
        alice.close(), bob.close()
        daemon.stop()


def admitted(port, attempts=100):
    """
    A client connected once the server admits it: closes on our side reach
    the server a moment later, so a refusal right after them is retried.
    """
    for _ in range(attempts):
        client = LineClient(port)
        first = client.readLine()
        if not first.startswith("-!- Connection refused"):
            return client
        client.close()
    raise AssertionError("never admitted")


def test_sigtermUnderLoad():
    """
    SIGTERM while hundreds of clients talk: every client's last line is the
    going-down notice (not others leaving after it), no client is left with a half-written line, and the
    daemon exits (by the signal, as twistd does) without waiting long.
    """
    count = 300
    assert allowOpenFiles(count + 200)
    daemon = Daemon("--max-per-address", str(count)).start()
    crowd = Crowd(daemon.port)
    try:
        members = [crowd.connect() for _ in range(count)]
        for i, member in enumerate(members):
            crowd.send(member, f"u{i}")
            crowd.send(member, f"/join #r{i % 10}")
        crowd.pump(lambda: all(any(l.startswith("=== #r") for l in m.lines)
                               for m in members))
        for member in members:
            member.take()
        for round in range(10):
            for i, member in enumerate(members):
                crowd.send(member, f"message {round} from u{i}")
        # Talk is in full flow when the signal arrives.
        crowd.pump(lambda: sum(len(m.lines) for m in members) > count * 20)
        daemon.process.send_signal(signal.SIGTERM)
        crowd.pump(lambda: all(m.closed for m in members))
        assert daemon.process.wait(15) == -signal.SIGTERM
        for member in members:
            assert member.lines[-1] == GOING_DOWN
            assert member.lines.count(GOING_DOWN) == 1
            assert member.tail == b""
        assert "Traceback" not in daemon.logText()
    finally:
        crowd.closeAll()
        daemon.stop()


def test_silentConnectionClosedAfterLoginTimeout():
    """
    A real connection that never picks a nickname is told why and closed
    after --login-timeout, and its place is free again.
    """
    daemon = Daemon("--login-timeout", "0.5", "--max-per-address", "1").start()
    try:
        lurker = daemon.client()
        lines = []
        with pytest.raises(EOFError):
            while True:
                lines.append(lurker.readLine())
        assert lines[-1] == "-!- Closing your connection: not logged in within 0.5 seconds"
        lurker.close()
        admitted(daemon.port).close()
    finally:
        daemon.stop()


def test_pasteEndedByAResetIsSaidAtThePace():
    """
    A sender that resets its connection (a script's close with replies
    unread, here SO_LINGER 0) while its paste waits for pacing still has
    every line chatd read said, once, in order and at the allowed rate,
    then quits with "connection lost", even as the room talks to it.
    """
    daemon = Daemon("--flood-burst", "5", "--flood-rate", "20").start()
    sender = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    try:
        bob, carol = daemon.client(), daemon.client()
        bob.login("bob")
        carol.login("carol")
        sender.sendall(b"paster\n")
        bob.readUntil(lambda l: l == "-- #lobby paster has joined")
        bob.sync()
        paste = [f"line {i:03d}" for i in range(60)]
        sender.sendall("".join(line + "\n" for line in paste).encode())
        bob.readUntil(lambda l: l == "#lobby <paster> line 000")
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sender.close()
        began = time.monotonic()
        # What the room says is written to the sender too: chatd sees the reset.
        carol.send("anyone there?")
        quit = "-- #lobby paster has quit (connection lost)"
        got = bob.readUntil(lambda l: l == quit)
        took = time.monotonic() - began
        assert [l for l in got if l.startswith("#lobby <paster> ")] == [
            f"#lobby <paster> {line}" for line in paste[1:]]
        # 60 lines, at most 5 at once then 20 a second: no less than 2.5 s.
        assert took > 2.0
        assert "paster (127.0.0.1:" in daemon.logText()
        assert "input waiting: handled at its pace first" in daemon.logText()
    finally:
        sender.close()
        daemon.stop()

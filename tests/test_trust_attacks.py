"""
The attacks of issue 13, run as an attacker would run them against
C{twistd -n chat} over real TCP, each asserting that it fails: nobody speaks
under a registered nickname without its password, wrong passwords do not lock
the owner out, a mute survives a rename, a TLS handshake that never completes
gives its connection slot back, and the small holes stay shut.
"""

import os
import re
import socket
import sqlite3
import stat
import subprocess
import time


from support import Daemon, LineClient, makeCertificate, settle, twistdPath
from trustsupport import register


def arrive(port, nick, password):
    """
    A connection that took the registered C{nick} with its password at the
    prompt, up to the lobby's member list.
    """
    client = LineClient(port)
    client.readUntil(lambda l: l.startswith("??? "))
    client.send(nick)
    assert client.readLine() == f"??? {nick} is registered: password (or another nickname)"
    client.send(password)
    client.readUntil(lambda l: l.startswith("=== #lobby members"))
    return client


def test_impostorNeverSpeaksAsTheOwner(tmp_path, db):
    """
    mallory tries every way to talk as the registered operator "helper":
    choosing it at the prompt, /nick to it, renaming away and back, /nick
    with a guess.  She never becomes helper; the room never sees a line, a
    join or a rename under that name, and history holds no row under it.
    """
    daemon = Daemon("--db", db, "--operator", "helper", cwd=tmp_path).start()
    try:
        register(daemon.port, "helper", "helper-password")
        bystander = daemon.client()
        bystander.login("bystander")
        mallory = daemon.client()
        mallory.readUntil(lambda l: l.startswith("??? "))
        mallory.send("helper")
        assert mallory.readLine() == ("??? helper is registered: password "
                                      "(or another nickname)")
        mallory.send("iamthehelper-trustme")
        assert mallory.readUntil(lambda l: l.startswith("??? ")) == [
            "!!! wrong password for helper",
            "??? helper is registered: password again (or another nickname)"]
        mallory.send("helper_")
        mallory.readUntil(lambda l: l.startswith("=== #lobby members"))
        for attempt in ("/nick helper", "/nick HELPER", "/nick helper guess-guess"):
            mallory.send(attempt)
            mallory.send("said while trying")
        mallory.send("/me waves")
        mallory.send("/topic mallory's topic")
        # The guess is answered once checked, off the reactor thread.
        lines = mallory.readUntil(lambda l: l == "!!! wrong password for helper")
        lines += mallory.sync()
        assert "!!! helper is registered: /nick helper PASSWORD if it is yours" in lines
        assert not any("you are now helper" in l.lower() for l in lines)
        seen = settle(bystander)[0]
        assert not any(re.search(r"\bhelper\b", l, re.I) for l in seen), seen
        assert "#lobby <helper_> said while trying" in seen
        mallory.close(), bystander.close()
    finally:
        daemon.stop()
    rows = sqlite3.connect(tmp_path / "chatd.sqlite3").execute(
        "SELECT nick FROM messages").fetchall()
    assert rows and all(nick.lower() != "helper" for (nick,) in rows)


def test_ownersRightPasswordWorksAfterOthersWrongOnes(tmp_path, db):
    """
    Five wrong /ghost attempts for "boss" from another user on the same
    address (every local user is 127.0.0.1) do not refuse boss's right
    password: it is checked after a short, announced delay, and boss is in.
    """
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        register(daemon.port, "boss", "b0ss-password")
        mallory = daemon.client()
        mallory.login("mallory")
        for n in range(5):
            mallory.send(f"/ghost boss guess-number-{n}")
            answer = mallory.readUntil(lambda l: l.startswith("!!! "))[-1]
            assert answer == "!!! wrong password for boss"
        boss = LineClient(daemon.port, timeout=20)
        boss.readUntil(lambda l: l.startswith("??? "))
        boss.send("boss")
        boss.readLine()
        started = time.monotonic()
        boss.send("b0ss-password")
        lines = boss.readUntil(lambda l: l.startswith("=== #lobby members"))
        assert lines[0] == ("-!- many wrong passwords came from your address lately; "
                            "your password for boss is checked in 4s")
        assert lines[1:3] == ["=== you are identified as boss", "=== you are now boss"]
        assert time.monotonic() - started < 15
        mallory.close(), boss.close()
    finally:
        daemon.stop()


def test_muteSurvivesARename(tmp_path, db):
    """
    A muted user who renames (refused) or parts, renames and comes back is
    still muted: nobody hears them.
    """
    daemon = Daemon("--db", db, "--operator", "boss", cwd=tmp_path).start()
    try:
        register(daemon.port, "boss", "b0ss-password")
        boss = arrive(daemon.port, "boss", "b0ss-password")
        chatty = daemon.client()
        chatty.login("chatty")
        settle(boss, chatty)
        boss.send("/mute chatty")
        boss.readLine()
        chatty.send("/nick quiet_one")
        chatty.send("/part")
        chatty.send("/nick quiet_one")
        chatty.send("/join #lobby")
        chatty.send("am I free now?")
        lines = chatty.sync()
        assert ("!!! you are muted in #lobby; you cannot change nickname until the mute "
                "ends") in lines
        assert "=== you are now quiet_one" in lines
        assert lines[-1] == "!!! you are muted in #lobby"
        assert not any("free now" in l for l in settle(boss)[0])
        boss.close(), chatty.close()
    finally:
        daemon.stop()


def test_tlsHandshakeThatNeverCompletesFreesItsSlot(tmp_path):
    """
    A TLS connection that never sends its ClientHello holds the only slot
    its address has; when the login timeout passes it is cut off (not left
    waiting for a handshake that never comes: its farewell waits for one, for
    --close-timeout), and the slot is free again.
    """
    key, cert = makeCertificate(tmp_path)
    daemon = Daemon("--db", "none", "--max-per-address", "1", "--login-timeout", "1",
                    "--close-timeout", "1",
                    "--listen", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                    cwd=tmp_path, listeners=2).start()
    try:
        plainPort, tlsPort = daemon.ports
        silent = socket.create_connection(("127.0.0.1", tlsPort), timeout=30)
        time.sleep(0.3)
        refused = LineClient(plainPort)
        assert refused.readLine() == ("-!- Connection refused: too many connections "
                                      "from 127.0.0.1 (counted with all of loopback)")
        refused.close()
        started = time.monotonic()
        while True:
            try:
                if silent.recv(65536) == b"":
                    break
            except ConnectionResetError:
                break
        assert time.monotonic() - started < 20
        silent.close()
        deadline = time.monotonic() + 10
        while True:
            client = LineClient(plainPort)
            first = client.readLine()
            client.close()
            if "refused" not in first or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert first.startswith("-!- Welcome to chatd")
    finally:
        daemon.stop()


def test_smallHoles(tmp_path, db):
    """
    /history with a non-ASCII digit is a usage error, not a crash; a ban on
    everyone is refused; reasons given to /quit, /kick and /ban never reach
    the log; the database and its WAL/SHM files are readable by their owner
    alone.
    """
    daemon = Daemon("--db", db, "--operator", "boss", cwd=tmp_path).start()
    try:
        register(daemon.port, "boss", "b0ss-password")
        boss = arrive(daemon.port, "boss", "b0ss-password")
        troll, leaver = daemon.client(), daemon.client()
        troll.login("troll")
        leaver.login("leaver")
        boss.send("/history ²")
        boss.send("/history ٣")
        boss.send("/ban 0.0.0.0/0")
        boss.send("/ban ::/0")
        lines = boss.sync()
        assert lines.count("!!! usage: /history [N], N a number from 1 to 500") == 2
        assert "!!! 0.0.0.0/0 covers everyone" in lines
        assert "!!! ::/0 covers everyone" in lines
        leaver.send("/quit Zebra-quit-reason")
        leaver.readUntil(lambda l: l == "=== bye")
        boss.send("/kick troll Zebra-kick-reason")
        boss.send("/ban troll 1h Zebra-ban-reason")
        settle(boss)
        boss.close(), troll.close(), leaver.close()
        for name in ("chatd.sqlite3", "chatd.sqlite3-wal", "chatd.sqlite3-shm"):
            path = tmp_path / name
            assert path.exists(), name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    finally:
        daemon.stop()
    log = daemon.logText()
    assert "kicked troll" in log and "banned troll" in log
    assert "Zebra" not in log


def test_logFileIsNotWorldReadable(tmp_path):
    """
    The log file twistd writes for chatd is created without any permission
    for others (0640 at most), whatever the umask it was started with.
    """
    logPath = tmp_path / "chatd.log"
    process = subprocess.Popen(
        [twistdPath(), "-n", "--pidfile=", "--logfile", str(logPath), "chat",
         "--listen", "tcp:0:interface=127.0.0.1", "--db", "none"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0o002))
    try:
        deadline = time.monotonic() + 20
        while "chatd listening on" not in (logPath.read_text() if logPath.exists() else ""):
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        assert stat.S_IMODE(logPath.stat().st_mode) & 0o027 == 0
    finally:
        process.terminate()
        process.wait(20)


def test_ownedRoomKeptAcrossARestart(tmp_path, db):
    """
    A room created by its registered owner keeps owner and topic after it
    empties and after a restart: the next visitor sees the topic, cannot
    moderate it, and the owner still can; a room without an owner created
    again shows the newcomer nothing of its earlier life.
    """
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        register(daemon.port, "owner", "owner-password")
        owner = arrive(daemon.port, "owner", "owner-password")
        owner.send("/join #den")
        owner.send("/topic the owner's den")
        owner.send("kept words")
        owner.send("/quit")
        owner.readUntil(lambda l: l == "=== bye")
        owner.close()
        plain = daemon.client()
        plain.login("plain")
        plain.send("/join #free")
        plain.send("words of the first #free")
        plain.send("/quit")
        plain.readUntil(lambda l: l == "=== bye")
        plain.close()
    finally:
        daemon.stop()
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        visitor = daemon.client()
        visitor.login("visitor")
        visitor.send("/join #den")
        lines = visitor.readUntil(lambda l: l.startswith("=== #den members"))
        assert "=== #den topic: the owner's den" in lines
        visitor.send("/ban owner")
        visitor.send("/join #free")
        lines = visitor.sync()
        assert "!!! you do not moderate #den: operators, its owner and its creator do" in lines
        assert not any("first #free" in l for l in lines)
        visitor.send("/join #den")
        visitor.send("/history")
        assert any(l.endswith("#den <owner> kept words") for l in visitor.sync())
        visitor.close()
    finally:
        daemon.stop()


def test_chatClientGivesThePasswordFromAFile(tmp_path, db):
    """
    chat-client --password-file takes its registered nickname with the
    password in the file (never on its command line), and its line reaches
    the room under that nickname; without the password it falls back to
    another nickname and never speaks as the owner.
    """
    from clientsupport import runClient

    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        register(daemon.port, "alice", "tr0ub4dor&3")
        watcher = daemon.client()
        watcher.login("watcher")
        secret = tmp_path / "password"
        secret.write_text("tr0ub4dor&3\n")
        secret.chmod(0o600)
        done = runClient(tmp_path, daemon.port, "alice", "hello from the owner\n",
                         "--password-file", str(secret))
        assert done.returncode == 0, done.stderr
        assert b"tr0ub4dor" not in done.stdout + done.stderr
        without = runClient(tmp_path, daemon.port, "alice", "hello from nobody\n")
        assert without.returncode == 0, without.stderr
        seen = settle(watcher)[0]
        assert "#lobby <alice> hello from the owner" in seen
        assert "#lobby <alice_> hello from nobody" in seen
        watcher.close()
    finally:
        daemon.stop()

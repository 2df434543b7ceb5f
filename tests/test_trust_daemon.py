"""
Trust as a new user meets it, against twistd -n chat: register a nickname,
come back over TLS and identify; someone else cannot keep that nickname; an
operator kicks and bans a troublemaker, who cannot return after a restart;
passwords appear in no log, no history and no database row.
"""

import ssl

import pytest

from ircsupport import IrcDaemon, IrcSocketClient
from support import Daemon, LineClient, makeCertificate, settle
from trustsupport import register


def login(client, nick):
    """
    Claim C{nick}; return the lines up to the lobby's member list.
    """
    return client.login(nick)


def test_registerThenIdentifyOverTls(tmp_path, db):
    """
    alice registers on the plain listener, reconnects over TLS (checking the
    server's certificate), chooses her nickname and is asked its password on
    the same connection; a wrong one brings the nickname prompt back, the
    right one brings her in, identified.
    """
    key, cert = makeCertificate(tmp_path)
    daemon = Daemon("--db", db, "--listen",
                    f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                    cwd=tmp_path, listeners=2).start()
    try:
        plainPort, tlsPort = daemon.ports
        register(plainPort, "alice", "tr0ub4dor&3")
        context = ssl.create_default_context(cafile=cert)
        secure = LineClient(tlsPort, tls=context)
        secure.readUntil(lambda l: l.startswith("??? "))
        secure.send("alice")
        assert secure.readLine() == "??? alice is registered: password (or another nickname)"
        secure.send("wrong-password")
        assert secure.readLine() == "!!! wrong password for alice"
        assert secure.readLine() == ("??? alice is registered: password again "
                                     "(or another nickname)")
        secure.send("tr0ub4dor&3")
        assert secure.readUntil(lambda l: l.startswith("=== #lobby members")) == [
            "=== you are identified as alice", "=== you are now alice",
            "=== joined #lobby", "=== #lobby members (1): alice"]
        secure.close()
    finally:
        daemon.stop()


def test_someoneElseCannotTakeARegisteredNickname(tmp_path, db):
    """
    While alice is away, mallory chooses "alice": she is asked for its
    password and, guessing wrong, is not alice; the lobby never hears of an
    alice.
    """
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        register(daemon.port, "alice", "tr0ub4dor&3")
        mallory, bystander = daemon.client(), daemon.client()
        login(bystander, "bystander")
        mallory.readUntil(lambda l: l.startswith("??? "))
        mallory.send("alice")
        assert mallory.readLine() == ("??? alice is registered: password "
                                      "(or another nickname)")
        mallory.send("password1")
        assert mallory.readUntil(lambda l: l.startswith("??? ")) == [
            "!!! wrong password for alice",
            "??? alice is registered: password again (or another nickname)"]
        assert settle(bystander) == [[]]
        mallory.close(), bystander.close()
    finally:
        daemon.stop()


def test_ghostTakesTheNicknameBack(tmp_path, db):
    """
    With alice's registered nickname held by a stale connection, /ghost with
    her password closes that connection and gives her the nickname.
    """
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        stale = daemon.client()
        login(stale, "alice")
        stale.send("/register tr0ub4dor&3")
        stale.readLine()
        fresh = daemon.client()
        login(fresh, "alice2")
        fresh.send("/ghost alice tr0ub4dor&3")
        assert fresh.readUntil(lambda l: l.startswith("===")) == [
            "-- #lobby alice has quit (ghosted)", "=== you are identified as alice"]
        assert fresh.readLine() == "=== you are now alice"
        assert stale.readUntil(lambda l: l.startswith("-!-")) == [
            "-- #lobby alice2 has joined",
            "-!- the owner of alice took the nickname back; goodbye"]
        with pytest.raises(EOFError):
            stale.readLine()
        fresh.close()
    finally:
        daemon.stop()


def test_ghostAtThePrompt(tmp_path, db):
    """
    Coming back while a stale connection still holds her nickname, alice
    chooses it and is asked its password: the right one lets the stale
    connection go and brings her in as alice, identified; /ghost at the
    nickname prompt does the same.
    """
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        stale = daemon.client()
        login(stale, "alice")
        stale.send("/register tr0ub4dor&3")
        stale.readLine()
        back = daemon.client()
        back.readUntil(lambda l: l.startswith("??? "))
        back.send("alice")
        assert back.readLine() == "??? alice is registered: password (or another nickname)"
        back.send("tr0ub4dor&3")
        assert back.readUntil(lambda l: l.startswith("=== #lobby members")) == [
            "=== you are identified as alice", "=== you are now alice", "=== joined #lobby",
            "=== #lobby members (1): alice"]
        with pytest.raises(EOFError):
            stale.readUntil(lambda l: False)
        stale, back = back, daemon.client()
        back.readUntil(lambda l: l.startswith("??? "))
        # The answer comes once the password is checked, and the prompt
        # after it, only while a nickname is still wanted.
        back.send("/ghost alice wrong-password")
        assert back.readLine() == "!!! wrong password for alice"
        assert back.readLine() == "??? Choose a nickname:"
        back.send("/ghost alice tr0ub4dor&3")
        assert back.readUntil(lambda l: l.startswith("=== #lobby members")) == [
            "=== you are identified as alice", "=== you are now alice", "=== joined #lobby",
            "=== #lobby members (1): alice"]
        with pytest.raises(EOFError):
            stale.readUntil(lambda l: False)
        back.close()
    finally:
        daemon.stop()


def test_operatorKicksAndBansAcrossARestart(tmp_path, db):
    """
    The configured operator registers, kicks a troublemaker (who stays
    connected), bans them (they are let go), and after a restart on the same
    database the troublemaker is still refused while others are not; the
    operator lifts the ban and they can come back.
    """
    args = ("--db", db, "--operator", "boss")
    daemon = Daemon(*args, cwd=tmp_path).start()
    try:
        assert "operator boss is not registered yet" in daemon.logText()
        boss, troll, bystander = daemon.client(), daemon.client(), daemon.client()
        login(boss, "boss")
        boss.send("/register b0ss-password")
        boss.readLine()
        login(troll, "troll")
        login(bystander, "bystander")
        settle(boss, troll, bystander)
        boss.send("/kick troll enough")
        kicked = "-- #lobby troll was kicked by boss (enough)"
        assert settle(boss, troll, bystander) == [[kicked], [kicked, "=== left #lobby"],
                                                  [kicked]]
        troll.send("/join #lobby")
        settle(boss, troll, bystander)
        boss.send("/ban troll spamming links")
        banned = "-- #lobby boss banned troll from the server (spamming links)"
        assert troll.readUntil(lambda l: l.startswith("-!-")) == [
            banned, "-!- boss banned you from this server (spamming links)"]
        with pytest.raises(EOFError):
            troll.readLine()
        assert settle(boss, bystander) == [
            [banned, "-- #lobby troll has quit (banned)"],
            [banned, "-- #lobby troll has quit (banned)"]]
        boss.close(), bystander.close(), troll.close()
    finally:
        daemon.stop()

    daemon = Daemon(*args, cwd=tmp_path).start()
    try:
        assert "bans in force: 1" in daemon.logText()
        assert "operator boss is not registered" not in daemon.logText()
        troll = daemon.client()
        troll.readUntil(lambda l: l.startswith("??? "))
        troll.send("troll")
        assert troll.readLine() == "!!! you are banned from this server (spamming links)"
        boss = daemon.client()
        login(boss, "boss_")
        boss.send("/unban troll")
        assert boss.readLine() == ("!!! you do not moderate #lobby: operators, its owner "
                                   "and its creator do")
        boss.send("/nick boss b0ss-password")
        assert boss.readUntil(lambda l: l.startswith("=== you are now")) == [
            "=== you are identified as boss", "=== you are now boss"]
        boss.send("/bans")
        assert boss.readUntil(lambda l: "spamming" in l) == [
            "=== 1 ban", "=== troll from the server until lifted, by boss (spamming links)"]
        boss.send("/unban troll")
        assert boss.readLine() == "-- #lobby boss lifted the ban on troll"
        troll.readLine()  # the prompt again
        troll.send("troll")
        assert troll.readLine() == "=== you are now troll"
        boss.close(), troll.close()
    finally:
        daemon.stop()


def test_passwordsNeverStoredOrLogged(tmp_path, db):
    """
    Every password typed (register, identify, ghost, password) is absent from
    the daemon's log, from room history and search, and from the database
    files; only argon2 hashes are stored.
    """
    secrets = ["Zebra-Secret-1", "Zebra-Secret-2", "Zebra-Secret-3", "Zebra-Wrong-4"]
    daemon = Daemon("--db", db, cwd=tmp_path).start()
    try:
        alice = daemon.client()
        login(alice, "alice")
        alice.send(f"/register {secrets[0]}")
        alice.readLine()
        alice.send(f"/password {secrets[0]} {secrets[1]}")
        assert alice.readLine() == "=== your password is changed"
        other = daemon.client()
        login(other, "other")
        other.send(f"/ghost alice {secrets[3]}")
        assert other.readLine() == "!!! wrong password for alice"
        other.send(f"/ghost alice {secrets[1]}")
        assert other.readUntil(lambda l: l.startswith("===")) == [
            "-- #lobby alice has quit (ghosted)", "=== you are identified as alice"]
        assert other.readLine() == "=== you are now alice"
        other.send(f"/password {secrets[1]} {secrets[2]}")
        other.readLine()
        other.send(f"/identify {secrets[2]}")
        assert other.readLine() == "!!! you are already identified as alice"
        other.send("a line for the history")
        other.send("/search Zebra")
        assert other.readLine() == "=== nothing in your rooms matches Zebra"
        other.send("/history")
        lines = other.readUntil(lambda l: l.endswith("<alice> a line for the history"))
        assert not any("Zebra" in line for line in lines)
        other.close()
    finally:
        daemon.stop()
    log = daemon.logText()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("chatd.sqlite3*"))
    assert "alice identified" in log or "ghosted" in log
    for secret in secrets:
        assert secret not in log
        assert secret.encode() not in stored
    assert b"$argon2id$" in stored


def test_changedPasswordLocksOutWhoeverLearntTheOldOne(tmp_path, db):
    """
    mallory, on IRC, logs in as alice with alice's leaked password and
    changes nickname; alice comes back on the line protocol and changes
    her password: mallory can no longer take "alice" without the new one.
    """
    daemon = IrcDaemon("--db", db, cwd=tmp_path).start()
    try:
        register(daemon.port, "alice", "leaked-password")
        mallory = IrcSocketClient(daemon.ircPort)
        mallory.send("PASS leaked-password")
        mallory.register("alice")
        mallory.send("NICK mallory")
        assert mallory.sync()[-1] == ":alice!~alice@chatd NICK mallory"
        alice = daemon.client()
        alice.readUntil(lambda l: l.startswith("??? "))
        alice.send("alice")
        alice.readLine()
        alice.send("leaked-password")
        alice.readUntil(lambda l: l.startswith("=== #lobby members"))
        alice.send("/password leaked-password fresh-password")
        assert alice.readLine() == "=== your password is changed"
        alice.send("/quit")
        alice.readUntil(lambda l: l == "=== bye")
        alice.close()
        mallory.send("NICK alice")
        assert mallory.sync() == [
            ":irc.chatd 433 mallory alice :Nickname is registered: if it is yours, /msg "
            "NickServ GHOST alice PASSWORD (or IDENTIFY alice PASSWORD); whoever holds it is "
            "let go"]
        mallory.send("PRIVMSG NickServ :IDENTIFY alice fresh-password")
        # Answered once the password is checked.
        assert mallory.readUntil(lambda l: " NICK " in l)[-1] == ":mallory!~alice@chatd NICK alice"
        mallory.close()
    finally:
        daemon.stop()

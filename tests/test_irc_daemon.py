"""
The IRC front end in a real daemon (twistd -n chat --irc tcp:0): an IRC
client over a socket, irssi and WeeChat in tmux, talking with a line protocol
user (a socket, or nc) in the same rooms.
"""

import re
import time

import pytest

from ircsupport import IrcDaemon, IrcSocketClient
from support import LineClient, requireTool


@pytest.fixture
def daemon():
    d = IrcDaemon("--db", "none").start()
    yield d
    d.stop()


def test_ircAndLineUsersTalk(daemon):
    """
    Over real sockets: an IRC user and a line user meet in #lobby, see each
    other join, and each gets the other's messages and actions exactly once,
    in order; a private message reaches its target alone.
    """
    irc = IrcSocketClient(daemon.ircPort)
    bob, carol = LineClient(daemon.port), LineClient(daemon.port)
    try:
        assert irc.register("alice")[0] == ":irc.chatd 001 alice :Welcome to the chatd " \
                                           "IRC Network alice!~alice@chatd"
        bob.login("bob")
        carol.login("carol")
        bob.sync()
        irc.send("JOIN #lobby")
        assert irc.sync() == [":alice!~alice@chatd JOIN #lobby",
                              ":irc.chatd 353 alice = #lobby :bob carol alice",
                              ":irc.chatd 366 alice #lobby :End of /NAMES list."]
        assert bob.sync() == ["-- #lobby alice has joined"]
        assert carol.sync() == ["-- #lobby alice has joined"]
        bob.send("one")
        bob.send("/me two")
        bob.send("/msg alice three")
        assert bob.sync() == ["=== to alice: three"]
        assert irc.sync() == [":bob!~bob@chatd PRIVMSG #lobby one",
                              ":bob!~bob@chatd PRIVMSG #lobby :\x01ACTION two\x01",
                              ":bob!~bob@chatd PRIVMSG alice three"]
        irc.send("PRIVMSG #lobby :hello both")
        irc.send("PRIVMSG #lobby :\x01ACTION waves\x01")
        irc.send("PRIVMSG bob :only bob")
        assert irc.sync() == []
        assert bob.sync() == ["#lobby <alice> hello both", "* #lobby alice waves",
                              "*alice* only bob"]
        assert carol.sync() == ["#lobby <bob> one", "* #lobby bob two",
                                "#lobby <alice> hello both", "* #lobby alice waves"]
        irc.send("QUIT :bye")
        assert irc.readLine().startswith("ERROR :Closing link:")
        assert bob.sync() == ["-- #lobby alice has quit (Quit: bye)"]
    finally:
        irc.close()
        bob.close()
        carol.close()


def test_irssi(tmp_path, daemon):
    """
    irssi, in tmux: connects, joins #lobby and shows its members, the topic
    a line user sets and what they say; what is typed in irssi reaches the
    line user.
    """
    requireTool("tmux")
    requireTool("irssi")
    from test_client_tmux import Tmux

    bob = LineClient(daemon.port)
    tmux = Tmux(tmp_path, f"irssi --home={tmp_path / 'irssi'} -c 127.0.0.1 "
                          f"-p {daemon.ircPort} -n alice; sleep 60")
    try:
        bob.login("bob")
        bob.send("/topic all things chatd")
        bob.sync()
        tmux.waitFor(lambda rows: any("End of /MOTD" in row for row in rows))
        tmux.type("/join #lobby")
        tmux.keys("Enter")
        rows = tmux.waitFor(lambda rows: any("Total of 2 nicks" in row for row in rows))
        text = "\n".join(rows)
        assert "Topic for #lobby: all things chatd" in text
        assert "[ alice] [ bob]" in text
        assert bob.sync() == ["-- #lobby alice has joined"]
        bob.send("hello from the line")
        bob.send("/me waves")
        tmux.waitFor(lambda rows: any(row.endswith("< bob> hello from the line")
                                      for row in rows)
                     and any(row.endswith(" * bob waves") for row in rows))
        tmux.type("hi bob, é € 漢字")
        tmux.keys("Enter")
        # The line client's reads time out (its deadline) if nothing comes.
        assert bob.readLine() == "#lobby <alice> hi bob, é € 漢字"
        tmux.type("/quit see you")
        tmux.keys("Enter")
        assert bob.readLine() == "-- #lobby alice has quit (Quit: see you)"
        assert bob.sync() == []
    finally:
        bob.close()
        tmux.close()


def test_weechat(tmp_path, daemon):
    """
    WeeChat, in tmux, with the capabilities it asks for by itself
    (server-time, message-tags, away-notify, ...): connects, joins #lobby
    and shows the topic an nc user set and both members, in the nick list
    too; what the nc user says and does appears, and what is typed in
    WeeChat reaches the nc user.
    """
    requireTool("tmux")
    requireTool("weechat")
    requireTool("nc")
    from test_client_tmux import Tmux
    from test_nc_telnet import Terminal, login

    bob = Terminal("nc", "127.0.0.1", str(daemon.port))
    tmux = Tmux(tmp_path, f"weechat --dir {tmp_path / 'weechat'} --plugins irc --run-command "
                          f"'/server add chatd 127.0.0.1/{daemon.ircPort} -notls -nicks=alice;"
                          " /connect chatd'; sleep 60")
    try:
        login(bob, "bob")
        bob.type("/topic all things chatd")
        bob.sync()
        tmux.waitFor(lambda rows: any("End of /MOTD" in row for row in rows))
        tmux.type("/join #lobby")
        tmux.keys("Enter")
        rows = tmux.waitFor(lambda rows: any("Channel #lobby: 2 nicks" in row for row in rows))
        text = "\n".join(rows)
        assert 'Topic for #lobby is "all things chatd"' in text
        # The nick list, at the right of every row.
        assert [row.rsplit("\u2502", 1)[-1].strip() for row in rows[1:3]] == ["alice", "bob"]
        assert bob.sync() == ["-- #lobby alice has joined"]
        bob.type("hello from nc")
        bob.type("/me waves")
        tmux.waitFor(lambda rows: any("bob | hello from nc" in row for row in rows)
                     and any("* | bob waves" in row for row in rows))
        tmux.type("hi bob, é € 漢字")
        tmux.keys("Enter")
        assert bob.readUntil(lambda line: True) == ["#lobby <alice> hi bob, é € 漢字"]
        tmux.type("/quit see you")
        tmux.keys("Enter")
        assert bob.readUntil(lambda line: True) == ["-- #lobby alice has quit (Quit: see you)"]
        assert bob.sync() == []
    finally:
        bob.close()
        tmux.close()


def test_ircOverTls(tmp_path):
    """
    --irc ssl:... serves IRC over a verified TLS handshake, in the same rooms
    as the plain line protocol.
    """
    import ssl

    from support import makeCertificate

    key, cert = makeCertificate(tmp_path)
    daemon = IrcDaemon("--db", "none", cwd=tmp_path,
                       irc=f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}").start()
    context = ssl.create_default_context(cafile=str(cert))
    try:
        secure = IrcSocketClient(daemon.ircPort, tls=context)
        assert secure.sock.version() in ("TLSv1.2", "TLSv1.3")
        secure.register("alice")
        secure.send("JOIN #lobby")
        secure.sync()
        bob = LineClient(daemon.port)
        bob.login("bob")
        bob.send("over the line")
        # A barrier on bob's connection first: his line is handled.
        assert bob.sync() == []
        assert secure.sync() == [":bob!~bob@chatd JOIN #lobby",
                                 ":bob!~bob@chatd PRIVMSG #lobby :over the line"]
        secure.close()
        bob.close()
    finally:
        daemon.stop()


def test_ircAcrossTwoDaemons():
    """
    With --broker, an IRC user on one daemon and a line user on another
    share a room: the IRC user's JOIN, names and messages, and the line
    user's lines, cross the broker, each exactly once.
    """
    from brokersupport import RedisServer, waitFor

    redis = RedisServer().start()
    first = IrcDaemon("--broker", redis.url, "--db", "none").start()
    second = IrcDaemon("--broker", redis.url, "--db", "none").start()
    try:
        for daemon in (first, second):
            waitFor(lambda: "connected" in daemon.logText(), timeout=10)
        bob = LineClient(second.port)
        bob.login("bob")
        irc = IrcSocketClient(first.ircPort)
        irc.register("alice")
        irc.send("JOIN #lobby")
        got = irc.readUntil(lambda line: " 366 " in line)
        # The names in either order: bob's arrival is mirrored to the IRC
        # user's daemon before or after alice came into the lobby.
        names = ":irc.chatd 353 alice = #lobby :"
        assert len(got) == 3 and got[1].startswith(names), got
        assert sorted(got[1][len(names):].split()) == ["alice", "bob"]
        assert [got[0], got[2]] == [":alice!~alice@chatd JOIN #lobby",
                                    ":irc.chatd 366 alice #lobby :End of /NAMES list."]
        assert bob.readLine() == "-- #lobby alice has joined"
        irc.send("PRIVMSG #lobby :across the broker")
        assert bob.readLine() == "#lobby <alice> across the broker"
        bob.send("and back")
        assert irc.readLine() == ":bob!~bob@chatd PRIVMSG #lobby :and back"
        assert bob.sync() == []
        assert irc.sync() == []
        irc.close()
        bob.close()
    finally:
        first.stop()
        second.stop()
        redis.cleanup()


def test_chathistoryFromSqlite(tmp_path):
    """
    CHATHISTORY over a real socket, read from the SQLite store: what a line
    user said comes back by msgid and by timestamp, oldest first, in a
    batch, with the msgid and time it was stored with; AFTER the timestamp
    of a line starts after that line.
    """
    daemon = IrcDaemon("--db", f"sqlite:{tmp_path / 'chat.db'}", "--replay", "0",
                       cwd=tmp_path).start()
    try:
        bob = LineClient(daemon.port)
        bob.login("bob")
        for i in range(1, 6):
            bob.send(f"line {i}")
            # Timestamps tell lines apart to the millisecond.
            bob.sync()
            time.sleep(0.01)
        irc = IrcSocketClient(daemon.ircPort)
        irc.send("CAP REQ :batch server-time message-tags draft/chathistory")
        irc.send("CAP END")
        irc.register("alice")
        irc.send("JOIN #lobby")
        irc.sync()
        irc.send("CHATHISTORY LATEST #lobby * 2")
        latest = irc.sync()
        assert [line.rsplit(" :", 1)[-1] for line in latest[1:-1]] == ["line 4", "line 5"]
        assert latest[0].endswith(" BATCH +h1 chathistory #lobby")
        first = re.search(r"msgid=(\d+);time=(\S+) ", latest[1])
        irc.send(f"CHATHISTORY BEFORE #lobby msgid={first.group(1)} 2")
        assert [line.rsplit(" :", 1)[-1] for line in irc.sync()[1:-1]] == ["line 2", "line 3"]
        irc.send(f"CHATHISTORY AFTER #lobby timestamp={first.group(2)} 5")
        assert [line.rsplit(" :", 1)[-1] for line in irc.sync()[1:-1]] == ["line 5"]
        irc.close()
        bob.close()
    finally:
        daemon.stop()


def test_irssiTakesItsNicknameBack(tmp_path):
    """
    irssi, in tmux, connecting with its registered nickname's password
    (PASS) while a stale connection holds that nickname, gets it: the stale
    one reads why it is closed, a line user sees it quit.  Another client
    with a wrong password gets 464 and 433 and registers under another
    nickname; its /msg NickServ GHOST with the right one takes the
    nickname from irssi, which shows why it was disconnected.
    """
    requireTool("tmux")
    requireTool("irssi")
    from test_client_tmux import Tmux

    daemon = IrcDaemon("--db", f"sqlite:{tmp_path / 'chat.db'}", cwd=tmp_path).start()
    stale, bob = IrcSocketClient(daemon.ircPort), LineClient(daemon.port)
    tmux = None
    try:
        stale.register("alice")
        stale.send("PRIVMSG NickServ :REGISTER alices-password")
        stale.readUntil(lambda line: line.endswith("alice is now registered to you"))
        stale.send("JOIN #lobby")
        stale.sync()
        bob.login("bob")
        tmux = Tmux(tmp_path, f"irssi --home={tmp_path / 'irssi'} -c 127.0.0.1 "
                              f"-p {daemon.ircPort} -w alices-password -n alice; sleep 60")
        tmux.waitFor(lambda rows: any("You are now logged in as alice" in row for row in rows))
        assert stale.readUntil(lambda line: line.startswith("ERROR")) == [
            ":bob!~bob@chatd JOIN #lobby",
            "ERROR :Closing link: the owner of alice took the nickname back"]
        with pytest.raises(EOFError):
            stale.readLine()
        assert bob.sync() == ["-- #lobby alice has quit (ghosted)"]

        other = IrcSocketClient(daemon.ircPort)
        other.send("PASS not-her-password")
        other.send("NICK alice")
        other.send("USER alice 0 * :Alice")
        assert other.readUntil(lambda line: " 433 " in line) == [
            ":irc.chatd 464 * :Password incorrect",
            ":irc.chatd 433 * alice :Nickname is registered: if it is yours, connect with its "
            "password (PASS or SASL) or /msg NickServ GHOST alice PASSWORD; whoever holds it "
            "is let go"]
        other.send("NICK alice_")
        other.readUntil(lambda line: " 376 " in line)
        other.send("PRIVMSG NickServ :GHOST alice alices-password")
        assert other.readUntil(lambda line: " NICK " in line) == [
            ":irc.chatd 900 alice_ alice_!~alice@chatd alice :You are now logged in as alice",
            ":alice_!~alice@chatd NICK alice"]
        tmux.waitFor(lambda rows: any(
            "ERROR Closing link: the owner of alice took the nickname back" in row
            for row in rows))
        other.close()
    finally:
        stale.close()
        bob.close()
        if tmux is not None:
            tmux.close()
        daemon.stop()

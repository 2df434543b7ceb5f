"""
Departures in bulk in a real daemon (chatd.core.departures): clients closing
together over real sockets are announced together, each once, to a line
protocol member and an IRC member of the room.
"""

import re

from ircsupport import IrcDaemon, IrcSocketClient
from support import LineClient

LEAVERS = 40
ONE = re.compile(r"-- #lobby (\S+) has quit \(connection (closed|lost)\)\Z")
MANY = re.compile(r"-- #lobby (\S+), (\S+) and (\d+) others have quit "
                  r"\(connection (closed|lost)\)\Z")


def test_clientsClosingTogetherAreToldOnceEach():
    """
    Forty clients closing at once: the line member is told of every one
    exactly once, in lines that parse, fewer lines than departures (those of
    one turn in one line); the IRC member gets one QUIT each, none twice.
    """
    daemon = IrcDaemon("--db", "none", "--max-per-address", "100").start()
    watcher = LineClient(daemon.port)
    irc = IrcSocketClient(daemon.ircPort)
    leavers = []
    try:
        watcher.login("watcher")
        irc.register("ircwatch")
        irc.send("JOIN #lobby")
        irc.sync()
        for i in range(LEAVERS):
            leavers.append(LineClient(daemon.port))
            leavers[-1].login(f"leaver{i:02}")
        watcher.sync()
        irc.sync()
        for leaver in leavers:
            leaver.close()
        counted, lines = 0, []
        while counted < LEAVERS:
            line = watcher.readLine()
            if not lines and line.endswith(" joined"):
                # The last arrivals, waiting for the big room's window, come
                # out ahead of the first departure.
                continue
            lines.append(line)
            one, many = ONE.match(line), MANY.match(line)
            assert one or many, lines[-1]
            counted += 1 if one else int(many.group(3)) + 2
        assert counted == LEAVERS
        assert len(lines) < LEAVERS, lines
        assert watcher.sync() == []
        quits = []
        while len(quits) < LEAVERS:
            line = irc.readLine()
            if not quits and " JOIN " in line:
                continue
            assert " QUIT " in line, line
            quits.append(line.split("!")[0][1:])
        assert sorted(quits) == [f"leaver{i:02}" for i in range(LEAVERS)]
        assert irc.sync() == []
    finally:
        watcher.close()
        irc.close()
        daemon.stop()

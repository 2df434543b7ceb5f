"""
IRC test helpers: the real core and fan-out with both front ends over it, each
client on its own C{StringTransport}.
"""

import re

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection

from chatd.irc.message import parse
from chatd.irc.protocol import IrcFactory
from support import Daemon, LineClient, MemoryClient, MemoryServer


class IrcMemoryServer(MemoryServer):
    """
    A L{MemoryServer} (line protocol) with an L{IrcFactory} beside it over the
    same core.
    """

    def __init__(self, **kwargs):
        ircArgs = kwargs.pop("irc", {})
        super().__init__(**kwargs)
        self.irc = IrcFactory(self.core, self.gate, **ircArgs)

    def connectIrc(self, nick=None, host="127.0.0.1", username=None):
        """
        Open an IRC connection and, given C{nick}, register it with NICK and
        USER; its output so far is cleared.
        """
        self._port += 1
        address = IPv4Address("TCP", host, self._port)
        proto = self.irc.buildProtocol(address)
        transport = StringTransportWithDisconnection(peerAddress=address)
        transport.protocol = proto
        proto.makeConnection(transport)
        client = IrcClient(proto, transport)
        if nick is not None:
            client.send(f"NICK {nick}")
            client.send(f"USER {username or nick} 0 * :Real {nick}")
            client.transport.clear()
        return client


class IrcClient(MemoryClient):
    def messages(self):
        """
        The parsed messages received since the last call.
        """
        return [parse(line) for line in self.lines()]


class IrcDaemon(Daemon):
    """
    A L{Daemon} with an IRC listener on a free port; C{ircPort} is read from
    its "listening for IRC on" line.
    """

    def __init__(self, *args, irc="tcp:0:interface=127.0.0.1", **kwargs):
        super().__init__("--irc", irc, *args, **kwargs)
        self.ircPort = None

    def _collect(self):
        for line in self.process.stdout:
            self.log.append(line)
            match = re.search(r"chatd listening (for IRC )?on [^ ]+:(\d+)", line)
            if match and match.group(1):
                self.ircPort = int(match.group(2))
            elif match:
                self.ports.append(int(match.group(2)))
                self.port = self.ports[0]
            if self.port is not None and self.ircPort is not None:
                self._listening.set()


class IrcSocketClient(LineClient):
    """
    A blocking IRC client for a real daemon; every read has a deadline (see
    L{LineClient}, whose reading it shares).
    """

    def send(self, line):
        self.sendBytes(line.encode("utf-8") + b"\r\n")

    def register(self, nick):
        """
        Register as C{nick}, reading up to the end of the MOTD.
        """
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        return self.readUntil(lambda line: line.split(" ")[1:2] in (["376"], ["422"]))

    def sync(self):
        """
        Everything received until the server answers a PING sent now.
        """
        self.send("PING :sync")
        return self.readUntil(lambda line: line.endswith(" PONG irc.chatd sync"))[:-1]

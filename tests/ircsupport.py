"""
IRC test helpers: the real core and fan-out with both front ends over it, each
client on its own C{StringTransport}.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection

from chatd.irc.message import parse
from chatd.irc.protocol import IrcFactory
from support import MemoryServer, MemoryClient


class IrcMemoryServer(MemoryServer):
    """
    A L{MemoryServer} (line protocol) with an L{IrcFactory} beside it over the
    same core.
    """

    def __init__(self, **kwargs):
        ircArgs = kwargs.pop("irc", {})
        super().__init__(**kwargs)
        self.irc = IrcFactory(self.core, self.clock, **ircArgs)

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

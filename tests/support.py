"""
Test helpers: an in-memory chat server built from the real factory, and a
blocking line client for tests against a real daemon.
"""

import socket

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from chatd.core import ChatCore
from chatd.fanout import Fanout
from chatd.protocol import ChatFactory


class MemoryServer:
    """
    The real factory, core and fan-out, with each client on its own
    C{StringTransport}.
    """

    def __init__(self, **factoryArgs):
        self.clock = Clock()
        self.core = ChatCore(Fanout(), self.clock)
        self.factory = ChatFactory(self.core, self.clock, **factoryArgs)
        self._port = 40000

    def connect(self, nick=None):
        """
        Open a connection, optionally claim C{nick}, and return it with its
        output cleared.
        """
        self._port += 1
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", self._port))
        transport = StringTransportWithDisconnection(
            peerAddress=IPv4Address("TCP", "127.0.0.1", self._port))
        transport.protocol = proto
        proto.makeConnection(transport)
        client = MemoryClient(proto, transport)
        if nick is not None:
            client.send(nick)
            client.transport.clear()
        return client


class MemoryClient:
    def __init__(self, proto, transport):
        self.proto = proto
        self.transport = transport

    def send(self, line):
        self.proto.dataReceived(line.encode("utf-8") + b"\r\n")

    def sendBytes(self, data):
        self.proto.dataReceived(data)

    def lines(self):
        """
        The lines received since the last call, decoded.
        """
        data = self.transport.value()
        self.transport.clear()
        return [line.decode("utf-8") for line in data.split(b"\r\n")[:-1]]


class LineClient:
    """
    A blocking client for a real daemon; every read has a timeout so a broken
    server fails the test instead of hanging it.
    """

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def sendBytes(self, data):
        self.sock.sendall(data)

    def send(self, line):
        self.sendBytes(line.encode("utf-8") + b"\n")

    def readLine(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8")

    def readUntil(self, predicate):
        """
        Read lines until one satisfies C{predicate}; return all read, that
        one included.
        """
        lines = []
        while True:
            lines.append(self.readLine())
            if predicate(lines[-1]):
                return lines

    def login(self, nick):
        self.readUntil(lambda l: l.startswith("??? "))
        self.send(nick)
        return self.readUntil(lambda l: l.startswith("=== #lobby members"))

    def sync(self):
        """
        Everything the server has queued for this client before now, up to a
        barrier: the reply to a command sent after it.  No sleeping needed.
        """
        self.send("/rooms")
        lines = self.readUntil(lambda l: l.startswith("=== ") and l.endswith(" rooms"))
        count = int(lines[-1].split()[1])
        for _ in range(count):
            self.readLine()
        return lines[:-1]

    def close(self):
        self.sock.close()

"""
L{chatd.edge.leantcp}: Twisted's TCP server transport, keeping less per
connection, says and does what Twisted's does.
"""

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure

from chatd.edge.leantcp import (NODELAY_INHERITED, LeanServer, ListeningSocket, NoDelayServer,
                                useLeanServer)


class Chatty(Protocol):
    pass


def accepted(transport):
    """
    A server transport of class C{transport} over one end of a socket pair,
    as a listening port numbered 6667 would make it as its 7th connection.
    """
    ours, theirs = socket.socketpair()
    port = tcp.Port(6667, Factory.forProtocol(Chatty), reactor=MemoryReactor())
    port._realPortNumber = 6667
    protocol = Chatty()
    server = transport(ours, protocol, ("127.0.0.1", 40001), port, 7, port.reactor)
    protocol.makeConnection(server)
    return server, theirs


def test_sameLogPrefixReprAndFileno():
    """
    What a L{LeanServer} makes when asked is what a L{tcp.Server} keeps.
    """
    lean, leanPeer = accepted(LeanServer)
    plain, plainPeer = accepted(tcp.Server)
    assert lean.logPrefix() == plain.logPrefix() == "Chatty,7,127.0.0.1"
    assert repr(lean) == repr(plain) == "<Chatty #7 on 6667>"
    assert lean.fileno() == lean.socket.fileno()
    for sock in (lean.socket, leanPeer, plain.socket, plainPeer):
        sock.close()


def test_keepsNoStrings():
    """
    A L{LeanServer} keeps neither the log prefix, the C{repr} nor a bound
    C{fileno}.
    """
    lean, peer = accepted(LeanServer)
    assert not {"logstr", "repstr", "fileno"} & vars(lean).keys()
    lean.socket.close()
    peer.close()


def test_filenoOnceLost():
    """
    A lost L{LeanServer}'s C{fileno} is -1, as a lost L{tcp.Server}'s.
    """
    lean, peer = accepted(LeanServer)
    lean.connectionLost(Failure(ConnectionDone()))
    assert lean.fileno() == -1
    peer.close()


def test_useLeanServer():
    """
    L{useLeanServer} has a plain TCP port build L{LeanServer}s, and leaves
    a port of another kind alone.
    """
    port = tcp.Port(0, Factory.forProtocol(Chatty), reactor=MemoryReactor())
    useLeanServer(port)
    assert port.transport is LeanServer

    class Other:
        transport = tcp.Server

    other = Other()
    useLeanServer(other)
    assert other.transport is tcp.Server


def test_listeningSocketAcceptsWithoutEnums(monkeypatch):
    """
    L{useLeanServer} has a listening port accept through a
    L{ListeningSocket}, which makes no enum member of the listening socket's
    family and type for each connection (C{socket.socket.accept} makes
    two), and gives a socket like C{socket.socket.accept}'s.
    """
    from twisted.internet import reactor

    conversions = []
    convert = socket._intenum_converter

    def counted(value, enumClass):
        conversions.append(enumClass)
        return convert(value, enumClass)

    port = reactor.listenTCP(0, Factory.forProtocol(Chatty), interface="127.0.0.1")
    plainListener = socket.create_server(("127.0.0.1", 0))
    plainListener.setblocking(False)
    try:
        useLeanServer(port)
        assert type(port.socket) is ListeningSocket
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        plainClient = socket.create_connection(plainListener.getsockname())
        monkeypatch.setattr(socket, "_intenum_converter", counted)
        lean, address = port.socket.accept()
        assert conversions == []
        plain, plainAddress = plainListener.accept()
        assert conversions == [socket.AddressFamily, socket.SocketKind]
        monkeypatch.undo()
        assert address == client.getsockname()
        assert (lean.family, lean.type, lean.proto) == (plain.family, plain.type, plain.proto)
        assert type(lean.family) is socket.AddressFamily
        assert lean.gettimeout() == plain.gettimeout()
        lean.sendall(b"hello")
        assert client.recv(5) == b"hello"
        for sock in (client, lean, plainClient, plain):
            sock.close()
    finally:
        plainListener.close()
        port.stopListening()


def test_writesGatheredOnlyWhileWaiting():
    """
    A L{LeanServer} writes what it is given, in order, and keeps a list for
    gathered writes only while some wait.
    """
    lean, peer = accepted(LeanServer)
    assert "_waitingWrites" not in vars(lean)
    lean.write(b"one ")
    lean.writeSequence([b"two ", b"three"])
    assert lean._tempDataBuffer == [b"one ", b"two ", b"three"]
    lean.doWrite()
    assert peer.recv(100) == b"one two three"
    assert "_waitingWrites" not in vars(lean)
    lean.socket.close()
    peer.close()


def test_listeningPortsHandNoDelayDown():
    """
    Where accepted sockets inherit C{TCP_NODELAY}, L{useLeanServer} sets it
    on the listening socket, and each connection has it without a system
    call of its own; turning it off still turns it off.
    """
    from twisted.internet import reactor

    if not NODELAY_INHERITED:
        pytest.skip("accepted sockets do not inherit TCP_NODELAY here")
    port = reactor.listenTCP(0, Factory.forProtocol(Chatty), interface="127.0.0.1")
    try:
        useLeanServer(port)
        assert port.transport is NoDelayServer
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        accepted, address = port.socket.accept()
        server = NoDelayServer(accepted, Chatty(), address, port, 1, reactor)
        setCalls = []
        server.socket = _Recording(accepted, setCalls)
        server.setTcpNoDelay(True)
        assert setCalls == []
        assert server.getTcpNoDelay()
        server.setTcpNoDelay(False)
        assert setCalls == [(socket.IPPROTO_TCP, socket.TCP_NODELAY, False)]
        assert not server.getTcpNoDelay()
        accepted.close()
        client.close()
    finally:
        port.stopListening()


class _Recording:
    """
    A socket whose options set are noted in C{calls}.
    """

    def __init__(self, sock, calls):
        self._sock = sock
        self._calls = calls

    def setsockopt(self, *args):
        self._calls.append(args)
        self._sock.setsockopt(*args)

    def __getattr__(self, name):
        return getattr(self._sock, name)

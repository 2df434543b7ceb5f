"""
L{chatd.edge.leantcp}: Twisted's TCP server transport, keeping less per
connection, says and does what Twisted's does.
"""

import socket

from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure

from chatd.edge.leantcp import LeanServer, useLeanServer


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

"""
L{chatd.edge.outbox.writeNow} hands a batch's pieces to the kernel as they
are (one C{sendmsg}, no copy joined per recipient), and whatever the kernel
does not take to the transport, in order.
"""

from twisted.internet import tcp
from twisted.internet.testing import StringTransport

from chatd.edge.outbox import SENDMSG_PIECES, writeNow
from test_leantcp import accepted


class Recording:
    """
    A socket that records what it is asked to send, taking at most
    C{take} bytes of each call.
    """

    def __init__(self, sock, take=None):
        self._sock, self.take, self.calls = sock, take, []

    def send(self, data):
        self.calls.append(("send", data))
        return self._sock.send(data[:self.take])

    def sendmsg(self, pieces):
        self.calls.append(("sendmsg", list(pieces)))
        if self.take is None:
            return self._sock.sendmsg(pieces)
        return self._sock.send(b"".join(pieces)[:self.take])

    def __getattr__(self, name):
        return getattr(self._sock, name)


def connection(take=None):
    server, peer = accepted(tcp.Server)
    real = server.socket
    server.socket = Recording(real, take)
    return server, peer, real


def received(peer, size):
    got = b""
    while len(got) < size:
        got += peer.recv(size - len(got))
    return got


def test_piecesGoInOneSendmsg():
    server, peer, real = connection()
    pieces = [b"one\r\n", b"two\r\nthree\r\n", b"four\r\n"]
    writeNow(server, pieces)
    assert server.socket.calls == [("sendmsg", pieces)]
    assert received(peer, 23) == b"one\r\ntwo\r\nthree\r\nfour\r\n"
    assert not server.dataBuffer and not server._tempDataLen
    real.close()
    peer.close()


def test_whatTheKernelLeavesGoesToTheTransportInOrder():
    server, peer, real = connection(take=7)
    writeNow(server, [b"one\r\n", b"two\r\n", b"three\r\n"])
    assert received(peer, 7) == b"one\r\ntw"
    assert b"".join(server._tempDataBuffer) + server.dataBuffer == b"o\r\nthree\r\n"
    real.close()
    peer.close()


def test_manyPiecesJoinedFirst():
    server, peer, real = connection()
    pieces = [b"%d\r\n" % i for i in range(SENDMSG_PIECES + 1)]
    writeNow(server, pieces)
    whole = b"".join(pieces)
    assert server.socket.calls == [("send", whole)]
    assert received(peer, len(whole)) == whole
    real.close()
    peer.close()


def test_otherTransportsWrittenJoined():
    transport = StringTransport()
    writeNow(transport, [b"a", b"b"])
    writeNow(transport, b"c")
    assert transport.value() == b"abc"

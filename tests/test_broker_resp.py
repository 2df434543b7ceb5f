"""
The Redis connection on the reactor (L{chatd.broker.resp.RedisProtocol}), on
an in-memory transport and clock: replies reach the right command in order,
whatever the network cut them into.
"""

import pytest
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.broker.resp import RedisError, RedisProtocol


class TCPTransport(StringTransport):
    noDelay = False

    def setTcpNoDelay(self, enabled):
        self.noDelay = enabled


def connected():
    clock = Clock()
    protocol = RedisProtocol(clock)
    transport = TCPTransport()
    protocol.makeConnection(transport)
    return protocol, transport, clock


def test_noDelay():
    """
    Nagle's algorithm is off: a command is sent at once, not held back
    until Redis acknowledges the last.
    """
    _, transport, _ = connected()
    assert transport.noDelay


def results(deferred):
    got = []
    deferred.addBoth(got.append)
    return got


def test_pipelinesWriteOnceAndGetTheirRepliesInOrder():
    """
    Each pipeline is one write of its commands in RESP; replies, arriving
    one byte at a time, go to the pipelines in the order they were sent,
    nil replies included.
    """
    protocol, transport, _ = connected()
    first = results(protocol.pipeline([(b"SET", b"k", b"v", b"NX"), (b"GET", b"k")]))
    second = results(protocol.pipeline([(b"XADD", "s", b"*", b"d", 12)]))
    assert transport.value() == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n"
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nd\r\n$2\r\n12\r\n")
    for byte in b"$-1\r\n$1\r\nv\r\n$3\r\n1-0\r\n":
        protocol.dataReceived(bytes([byte]))
    assert first == [[None, b"v"]]
    assert second == [[b"1-0"]]


def test_noCommandsNoWait():
    """
    A pipeline of nothing fires at once: no reply will come for it, and the
    ones after it must not wait behind it.
    """
    protocol, transport, _ = connected()
    assert results(protocol.pipeline([])) == [[]]
    assert transport.value() == b""
    after = results(protocol.pipeline([(b"GET", b"k")]))
    protocol.dataReceived(b"$-1\r\n")
    assert after == [[None]]


def test_anErrorFailsItsPipelineOnly():
    """
    An error reply fails the pipeline it answers; the next is answered.
    """
    protocol, _, _ = connected()
    failed = results(protocol.pipeline([(b"GET", b"k"), (b"NOPE",)]))
    ok = results(protocol.pipeline([(b"GET", b"k")]))
    protocol.dataReceived(b"$-1\r\n-ERR unknown command 'NOPE'\r\n$1\r\nx\r\n")
    assert isinstance(failed[0], Failure) and failed[0].check(RedisError)
    assert "unknown command" in str(failed[0].value)
    assert ok == [[b"x"]]


def test_lossFailsEveryWaitingPipeline():
    """
    A lost connection fails whatever waits; later pipelines fail at once.
    """
    protocol, transport, _ = connected()
    waiting = [results(protocol.pipeline([(b"GET", b"k")])) for _ in range(2)]
    protocol.connectionLost(Failure(ConnectionLost()))
    assert [w[0].check(ConnectionLost) for w in waiting] == [ConnectionLost] * 2
    later = results(protocol.pipeline([(b"GET", b"k")]))
    assert isinstance(later[0], Failure)


@pytest.mark.parametrize("patience", [0.0, 1.0])
def test_aSilentRedisIsGivenUp(patience):
    """
    Redis not answering within L{RedisProtocol.TIMEOUT} beyond the time a
    command asks it to wait: the connection is dropped, not waited on for
    ever.
    """
    protocol, transport, clock = connected()
    results(protocol.pipeline([(b"XREAD", b"BLOCK", 1000)], patience=patience))
    clock.advance(RedisProtocol.TIMEOUT + patience - 0.01)
    assert not transport.disconnecting and not protocol.closed
    clock.advance(0.02)
    assert protocol.closed


def test_answeredInTimeKeepsTheConnection():
    """
    Each answer moves the deadline to the next pipeline's own.
    """
    protocol, transport, clock = connected()
    results(protocol.pipeline([(b"GET", b"a")]))
    clock.advance(4)
    second = results(protocol.pipeline([(b"GET", b"b")]))
    protocol.dataReceived(b"$-1\r\n")
    clock.advance(4)
    assert not protocol.closed
    protocol.dataReceived(b"$-1\r\n")
    assert second == [[None]]
    clock.advance(100)
    assert not protocol.closed


def test_setupGoesFirstAndARefusalCloses():
    """
    The login and the choice of database go first on each connection; what
    is sent next waits behind them, and fails with the connection when
    Redis refuses them.
    """
    clock = Clock()
    protocol = RedisProtocol(clock, [(b"AUTH", "pw"), (b"SELECT", "3")])
    transport = TCPTransport()
    protocol.makeConnection(transport)
    after = results(protocol.pipeline([(b"GET", b"k")]))
    assert transport.value() == (b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
                                 b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
                                 b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
    protocol.dataReceived(b"-WRONGPASS invalid username-password pair\r\n+OK\r\n")
    assert protocol.closed and transport.disconnected
    protocol.connectionLost(Failure(ConnectionLost()))
    assert after[0].check(ConnectionLost)

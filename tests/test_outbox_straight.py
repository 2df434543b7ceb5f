"""
L{chatd.edge.outbox}: what an outbox writes goes straight to the socket of
a TCP transport that holds nothing, and behind what one holds otherwise, in
the order sent.
"""

import socket

import pytest

from chatd.edge.leantcp import LeanServer
from chatd.edge.outbox import Coalescer, Outbox

from test_leantcp import accepted


@pytest.fixture
def connection():
    transport, peer = accepted(LeanServer)
    peer.setblocking(False)
    yield transport, peer
    transport.socket.close()
    peer.close()


def received(peer):
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


def batched(transport, *lines):
    """
    An outbox of C{transport} sent C{lines} in one batch, not yet written.
    """
    coalescer = Coalescer()
    outbox = Outbox(transport, 1024, coalescer=coalescer)
    coalescer.__enter__()
    for line in lines:
        outbox.send(line)
    coalescer._depth -= 1
    return outbox


def test_idleTransportWrittenAround(connection):
    """
    A batch written while the transport holds nothing is sent on the socket
    at once, joined, and the transport is left holding nothing.
    """
    transport, peer = connection
    outbox = batched(transport, b"one\r\n", b"two\r\n")
    assert received(peer) == b""
    outbox.flush()
    assert received(peer) == b"one\r\ntwo\r\n"
    assert not transport.dataBuffer and not transport._tempDataLen


@pytest.mark.parametrize("held", ["tempData", "dataBuffer"])
def test_heldBytesGoFirst(connection, held):
    """
    While the transport holds bytes not yet sent (in either of its buffers),
    a batch goes behind them through the transport, not around it.
    """
    transport, peer = connection
    if held == "tempData":
        transport.write(b"held\r\n")
    else:
        transport.dataBuffer = b"held\r\n"
    transport.stopWriting()
    outbox = batched(transport, b"one\r\n", b"two\r\n")
    outbox.flush()
    assert received(peer) == b""
    transport.doWrite()
    assert received(peer) == b"held\r\none\r\ntwo\r\n"


def test_partialSendKeepsTheRest(connection):
    """
    What the socket does not take of a batch waits in the transport, after
    what it took.
    """
    transport, peer = connection
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = b"x" * 1_000_000 + b"\r\n"
    outbox = batched(transport, big, b"after\r\n")
    outbox.flush()
    assert transport._tempDataLen or transport.dataBuffer
    transport.stopWriting()
    got = b""
    while len(got) < len(big) + 7:
        got += received(peer)
        if transport._tempDataLen or len(transport.dataBuffer) > transport.offset:
            transport.doWrite()
            transport.stopWriting()
    assert got == big + b"after\r\n"

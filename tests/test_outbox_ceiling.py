"""
The outbox's ceiling on a reader that does not keep up, whatever its grace
period.  (The grace period itself, and a burst forgiven when the transport
drains, are tested through a server in test_limits.)
"""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.edge.outbox import Outbox


def test_pastTwiceTheLimitDroppedAtOnce():
    """
    However long the grace period, a backlog of more than twice the limit
    drops the reader at once: what a reader that stops reading can make the
    server keep is bounded by that, whatever the others send.
    """
    transport, clock, dropped = StringTransport(), Clock(), []
    outbox = Outbox(transport, 1000, onOverflow=dropped.append, clock=clock, grace=5.0)
    outbox.pauseProducing()
    for _ in range(20):
        outbox.send(b"x" * 99 + b"\n")
    assert outbox.pending == 2000
    clock.advance(4.9)
    assert not transport.disconnecting and dropped == []
    outbox.send(b"\n")
    assert transport.disconnecting
    assert dropped == [2001]
    assert outbox.pending == 0


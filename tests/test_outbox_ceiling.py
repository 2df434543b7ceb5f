"""
The outbox's ceiling on a reader that does not keep up, whatever its grace
period.  (The grace period itself, and a burst forgiven when the transport
drains, are tested through a server in test_limits.)
"""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.edge.outbox import Outbox


def _pausedOutbox():
    """
    An outbox with a 1,000-byte limit and a 5 s grace period whose transport
    takes nothing: its transport, clock, the backlogs dropped, and itself.
    """
    transport, clock, dropped = StringTransport(), Clock(), []
    outbox = Outbox(transport, 1000, onOverflow=dropped.append, clock=clock, grace=5.0)
    outbox.pauseProducing()
    return transport, clock, dropped, outbox


def test_pastTwiceTheLimitDroppedAtOnce():
    """
    However long the grace period, a backlog of more than twice the limit
    drops the reader at once: what a reader that stops reading can make the
    server keep is bounded by that, whatever the others send.
    """
    transport, clock, dropped, outbox = _pausedOutbox()
    for _ in range(20):
        outbox.send(b"x" * 99 + b"\n")
    assert outbox.pending == 2000
    clock.advance(4.9)
    assert not transport.disconnecting and dropped == []
    outbox.send(b"\n")
    assert transport.disconnecting
    assert dropped == [2001]
    assert outbox.pending == 0


def test_historyFilledWhilePausedCountsAgainstTheCeiling():
    """
    History that arrives for a reader whose transport is paused waits in the
    backlog like any line, and is held against the ceiling as it arrives, not
    only when someone next says something: a client that never reads and asks
    for /history again and again in a quiet room is dropped, rather than
    making the server keep every answer.
    """
    transport, clock, dropped, outbox = _pausedOutbox()
    place = outbox.hold()
    outbox.fill(place, b"h" * 1500)
    assert not transport.disconnecting and dropped == []
    place = outbox.hold()
    outbox.fill(place, b"h" * 600)
    assert transport.disconnecting
    assert dropped == [2100]
    assert outbox.pending == 0

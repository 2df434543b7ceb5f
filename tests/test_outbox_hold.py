"""
The outbox's held places: bytes that are not ready yet (history read off the
reactor thread) keep their place in the order of a connection's output.
"""

from twisted.internet.testing import StringTransport

from chatd.edge.outbox import Outbox


def makeOutbox(limit=1000):
    transport = StringTransport()
    return Outbox(transport, limit), transport


def test_sendWaitsBehindAnEmptyPlace():
    """
    What is sent after a place is kept waits until the place is filled, then
    comes out after it; what was sent before the place goes out at once.
    """
    outbox, transport = makeOutbox()
    outbox.send(b"before\n")
    place = outbox.hold()
    outbox.send(b"live\n")
    assert transport.value() == b"before\n"
    outbox.fill(place, b"history\n")
    assert transport.value() == b"before\nhistory\nlive\n"
    assert outbox.pending == 0
    outbox.send(b"after\n")
    assert transport.value() == b"before\nhistory\nlive\nafter\n"


def test_placesFilledOutOfOrderComeOutInOrder():
    """
    Two places filled in the reverse order still come out in the order they
    were kept, each with what was sent after it.
    """
    outbox, transport = makeOutbox()
    first = outbox.hold()
    outbox.send(b"a\n")
    second = outbox.hold()
    outbox.send(b"b\n")
    outbox.fill(second, b"second\n")
    assert transport.value() == b""
    outbox.fill(first, b"first\n")
    assert transport.value() == b"first\na\nsecond\nb\n"


def test_filledPlaceWaitsWhilePaused():
    """
    A place filled while the transport is paused is written, with what waits
    behind it, only when the transport resumes.
    """
    outbox, transport = makeOutbox()
    place = outbox.hold()
    outbox.pauseProducing()
    outbox.send(b"live\n")
    outbox.fill(place, b"history\n")
    assert transport.value() == b""
    assert outbox.pending == len(b"history\nlive\n")
    outbox.resumeProducing()
    assert transport.value() == b"history\nlive\n"


def test_linesBehindAPlaceAreNotTheReadersFault():
    """
    Live lines piling up behind an unfilled place, while the transport could
    take them, do not count against the reader: the connection stays.  Once
    the reader is too slow (the transport paused), the whole backlog counts.
    """
    outbox, transport = makeOutbox(limit=10)
    place = outbox.hold()
    outbox.send(b"12345\n")
    outbox.send(b"67890\n")
    assert not transport.disconnecting
    outbox.fill(place, b"")
    assert transport.value() == b"12345\n67890\n"
    outbox.pauseProducing()
    outbox.resumeProducing()
    place = outbox.hold()
    outbox.pauseProducing()
    outbox.send(b"12345\n")
    assert not transport.disconnecting
    outbox.send(b"67890\n")
    assert transport.disconnecting


def test_filledBacklogIsNotTheReadersDebt():
    """
    The bytes a filled place lets through at once may keep the transport
    busy for a while: lines arriving meanwhile may wait up to the limit on
    top of a limit's worth of those bytes, until the transport has drained;
    then the plain limit applies again.
    """
    outbox, transport = makeOutbox(limit=10)
    place = outbox.hold()
    outbox.send(b"a" * 30)
    outbox.fill(place, b"h" * 20)
    outbox.pauseProducing()
    outbox.send(b"b" * 20)
    assert not transport.disconnecting
    outbox.resumeProducing()
    outbox.pauseProducing()
    outbox.send(b"c" * 11)
    assert transport.disconnecting


def test_whatPlacesLetThroughIsExcusedUpToTheLimit():
    """
    However many filled places let bytes through before the transport
    pauses, a limit's worth of them is excused, no more: a client asking
    for history again and again without reading (the kernel taking the
    answers at first) had 13 times the limit kept waiting (a trial).
    """
    outbox, transport = makeOutbox(limit=10)
    for _ in range(20):
        outbox.fill(outbox.hold(), b"h" * 30)
    outbox.pauseProducing()
    outbox.send(b"b" * 20)
    assert not transport.disconnecting
    outbox.send(b"b")
    assert transport.disconnecting


def test_fillAfterCloseIsIgnored():
    """
    History that arrives after the connection is gone is dropped quietly.
    """
    outbox, transport = makeOutbox()
    place = outbox.hold()
    outbox.close()
    outbox.fill(place, b"history\n")
    assert transport.value() == b""


def test_finishLetsTheLastLinesOut():
    """
    A connection about to close stops waiting for history: what waits goes
    out at once, with its last line; nothing sent later, nor the history that
    arrives after, gets out; and the outbox stops producing for the transport
    (a TLS transport would not close otherwise).
    """
    outbox, transport = makeOutbox()
    place = outbox.hold()
    outbox.send(b"live\n")
    outbox.send(b"bye\n")
    outbox.finish()
    outbox.send(b"after\n")
    outbox.fill(place, b"history\n")
    assert transport.value() == b"live\nbye\n"
    assert transport.producer is None


def test_finishWritesBacklogOfPausedReader():
    """
    What waited for a paused transport is handed over when the connection
    finishes, rather than lost.
    """
    outbox, transport = makeOutbox()
    outbox.pauseProducing()
    outbox.send(b"queued\n")
    outbox.finish()
    assert transport.value() == b"queued\n"


def test_pausedBacklogIsJoinedKeepingOrderAndPlaces():
    """
    While the transport is paused, the backlog's sends are joined every
    L{COMPACT_SENDS} (a reader that stopped reading does not pin thousands of
    small objects), never across a place, and everything still comes out in
    order, counted once.
    """
    from chatd.edge.outbox import COMPACT_SENDS
    outbox, transport = makeOutbox(limit=10 ** 9)
    outbox.pauseProducing()
    sent = [b"%d\n" % i for i in range(COMPACT_SENDS * 3 + 7)]
    for data in sent[:COMPACT_SENDS + 3]:
        outbox.send(data)
    place = outbox.hold()
    for data in sent[COMPACT_SENDS + 3:]:
        outbox.send(data)
    assert len(outbox._backlog) < 20
    assert outbox.pending == sum(map(len, sent))
    outbox.resumeProducing()
    assert transport.value() == b"".join(sent[:COMPACT_SENDS + 3])
    outbox.fill(place, b"history\n")
    assert transport.value() == (b"".join(sent[:COMPACT_SENDS + 3]) + b"history\n"
                                 + b"".join(sent[COMPACT_SENDS + 3:]))
    assert outbox.pending == 0

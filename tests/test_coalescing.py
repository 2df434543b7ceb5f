"""
Output coalescing: while input is handled, each outbox gathers what it is
sent and hands it to its transport in one write (at the end of the read, or
of the reactor turn), in order, without loosening the slow-reader bound.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.edge.outbox import FLUSH_BYTES, FLUSH_SLICE, Coalescer, Outbox


class CountingTransport(StringTransport):
    """
    A transport that records each write it is given.
    """

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, data):
        self.writes.append(data)
        super().write(data)


def test_batchWritesOncePerOutboxInOrder():
    """
    Sends during a batch reach each transport as one write, holding every
    line in the order sent, only when the batch ends.
    """
    coalescer = Coalescer()
    a, b = CountingTransport(), CountingTransport()
    outA, outB = Outbox(a, 1024, coalescer=coalescer), Outbox(b, 1024, coalescer=coalescer)
    with coalescer:
        outA.send(b"one\r\n")
        outB.send(b"one\r\n")
        outA.send(b"two\r\n")
        outA.send(b"three\r\n")
        assert a.writes == b.writes == []
    assert a.writes == [b"one\r\ntwo\r\nthree\r\n"]
    assert b.writes == [b"one\r\n"]


def test_outsideBatchWritesAtOnce():
    """
    With no batch open (a timer, a storage callback), each send is written
    at once, as before coalescing.
    """
    coalescer = Coalescer()
    t = CountingTransport()
    out = Outbox(t, 1024, coalescer=coalescer)
    out.send(b"a\r\n")
    out.send(b"b\r\n")
    assert t.writes == [b"a\r\n", b"b\r\n"]


def test_nestedBatchesWriteAtTheOutermostEnd():
    """
    Only the outermost batch writes.
    """
    coalescer = Coalescer()
    t = CountingTransport()
    out = Outbox(t, 1024, coalescer=coalescer)
    with coalescer:
        with coalescer:
            out.send(b"a\r\n")
        assert t.writes == []
        out.send(b"b\r\n")
    assert t.writes == [b"a\r\nb\r\n"]


def test_closedOutboxDropsItsBatch():
    """
    A connection lost during the batch gets nothing written.
    """
    coalescer = Coalescer()
    t = CountingTransport()
    out = Outbox(t, 1024, coalescer=coalescer)
    with coalescer:
        out.send(b"a\r\n")
        out.close()
    assert t.writes == []


def test_bigBatchIsHandedOverEarlySoTheBoundHolds():
    """
    A batch that passes FLUSH_BYTES goes to the transport at once; when the
    transport then pauses the outbox, the rest of the batch waits in the
    backlog and counts against the limit, so a slow reader is still dropped.
    """
    coalescer = Coalescer()
    t = CountingTransport()
    dropped = []
    out = Outbox(t, 4096, onOverflow=lambda pending: dropped.append(pending),
                 coalescer=coalescer)
    line = b"x" * 1022 + b"\r\n"
    with coalescer:
        for _ in range(FLUSH_BYTES // len(line)):
            out.send(line)
        assert b"".join(t.writes) == line * (FLUSH_BYTES // len(line))
        out.pauseProducing()  # what a full transport does
        for _ in range(4):
            out.send(line)
        assert out.pending == 4 * len(line) and not dropped
        out.send(line)
    assert dropped == [5 * len(line)]
    assert t.disconnected


def test_clockedBatchWaitsForTheTurnsEnd():
    """
    With a clock, batches opened in one reactor turn are written together
    when the turn ends (a call for "now"), once per outbox, in order; a send
    outside a batch joins the waiting batch rather than overtaking it.
    """
    clock = Clock()
    coalescer = Coalescer(clock)
    transport = CountingTransport()
    outbox = Outbox(transport, 1024, coalescer=coalescer)
    with coalescer:
        outbox.send(b"one\n")
    with coalescer:
        outbox.send(b"two\n")
    outbox.send(b"three\n")
    assert transport.writes == []
    clock.advance(0)
    assert transport.writes == [b"one\ntwo\nthree\n"]


class Turns:
    """
    A clock whose calls for "now" run at the next reactor turn, as the
    reactor's do (L{Clock} runs those added while it runs, too).
    """

    def __init__(self):
        self.calls = []

    def callLater(self, delay, f, *args):
        self.calls.append((f, args))
        return f

    def turn(self):
        calls, self.calls = self.calls, []
        for f, args in calls:
            f(*args)


def test_clockedFlushWritesASliceAtATimeReadingBetween():
    """
    With a clock, a turn's output is written FLUSH_SLICE outboxes at a time,
    one reactor turn each: what is read in between joins the batches of the
    outboxes not yet written to (one write for both lines) and waits behind
    the rest for those already written to; every outbox gets every line once,
    in order.
    """
    clock = Turns()
    coalescer = Coalescer(clock)
    transports = [CountingTransport() for _ in range(FLUSH_SLICE + 2)]
    outboxes = [Outbox(t, 1024, coalescer=coalescer) for t in transports]
    with coalescer:
        for outbox in outboxes:
            outbox.send(b"one\n")
    clock.turn()
    assert [t.writes for t in transports] == [[b"one\n"]] * FLUSH_SLICE + [[]] * 2
    # A read between slices, then a send outside any batch.
    with coalescer:
        for outbox in outboxes:
            outbox.send(b"two\n")
    outboxes[-1].send(b"three\n")
    outboxes[0].send(b"three\n")
    clock.turn()
    assert transports[-1].writes == [b"one\ntwo\nthree\n"]
    assert transports[0].writes == [b"one\n", b"two\nthree\n"]
    assert transports[FLUSH_SLICE - 1].writes == [b"one\n"]
    clock.turn()
    assert transports[FLUSH_SLICE - 1].writes == [b"one\n", b"two\n"]
    assert [t.value() for t in transports[1:-2]] == [b"one\ntwo\n"] * (FLUSH_SLICE - 1)
    assert not clock.calls

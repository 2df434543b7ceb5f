"""
L{chatd.edge.deadlines}: many deadlines, one reactor timer.
"""

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from chatd.edge.deadlines import Deadlines


def made():
    clock = Clock()
    return clock, Deadlines(clock), []


def test_eachCalledAtItsTimeInOrder():
    clock, deadlines, called = made()
    deadlines.callLater(2, called.append, "b")
    deadlines.callLater(1, called.append, "a")
    deadlines.callLater(2, called.append, "c")
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0.999)
    assert called == []
    clock.advance(0.001)
    assert called == ["a"]
    clock.advance(1)
    assert called == ["a", "b", "c"]
    assert clock.getDelayedCalls() == [] and len(deadlines) == 0


def test_cancelledNotCalled():
    clock, deadlines, called = made()
    first = deadlines.callLater(1, called.append, "first")
    deadlines.callLater(1, called.append, "second")
    assert first.active()
    first.cancel()
    first.cancel()
    assert not first.active() and len(deadlines) == 1
    clock.advance(1)
    assert called == ["second"]


def test_calledIsNoLongerActive():
    clock, deadlines, called = made()
    deadline = deadlines.callLater(1, called.append, 1)
    clock.advance(1)
    assert not deadline.active()
    deadline.cancel()
    assert called == [1]


def test_anEarlierDeadlineMovesTheTimer():
    """
    A deadline shorter than those waiting (a reload shortened the login
    timeout) is met on time.
    """
    clock, deadlines, called = made()
    deadlines.callLater(60, called.append, "long")
    deadlines.callLater(5, called.append, "short")
    clock.advance(5)
    assert called == ["short"]
    clock.advance(55)
    assert called == ["short", "long"]


def test_cancelledDroppedFromTheHeap():
    """
    After a storm of logins, the cancelled deadlines are not kept until
    they would have come: only those still to come.
    """
    clock, deadlines, called = made()
    waiting = [deadlines.callLater(60, called.append, i) for i in range(1000)]
    for deadline in waiting[:-10]:
        deadline.cancel()
    assert len(deadlines._heap) < 100
    assert len(deadlines) == 10
    clock.advance(60)
    assert called == list(range(990, 1000))


def test_oneFailingCallStopsNoOther():
    """
    A call that fails is logged, and the others still come, as the
    reactor's timers would.
    """
    clock, deadlines, called = made()
    failures = []

    def observe(event):
        if "log_failure" in event:
            failures.append(event["log_failure"].type)

    def fail():
        raise RuntimeError("boom")

    deadlines.callLater(1, fail)
    deadlines.callLater(1, called.append, "after")
    deadlines.callLater(2, called.append, "later")
    globalLogPublisher.addObserver(observe)
    try:
        clock.advance(1)
        clock.advance(1)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert called == ["after", "later"]
    assert failures == [RuntimeError]


def test_setDuringACall():
    """
    A deadline set by a deadline's call (a connection that times out and
    another that opens meanwhile) is kept.
    """
    clock, deadlines, called = made()
    deadlines.callLater(1, lambda: deadlines.callLater(1, called.append, "next"))
    clock.advance(1)
    clock.advance(1)
    assert called == ["next"]

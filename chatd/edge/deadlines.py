"""
Deadlines that thousands of connections set and nearly all cancel: the login
timeout.

Every connection gets one as it opens, and most choose a nickname within
milliseconds.  A reactor timer each (C{callLater}) is a L{DelayedCall} made,
pushed onto the reactor's heap by Python comparisons and cancelled: some
30,000 instructions a login, 6% of a login's Python in a storm of them
(bench/loginprobe.py under valgrind).  Here a deadline is an entry on a heap
whose order C compares, and one reactor timer waits for the earliest.
"""

import heapq
from itertools import count

from twisted.logger import Logger

# Cancelled entries are dropped from the heap once there are more than this
# many and they are more than half of it (as Twisted's reactor does with its
# cancelled calls): after a storm of logins, none is kept for the length of
# a login timeout.
_COMPACT_AFTER = 50


class Deadline:
    """
    One call to make at a deadline, unless cancelled first: C{active()} and
    C{cancel()} as an L{IDelayedCall}'s.
    """

    __slots__ = ("_deadlines", "_call", "_args")

    def __init__(self, deadlines, call, args):
        self._deadlines = deadlines
        self._call = call
        self._args = args

    def active(self):
        return self._call is not None

    def cancel(self):
        if self._call is not None:
            self._call = self._args = None
            self._deadlines._cancelled()

    def _expire(self):
        call, args = self._call, self._args
        self._call = self._args = None
        call(*args)


class Deadlines:
    """
    A heap of L{Deadline}s on one clock, with one timer for the earliest.
    """

    _log = Logger()

    def __init__(self, clock):
        """
        @param clock: the L{IReactorTime} that keeps the timer.
        """
        self._clock = clock
        # (time, order, Deadline): the order tells apart deadlines of the
        # same time, so that no two Deadlines are ever compared.
        self._heap = []
        self._order = count()
        self._stale = 0
        self._timer = None

    def callLater(self, seconds, call, *args):
        """
        Call C{call(*args)} in C{seconds}, unless the returned L{Deadline}
        is cancelled first.
        """
        deadline = Deadline(self, call, args)
        when = self._clock.seconds() + seconds
        heapq.heappush(self._heap, (when, next(self._order), deadline))
        if self._timer is None:
            self._timer = self._clock.callLater(seconds, self._due)
        elif when < self._timer.getTime():
            # (Only after a reload has shortened the timeout.)
            self._timer.reset(seconds)
        return deadline

    def __len__(self):
        """
        How many deadlines are still to come.
        """
        return len(self._heap) - self._stale

    def _cancelled(self):
        self._stale += 1
        if self._stale > _COMPACT_AFTER and self._stale > len(self._heap) // 2:
            self._heap = [entry for entry in self._heap if entry[2].active()]
            heapq.heapify(self._heap)
            self._stale = 0

    def _due(self):
        self._timer = None
        heap = self._heap
        now = self._clock.seconds()
        while heap and heap[0][0] <= now:
            deadline = heapq.heappop(heap)[2]
            if deadline.active():
                try:
                    deadline._expire()
                except Exception:
                    # As the reactor does with a timer's: the others still
                    # expire.
                    self._log.failure("a deadline's call failed")
            else:
                self._stale -= 1
        if heap and self._timer is None:
            self._timer = self._clock.callLater(max(0.0, heap[0][0] - now), self._due)

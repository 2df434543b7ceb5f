"""
Python's garbage collector, set for a daemon whose objects live long.

CPython walks its youngest generation every 700 new container objects, and
every object it has ever kept once enough of them have piled up.  A chat
daemon's objects are mostly its connections' (a dozen each: protocol,
transport, outbox, session, user...), made once and kept for hours, and the
cycles the collector exists for are rare here: most of what it walks it walks
again and again for nothing.  In a storm of 10,000 logins (bench/loginprobe.py,
in process) it ran 178 times, twice over all 120,000 objects, 84-142 ms of a
0.7 s storm; walking the youngest every L{YOUNGEST} new objects instead, 11
times and never over everything: 15-29 ms.  What this costs: garbage in a
cycle is freed after up to L{YOUNGEST} allocations rather than 700, a few
hundred kilobytes at the most; the rest is freed, as ever, when its last
reference goes.  And CPython empties its free lists (let-go tuples of up to
20 items, among others) only in a full collection, which a storm now may not
have: what the daemon lets go in bulk must not be such tuples (the rooms'
name lists are lists for this: see L{chatd.core.chat.Room.listing}).
"""

import gc

from twisted.application import service

# New container objects between two walks of the youngest generation; the
# older generations keep CPython's proportions (every tenth walk of the one
# before).
YOUNGEST = 10_000


class CollectorService(service.Service):
    """
    Sets the collector's thresholds while the daemon runs, and puts back
    what they were when it stops (a test runs many daemons in one process).
    """

    _before = None

    def startService(self):
        self._before = gc.get_threshold()
        gc.set_threshold(YOUNGEST, *self._before[1:])
        super().startService()

    def stopService(self):
        if self._before is not None:
            gc.set_threshold(*self._before)
            self._before = None
        return super().stopService()

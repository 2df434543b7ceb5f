"""
Each connection's send queue, where the slow-reader policy lives.

Twisted's transport already coalesces every write of a reactor turn into one
C{send}.  The outbox registers itself as the transport's push producer: while
the transport's own buffer is full it is paused, and what arrives meanwhile
waits here.  When that backlog stays past the limit the reader is too slow to
keep, and the connection is dropped rather than letting its memory grow without
bound or letting it hold up anyone else.

"Stays" matters: everything the server does in one reactor turn is written out
only after the turn, so a burst (several people pasting into a big room at the
same moment) can put a reader that reads perfectly well past the limit for an
instant.  A backlog is only held against its reader once it has been over the
limit for C{grace} seconds without the transport draining in between; a
backlog of more than L{Outbox.BURST_FACTOR} times the limit is dropped at once,
so that a reader's memory stays bounded by that whatever the others send.
"""

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer


@implementer(IPushProducer)
class Outbox:
    """
    A bounded queue of bytes for one transport.

    @ivar limit: the most bytes that may wait here while the transport is
        paused.
    @ivar grace: seconds the backlog may stay over C{limit} before the
        connection is aborted.
    """

    # How far past the limit a burst may go while the grace period runs.
    BURST_FACTOR = 4

    __slots__ = ("_transport", "limit", "_clock", "grace", "_overSince", "_paused",
                 "_backlog", "_size", "_closed", "_sealed", "onOverflow")

    def __init__(self, transport, limit, clock, grace=0.0, onOverflow=None):
        """
        @param clock: an L{IReactorTime} that times how long the backlog has
            been over the limit.
        @param onOverflow: called with the size of the backlog when it has
            been over C{limit} for C{grace} seconds (or over the burst
            ceiling), before the connection is aborted.
        """
        self._transport = transport
        self.limit = limit
        self._clock = clock
        self.grace = grace
        self.onOverflow = onOverflow
        self._overSince = None
        self._paused = False
        self._backlog = []
        self._size = 0
        self._closed = False
        self._sealed = False
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} for the peer.
        """
        if self._closed or self._sealed:
            return
        if not self._paused:
            self._transport.write(data)
            return
        self._backlog.append(data)
        self._size += len(data)
        if self._size > self.limit:
            now = self._clock.seconds()
            if self._overSince is None:
                self._overSince = now
            if (now - self._overSince >= self.grace
                    or self._size > self.limit * self.BURST_FACTOR):
                self._overflow()

    @property
    def pending(self):
        """
        How many bytes wait in this outbox (not counting the transport's own
        buffer).
        """
        return self._size

    def seal(self):
        """
        Accept nothing more, but still write what is queued: the last line
        the peer gets is the last one sent before this.
        """
        self._sealed = True

    def close(self):
        """
        Drop whatever is queued and accept nothing more.
        """
        self._closed = True
        self._backlog = []
        self._size = 0

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        # The transport has written everything it held: the reader keeps up.
        self._paused = False
        self._overSince = None
        backlog, self._backlog, self._size = self._backlog, [], 0
        if backlog and not self._closed:
            self._transport.writeSequence(backlog)

    def stopProducing(self):
        self.close()

    def _overflow(self):
        pending = self._size
        self.close()
        if self.onOverflow is not None:
            self.onOverflow(pending)
        self._transport.abortConnection()

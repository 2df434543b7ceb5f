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

An outbox can also keep a place for bytes that are not ready yet (history,
read off the reactor thread): what is sent meanwhile waits behind that place,
so the reader sees the history first and the live lines after it, in order.
Those waiting lines are not the reader's fault: they count against the limit
only once the transport is paused, and what a filled place lets through at
once is not held against the reader until the transport has drained.
"""

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer


class _Place:
    """
    A place in the backlog for bytes that are not ready yet.
    """

    __slots__ = ("data",)

    def __init__(self):
        self.data = None


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
                 "_backlog", "_size", "_closed", "_sealed", "_places", "_released",
                 "onOverflow")

    def __init__(self, transport, limit, onOverflow=None, clock=None, grace=0.0):
        """
        @param onOverflow: called with the size of the backlog when it has
            been over C{limit} for C{grace} seconds (or over the burst
            ceiling), before the connection is aborted.
        @param clock: an L{IReactorTime} that times how long the backlog has
            been over the limit; needed only with a C{grace}.
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
        self._places = 0
        # Bytes filled places let through since the transport last drained.
        self._released = 0
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} for the peer.
        """
        if self._closed or self._sealed:
            return
        if not self._paused and not self._places:
            self._transport.write(data)
            return
        self._backlog.append(data)
        self._size += len(data)
        # Only a reader too slow to take its bytes is dropped: what waits
        # behind a place while the transport could take it waits for us (and
        # only as long as the place's owner lets it: see
        # ChatProtocol.showHistory).
        if self._paused and self._owed() > self.limit and self._overTooLong():
            self._overflow()

    def hold(self):
        """
        Keep a place, after everything sent so far, for bytes that will be
        ready later; whatever is sent meanwhile waits behind it.

        @return: the place, to hand to L{fill}.
        """
        place = _Place()
        self._backlog.append(place)
        self._places += 1
        return place

    def fill(self, place, data):
        """
        Put C{data} in the C{place} kept by L{hold}, and send what no longer
        waits for an empty place.
        """
        if self._closed or place.data is not None:
            return
        place.data = data
        self._places -= 1
        self._size += len(data)
        self._released += self._flush()

    def abandon(self):
        """
        Stop waiting for the places still empty: what waits behind them goes
        out now, and what is later filled into them is dropped.  For a
        connection about to close, whose last lines must not wait.
        """
        for item in self._backlog:
            if type(item) is _Place and item.data is None:
                item.data = b""
        self._places = 0
        self._flush()

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
        self._released = 0
        self._flush()

    def stopProducing(self):
        self.close()

    def _flush(self):
        """
        Write the backlog up to its first place still empty.

        @return: how many bytes were written.
        """
        if self._paused or self._closed:
            return 0
        ready = []
        for item in self._backlog:
            if type(item) is _Place:
                if item.data is None:
                    break
                item = item.data
            ready.append(item)
        if not ready:
            return 0
        del self._backlog[:len(ready)]
        written = sum(map(len, ready))
        self._size -= written
        if self._size <= self.limit:
            self._overSince = None
        self._transport.writeSequence(ready)
        return written

    def _owed(self):
        """
        The part of the backlog held against the reader.
        """
        return self._size - self._released

    def _overTooLong(self):
        """
        Whether a backlog over the limit is to be held against its reader
        now: past the burst ceiling, or over the limit for the grace period.
        """
        if not self.grace or self._owed() > self.limit * self.BURST_FACTOR:
            return True
        now = self._clock.seconds()
        if self._overSince is None:
            self._overSince = now
        return now - self._overSince >= self.grace

    def _overflow(self):
        pending = self._size
        self.close()
        if self.onOverflow is not None:
            self.onOverflow(pending)
        self._transport.abortConnection()

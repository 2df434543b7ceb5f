"""
Each connection's send queue, where the slow-reader policy lives.

Twisted's transport already coalesces every write of a reactor turn into one
C{send}.  The outbox registers itself as the transport's push producer: while
the transport's own buffer is full it is paused, and what arrives meanwhile
waits here.  When that backlog passes the limit the reader is too slow to keep,
and the connection is dropped rather than letting its memory grow without
bound or letting it hold up anyone else.

An outbox can also keep a place for bytes that are not ready yet (history,
read off the reactor thread): what is sent meanwhile waits behind that place,
so the reader sees the history first and the live lines after it, in order.
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
    """

    __slots__ = ("_transport", "limit", "_paused", "_backlog", "_size", "_closed",
                 "_places", "_grace", "onOverflow")

    def __init__(self, transport, limit, onOverflow=None):
        """
        @param onOverflow: called with no arguments when the backlog passes
            C{limit}, before the connection is aborted.
        """
        self._transport = transport
        self.limit = limit
        self.onOverflow = onOverflow
        self._paused = False
        self._backlog = []
        self._size = 0
        self._closed = False
        self._places = 0
        self._grace = 0
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} for the peer.
        """
        if self._closed:
            return
        if not self._paused and not self._places:
            self._transport.write(data)
            return
        self._backlog.append(data)
        self._size += len(data)
        # Only a reader too slow to take its bytes is dropped: what waits
        # behind a place, while the transport could take it, waits for us
        # (and only as long as the place's owner lets it: see
        # ChatProtocol.showHistory); what it let through at once when filled
        # is not the reader's debt either, until the transport has drained.
        if self._paused and self._size > self.limit + self._grace:
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
        self._grace += self._flush()

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
        # The transport has written everything: the reader owes nothing.
        self._paused = False
        self._grace = 0
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
        self._transport.writeSequence(ready)
        return written

    def _overflow(self):
        self.close()
        if self.onOverflow is not None:
            self.onOverflow()
        self._transport.abortConnection()

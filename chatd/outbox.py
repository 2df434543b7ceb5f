"""
Each connection's send queue, where the slow-reader policy lives.

Twisted's transport already coalesces every write of a reactor turn into one
C{send}.  The outbox registers itself as the transport's push producer: while
the transport's own buffer is full it is paused, and what arrives meanwhile
waits here.  When that backlog passes the limit the reader is too slow to keep,
and the connection is dropped rather than letting its memory grow without
bound or letting it hold up anyone else.
"""

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer


@implementer(IPushProducer)
class Outbox:
    """
    A bounded queue of bytes for one transport.

    @ivar limit: the most bytes that may wait here while the transport is
        paused.
    """

    __slots__ = ("_transport", "limit", "_paused", "_backlog", "_size", "_closed",
                 "onOverflow")

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
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} for the peer.
        """
        if self._closed:
            return
        if not self._paused:
            self._transport.write(data)
            return
        self._backlog.append(data)
        self._size += len(data)
        if self._size > self.limit:
            self._overflow()

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
        self._paused = False
        backlog, self._backlog, self._size = self._backlog, [], 0
        if backlog and not self._closed:
            self._transport.writeSequence(backlog)

    def stopProducing(self):
        self.close()

    def _overflow(self):
        self.close()
        if self.onOverflow is not None:
            self.onOverflow()
        self._transport.abortConnection()

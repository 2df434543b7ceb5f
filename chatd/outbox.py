"""
Each connection's send queue, where the slow-reader policy lives.

While a batch of input is handled (L{Coalescer}), what each outbox is sent
gathers in a list, and each outbox hands it to its transport in one write when
the batch ends: a line fanned out to a thousand members costs a thousand list
appends, not a thousand trips through the transport's C{write}.  Outside a
batch a send is written at once.  Twisted's transport then coalesces every
write of a reactor turn into one C{send}.

The outbox registers itself as the transport's push producer: while the
transport's own buffer is full it is paused, and what arrives meanwhile waits
here.  When that backlog passes the limit the reader is too slow to keep, and
the connection is dropped rather than letting its memory grow without bound or
letting it hold up anyone else.
"""

from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer


# A batch that grows past this is handed to the transport at once, so that the
# transport can pause the outbox (Twisted's own buffer size) and what follows
# counts against the limit.
FLUSH_BYTES = 64 * 1024


class Coalescer:
    """
    Gathers what outboxes are sent while a batch of input is handled, and
    writes each outbox's share with one C{write} when the batch ends.

    Use it as a context manager around the handling of one read; batches may
    nest, and only the outermost one writes.
    """

    __slots__ = ("_depth", "_waiting")

    def __init__(self):
        self._depth = 0
        self._waiting = []

    @property
    def active(self):
        """
        Whether a batch is open, so that sends should wait for its end.
        """
        return self._depth > 0

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            # In the order each outbox was first sent something; writing one
            # cannot add another, but loop in case a later change makes it so.
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                for outbox in waiting:
                    outbox.flush()
        return False

    def _wait(self, outbox):
        self._waiting.append(outbox)


@implementer(IPushProducer)
class Outbox:
    """
    A bounded queue of bytes for one transport.

    @ivar limit: the most bytes that may wait here while the transport is
        paused.
    """

    __slots__ = ("_transport", "limit", "_paused", "_backlog", "_size", "_closed",
                 "onOverflow", "_coalescer", "_batch", "_batchSize")

    def __init__(self, transport, limit, onOverflow=None, coalescer=None):
        """
        @param onOverflow: called with no arguments when the backlog passes
            C{limit}, before the connection is aborted.
        @param coalescer: the L{Coalescer} whose batches this outbox joins, or
            L{None} to write every send at once.
        """
        self._transport = transport
        self.limit = limit
        self.onOverflow = onOverflow
        self._coalescer = coalescer
        self._paused = False
        self._backlog = []
        self._size = 0
        self._closed = False
        self._batch = None
        self._batchSize = 0
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} for the peer.
        """
        if self._closed:
            return
        if not self._paused:
            # The fan-out's hot path: one append per delivery.
            batch = self._batch
            if batch is not None:
                batch.append(data)
                self._batchSize += len(data)
                if self._batchSize >= FLUSH_BYTES:
                    self.flush()
            elif self._coalescer is not None and self._coalescer.active:
                self._batch = [data]
                self._batchSize = len(data)
                self._coalescer._wait(self)
            else:
                self._transport.write(data)
            return
        self._backlog.append(data)
        self._size += len(data)
        if self._size > self.limit:
            self._overflow()

    def flush(self):
        """
        Hand what the current batch gathered to the transport, in one write.
        """
        batch, self._batch = self._batch, None
        if batch and not self._closed:
            self._transport.write(batch[0] if len(batch) == 1 else b"".join(batch))

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
        self._batch = None

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

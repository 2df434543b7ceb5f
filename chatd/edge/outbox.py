"""
Each connection's send queue, where the slow-reader policy lives.

While input is handled (L{Coalescer}), what each outbox is sent gathers (the
first bytes as they are, a list from the second on), and each outbox hands it
over in one write at the end of the reactor turn: a line fanned out to a
thousand members costs a thousand cheap steps, not a thousand trips through
the transport's C{write}.  A room's further lines in the turn cost no step per
member at all: the outbox shares the room's run (L{Outbox.share},
L{chatd.core.runs}) until it is sent anything else, and writes its share,
joined once for everyone who shared it, with the rest.  Outside a batch a send
is written at once.  Either way, while the transport holds nothing the bytes
go straight to the socket (see L{writeNow}).

The outbox registers itself as the transport's push producer: while
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
once (up to the limit's worth) is not held against the reader until the
transport has drained.
"""

from zope.interface import implementer
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer


# A batch that grows past this is handed to the transport at once, so that the
# transport can pause the outbox (Twisted's own buffer size) and what follows
# counts against the limit.
FLUSH_BYTES = 64 * 1024

# A backlog's newest sends are joined into one bytes object every this many:
# each send is a small object shared with the other recipients, which only this
# backlog keeps alive once they have been written to, and a reader that has
# stopped reading would otherwise pin thousands of them (a megabyte at the
# burst ceiling) in Python's small-object arenas, which are not given back
# once the reader is gone.
COMPACT_SENDS = 256

# With a clock, a turn's output is written this many outboxes at a time (about
# a millisecond of sends on loopback), the reactor reading in between: see
# Coalescer.
FLUSH_SLICE = 128
_ALL = float("inf")


class Coalescer:
    """
    Gathers what outboxes are sent while input is handled, and writes each
    outbox's share with one C{write} afterwards.

    Use it as a context manager around the handling of one read; batches may
    nest.  Without a clock, the outermost batch writes when it ends.  With
    one, the writing waits for the end of the reactor turn, so that every read
    of the turn (several senders talking to the same room) joins the same
    batches: one C{send} per recipient per turn.

    With a clock the writing goes L{FLUSH_SLICE} outboxes at a time, and the
    reactor reads between slices: a line that arrives while a line to a
    thousand members is being written (10 ms of sends) is read at once, not
    after them, and joins the batches of the members not yet written to, who
    then get both lines in one C{send}.  Each outbox's bytes still go out in
    the order sent (what it is sent while it waits joins its batch; once
    written, it waits in the next list).

    @ivar clock: an L{IReactorTime}, or L{None}.
    @ivar observe: L{None}, or called (by the metrics) with the seconds from
        the start of the first read whose output a list of outboxes holds to
        the end of that list's writing, read from C{timer}.
    """

    __slots__ = ("_depth", "_waiting", "_clock", "_scheduled", "observe", "timer",
                 "_began", "_writing", "_written", "_writingBegan", "lists")

    def __init__(self, clock=None):
        # How many batches are open (sends wait while any is), and the
        # outboxes with something waiting: L{Outbox.send} reads and adds to
        # them itself.
        self._depth = 0
        self._waiting = []
        self._clock = clock
        self._scheduled = None
        self.observe = None
        self.timer = None
        self._began = None
        # The list being written, slice by slice: how far, and when the
        # first read whose output it holds began.
        self._writing = ()
        self._written = 0
        self._writingBegan = None
        # How many lists have begun to be written.
        self.lists = 0

    def __enter__(self):
        if self._depth == 0 and self._began is None and self.observe is not None:
            self._began = self.timer()
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            if self._waiting:
                if self._clock is None:
                    self._flushAll()
                elif self._scheduled is None:
                    # A call for "now" runs when the reactor has handled
                    # every read it was told about.
                    self._scheduled = self._clock.callLater(0, self._flushAll)
            else:
                # Nothing waiting: nothing to time.
                self._began = None
        return False

    def _flushAll(self):
        self._scheduled = None
        # A list at a time, each in the order its outboxes were first sent
        # something (what an outbox is sent once written to waits in the
        # next); without a clock, every list at once.
        left = _ALL if self._clock is None else FLUSH_SLICE
        while left:
            writing, written = self._writing, self._written
            if written == len(writing):
                self._timeWritten()
                if not self._waiting:
                    return
                writing, self._waiting, written = self._waiting, [], 0
                self.lists += 1
                self._writing, self._writingBegan, self._began = writing, self._began, None
            end = min(len(writing), written + left)
            for outbox in writing[written:end]:
                outbox.flush()
            left -= end - written
            self._written = end
        if self._written < len(self._writing) or self._waiting:
            # The rest after the reactor has read what arrived meanwhile.
            self._scheduled = self._clock.callLater(0, self._flushAll)
        else:
            self._timeWritten()

    def _timeWritten(self):
        """
        The list being written is written: let it go, and time it.
        """
        began, self._writingBegan = self._writingBegan, None
        self._writing, self._written = (), 0
        if began is not None and self.observe is not None:
            self.observe(self.timer() - began)


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

    # How far past the limit a burst may go while the grace period runs: the
    # most a reader that stops reading can make us keep (the non-reader of
    # bench/ is dropped here, within a second), and still room for a turn in
    # which several people paste into the reader's rooms at once (see
    # README.md, "Clients that do not read").
    BURST_FACTOR = 2

    __slots__ = ("_transport", "limit", "_clock", "grace", "_overSince", "_paused",
                 "_backlog", "_size", "_closed", "_sealed", "_places", "_released",
                 "onOverflow", "_coalescer", "_batch", "_batchSize", "_straight",
                 "_whenFilled", "_tail", "_run", "_runStart")

    def __init__(self, transport, limit, onOverflow=None, clock=None, grace=0.0,
                 coalescer=None):
        """
        @param onOverflow: called with the size of the backlog when it has
            been over C{limit} for C{grace} seconds (or over the burst
            ceiling), before the connection is aborted.
        @param clock: an L{IReactorTime} that times how long the backlog has
            been over the limit; needed only with a C{grace}.
        @param coalescer: the L{Coalescer} whose batches this outbox joins, or
            L{None} to write every send at once.
        """
        self._transport = transport
        self.limit = limit
        self._clock = clock
        self.grace = grace
        self.onOverflow = onOverflow
        self._overSince = None
        self._paused = False
        # A list only once something waits (a pause, a place): most outboxes
        # never need one, and an empty list is 56 bytes per connection.
        self._backlog = ()
        self._size = 0
        self._closed = False
        self._sealed = False
        self._places = 0
        self._straight = True
        # Bytes filled places let through since the transport last drained.
        self._released = 0
        self._coalescer = coalescer
        # What this turn gathered: None, one bytes object, or a list of them.
        self._batch = None
        self._batchSize = 0
        self._whenFilled = None
        # How many sends at the end of the backlog (after any place) are
        # not yet joined.
        self._tail = 0
        # The run this outbox shares (see share), and from which line.
        self._run = None
        self._runStart = 0
        transport.registerProducer(self, True)

    def send(self, data):
        """
        Queue C{data} (L{bytes}) for the peer.
        """
        if self._straight:
            if self._run is not None:
                # What the room said so far goes first.
                self._takeShare()
            # The fan-out's hot path.  A turn's first bytes for this outbox
            # wait as they are, and only a second send makes a list: at a
            # moderate rate each recipient gets one line per turn, and a list
            # per recipient per line would be a container allocated per
            # delivery, which the garbage collector then counts, promotes
            # and walks (full collections of tens of milliseconds, measured
            # with 1,000 members at 100 lines/s).
            batch = self._batch
            if batch is None:
                # (The coalescer's state read directly: this runs once per
                # recipient per turn.)
                coalescer = self._coalescer
                if coalescer is not None and coalescer._depth:
                    self._batch = data
                    self._batchSize = len(data)
                    coalescer._waiting.append(self)
                else:
                    writeNow(self._transport, data)
                return
            if type(batch) is bytes:
                self._batch = [batch, data]
            else:
                batch.append(data)
            self._batchSize += len(data)
            if self._batchSize >= FLUSH_BYTES:
                self.flush()
            return
        if self._closed or self._sealed:
            return
        backlog = self._backlog or self._newBacklog()
        backlog.append(data)
        self._size += len(data)
        self._tail += 1
        if self._tail >= COMPACT_SENDS:
            tail = min(self._tail, len(backlog))
            joined = b"".join(backlog[-tail:])
            del backlog[-tail:]
            backlog.append(joined)
            self._tail = 0
        if self._readerTooSlow():
            self._overflow()

    def share(self, run):
        """
        Take the lines appended to C{run} (a L{chatd.core.runs.Run}) from now
        on, until this outbox is sent anything else or written: a room's
        line costs the fan-out one append for all who share it, and each
        writes the lines it shared, joined once for all of them, with the
        rest of its batch.

        @return: whether the outbox shares C{run}; if not (nothing batched
            now, or a pause, a place or a close keeps what it is sent
            back), the caller sends it each line itself.
        """
        coalescer = self._coalescer
        if not self._straight or coalescer is None or not coalescer._depth:
            return False
        if self._run is run:
            return True
        if self._run is not None:
            self._takeShare()
            if self._batchSize >= FLUSH_BYTES:
                self.flush()
                if not self._straight:
                    return False
        elif self._batch is None:
            coalescer._waiting.append(self)
        lines = self._runStart = len(run.lines)
        if lines == 1 and self._batch is run.lines[0]:
            # A run begun with a line this outbox holds alone: that line is
            # written as part of the run (one object for everyone), not
            # joined with it here.
            self._batch = None
            self._batchSize = 0
            self._runStart = 0
        self._run = run
        run.sharing += 1
        return True

    def turn(self):
        """
        Which of its coalescer's lists of outboxes what this outbox is sent
        now is written with (L{None} without a coalescer): to the fan-out,
        whether two lines came in one turn.
        """
        coalescer = self._coalescer
        return None if coalescer is None else coalescer.lists

    def unshare(self, run):
        """
        If this outbox shares C{run}, take its share as of now and leave it
        (the room's next line takes it back).
        """
        if self._run is run:
            self._takeShare()

    def _takeShare(self, written=False):
        """
        End this outbox's share of its run, adding the lines it shared to
        the batch (that they reach FLUSH_BYTES is seen by the caller, or at
        the next send: a run is at most RUN_BYTES, chatd.core.runs), because
        it is C{written} or sent something else.
        """
        run, self._run = self._run, None
        data = run.since(self._runStart)
        run.sharing -= 1
        if run.sharing:
            run.left.append(self)
            if not written:
                run.interrupted += 1
        else:
            run.ended()
        if data:
            batch = self._batch
            if batch is None:
                self._batch = data
            elif type(batch) is bytes:
                self._batch = [batch, data]
            else:
                batch.append(data)
            self._batchSize += len(data)

    def hold(self):
        """
        Keep a place, after everything sent so far, for bytes that will be
        ready later; whatever is sent meanwhile waits behind it.

        @return: the place, to hand to L{fill}.
        """
        # What this read sent so far goes ahead of the place.
        self.flush()
        place = _Place()
        (self._backlog or self._newBacklog()).append(place)
        self._tail = 0
        self._places += 1
        self._straight = False
        return place

    def _newBacklog(self):
        self._backlog = []
        return self._backlog

    def whenFilled(self, then):
        """
        Call C{then} once no place kept by L{hold} is still empty: at once if
        none is.
        """
        if not self._places:
            then()
        else:
            self._whenFilled = then

    def fill(self, place, data):
        """
        Put C{data} in the C{place} kept by L{hold}, and send what no longer
        waits for an empty place.
        """
        if self._closed or place.data is not None:
            return
        place.data = data
        self._places -= 1
        self._updateStraight()
        self._size += len(data)
        self._released += self._flush()
        # What a paused transport cannot take now is the reader's to take,
        # history as much as any line: held against it at once, not at the
        # next send (a quiet room may have none, and a client that asks for
        # /history again and again without reading would make us keep every
        # answer).
        if self._readerTooSlow():
            self._overflow()
            return
        if not self._places and self._whenFilled is not None:
            then, self._whenFilled = self._whenFilled, None
            then()

    def flush(self):
        """
        Hand what the current batch gathered to the transport, in one write.
        (A batch only gathers while nothing waits in the backlog, so it goes
        ahead of the backlog.)
        """
        if self._run is not None:
            self._takeShare(written=True)
        batch, self._batch = self._batch, None
        # (A large int is an object of its own, kept by every idle outbox.)
        self._batchSize = 0
        if batch and not self._closed:
            writeNow(self._transport, batch if type(batch) is bytes else b"".join(batch))

    @property
    def pending(self):
        """
        How many bytes wait in this outbox (not counting the transport's own
        buffer).
        """
        return self._size

    def finish(self):
        """
        Send what is queued now, then accept nothing more, and stop producing
        for the transport: a connection about to close writes its last lines
        and goes, without waiting for history still being read (its places
        are dropped) or for a reader to catch up first.  A TLS transport does
        not close while a producer is registered.
        """
        self.flush()
        self._sealed = True
        self._straight = False
        ready = [item.data if type(item) is _Place else item for item in self._backlog]
        self._backlog, self._places, self._size = (), 0, 0
        ready = [data for data in ready if data]
        if ready and not self._closed:
            self._transport.writeSequence(ready)
        self._transport.unregisterProducer()

    def close(self):
        """
        Drop whatever is queued and accept nothing more.
        """
        self._closed = True
        self._straight = False
        self._backlog = ()
        self._size = 0
        self._batch = None

    def pauseProducing(self):
        if self._run is not None:
            # What it shared so far was sent before the pause.
            self._takeShare()
        self._paused = True
        self._straight = False

    def resumeProducing(self):
        # The transport has written everything it held: the reader keeps up.
        self._paused = False
        self._updateStraight()
        self._overSince = None
        self._released = 0
        self._flush()

    def stopProducing(self):
        self.close()

    def _updateStraight(self):
        """
        Note whether a send may skip the backlog: only while nothing keeps
        it there (a pause, a place still empty) and the outbox is open.
        """
        self._straight = not (self._closed or self._sealed or self._paused or self._places)

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

    def _readerTooSlow(self):
        """
        Whether the backlog is to be held against its reader now.  Only a
        reader too slow to take its bytes is dropped: what waits behind a
        place while the transport could take it waits for us (and only as
        long as the place's owner lets it: see ChatProtocol.showHistory).
        """
        return self._paused and self._owed() > self.limit and self._overTooLong()

    def _owed(self):
        """
        The part of the backlog held against the reader: all of it but up
        to a limit's worth of what filled places let through since the
        transport last drained.  (Not all of that: a client asking for
        history again and again without reading, whose answers the kernel
        took at first, had 13 times the limit kept waiting.)
        """
        return self._size - min(self._released, self.limit)

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

    def overflowed(self, pending):
        """
        The backlog (C{pending} bytes) has been dropped, and the connection
        is about to be aborted: call C{onOverflow}, if any.  (A subclass may
        act itself instead, rather than keep a callable in every outbox.)
        """
        if self.onOverflow is not None:
            self.onOverflow(pending)

    def _overflow(self):
        pending = self._size
        self.close()
        self.overflowed(pending)
        self._transport.abortConnection()


def writeNow(transport, data):
    """
    Hand C{data} to C{transport}'s peer, straight to the socket when
    nothing is waiting before it.

    A transport's write only buffers: the reactor sends on its next turn,
    after watching the socket for writability (an epoll_ctl to start, one
    to stop), for every recipient of every message.  When the transport
    holds nothing, the kernel can usually take the bytes at once, in
    order; only what it does not take goes through the transport, whose
    buffering and producer pauses then apply as before.
    """
    # Whether an open TCP transport holds no bytes (only a plain TCP
    # connection is written around: a TLS one must encrypt first), tested
    # here rather than in a function of its own: this runs once per
    # recipient per turn.  A transport that has written all it held empties
    # its dataBuffer (FileDescriptor.doWrite), so an empty one is enough,
    # without comparing its length with the offset written.
    if (isinstance(transport, tcp.Connection) and not transport._tempDataLen
            and not transport.dataBuffer
            and transport.connected and not transport.disconnecting):
        try:
            sent = transport.socket.send(data)
        except OSError:
            # Full (EAGAIN) or broken: the transport finds out which on
            # its own next write and reports a broken connection itself.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


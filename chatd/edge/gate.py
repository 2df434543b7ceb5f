"""
The gate every connection of every front end passes: one count of open
connections against the server's limits, one batching of output per reactor
turn, one pause of all input while storage catches up, and one shutdown.

A second listener, or a second front end, shares the gate rather than keeping
counts of its own, so C{--max-connections} means all connections.
"""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from chatd.core import events
from chatd.edge.limits import ConnectionCounter, Limits
from chatd.edge.deadlines import Deadlines
from chatd.edge.outbox import Coalescer


class Counts:
    """
    What the connections of one gate did, counted once per event (a line, a
    refusal, a flood delay; never per delivery) for the metrics, which read
    it when scraped (see L{chatd.ops.metrics}).

    @ivar accepted: connections admitted, by front end.
    @ivar refused: connections refused by the limits, by reason
        (C{server_full}, C{address_full}).
    @ivar lines: lines (or frames) of input acted on.
    @ivar floodDelays: times a connection's input was held for flooding.
    @ivar floodDelaySeconds: how long those holds were, in all.
    @ivar sendQueueDrops: connections dropped for not reading.
    @ivar sentBytes: bytes the connections queued for their peers beyond
        what the fan-out delivered (replies, history, notices), counted per
        send, never per recipient.
    """

    __slots__ = ("accepted", "refused", "lines", "floodDelays", "floodDelaySeconds",
                 "sendQueueDrops", "sentBytes")

    def __init__(self):
        self.accepted = {}
        self.refused = {}
        self.lines = 0
        self.floodDelays = 0
        self.floodDelaySeconds = 0.0
        self.sendQueueDrops = 0
        self.sentBytes = 0


def frontendOf(wire):
    """
    The name of the front end whose wire format C{wire} is (a class or an
    instance): its own C{frontend} attribute, or its package's name
    (C{chatd.line.wire.LineWire} is C{"line"}).
    """
    name = getattr(wire, "frontend", None)
    if name:
        return name
    module = wire.__module__ if isinstance(wire, type) else type(wire).__module__
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "chatd" else module


@implementer(IPushProducer)
class Gate:
    """
    The connections of one server, whatever their front end.

    @ivar clock: the L{IReactorTime} every connection's timers use.
    @ivar limits: the server's L{Limits}.
    @ivar connections: the open, admitted L{chatd.edge.connection.Connection}s.
    @ivar coalescer: the L{Coalescer} that batches every connection's output
        while input is handled.
    @ivar loginDeadlines: the L{Deadlines} of the connections' login
        timeouts.
    @ivar stopping: whether the server is shutting down and ignores input.
    @ivar inputPaused: whether every connection's input waits (see
        L{pauseProducing}).
    @ivar counts: the L{Counts} of what its connections did.
    """

    # How long a shutdown waits for clients to take their last lines.
    SHUTDOWN_GRACE = 3.0

    def __init__(self, clock, limits=Limits(), coalesceTurns=False):
        """
        @param coalesceTurns: whether output waits for the end of the reactor
            turn (on C{clock}) rather than of each read; see L{Coalescer}.
        """
        self.clock = clock
        self.limits = limits
        self.connections = set()
        self.coalescer = Coalescer(clock if coalesceTurns else None)
        self.loginDeadlines = Deadlines(clock)
        self.stopping = False
        self.inputPaused = False
        self._counter = ConnectionCounter(limits.maxConnections, limits.maxPerAddress)
        self._allClosed = None
        self.counts = Counts()

    def admit(self, connection):
        """
        Count C{connection} among the open ones if the limits allow it.

        @return: L{None} when admitted, else why not.
        """
        refusal = self.admitAddress(connection.address)
        if refusal is None:
            self.connections.add(connection)
            frontend = frontendOf(connection.wire)
            self.counts.accepted[frontend] = self.counts.accepted.get(frontend, 0) + 1
        return refusal

    def admitAddress(self, address):
        """
        Count a connection from the IP address C{address} (L{None}: none)
        that is not a L{chatd.edge.connection.Connection} yet, if the limits
        allow it: an HTTP request of the web front end, which may become a
        WebSocket.

        @return: L{None} when admitted (call L{releaseAddress} when it
            closes, or becomes a counted connection), else why not.
        """
        refusal = self._counter.admit(address)
        if refusal is not None:
            why = "server_full" if refusal == ConnectionCounter.FULL else "address_full"
            self.counts.refused[why] = self.counts.refused.get(why, 0) + 1
        return refusal

    def releaseAddress(self, address):
        """
        Forget a connection counted by L{admitAddress}.
        """
        self._counter.release(address)

    def setLimits(self, limits):
        """
        Apply new L{Limits} (a reload): to connections from now on, to the
        counts of open ones, and to every open connection (see
        L{chatd.edge.connection.Connection.setLimits}).
        """
        self.limits = limits
        self._counter.setMaxima(limits.maxConnections, limits.maxPerAddress)
        for connection in list(self.connections):
            connection.setLimits(limits)

    def census(self):
        """
        The open connections by front end and state: C{logging_in} until
        they have a nickname, C{chatting} after.

        @return: a L{dict} from (front end, state) to a count.
        """
        counts = {}
        for connection in list(self.connections):
            session = connection.session
            state = "chatting" if session is not None and session.nick else "logging_in"
            key = (frontendOf(connection.wire), state)
            counts[key] = counts.get(key, 0) + 1
        return counts

    @property
    def full(self):
        """
        Whether a new connection would be refused because the server is full.
        """
        return self._counter.total >= self.limits.maxConnections

    def fromAddress(self, address):
        """
        How many open connections come from the IP address C{address}.
        """
        return self._counter.fromAddress(address)

    def forget(self, connection):
        """
        An admitted C{connection} has closed.  Safe to call more than once.
        """
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self._counter.release(connection.address)
        if not self.connections and self._allClosed is not None:
            self._allClosed.callback(None)

    # The push producer that the history store pauses while its writer is
    # behind: every connection's input.

    def pauseProducing(self):
        """
        Stop reading from every connection (storage is behind): senders wait,
        in order, and memory stays flat.
        """
        self.inputPaused = True
        for connection in list(self.connections):
            connection.holdInput("storage")

    def resumeProducing(self):
        self.inputPaused = False
        for connection in list(self.connections):
            connection.releaseInput("storage")

    def stopProducing(self):
        pass

    def shutDown(self):
        """
        Tell every client the server is going down, stop acting on their
        input and close their connections once what was queued for them is
        written; clients that do not take it within L{SHUTDOWN_GRACE} seconds
        are cut off.

        @return: a L{Deferred} that fires when every connection is closed.
        """
        self.stopping = True
        self._allClosed = Deferred()
        if not self.connections:
            self._allClosed.callback(None)
            return self._allClosed
        connections = list(self.connections)
        # Every notice is sent before any connection is let go, so that the
        # notice is each client's last line, not others leaving after it.
        for connection in connections:
            connection.sendLast(connection.wire.encode(events.ShuttingDown()))
        for connection in connections:
            connection.letGo()
        cutOff = self.clock.callLater(self.SHUTDOWN_GRACE, self._cutOff)
        self._allClosed.addBoth(lambda result: cutOff.active() and cutOff.cancel())
        return self._allClosed

    def _cutOff(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()

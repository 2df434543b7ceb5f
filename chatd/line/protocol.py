"""
The per-connection edge: a thin C{LineReceiver} that turns bytes into clean
lines, hands them to the commands and writes replies into its outbox.
"""

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver

from chatd import __version__
from chatd.line import wire
from chatd.line.commands import dispatch
from chatd.core.chat import ChatError, User
from chatd.edge.limits import ACCEPT, DISCONNECT, ConnectionCounter, FloodGate, Limits
from chatd.core.names import NICK_RULES
from chatd.edge.outbox import Coalescer, Outbox
from chatd.edge.sanitize import TelnetFilter, cleanText

MAX_LINE_BYTES = 2048


class ChatProtocol(LineReceiver):
    """
    One connected user speaking the line protocol.
    """

    # Input lines end in LF; a CR before it is dropped, so CRLF works too.
    delimiter = b"\n"
    # One more than the limit, for the CR of a CRLF; lineReceived checks the
    # limit itself once the CR is gone.
    MAX_LENGTH = MAX_LINE_BYTES + 1

    _log = Logger()

    user = None
    _quitReason = None
    # Admitted by the connection limits and not yet lost.
    _live = False
    _idling = False

    # Framework callbacks

    def connectionMade(self):
        self.core = self.factory.core
        address = self.transport.getPeer()
        self.peer = _describe(address)
        self.address = getattr(address, "host", None)
        refusal = self.factory.admit(self)
        if refusal:
            # Not a user yet: one line saying why, written straight to the
            # transport, and nothing read from it.
            self.transport.write(wire.notice(f"Connection refused: {refusal}")
                                 .encode("utf-8") + wire.DELIMITER)
            self.transport.loseConnection()
            self._log.info("refused {peer}: {why}", peer=self.peer, why=refusal)
            return
        self._live = True
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self._telnet = TelnetFilter(self._telnetReply)
        self._skipping = False
        self._replay = None
        limits = self.factory.limits
        self.outbox = Outbox(self.transport, limits.sendQueueBytes,
                             self._sendQueueOverflowed, clock=self.factory.clock,
                             grace=limits.sendQueueGrace,
                             coalescer=self.factory.coalescer)
        # The core sees the address only as text, to match bans against.
        self.user = User(self.outbox, wire.LineWire, host=self.address,
                         hangUp=self._hangUp)
        self._flood = FloodGate(self.factory.clock, limits.floodRate,
                                limits.floodBurst, limits.floodKick)
        # One timer: until a nickname is chosen it is the login timeout, then
        # the idle timeout (if any), pushed back by every line.
        self._timeout = None
        if limits.loginTimeout:
            self._timeout = self.factory.clock.callLater(
                limits.loginTimeout, self._closeBecause,
                f"no nickname chosen within {limits.loginTimeout:g} seconds")
        try:
            self.core.admit(self.user)
        except ChatError as e:
            self._log.info("refused {peer}: {why}", peer=self.peer, why=str(e))
            self._closeWith(wire.error(str(e)))
            return
        self.notice(f"Welcome to chatd {__version__}. Lines you type go to your "
                    "current room; commands start with /, and /help lists them.")
        self.prompt(f"Choose a nickname ({NICK_RULES}):")

    def dataReceived(self, data):
        if not self._live:
            return
        # Everything this read makes the server say reaches each recipient's
        # transport in one write (see Coalescer).
        with self.factory.coalescer:
            self._linesReceived(data)

    def _linesReceived(self, data):
        data = self._telnet.feed(data)
        while data:
            if self._skipping:
                # The rest of an over-long line: drop it up to its end.
                end = data.find(b"\n")
                if end < 0:
                    return
                data = data[end + 1:]
                self._skipping = False
            super().dataReceived(data)
            data, self._replay = self._replay, None

    def lineLengthExceeded(self, line):
        # LineReceiver hands over the long line and everything after it; keep
        # what follows the long line's end so no other line is lost.
        end = line.find(b"\n")
        if end < 0:
            self._skipping = True
        else:
            self._replay = line[end + 1:]
        self._tooLong()

    def lineReceived(self, raw):
        if self.transport.disconnecting or self.factory.stopping:
            return
        verdict = self._flood.admit()
        if verdict is not ACCEPT:
            self._flooded(verdict)
            return
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            self._tooLong()
            return
        text = cleanText(raw)
        if text:
            try:
                answering = dispatch(self, text)
            except ChatError as e:
                self.error(str(e))
                if self.user.nick is None:
                    self.prompt("Choose another nickname:")
            else:
                if answering is None:
                    self._promptIfNoNick()
                else:
                    # The answer (to /ghost, say) comes once a password is
                    # checked: ask again only after it, and only if needed.
                    answering.addCallback(lambda _: self._promptIfNoNick())
        self._heard()

    def _promptIfNoNick(self):
        if self.user.nick is None and self._live and not self.transport.disconnecting:
            self.prompt("Choose a nickname:")

    def _tooLong(self):
        self.error(f"line too long: at most {MAX_LINE_BYTES} bytes; "
                   "it was not delivered")

    def connectionLost(self, reason):
        if not self._live:
            # Refused at the door, or already gone.
            return
        self._live = False
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self.factory.forget(self)
        self.outbox.close()
        if self._quitReason is None and self.factory.stopping:
            self._quitReason = "server shutdown"
        why = self._quitReason or _lossReason(reason)
        self.core.disconnect(self.user, why)
        self._log.info("{nick} ({peer}) disconnected: {why}",
                       nick=self.user.nick or "-", peer=self.peer, why=why)

    # What the commands call

    def quit(self, reason):
        self._quitReason = reason or "quit"
        self.core.disconnect(self.user, reason)
        self._closeWith(wire.reply("bye"))

    def _hangUp(self):
        # The core lets a user go (a kick, a ban) after telling them why:
        # that is their last line, and it must get out before the close.
        self._closeWith(None)

    def _closeWith(self, line):
        """
        Close the connection once C{line} (if any) and everything queued
        before it are written.
        """
        self.sendLast(line)
        self.transport.loseConnection()

    def sendLast(self, line):
        """
        Send C{line} (if any) as this connection's last, ahead of any history
        still being read, and nothing after it: the connection is about to
        close.
        """
        if line is not None:
            self._sendLine(line)
        self.outbox.finish()

    def notice(self, text):
        self._sendLine(wire.notice(text))

    def reply(self, text):
        self._sendLine(wire.reply(text))

    def error(self, text):
        self._sendLine(wire.error(text))

    def prompt(self, text):
        self._sendLine(wire.prompt(text))

    def showHistory(self, found, header=None):
        """
        Show the room lines C{found} fires with, marked as history, after
        everything already sent to this user and before anything sent
        meanwhile.

        @param found: a L{Deferred} firing with a list of events.
        @param header: called with that list; returns a reply to show before
            the lines, or L{None}.
        """
        if found.called:
            # Answered already (a room with nothing stored): there is nothing
            # to keep a place for, nor a timer to set.
            found.addCallbacks(self._historyText, self._historyFailed,
                               callbackArgs=(header,))
            found.addCallback(lambda data: data and self.outbox.send(data))
            return
        place = self.outbox.hold()
        # Live lines wait behind the place, unbounded by the send queue (the
        # reader is not the slow one): a store that does not answer in time
        # is given up on, and its late answer dropped.
        tooLate = self.factory.clock.callLater(
            self.factory.HISTORY_WAIT, self.outbox.fill, place,
            wire.error("history took too long and was skipped")
            .encode("utf-8") + wire.DELIMITER)

        def arrived(data):
            if tooLate.active():
                tooLate.cancel()
            self.outbox.fill(place, data)

        found.addCallbacks(self._historyText, self._historyFailed,
                           callbackArgs=(header,))
        found.addCallback(arrived)

    def _historyText(self, stored, header):
        """
        The bytes that show the room lines C{stored}, after C{header}'s reply.
        """
        lines = [self.user.wire.encodeHistory(e) for e in stored]
        text = header(stored) if header is not None else None
        if text is not None:
            lines.insert(0, wire.reply(text).encode("utf-8") + wire.DELIMITER)
        return b"".join(lines)

    def _historyFailed(self, failure):
        """
        The bytes that tell the user history could not be read.
        """
        self._log.failure("history for {nick} failed", failure, nick=self.user.nick)
        return wire.error("history is unavailable right now").encode("utf-8") + wire.DELIMITER

    def _telnetReply(self, data):
        self.outbox.send(data)

    def _sendLine(self, line):
        self.outbox.send(line.encode("utf-8") + wire.DELIMITER)

    def _heard(self):
        """
        A line arrived: once the user has a nickname, the idle timeout starts
        over.
        """
        if self.user.nick is None or not self._live:
            # The login timeout runs from the connection, not the last line.
            return
        idle = self.factory.limits.idleTimeout
        if self._timeout is not None and self._timeout.active():
            if self._idling:
                self._timeout.reset(idle)
                return
            self._timeout.cancel()
        if idle:
            self._idling = True
            self._timeout = self.factory.clock.callLater(
                idle, self._closeBecause, f"idle for {idle:g} seconds")

    def _flooded(self, verdict):
        if verdict is DISCONNECT:
            self._closeBecause("flooding")
            return
        self.error("you are sending lines too fast; this one was not delivered")

    def _closeBecause(self, why):
        """
        Close the connection for C{why}, after telling the user.
        """
        self._quitReason = why
        self._closeWith(wire.notice(f"Closing your connection: {why}"))
        self._log.info("closing {nick} ({peer}): {why}",
                       nick=self.user.nick or "-", peer=self.peer, why=why)

    def _sendQueueOverflowed(self, pending):
        self._quitReason = "send queue exceeded"
        self._log.warn("dropping {nick} ({peer}): not reading; {pending} bytes "
                       "waiting to be sent (limit {limit} bytes, for at most "
                       "{grace:g} seconds)", nick=self.user.nick or "-",
                       peer=self.peer, pending=pending, limit=self.outbox.limit,
                       grace=self.outbox.grace)


class ChatFactory(Factory):
    """
    Builds a L{ChatProtocol} for each connection, all sharing one core, and
    keeps track of the open connections so that shutting down can close them.

    @ivar limits: the server's L{Limits}.
    @ivar connections: the open (admitted) L{ChatProtocol}s.
    @ivar replay: how many lines of history a room shows on joining it.
    @ivar stopping: whether the server is shutting down and ignores input.
    @ivar coalescer: the L{Coalescer} that batches every connection's output
        while one read is handled.
    """

    protocol = ChatProtocol
    noisy = False

    # How long a shutdown waits for clients to take their last lines.
    SHUTDOWN_GRACE = 3.0

    # How long live lines wait for history being read before it is skipped.
    HISTORY_WAIT = 3.0

    def __init__(self, core, clock, limits=Limits(), replay=20, coalesceTurns=False):
        """
        @param limits: the L{Limits} every connection is held to.
        @param replay: how many of a room's last lines a user who joins it is
            shown, when the core keeps history.
        @param coalesceTurns: whether output waits for the end of the reactor
            turn (on C{clock}) rather than of each read; see L{Coalescer}.
        """
        self.core = core
        self.clock = clock
        self.limits = limits
        self.replay = replay
        self._counter = ConnectionCounter(limits.maxConnections,
                                          limits.maxPerAddress)
        self.connections = set()
        self.coalescer = Coalescer(clock if coalesceTurns else None)
        self.stopping = False
        self._allClosed = None

    def admit(self, connection):
        """
        Count C{connection} among the open ones if the connection limits
        allow it.

        @return: L{None} when admitted, else why not.
        """
        refusal = self._counter.admit(connection.address)
        if refusal is None:
            self.connections.add(connection)
            if self.readingPaused:
                connection.transport.pauseProducing()
        return refusal

    # IPushProducer, for the history store (see IHistoryStore.registerProducer):
    # while it catches up, no connection is read, new ones included.  (A
    # stopgap until the seam's Gate does this for every front end.)

    readingPaused = False

    def pauseProducing(self):
        self.readingPaused = True
        for connection in self.connections:
            connection.transport.pauseProducing()

    def resumeProducing(self):
        self.readingPaused = False
        for connection in self.connections:
            connection.transport.resumeProducing()

    def stopProducing(self):
        pass

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

    def shutDown(self, text):
        """
        Tell every client C{text}, stop acting on their lines and close their
        connections once what was queued for them is written; clients that do
        not take it within L{SHUTDOWN_GRACE} seconds are cut off.

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
            connection.sendLast(wire.notice(text))
        for connection in connections:
            connection.transport.loseConnection()
        cutOff = self.clock.callLater(self.SHUTDOWN_GRACE, self._cutOff)
        self._allClosed.addBoth(lambda result: cutOff.active() and cutOff.cancel())
        return self._allClosed

    def _cutOff(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()


def _describe(address):
    host = getattr(address, "host", None)
    return f"{host}:{address.port}" if host is not None else str(address)


def _lossReason(reason):
    if reason.check(error.ConnectionDone):
        return "connection closed"
    return "connection lost"

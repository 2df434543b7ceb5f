"""
The per-connection edge: a thin C{LineReceiver} that turns bytes into clean
lines, hands them to the commands and writes replies into its outbox.
"""

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver

from chatd import __version__, wire
from chatd.commands import dispatch
from chatd.core import ChatError, User
from chatd.names import NICK_RULES
from chatd.outbox import Coalescer, Outbox
from chatd.sanitize import TelnetFilter, cleanText

MAX_LINE_BYTES = 2048
SEND_QUEUE_BYTES = 256 * 1024


class ChatProtocol(LineReceiver):
    """
    One connected user speaking the line protocol.
    """

    # Input lines end in LF; a CR before it is dropped, so CRLF works too.
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE_BYTES

    _log = Logger()

    user = None
    _quitReason = None

    # Framework callbacks

    def connectionMade(self):
        self.factory.connections.add(self)
        self.core = self.factory.core
        self.peer = _describe(self.transport.getPeer())
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self._telnet = TelnetFilter()
        self._skipping = False
        self._replay = None
        self.outbox = Outbox(self.transport, self.factory.sendQueueBytes,
                             self._sendQueueOverflowed, self.factory.coalescer)
        self.user = User(self.outbox, wire.LineWire)
        self._log.info("connection from {peer}", peer=self.peer)
        self.notice(f"Welcome to chatd {__version__}. Lines you type go to your "
                    "current room; commands start with /, and /help lists them.")
        self.prompt(f"Choose a nickname ({NICK_RULES}):")

    def dataReceived(self, data):
        # Everything this read makes the server say reaches each recipient's
        # transport in one write, when the read is handled.
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
        self.error(f"line too long: at most {self.MAX_LENGTH} bytes; "
                   "it was not delivered")

    def lineReceived(self, raw):
        if self.transport.disconnecting or self.factory.stopping:
            return
        text = cleanText(raw)
        if not text:
            return
        try:
            dispatch(self, text)
        except ChatError as e:
            self.error(str(e))
            if self.user.nick is None:
                self.prompt("Choose another nickname:")

    def connectionLost(self, reason):
        self.factory.forget(self)
        self.outbox.close()
        why = self._quitReason or _lossReason(reason)
        self.core.disconnect(self.user, why)
        self._log.info("{nick} ({peer}) disconnected: {why}",
                       nick=self.user.nick or "-", peer=self.peer, why=why)

    # What the commands call

    def quit(self, reason):
        self._quitReason = reason or "quit"
        self.reply("bye")
        self.core.disconnect(self.user, reason)
        # "bye" waits in this read's batch: hand it over before closing.
        self.outbox.flush()
        self.transport.loseConnection()

    def notice(self, text):
        self._sendLine(wire.notice(text))

    def reply(self, text):
        self._sendLine(wire.reply(text))

    def error(self, text):
        self._sendLine(wire.error(text))

    def prompt(self, text):
        self._sendLine(wire.prompt(text))

    def _sendLine(self, line):
        self.outbox.send(line.encode("utf-8") + wire.DELIMITER)

    def _sendQueueOverflowed(self):
        self._quitReason = "send queue exceeded"
        self._log.warn("dropping {nick} ({peer}): more than {limit} bytes "
                       "waiting to be sent", nick=self.user.nick or "-",
                       peer=self.peer, limit=self.outbox.limit)


class ChatFactory(Factory):
    """
    Builds a L{ChatProtocol} for each connection, all sharing one core, and
    keeps track of the open connections so that shutting down can close them.

    @ivar connections: the open L{ChatProtocol}s.
    @ivar stopping: whether the server is shutting down and ignores input.
    @ivar coalescer: the L{Coalescer} that batches every connection's output
        while one read is handled.
    """

    protocol = ChatProtocol
    noisy = False

    # How long a shutdown waits for clients to take their last lines.
    SHUTDOWN_GRACE = 3.0

    def __init__(self, core, clock, sendQueueBytes=SEND_QUEUE_BYTES):
        self.core = core
        self.clock = clock
        self.sendQueueBytes = sendQueueBytes
        self.connections = set()
        self.coalescer = Coalescer()
        self.stopping = False
        self._allClosed = None

    def forget(self, connection):
        self.connections.discard(connection)
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
        for connection in list(self.connections):
            connection.notice(text)
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

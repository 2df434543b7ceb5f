"""
The line front end: a thin C{LineReceiver} that turns bytes into clean lines,
hands them to the commands, and keeps the one piece of state the line protocol
has and the core does not: which room plain text goes to.
"""

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from chatd import __version__
from chatd.core.names import NICK_RULES
from chatd.core.refusals import Refusal
from chatd.edge.connection import Connection
from chatd.edge.sanitize import TelnetFilter, cleanText
from chatd.line import wire
from chatd.line.commands import LineError, dispatch
from chatd.line.refusals import describe

MAX_LINE_BYTES = 2048
# Telnet's "interpret as command": every negotiation starts with it.
IAC_BYTE = b"\xff"


@implementer(IHalfCloseableProtocol)
class ChatProtocol(LineReceiver):
    """
    One connected user speaking the line protocol.

    @ivar conn: the connection's L{Connection}: outbox, pacing, timers.
    @ivar session: the L{chatd.core.session.Session} it acts through.
    @ivar passwordFor: the registered nickname whose password the user was
        asked for at the nickname prompt, or L{None}.
    """

    # Input lines end in LF; a CR before it is dropped, so CRLF works too.
    delimiter = b"\n"
    # One more than the limit, for the CR of a CRLF; lineReceived checks the
    # limit itself once the CR is gone.
    MAX_LENGTH = MAX_LINE_BYTES + 1

    conn = None
    session = None
    passwordFor = None
    _current = None
    _inputEnded = False

    # Framework callbacks

    def connectionMade(self):
        self.conn = Connection(self.transport, self.factory.gate, wire.LineWire, self)
        if not self.conn.live:
            return
        self._telnet = TelnetFilter(self.conn.send)
        self._skipping = False
        self._replay = None
        try:
            self.session = self.conn.open(self.factory.core)
        except Refusal as e:
            self.conn.closeWith(wire.encodeLine(wire.error(describe(e))))
            return
        self.notice(f"Welcome to chatd {__version__}. Lines you type go to your "
                    "current room; commands start with /, and /help lists them.")
        self.prompt(f"Choose a nickname ({NICK_RULES}):")

    def dataReceived(self, data):
        if self.conn is None or not self.conn.live:
            return
        # Everything this read makes the server say reaches each recipient's
        # transport in one write (see Coalescer).
        with self.conn.gate.coalescer:
            self._linesReceived(data)

    def _linesReceived(self, data):
        negotiations = data.count(IAC_BYTE)
        data = self._telnet.feed(data)
        if negotiations:
            # Telnet negotiation costs what lines cost, so that a stream of
            # it (each asking for an answer) is paced like a flood of lines.
            self.conn.lineHandled(negotiations)
        # Even with nothing new (input resumed after a pause), the lines
        # waiting are handled.
        while True:
            if self._skipping:
                # The rest of an over-long line: drop it up to its end.
                end = data.find(b"\n")
                if end < 0:
                    # Each read of it costs a line: an endless line is paced
                    # (and closed as a flood) like any other.
                    self.conn.lineHandled()
                    return
                data = data[end + 1:]
                self._skipping = False
            super().dataReceived(data)
            data, self._replay = self._replay, None
            if not data:
                self._endIfInputDone()
                return

    def lineLengthExceeded(self, line):
        # LineReceiver hands over the long line and everything after it; keep
        # what follows the long line's end so no other line is lost.
        end = line.find(b"\n")
        if end < 0:
            self._skipping = True
        else:
            self._replay = line[end + 1:]
        self._tooLong()
        self.conn.lineHandled()

    def lineReceived(self, raw):
        if not self.conn.accepting:
            return
        try:
            self._handle(raw)
        finally:
            # Paced after it is handled: the next line may have to wait.
            self.conn.lineHandled()

    def _handle(self, raw):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            self._tooLong()
            return
        text = cleanText(raw)
        if not text:
            return
        try:
            answering = dispatch(self, text)
        except (Refusal, LineError) as e:
            self.error(describe(e) if isinstance(e, Refusal) else str(e))
            if self.session.nick is None:
                self.prompt("Choose another nickname:")
            return
        if answering is None:
            self._promptIfNoNick()
            return
        if not answering.called:
            # A password is being checked: the lines after it wait for the
            # answer, so that they are handled in order (a /ping after a
            # /nick NAME PASSWORD is answered after it; a line after it is
            # said under the nickname it gives), and none is taken for a
            # nickname (or lost) at the prompt meanwhile.
            self.conn.holdInput("password")
            self.conn.awaitServer()
            answering.addBoth(self._answered)
        # The answer (to /ghost, say) comes once a password is checked:
        # ask again only after it, and only if needed.
        answering.addCallback(lambda _: self._promptIfNoNick())

    def _answered(self, result):
        self.conn.serverAnswered()
        self.conn.releaseInput("password")
        self._endIfInputDone()
        return result

    def readConnectionLost(self):
        """
        The peer will send nothing more (C{nc -N} at the end of its input):
        the lines it sent are still handled and answered, then the
        connection closes.
        """
        self._inputEnded = True
        self._endIfInputDone()

    def writeConnectionLost(self):
        self.transport.loseConnection()

    def _endIfInputDone(self):
        """
        Once the peer has ended its input and every line of it is handled,
        close the connection after the answers (history being read
        included).
        """
        if (self._inputEnded and self.conn.live and not self._buffer
                and not self.conn.inputHeld):
            self.conn.closeWhenAnswered("connection closed")

    def unread(self):
        """
        Bytes read from the peer and not yet handled (see L{Connection}).
        """
        return len(self._buffer) + len(self._replay or b"")

    def connectionLost(self, reason):
        if self.conn is not None:
            self.conn.lost(reason)

    # The line protocol's own state

    def currentRoom(self):
        """
        The room plain text goes to: the one chosen last or, once the user
        is no longer in it, the one joined most recently.
        """
        current = self._current
        if current is None or not self.session.isIn(current):
            rooms = self.session.rooms
            if not rooms:
                raise LineError("you are in no room; /join #room first")
            current = self._current = rooms[-1]
        return current

    def talkIn(self, room):
        """
        Make C{room} the one plain text goes to.
        """
        self._current = room

    # What the commands call

    def showHistory(self, found, header=None):
        """
        Show the room lines C{found} fires with, marked as history, in order
        among live lines (see L{Connection.showHistory}).

        @param header: called with the lines found; returns a reply to show
            before them, or L{None}.
        """
        def render(stored):
            lines = [wire.LineWire.encodeHistory(e) for e in stored]
            text = header(stored) if header is not None else None
            if text is not None:
                lines.insert(0, wire.encodeLine(wire.reply(text)))
            return b"".join(lines)

        self.conn.showHistory(found, render,
                              lambda refusal: wire.encodeLine(wire.error(describe(refusal))))

    def quit(self, reason):
        self.conn.quit(reason, wire.encodeLine(wire.reply("bye")))

    def send(self, data):
        self.conn.send(data)

    def notice(self, text):
        self.conn.send(wire.encodeLine(wire.notice(text)))

    def reply(self, text):
        self.conn.send(wire.encodeLine(wire.reply(text)))

    def error(self, text):
        self.conn.send(wire.encodeLine(wire.error(text)))

    def prompt(self, text):
        self.conn.send(wire.encodeLine(wire.prompt(text)))

    def _promptIfNoNick(self):
        if self.session.nick is None and self.passwordFor is None and self.conn.accepting:
            self.prompt("Choose a nickname:")

    def _tooLong(self):
        self.error(f"line too long: at most {MAX_LINE_BYTES} bytes; "
                   "it was not delivered")


class ChatFactory(Factory):
    """
    Builds a L{ChatProtocol} for each connection to a line-protocol listener.

    @ivar core: the L{chatd.core.chat.ChatCore} every connection acts on.
    @ivar gate: the L{chatd.edge.gate.Gate} shared with every other listener.
    @ivar replay: how many lines of history a room shows on joining it.
    """

    protocol = ChatProtocol
    noisy = False

    # How many of a room's last lines a newcomer sees, unless told otherwise.
    REPLAY = 20

    def __init__(self, core, gate, replay=REPLAY):
        self.core = core
        self.gate = gate
        self.replay = replay

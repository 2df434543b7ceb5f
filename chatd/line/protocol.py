"""
The line front end: a thin C{LineReceiver} (L{PacedLineReceiver}, which it
shares with IRC) that turns bytes into clean lines,
hands them to the commands, and keeps the one piece of state the line protocol
has and the core does not: which room plain text goes to.
"""

from twisted.internet.protocol import Factory

from chatd import __version__
from chatd.core.names import NICK_RULES
from chatd.core.refusals import Refusal
from chatd.edge.connection import Connection
from chatd.edge.lines import PacedLineReceiver
from chatd.edge.sanitize import TelnetFilter, cleanText
from chatd.line import wire
from chatd.line.commands import LineError, dispatch
from chatd.line.refusals import describe

MAX_LINE_BYTES = 2048
# What every connection is told first, encoded once: the same bytes for all.
GREETING = (wire.encodeLine(wire.notice(
    f"Welcome to chatd {__version__}. Lines you type go to your current room; "
    "commands start with /, and /help lists them."))
    + wire.encodeLine(wire.prompt(f"Choose a nickname ({NICK_RULES}):")))
# Telnet's "interpret as command": every negotiation starts with it.
IAC_BYTE = b"\xff"


class ChatProtocol(PacedLineReceiver):
    """
    One connected user speaking the line protocol.

    @ivar conn: the connection's L{Connection}: outbox, pacing, timers.
    @ivar session: the L{chatd.core.session.Session} it acts through.
    @ivar passwordFor: the registered nickname whose password the user was
        asked for at the nickname prompt, or L{None}.
    """

    # One more than the limit, for the CR of a CRLF; handleLine checks the
    # limit itself once the CR is gone.
    MAX_LENGTH = MAX_LINE_BYTES + 1

    session = None
    passwordFor = None
    _current = None
    _telnet = None

    # Framework callbacks

    def connectionMade(self):
        self.conn = Connection(self.transport, self.factory.gate, wire.LineWire, self)
        if not self.conn.live:
            return
        try:
            self.session = self.conn.open(self.factory.core)
        except Refusal as e:
            self.conn.closeWith(wire.encodeLine(wire.error(describe(e))))
            return
        self.send(GREETING)

    def filterInput(self, data):
        if self._telnet is None:
            if IAC_BYTE not in data:
                return data
            # Made at the first negotiation: most clients never send one.
            self._telnet = TelnetFilter(self.conn.send)
        data = self._telnet.feed(data)
        if self._telnet.negotiations:
            # Telnet negotiation costs what lines cost, so that a stream of
            # it (each asking for an answer) is paced like a flood of lines;
            # a 0xFF that negotiates nothing is text, and costs nothing more.
            self.conn.lineHandled(self._telnet.negotiations)
        return data

    def lineTooLong(self):
        self.error(f"line too long: at most {MAX_LINE_BYTES} bytes; "
                   "it was not delivered")

    def handleLine(self, raw):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE_BYTES:
            self.lineTooLong()
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
        waiting = not answering.called
        if waiting:
            # A password is being checked: the lines after it wait for the
            # answer, so that they are handled in order (a /ping after a
            # /nick NAME PASSWORD is answered after it; a line after it is
            # said under the nickname it gives), and none is taken for a
            # nickname (or lost) at the prompt meanwhile.
            self.conn.holdInput("password")
        # The answer (to /ghost, say) comes once a password is checked: ask
        # again only after it, only if needed, and before the lines held
        # behind it are handled, so that one of them (another try, checked
        # in turn) does not leave the prompt to look needed.
        answering.addCallback(lambda _: self._promptIfNoNick())
        if waiting:
            # (The login timeout waits for the answer too.)
            self.conn.checking(answering)
            answering.addBoth(self._answered)

    def _answered(self, result):
        self.conn.releaseInput("password")
        self.endIfInputDone()
        return result

    # The line protocol's own state

    def currentRoom(self):
        """
        The room plain text goes to: the one chosen last or, once the user
        has left it (/part), the one joined most recently.  One they were
        put out of (a kick, a ban) is not replaced: what they type next was
        meant for it, perhaps a private room, and must not reach another
        (a paste cut by a kick went on in the lobby); until they choose a
        room with /join, it is refused.
        """
        current = self._current
        if current is not None and not self.session.isIn(current):
            raise LineError(f"you were put out of {current.name}: /join a room to choose "
                            "where your lines go")
        if current is None:
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

    def leftByChoice(self, room):
        """
        The user left C{room} with /part: if plain text went there, it goes
        to the room joined most recently from now on.
        """
        if room is self._current:
            self._current = None

    # What the commands call

    def showHistory(self, found, header=None, replay=False):
        """
        Show the room lines C{found} fires with, marked as history, in order
        among live lines (see L{Connection.showHistory}).

        @param header: called with the lines found; returns a reply to show
            before them, or L{None}.
        @param replay: whether this is a join's replay, rather than lines
            the user asked for.
        """
        def render(stored):
            lines = [wire.LineWire.encodeHistory(e) for e in stored]
            text = header(stored) if header is not None else None
            if text is not None:
                lines.insert(0, wire.encodeLine(wire.reply(text)))
            return b"".join(lines)

        self.conn.showHistory(found, render,
                              lambda refusal: wire.encodeLine(wire.error(describe(refusal))),
                              replay)

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

    def refused(self, refusal):
        self.error(describe(refusal))

    def prompt(self, text):
        self.conn.send(wire.encodeLine(wire.prompt(text)))

    def _promptIfNoNick(self):
        if self.session.nick is None and self.passwordFor is None and self.conn.accepting:
            self.prompt("Choose a nickname:")



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

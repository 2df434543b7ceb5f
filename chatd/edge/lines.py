"""
Reading a line-based front end's input: what the line protocol and IRC share.

Lines end in LF (a CR before it is the front end's to drop).  Each is handed
to the front end only while its connection still accepts input, and paced by
the connection (L{chatd.edge.connection.Connection.lineHandled}): a fast
sender waits, its order kept.  An over-long line is reported once and skipped
to its end, and the lines after it are kept; the rest of a line that never
ends costs a line per read, so it is paced (and closed as a flood) like any
other.  A peer that ends its input (C{nc -N}) gets every answer before the
connection closes.
"""

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

LINE_FLOOR = 64
"""The fewest bytes a waiting line counts as against C{--recv-queue}: what
bounds the input waiting is the time it takes to say it, and 64 KiB of
three-byte lines (21,000 of them) would take over an hour at five a second,
during which a peer that closed at once would go on talking, holding its
nickname."""


@implementer(IHalfCloseableProtocol)
class PacedLineReceiver(LineReceiver):
    """
    A C{LineReceiver} whose lines are paced by its L{Connection}.

    A front end sets C{MAX_LENGTH}, sets C{conn} in C{connectionMade}, and
    defines L{handleLine} and L{lineTooLong}; it may filter raw input first
    (L{filterInput}).

    @ivar conn: the connection's L{chatd.edge.connection.Connection}, or
        L{None} until made (or when it was refused).
    """

    delimiter = b"\n"

    conn = None
    _worth = 1
    _skipping = False
    _replay = None
    _inputEnded = False

    def handleLine(self, raw):
        """
        Act on one line (its bytes, without the LF).
        """
        raise NotImplementedError()

    def lineTooLong(self):
        """
        Tell the peer a line was too long and was not acted on.
        """
        raise NotImplementedError()

    def countAs(self, lines):
        """
        Count the line being handled as C{lines} lines against the flood
        limits: one that acts several times (a message to several targets,
        a join of several rooms) costs what that many lines would.
        """
        self._worth = max(self._worth, lines)

    def filterInput(self, data):
        """
        What of C{data}, as read, holds lines (telnet negotiation aside, say).
        """
        return data

    # Framework callbacks

    def dataReceived(self, data):
        if self.conn is None or not self.conn.live:
            return
        # Everything this read makes the server say reaches each recipient's
        # transport in one write (see Coalescer).
        with self.conn.gate.coalescer:
            self._linesReceived(self.filterInput(data))

    def _linesReceived(self, data):
        # Even with nothing new (input resumed after a pause), the lines
        # waiting are handled.
        while True:
            if self._skipping:
                # The rest of an over-long line: drop it up to its end.
                end = data.find(b"\n")
                if end < 0:
                    self.conn.lineHandled()
                    return
                data = data[end + 1:]
                self._skipping = False
            super().dataReceived(data)
            data, self._replay = self._replay, None
            if not data:
                self.endIfInputDone()
                return

    def lineLengthExceeded(self, line):
        # LineReceiver hands over the long line and everything after it; keep
        # what follows the long line's end so no other line is lost.
        end = line.find(b"\n")
        if end < 0:
            self._skipping = True
        else:
            self._replay = line[end + 1:]
        self.lineTooLong()
        self.conn.lineHandled()

    def lineReceived(self, raw):
        if not self.conn.accepting:
            return
        try:
            self.handleLine(raw)
        finally:
            # Paced after it is handled: the next line may have to wait.
            worth, self._worth = self._worth, 1
            self.conn.lineHandled(worth)

    def readConnectionLost(self):
        """
        The peer will send nothing more: the lines it sent are still handled
        and answered, then the connection closes.
        """
        self._inputEnded = True
        self.endIfInputDone()

    def writeConnectionLost(self):
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.conn is not None:
            self.conn.lost(reason)

    def connectionEnded(self):
        """
        The connection is over and its user gone (when the transport is
        lost, or once the lines read before that are handled): forget what
        the front end keeps for it.
        """

    # What the connection asks

    def unread(self):
        """
        Bytes read from the peer and not yet handled (see L{Connection}),
        each line counted as at least L{LINE_FLOOR} bytes.
        """
        waiting = self._buffer
        return max(len(waiting), LINE_FLOOR * waiting.count(b"\n")) + len(self._replay or b"")

    def endIfInputDone(self):
        """
        Once the peer has ended its input and every line of it is handled
        (none waits for pacing or an answer), close the connection after the
        answers, history being read included.
        """
        if (self._inputEnded and self.conn.live and not self._buffer
                and not self.conn.inputHeld):
            self.conn.closeWhenAnswered("connection closed")

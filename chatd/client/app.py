"""
The running client: the session, its view on the terminal or the pipe, and
the connection, put together as one service.
"""

import fcntl
import os
import select
import signal

from twisted.application import service
from twisted.conch.insults.insults import ServerProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.stdio import StandardIO
from twisted.logger import Logger

from chatd.client import render
from chatd.client.connection import connectingService
from chatd.client.pipe import PipeInput, PipeView
from chatd.client.session import Session
from chatd.client.terminal import ChatTerminal, RawTerminal


def openLog(path):
    """
    Open the log file for appending, making its folder if need be.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return open(path, "a", encoding="utf-8")


class _DivertedOutput:
    """
    Stdout and stderr (file descriptors 1 and 2) sent to the log file, with
    the real ones kept aside for the client's own use.

    Whatever else writes there -- twistd's log, a warning, a traceback -- then
    lands in the log instead of on a screen in raw mode or in a script's
    output.
    """

    def __init__(self, logPath):
        self.out = os.dup(1)
        self.err = os.dup(2)
        with openLog(logPath) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)

    def restore(self):
        if self.out is not None:
            os.dup2(self.out, 1)
            os.dup2(self.err, 2)
            os.close(self.out)
            os.close(self.err)
            self.out = self.err = None


class _TerminalWriter:
    """
    The terminal's output side for L{ServerProtocol}: written at once, so
    nothing is left unwritten when the reactor stops.  StandardIO makes stdin
    non-blocking, and a terminal's stdin and stdout usually share that flag,
    so a full terminal buffer is waited out rather than dropped.
    """

    def __init__(self, fd):
        self._fd = fd

    def write(self, data):
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:
                select.select([], [self._fd], [])

    def writeSequence(self, chunks):
        self.write(b"".join(chunks))

    def loseConnection(self):
        pass


class _Keys(Protocol):
    """
    Keystrokes from stdin to the terminal protocol; stdin closing is a quit.
    """

    def __init__(self, terminal, session):
        self._terminal = terminal
        self._session = session

    def dataReceived(self, data):
        self._terminal.dataReceived(data)

    def connectionLost(self, reason):
        self._session.quit()


class ChatClientService(service.Service):
    """
    The chat client: terminal mode when stdin and stdout are both terminals,
    pipe mode otherwise.

    Stdout and stderr go to the log file from the moment it is built (see
    L{_DivertedOutput}).

    @ivar ok: once the session is over, whether it ended well: in pipe mode,
        whether the server confirmed every line; L{None} before.
    """

    _log = Logger()

    ok = None

    def __init__(self, config, endpoint, reactor, environ=os.environ):
        self._config = config
        self._endpoint = endpoint
        self._reactor = reactor
        self._environ = environ
        self._raw = None
        self._terminal = None
        self._connector = None
        self._oldWinch = None
        self._stdinFlags = fcntl.fcntl(0, fcntl.F_GETFL)
        self.interactive = os.isatty(0) and os.isatty(1)
        self._output = _DivertedOutput(config["log"])

    def startService(self):
        super().startService()
        config = self._config
        if self.interactive:
            colour = render.wantColour(self._environ, isTerminal=True)
            view = self._terminal = ChatTerminal(colour, self._finished)
        else:
            view = PipeView(self._stream(self._output.out), self._stream(self._output.err),
                            self._finished)
        session = Session(view, config["nick"], self._reactor, config.address(),
                          self.interactive, password=config.get("password"))
        if self.interactive:
            self._startTerminal(session)
            reader = _Keys(self._screen, session)
        else:
            reader = PipeInput(session)
            session.setInput(reader)
        # StandardIO only reads here: what it would write goes nowhere, so
        # that it never makes the real stdout non-blocking.
        StandardIO(reader, stdin=0, stdout=os.open(os.devnull, os.O_WRONLY),
                   reactor=self._reactor)
        self._log.info("chat-client connecting to {address} as {nick}",
                       address=config.address(), nick=config["nick"])
        self._connector = connectingService(self._endpoint, session, self._reactor)
        session.reconnectsWith(self._connector.stopService, self._connector.startService)
        self._connector.startService()

    def _stream(self, fd):
        return open(os.dup(fd), "w", encoding="utf-8", errors="replace")

    def _startTerminal(self, session):
        self._terminal.session = session
        self._raw = RawTerminal(0)
        self._raw.enter()
        self._screen = ServerProtocol(lambda: self._terminal)
        self._screen.makeConnection(_TerminalWriter(self._output.out))
        self._oldWinch = signal.signal(signal.SIGWINCH, self._resizeSoon)
        self._resized()

    def _resizeSoon(self, signum, frame):
        # Not in the signal handler itself: it may have interrupted a redraw.
        self._reactor.callFromThread(self._resized)

    def _resized(self):
        if self._raw is not None:
            self._terminal.terminalSize(*self._raw.size())

    def _finished(self, ok):
        # The first word counts: later ones come from the shutting down.
        if self.ok is not None:
            return
        self.ok = ok
        if self._reactor.running:
            self._reactor.stop()

    def stopService(self):
        """
        Disconnect and put the terminal back as it was; safe to call twice.
        """
        super().stopService()
        if self._connector is not None:
            connector, self._connector = self._connector, None
            connector.stopService()
        if self._raw is not None:
            signal.signal(signal.SIGWINCH, self._oldWinch)
            self._terminal.close()
            self._raw.restore()
            self._raw = None
        # StandardIO made stdin non-blocking; the shell after us must not
        # inherit that.
        fcntl.fcntl(0, fcntl.F_SETFL, self._stdinFlags)

    def restoreOutput(self):
        """
        Give stdout and stderr back (C{chat-client} does, to report errors
        after the terminal is restored; under twistd they stay in the log,
        where twistd's last lines go).
        """
        self._output.restore()

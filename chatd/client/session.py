"""
The client's side of a conversation with chatd: which nickname it holds,
which rooms it is in and which one it talks to, and the rules for logging in
and for getting back there after the connection drops.

It knows no sockets and no terminal: a connection (anything with
C{sendText(text)} and C{close()}) and a view (see L{Session.__init__}) are
handed to it, so that it is tested with fakes.

How the client knows a line was taken: the server answers lines in order,
and answers C{/ping TOKEN} with C{=== pong TOKEN} once everything sent before
it was handled.  So every line the user sends is followed by a C{/ping} of
the client's own, and when its pong comes back the lines before it were
handled: a line answered meanwhile with an error (C{!!! ...}) was refused,
any other was taken.  Only then does a terminal show the line as said (or as
refused); the client's own pongs are never shown.

On a terminal one line is sent at a time, each with its own ping, so that
every error is surely its line's, whatever happens to the pings (a person
types slower than a round trip).  Pipe mode, for throughput, sends up to
L{Session.WINDOW} lines ahead, one ping per L{Session.BATCH}, and stops
reading its input while a window's worth waits in the client.  Either way a
server that reads slowly (flood control) slows the client down rather than
making it lose lines, and every wait for a confirmation has a deadline.
"""

import collections
import contextlib
import re
import secrets

from chatd.line import wire

# The server's replies that move the user around (chatd.line.commands words them).
_NOW_NICK = re.compile(r"you are now (\S+)\Z")
_JOINED = re.compile(r"joined (#\S+)\Z")
_TALKING = re.compile(r"now talking in (#\S+)\Z")
_LEFT = re.compile(r"left (#\S+)\Z")
# The replies that head history a user asked for (/history, /search).
_HISTORY_ASKED = re.compile(r"#\S+: the last \d+ lines?\Z|#\S+ has no history\Z"
                            r"|\d+ lines? in your rooms with |nothing in your rooms matches ")
# The prompt for a registered nickname's password (chatd.line.commands).
_PASSWORD = re.compile(r"(\S+) is registered: password")

OFFLINE = "offline"
LOGIN = "login"
ONLINE = "online"
DONE = "done"

# What a server refusing a line for its speed says (servers that delay a fast
# sender instead never say it).
TOO_FAST = "you are sending lines too fast"

# Commands the server answers only once a password is checked, after lines
# sent later may have been answered: a ping after one does not wait for its
# answer.  Such a command is sent alone, and nothing after it until its
# answer (one line, a reply or an error) is in.
LATE_ANSWERS = frozenset(["/register", "/identify", "/ghost", "/password"])


# The server's refusals of a nickname that another nickname would not mend.
_FINAL_REFUSALS = ("wrong password for ", "a nickname ")
# ... and the end of one (chatd.core.names: no suffix unreserves a name).
_FINAL_REFUSAL_ENDS = (" is reserved",)


def alternateNick(nick: str, attempt: int) -> str:
    """
    The nickname to try when C{nick} was refused C{attempt} times: C{nick_},
    then C{nick2}, C{nick3}...
    """
    return nick + "_" if attempt == 1 else f"{nick}{attempt}"


def carriesPassword(text: str) -> bool:
    """
    Whether C{text}, a line typed once logged in, may hold a password: a
    terminal does not keep it for recalling, nor says it again.  (Spaces
    before a command do not make it text: the server trims a line first.
    A message to NickServ is IRC's way to identify.)
    """
    words = text.split()
    name = commandName(text.lstrip())
    # (The commands answered late are those whose password is checked.)
    return (name in LATE_ANSWERS or (name == "/nick" and len(words) > 2)
            or (name == "/msg" and len(words) > 2 and words[1].lower() == "nickserv"))


def _hidingPassword(text: str) -> str:
    """
    C{text} as the client may show it again: a line that may hold a
    password (L{carriesPassword}) as its command alone.
    """
    return f"{text.split()[0]} …" if carriesPassword(text) else text


def commandName(text: str) -> str:
    """
    The command a line invokes, lowercased (C{"/join"}), or C{""} for a line
    of text (which includes C{//text}, a literal slash).
    """
    if not text.startswith("/") or text.startswith("//"):
        return ""
    return text.split(" ", 1)[0].lower()


class _Outgoing:
    """
    A line the user sent, waiting for the pong that confirms it.

    @ivar text: the line.
    @ivar ping: the token of the C{/ping} sent after it, once sent.
    """

    __slots__ = ("text", "ping")

    def __init__(self, text):
        self.text = text
        self.ping = None


# How the server's notice begins when it closes a connection idle for too
# long (chatd.edge.connection, --idle-timeout).
IDLE_CLOSE = "Closing your connection: idle for "
# The server's notice to a connection whose registered nickname its owner
# took back from another one (/ghost, a password given there).
GHOSTED = re.compile(r"the owner of \S+ took the nickname back; goodbye")


class Session:
    """
    One user's session, kept across connections.

    @ivar nick: the nickname held, or to claim when (re)connecting.
    @ivar rooms: the rooms joined, in the order joined.
    @ivar current: the room plain text goes to, or L{None}.
    @ivar state: L{OFFLINE}, L{LOGIN} (connected, choosing a nickname),
        L{ONLINE} or L{DONE}.
    """

    # How many nicknames to try by itself before giving up (pipe mode) or
    # asking the user (terminal mode).
    NICK_TRIES = 5
    # How long to wait for the server to close after /quit.
    QUIT_GRACE = 5.0
    # How many of each room's last lines are remembered, so that the replay
    # after joining again (a reconnect) does not show them twice.
    SEEN_LINES = 200
    # In pipe mode, how many lines may wait for their confirmation at once
    # (on a terminal: one); more wait in the client.  A server that reads
    # slowly is thereby followed, not flooded, and a line lost with the
    # connection is one of a few.  16 lines, 2 pings, the nickname and the
    # login's ping fit in the default flood burst of chatd (20 lines).
    WINDOW = 16
    # In pipe mode, how many lines one /ping confirms (on a terminal: one).
    BATCH = 8
    # How long the server may take to confirm lines before it is given up
    # as hung (the connection is closed).  A server delaying a fast sender
    # confirms a full window in WINDOW / its flood rate seconds.
    CONFIRM_TIMEOUT = 60.0
    # After a line refused as too fast (by a server that refuses rather than
    # delays a fast sender), how long to hold back before asking, with a
    # /ping, where things stand: doubling with each refusal up to the most,
    # long enough for such a server's default burst to come back whole (which
    # also keeps it from taking the client for a flooder).
    RESYNC_DELAY = 1.0
    RESYNC_DELAY_MAX = 8.0
    # In pipe mode, how many attempts in a row to reconnect may fail before
    # the script is told (exit status 1) instead.
    PIPE_RETRIES = 5

    def __init__(self, view, nick, clock, address, interactive, password=None):
        """
        @param view: what shows the session to the user, with
            C{show(raw, line)} for a server line (C{line} parsed by
            L{wire.parseLine}), C{showOwn(line)} for a line the user sent,
            once the server took it, C{note(text)} for what the client itself
            says, C{changed()} when the nickname or current room changed, and
            C{finished(ok)} once the session is over.
        @param nick: the nickname to claim.
        @param clock: an L{IReactorTime}.
        @param address: how to name the server to the user.
        @param interactive: whether a person is typing (terminal mode) rather
            than a script (pipe mode): it echoes the user's lines once taken,
            asks the user for a nickname when none could be had, keeps
            retrying for as long as the user waits, and a quit does not wait
            for lines not yet confirmed.
        @param password: the password of C{nick}, given when the server asks
            for it (after every reconnect too), or L{None}.
        """
        self.view = view
        self.nick = nick
        self.rooms = []
        self.current = None
        self.state = OFFLINE
        self.quitting = False
        self._clock = clock
        self._address = address
        self._interactive = interactive
        self._password = password
        self._passwordSent = False
        self._connection = None
        self._everLoggedIn = False
        self._tries = 0
        self._userChoosesNick = False
        self._refusal = ""
        self._rejoin = ([], None)
        self._confirmed = False
        self._guard = None
        self._quitLine = None
        self._quitSent = False
        # Lines not sent yet; lines sent and not confirmed; those of them
        # not yet followed by a /ping; the tokens of the pings not answered;
        # the errors received since the last pong.
        self._queue = collections.deque()
        self._inFlight = collections.deque()
        self._unpinged = []
        self._pings = collections.deque()
        self._errors = []
        self._pingPrefix = f"chat-client-{secrets.token_hex(4)}-"
        self._pingCount = 0
        self._batching = 0
        self._confirmTimer = None
        self._input = None
        self._inputPaused = False
        # After a refusal as too fast: the timer of the /ping that asks
        # where things stand, and that ping's token; nothing new is sent
        # until it is answered.
        self._resyncTimer = None
        self._resyncToken = None
        # A command of LATE_ANSWERS sent, whose answer is awaited.
        self._awaiting = None
        # Once a line was refused as too fast, one line at a time.
        self._careful = False
        self._resyncDelay = self.RESYNC_DELAY
        # Lines the server did not take: refused as too fast, or lost
        # unconfirmed with the connection.  A script then exits with 1.
        self._undelivered = 0
        self._failures = 0
        # By room key: what the room's last lines were, and, while a join's
        # replay is coming, those of them the replay may repeat.
        self._seen = {}
        self._replaying = {}
        # Whether the server said it closes the connection for idleness,
        # and what stops and starts reconnecting (see reconnectsWith).
        self._idleClosed = False
        self._stopReconnecting = self._startReconnecting = None
        # Whether the nickname's owner took it back from another connection.
        self._ghosted = False

    def reconnectsWith(self, stop, start):
        """
        Reconnecting is stopped with C{stop()} and started again with
        C{start()}: after the server closed the connection for idleness
        (C{--idle-timeout}), the session waits for the user's next line.
        Connecting again at once would only start the wait over, and show
        every room the user's quit and join each time.
        """
        self._stopReconnecting, self._startReconnecting = stop, start

    def setInput(self, producer):
        """
        Pause C{producer} (an L{IPushProducer}: the script's stdin) while
        lines wait in the client, and resume it once they are sent.
        """
        self._input = producer

    @contextlib.contextmanager
    def batch(self):
        """
        Lines sent inside share their /ping (in pipe mode: up to BATCH).
        """
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching:
                self._pump()

    # What the connection tells it

    def connected(self, connection):
        self._connection = connection
        self.state = LOGIN
        self._tries = 0
        self._refusal = ""
        self._userChoosesNick = False
        self._passwordSent = False
        # The server's replies fill these in again.
        self.rooms, self.current = [], None
        self.view.note(f"connected to {self._address}")

    def connectFailed(self, reason: str):
        if self.state == DONE:
            return
        self.view.note(f"cannot reach {self._address}: {reason}")
        self._giveUpIfNeverIn()

    def untrusted(self, reason: str):
        """
        The server's TLS certificate failed verification: not a network
        failure that trying again could mend, so the session ends.
        """
        if self.state == DONE:
            return
        self.view.note(f"the server's certificate is not trusted: {reason}")
        self._finish(False)

    def silent(self, hint: str):
        """
        The server has said nothing for a while since the connection was
        made: C{hint} says what may be wrong.
        """
        if self.state == LOGIN:
            self.view.note(hint)

    def retrying(self, delay: float):
        if self.state == DONE:
            return
        if not self._interactive:
            # A script needs its exit status some time.
            self._failures += 1
            if self._failures > self.PIPE_RETRIES:
                self.view.note(f"giving up: {self._address} could not be reached again "
                               f"in {self.PIPE_RETRIES} attempts")
                self._finish(False)
                return
        if self.state == OFFLINE and not self.quitting:
            self.view.note(f"trying again in {delay:.0f} s (Ctrl-C to give up)"
                           if self._interactive else f"trying again in {delay:.0f} s")

    def lineReceived(self, raw: str):
        line = wire.parseLine(raw)
        if line is not None and line.kind == wire.REPLY and self._ownPong(line.text):
            return
        if line is not None and line.room and self._shownBefore(line):
            return
        if line is not None and line.kind == wire.REPLY and self._confirmsOwnPrivate(line.text):
            # The echo, once the pong is in, says the same: -> *bob* psst.
            return
        if line is not None and line.kind == wire.PROMPT and self.state == LOGIN:
            # A person sees only the prompts they are to answer; a script
            # sees every line.
            if not self._answerPrompt(line.text) or not self._interactive:
                self.view.show(raw, line)
            return
        self.view.show(raw, line)
        if line is None:
            return
        if line.kind == wire.NOTICE and line.text.startswith(IDLE_CLOSE):
            self._idleClosed = True
        elif line.kind == wire.NOTICE and GHOSTED.fullmatch(line.text):
            self._ghosted = True
        elif line.kind == wire.ERROR:
            if self.state == LOGIN:
                self._refusal = line.text
            elif self.state == ONLINE and self._awaiting is not None:
                self._lateAnswer(line.text)
            elif self.state == ONLINE:
                self._errors.append(line.text)
                if line.text.startswith(TOO_FAST):
                    self._holdBack()
        elif line.kind == wire.REPLY:
            self._followReply(line.text)
            if self.state == ONLINE and self._awaiting is not None:
                self._lateAnswer(None)

    def disconnected(self, reason: str):
        self._connection = None
        self._stopConfirmTimer()
        if self.state == DONE:
            return
        lost = list(self._inFlight)
        if self._awaiting is not None:
            lost.append(_Outgoing(self._awaiting))
        self._forgetInFlight()
        if self.state == ONLINE:
            # Where to go back to once logged in again.  A connection lost
            # while logging in leaves this as it was.
            self._rejoin = (self.rooms, self.current)
        self.state = OFFLINE
        if not self._interactive:
            if lost:
                self._undelivered += len(lost)
                self.view.note(f"connection to {self._address} lost ({reason}) before the "
                               f"server confirmed {_lines(len(lost))}")
                self._finish(False)
                return
            if self._quitSent or self.quitting and self._nothingLeft():
                # Every line was confirmed: the goodbye does not matter.
                self._finishQuit()
                return
        elif self.quitting:
            self._finish(True)
            return
        self.view.note(f"connection to {self._address} lost ({reason})")
        for entry in lost:
            if self._echo(entry.text) is not None:
                self.view.note(f"not confirmed before the connection was lost, "
                               f"so maybe not said: {_hidingPassword(entry.text)}")
        self.view.changed()
        if self._ghosted:
            # Connecting again would take the nickname back in turn, and
            # the owner's client would take it again: for ever, each time
            # a quit and a join in every room.
            self.view.note("not connecting again: the nickname's owner is connected elsewhere")
            self._finish(False)
            return
        if self._idleClosed and self._stopReconnecting is not None and not self._queue:
            self._stopReconnecting()
            self.view.note("closed for being idle: the next line you type connects again")
            return
        self._idleClosed = False
        self._giveUpIfNeverIn()

    # What the user (or the script) does

    def send(self, text: str):
        """
        Send a line the user typed, or keep it until it can be.
        """
        if not text.strip() or self.state == DONE:
            return
        # As the server reads it: " /identify PW" is a command, not text to
        # echo (with its password) as said.
        text = text.lstrip()
        name = commandName(text)
        if name == "/quit":
            self.quit(text[len(name):].strip())
            return
        if self.state == LOGIN and self._userChoosesNick:
            self._connection.sendText(text)
            return
        if self.quitting:
            if not self._interactive:
                self.view.note(f"not sent, after /quit: {text}")
            return
        self._queue.append(text)
        if self._idleClosed and self.state == OFFLINE:
            self._idleClosed = False
            self._startReconnecting()
        if self.state != ONLINE and self._interactive:
            self.view.note("not logged in yet: it will be sent once in"
                           if self.state == LOGIN else
                           "not connected: it will be sent once back")
        self._pump()

    def quit(self, reason: str = ""):
        """
        Leave: once every line is confirmed (a person does not wait for
        that), say /quit and end when the server closes the connection.
        """
        if self.state == DONE:
            return
        if self.quitting:
            # Asked twice (a second Ctrl-C): stop waiting.
            self._finish(self._interactive)
            return
        self.quitting = True
        self._quitLine = "/quit " + reason if reason else "/quit"
        if self._interactive:
            if self.state == ONLINE:
                # What the user typed goes first, however the window is.
                self._pump(ignoreWindow=True)
                self._sendQuit()
            else:
                self._finish(True)
        elif self.state == ONLINE:
            self._pump()
        elif self._everLoggedIn and self._nothingLeft():
            # Everything was confirmed before the connection dropped.
            self._finishQuit()
        # Otherwise /quit follows the script's lines once (back) in; a
        # server never reached is reported as such.

    # Inside: sending and confirming

    def _pump(self, ignoreWindow=False):
        """
        Send what waits, as far as the window allows, each line or batch of
        lines followed by a /ping; then, when quitting and everything is
        confirmed, /quit.
        """
        if (self.state != ONLINE or self._resyncTimer is not None or self._resyncToken
                or self._awaiting is not None):
            self._flow()
            return
        batch = 1 if self._interactive or self._careful else self.BATCH
        window = 1 if self._interactive or self._careful else self.WINDOW
        while self._queue and (ignoreWindow or len(self._inFlight) < window):
            if commandName(self._queue[0]) in LATE_ANSWERS:
                # Once everything before is answered, so that the next
                # answer is surely its own.
                if not self._inFlight and not self._pings:
                    self._sendAlone(self._queue.popleft())
                break
            entry = _Outgoing(self._queue.popleft())
            self._inFlight.append(entry)
            self._unpinged.append(entry)
            self._connection.sendText(entry.text)
            if len(self._unpinged) >= batch:
                self._ping()
        if self._unpinged and (not self._batching or self._queue):
            self._ping()
        self._flow()
        if self.quitting and not self._interactive and self._nothingLeft():
            self._sendQuit()

    def _ping(self):
        self._pingCount += 1
        token = f"{self._pingPrefix}{self._pingCount}"
        for entry in self._unpinged:
            entry.ping = token
        self._unpinged = []
        self._pings.append(token)
        self._connection.sendText("/ping " + token)
        if self._confirmTimer is None:
            self._confirmTimer = self._clock.callLater(self.CONFIRM_TIMEOUT, self._unconfirmed)
        return token

    def _sendAlone(self, text):
        """
        Send C{text}, a command of LATE_ANSWERS, and nothing after it until
        its answer is in.
        """
        self._awaiting = text
        self._connection.sendText(text)
        if self._confirmTimer is None:
            self._confirmTimer = self._clock.callLater(self.CONFIRM_TIMEOUT, self._unconfirmed)

    def _lateAnswer(self, error):
        """
        The answer to the command awaited came: a reply, or the C{error}.
        """
        command, self._awaiting = self._awaiting, None
        self._stopConfirmTimer()
        if self._pings:
            self._confirmTimer = self._clock.callLater(self.CONFIRM_TIMEOUT,
                                                       self._unconfirmed)
        if error is not None and error.startswith(TOO_FAST):
            self._queue.appendleft(command)
            self._holdBack()
        self._pump()

    def _holdBack(self):
        """
        A line (or ping) was refused as too fast: send nothing new for a
        while, then ask where things stand.  (A ping refused would otherwise
        leave the lines before it waiting for a pong that never comes.)
        """
        if self._resyncTimer is None:
            delay = self._resyncDelay
            self._resyncDelay = min(delay * 2, self.RESYNC_DELAY_MAX)
            self._resyncToken = None
            self._resyncTimer = self._clock.callLater(delay, self._resync)
        self._careful = True

    def _resync(self):
        self._resyncTimer = None
        if self.state == ONLINE:
            self._resyncToken = self._ping()

    def _stopResync(self):
        if self._resyncTimer is not None and self._resyncTimer.active():
            self._resyncTimer.cancel()
        self._resyncTimer = self._resyncToken = None

    def _flow(self):
        """
        Pause the input while a window's worth of lines waits in the client.
        """
        if self._input is None:
            return
        if len(self._queue) >= self.WINDOW and not self._inputPaused:
            self._inputPaused = True
            self._input.pauseProducing()
        elif not self._queue and self._inputPaused:
            self._inputPaused = False
            self._input.resumeProducing()

    def _ownPong(self, text):
        """
        If C{text} is the answer to one of the client's own pings, act on it
        and return C{True}.
        """
        if not text.startswith("pong " + self._pingPrefix):
            return False
        token = text[5:]
        if token not in self._pings:
            # From a connection before this one.
            return True
        answered = set()
        while True:
            # Pings before this one that were never answered were refused
            # (as too fast, by an older server).
            first = self._pings.popleft()
            answered.add(first)
            if first == token:
                break
        missing = len(answered) - 1
        if self._resyncToken in answered:
            self._resyncToken = None
        confirmed = []
        while self._inFlight and self._inFlight[0].ping in answered:
            confirmed.append(self._inFlight.popleft())
        errors, self._errors = self._errors, []
        self._stopConfirmTimer()
        if self._pings:
            self._confirmTimer = self._clock.callLater(self.CONFIRM_TIMEOUT,
                                                       self._unconfirmed)
        self._settle(confirmed, errors, missing)
        self._pump()
        return True

    def _settle(self, confirmed, errors, missingPings):
        """
        Show the lines C{confirmed} as said or refused, given the C{errors}
        the server answered them (and C{missingPings} refused pings) with.
        """
        tooFast = sum(1 for e in errors if e.startswith(TOO_FAST))
        # A refused ping says it was too fast, too: those errors are its.
        fromPings = min(missingPings, tooFast)
        refusals = len(errors) - fromPings
        if (confirmed and refusals == tooFast - fromPings == len(confirmed)
                and not self._inFlight):
            # Every one of these lines was refused, for its speed alone, and
            # none sent after them is waiting: they go again, in order,
            # before anything else.  (Once a line is refused as too fast the
            # client sends one line at a time, so that this always holds.)
            self._queue.extendleft(reversed([e.text for e in confirmed]))
            return
        self._undelivered += tooFast - fromPings
        if not self._interactive:
            return
        for entry in confirmed:
            echo = self._echo(entry.text)
            if echo is None and commandName(entry.text):
                # A command: the server's answer to it is shown already.
                continue
            if refusals == 0:
                # (Plain text with no current room is always refused.)
                if echo is not None and not self._toSelf(echo):
                    self.view.showOwn(echo)
                    if echo.room:
                        self._remember(echo.room.lower(), (echo.kind, echo.nick, echo.text))
            elif refusals == len(confirmed):
                self.view.note(f"refused by the server, not said: {_hidingPassword(entry.text)}")
            else:
                self.view.note("maybe refused by the server, so maybe not said: "
                               f"{_hidingPassword(entry.text)}")

    def _confirmsOwnPrivate(self, text):
        """
        Whether C{text}, a reply, is the server's confirmation of the /msg
        in flight ("to bob: psst"), which a terminal shows as its echo.
        """
        if not self._interactive or not self._inFlight:
            return False
        echo = self._echo(self._inFlight[0].text)
        if echo is None or echo.kind != wire.PRIVATE or not text.startswith("to "):
            return False
        nick, _, body = text[3:].partition(": ")
        return nick.lower() == echo.nick.lower() and body == echo.text

    def _unconfirmed(self):
        """
        The server confirmed nothing for CONFIRM_TIMEOUT: it is hung, or the
        network is; close, and let the loss be handled as any other.
        """
        self._confirmTimer = None
        self.view.note(f"{self._address} confirmed nothing for "
                       f"{self.CONFIRM_TIMEOUT:g} s; closing the connection")
        if self._connection is not None:
            self._connection.close()

    def _stopConfirmTimer(self):
        if self._confirmTimer is not None:
            if self._confirmTimer.active():
                self._confirmTimer.cancel()
            self._confirmTimer = None

    def _forgetInFlight(self):
        self._stopResync()
        self._awaiting = None
        self._inFlight.clear()
        self._unpinged = []
        self._pings.clear()
        self._errors = []

    def _nothingLeft(self):
        return not self._queue and not self._inFlight and self._awaiting is None

    def _sendQuit(self):
        if self._quitSent:
            return
        self._quitSent = True
        self._connection.sendText(self._quitLine)
        self._guard = self._clock.callLater(self.QUIT_GRACE, self._giveUpWaiting)

    # Inside: logging in and following the server

    def _answerPrompt(self, text=""):
        """
        Answer the nickname prompt with the next nickname to try, or the
        password prompt for our own nickname with its password (once per
        connection), unless it is the user's to answer.

        @return: whether it was answered.
        """
        if self._userChoosesNick:
            return False
        asked = _PASSWORD.match(text)
        if (asked and self._password and not self._passwordSent
                and asked.group(1).lower() == self.nick.lower()):
            self._passwordSent = True
            self._connection.sendText(self._password)
            return True
        # A ban is not to be worked around with another nickname, nor a
        # wrong password for the one asked for; a nickname the rules refuse
        # is not mended by a suffix.
        banned = self._refusal.startswith("you are banned")
        final = (banned or self._refusal.startswith(_FINAL_REFUSALS)
                 or self._refusal.endswith(_FINAL_REFUSAL_ENDS))
        if self._tries == 0:
            candidate = self.nick
        elif self._tries <= self.NICK_TRIES and not final:
            candidate = alternateNick(self.nick, self._tries)
            if asked:
                why = (f"{asked.group(1)} is registered and no password was given "
                       f"(--password-file or CHATD_PASSWORD)")
            else:
                why = self._refusal or f"nickname {self._lastTried} refused"
            self.view.note(f"{why}; trying {candidate}")
        else:
            if banned:
                why = f"nickname {self._lastTried} is banned"
            elif final:
                why = f"nickname {self._lastTried} refused ({self._refusal})"
            else:
                why = "no nickname could be had" + ("" if self._interactive
                                                    else f" after {self._tries} tries")
            if self._interactive:
                self._userChoosesNick = True
                self.view.note(f"{why}; type the one you want")
            else:
                self.view.note(f"{why}; giving up")
                self._finish(False)
            return False
        self._tries += 1
        self._lastTried = candidate
        self._connection.sendText(candidate)
        return True

    def _followReply(self, text):
        if _HISTORY_ASKED.match(text):
            # The history lines that follow were asked for (/history,
            # /search): shown whole, whatever a replay skips.
            self._replaying.clear()
        if self._quitSent and text == "bye":
            # Every line before the /quit was acted on.  Close from this side
            # too: over TLS the server's close may wait for ours.
            self._confirmed = True
            self._connection.close()
        elif match := _NOW_NICK.match(text):
            self.nick = match.group(1)
            if self.state == LOGIN:
                self._loggedIn()
        elif match := _JOINED.match(text):
            self.rooms.append(match.group(1))
            self.current = match.group(1)
            seen = self._seen.get(match.group(1).lower())
            if seen:
                self._replaying[match.group(1).lower()] = list(seen)
        elif match := _TALKING.match(text):
            self.current = match.group(1)
        elif match := _LEFT.match(text):
            self.rooms = [r for r in self.rooms if r.lower() != match.group(1).lower()]
            if self.current and self.current.lower() == match.group(1).lower():
                self.current = None
        else:
            return
        self.view.changed()

    def _shownBefore(self, line):
        """
        Whether C{line}, a room's line, is one of the room's lines already
        shown, repeated by the history replayed on joining it again; remember
        it otherwise.

        The replay is the room's last lines in order, so it repeats the end
        of what was shown, then goes on with what was said meanwhile: a
        replayed line is skipped when it is found among those shown after
        the last one skipped.  (A line that is not, a topic the user set say,
        is shown, and the skipping goes on.)
        """
        room = line.room.lower()
        if line.kind == wire.HISTORY:
            entry = (line.original, line.nick, line.text)
            candidates = self._replaying.get(room)
            if candidates and entry in candidates:
                del candidates[:candidates.index(entry) + 1]
                return True
        else:
            # Live lines come after the replay.
            self._replaying.pop(room, None)
            entry = (line.kind, line.nick, line.text)
        self._remember(room, entry)
        return False

    def _remember(self, room, entry):
        seen = self._seen.get(room)
        if seen is None:
            seen = self._seen[room] = collections.deque(maxlen=self.SEEN_LINES)
        seen.append(entry)

    def _giveUpIfNeverIn(self):
        # A script that could not get in at all (no server, a certificate
        # refused) had better hear so than wait forever; a person can watch
        # the retries and press Ctrl-C.
        if not self._everLoggedIn and not self._interactive:
            self._finish(False)

    def _loggedIn(self):
        self.state = ONLINE
        self._everLoggedIn = True
        self._userChoosesNick = False
        self._failures = 0
        rooms, current = self._rejoin
        self._rejoin = ([], None)
        rejoin = ["/join " + room for room in rooms]
        if current is not None and rooms and current != rooms[-1]:
            rejoin.append("/join " + current)
        # A ping of its own first: an error answering the login (a replay
        # that took too long) is not an answer to the lines that follow.
        self._ping()
        self._queue.extendleft(reversed(rejoin))
        self._pump(ignoreWindow=self.quitting and self._interactive)

    def _echo(self, text):
        """
        The line others will see for C{text}, as a L{wire.ServerLine}, or
        L{None} for a command that shows nothing of its own.
        """
        name = commandName(text)
        if name == "":
            if self.current is None:
                return None
            body = text[1:] if text.startswith("//") else text
            return wire.ServerLine(wire.ROOM_MESSAGE, body, self.current, self.nick)
        rest = text[len(name):].strip()
        if name == "/me" and rest and self.current is not None:
            return wire.ServerLine(wire.ACTION, rest, self.current, self.nick)
        if name == "/msg":
            target, _, body = rest.partition(" ")
            body = body.strip()
            if body.lower().startswith("/me "):
                # As the server words a private action.
                body = f"* {self.nick} {body[4:].strip()}"
            if target and body:
                return wire.ServerLine(wire.PRIVATE, body, nick=target)
        return None

    def _toSelf(self, echo):
        """
        Whether C{echo} is a private message to oneself, which the server
        delivers (once), so that it needs no echo.
        """
        return (echo.kind == wire.PRIVATE and self.nick is not None
                and echo.nick.lower() == self.nick.lower())

    def _giveUpWaiting(self):
        # The server never closed after /quit; every line was confirmed all
        # the same (a person does not wait for that).
        self._guard = None
        if self._connection is not None:
            self._connection.close()
        self._finishQuit()

    def _finishQuit(self):
        """
        End after /quit: well for a person; for a script, if the server took
        every line.
        """
        if self._undelivered and not self._interactive:
            self.view.note(f"{_lines(self._undelivered)} not delivered: refused by "
                           "the server as too fast")
        self._finish(self._interactive or self._undelivered == 0)

    def _finish(self, ok):
        if self.state == DONE:
            return
        self.state = DONE
        self._stopConfirmTimer()
        self._stopResync()
        if self._guard is not None and self._guard.active():
            self._guard.cancel()
        self._guard = None
        if self._connection is not None:
            self._connection.close()
        self.view.finished(ok)


def _lines(count):
    return "1 line" if count == 1 else f"{count} lines"

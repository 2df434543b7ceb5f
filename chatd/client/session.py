"""
The client's side of a conversation with chatd: which nickname it holds,
which rooms it is in and which one it talks to, and the rules for logging in
and for getting back there after the connection drops.

It knows no sockets and no terminal: a connection (anything with
C{sendText(text)} and C{close()}) and a view (see L{Session.__init__}) are
handed to it, so that it is tested with fakes.
"""

import collections
import re

from chatd.line import wire

# The server's replies that move the user around (chatd.line.commands words them).
_NOW_NICK = re.compile(r"you are now (\S+)\Z")
_JOINED = re.compile(r"joined (#\S+)\Z")
_TALKING = re.compile(r"now talking in (#\S+)\Z")
_LEFT = re.compile(r"left (#\S+)\Z")
# The prompt for a registered nickname's password (chatd.line.commands).
_PASSWORD = re.compile(r"(\S+) is registered: password")

OFFLINE = "offline"
LOGIN = "login"
ONLINE = "online"
DONE = "done"


def alternateNick(nick: str, attempt: int) -> str:
    """
    The nickname to try when C{nick} was refused C{attempt} times: C{nick_},
    then C{nick2}, C{nick3}...
    """
    return nick + "_" if attempt == 1 else f"{nick}{attempt}"


def commandName(text: str) -> str:
    """
    The command a line invokes, lowercased (C{"/join"}), or C{""} for a line
    of text (which includes C{//text}, a literal slash).
    """
    if not text.startswith("/") or text.startswith("//"):
        return ""
    return text.split(" ", 1)[0].lower()


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
    # How long a terminal user waits for the server to close after /quit.
    QUIT_GRACE = 5.0
    # How many of each room's last lines are remembered, so that the replay
    # after joining again (a reconnect) does not show them twice.
    SEEN_LINES = 200

    def __init__(self, view, nick, clock, address, interactive, password=None):
        """
        @param view: what shows the session to the user, with
            C{show(raw, line)} for a server line (C{line} parsed by
            L{wire.parseLine}), C{showOwn(line)} for a line the user sent,
            C{note(text)} for what the client itself says,
            C{changed()} when the nickname or current room changed, and
            C{finished(ok)} once the session is over.
        @param nick: the nickname to claim.
        @param clock: an L{IReactorTime}.
        @param address: how to name the server to the user.
        @param interactive: whether a person is typing (terminal mode) rather
            than a script (pipe mode): it echoes the user's lines, asks the
            user for a nickname when none could be had, keeps retrying when
            it could not get in at first, and a quit does not wait
            for lines not yet sent.
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
        self._pending = []
        self._tries = 0
        self._userChoosesNick = False
        self._refusal = ""
        self._rejoin = ([], None)
        self._confirmed = False
        self._guard = None
        # By room key: what the room's last lines were, and, while a join's
        # replay is coming, those of them the replay may repeat.
        self._seen = {}
        self._replaying = {}

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

    def retrying(self, delay: float):
        if self.state == OFFLINE and not self.quitting:
            self.view.note(f"trying again in {delay:.0f} s (Ctrl-C to give up)"
                           if self._interactive else f"trying again in {delay:.0f} s")

    def lineReceived(self, raw: str):
        line = wire.parseLine(raw)
        if line is not None and line.room and self._shownBefore(line):
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
        if line.kind == wire.ERROR and self.state == LOGIN:
            self._refusal = line.text
        elif line.kind == wire.REPLY:
            self._followReply(line.text)

    def disconnected(self, reason: str):
        self._connection = None
        if self.state == DONE:
            return
        if self.state == ONLINE:
            # Where to go back to once logged in again.  A connection lost
            # while logging in leaves this as it was.
            self._rejoin = (self.rooms, self.current)
        self.state = OFFLINE
        if self.quitting:
            if not (self._confirmed or self._interactive):
                self.view.note(f"connection to {self._address} lost ({reason}) "
                               "before the server confirmed every line")
            self._finish(self._confirmed or self._interactive)
            return
        self.view.note(f"connection to {self._address} lost ({reason})")
        self.view.changed()
        self._giveUpIfNeverIn()

    # What the user (or the script) does

    def send(self, text: str):
        """
        Send a line the user typed, or keep it until logged in.
        """
        if not text.strip() or self.state == DONE:
            return
        name = commandName(text)
        if name == "/quit":
            self.quit(text[len(name):].strip())
            return
        if self.state == LOGIN and self._userChoosesNick:
            self._connection.sendText(text)
            return
        if self._interactive:
            echo = self._echo(text, name)
            if echo is not None:
                self.view.showOwn(echo)
                if echo.room:
                    self._remember(echo.room.lower(), (echo.kind, echo.nick, echo.text))
        if self.state == ONLINE:
            self._connection.sendText(text)
        else:
            self._pending.append(text)
            if self._interactive:
                self.view.note("not logged in yet: it will be sent once in"
                               if self.state == LOGIN else
                               "not connected: it will be sent once back")

    def quit(self, reason: str = ""):
        """
        Leave: say /quit and end once the server closes the connection, which
        it does after acting on every line sent before.
        """
        if self.state == DONE:
            return
        if self.quitting:
            # Asked twice (a second Ctrl-C): stop waiting.
            self._finish(self._interactive)
            return
        self.quitting = True
        line = "/quit " + reason if reason else "/quit"
        if self.state == ONLINE:
            self._connection.sendText(line)
            if self._interactive:
                self._guard = self._clock.callLater(self.QUIT_GRACE, self._giveUpWaiting)
        elif self._pending and not self._interactive:
            # A script's lines are sent first, whenever the server is back.
            self._pending.append(line)
        else:
            self._finish(True)

    # Inside

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
        # A ban is not to be worked around with another nickname.
        banned = self._refusal.startswith("you are banned")
        if self._tries == 0:
            candidate = self.nick
        elif self._tries <= self.NICK_TRIES and not banned:
            candidate = alternateNick(self.nick, self._tries)
            self.view.note(f"nickname {self._lastTried} refused; trying {candidate}")
        elif self._interactive:
            self._userChoosesNick = True
            self.view.note(f"nickname {self._lastTried} is banned; type the one you want"
                           if banned else "no nickname could be had; type the one you want")
            return False
        else:
            self.view.note(f"nickname {self._lastTried} is banned; giving up" if banned else
                           f"no nickname could be had after {self._tries} tries; giving up")
            self._finish(False)
            return False
        self._tries += 1
        self._lastTried = candidate
        self._connection.sendText(candidate)
        return True

    def _followReply(self, text):
        if self.quitting and text == "bye":
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
        rooms, current = self._rejoin
        self._rejoin = ([], None)
        for room in rooms:
            self._connection.sendText("/join " + room)
        if current is not None and rooms and current != rooms[-1]:
            self._connection.sendText("/join " + current)
        pending, self._pending = self._pending, []
        for text in pending:
            self._connection.sendText(text)

    def _echo(self, text, name):
        """
        The line others will see for C{text}, as a L{wire.ServerLine}, or
        L{None} for a command that shows nothing of its own.
        """
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
            if target and body.strip():
                return wire.ServerLine(wire.PRIVATE, body.strip(), nick=target)
        return None

    def _giveUpWaiting(self):
        self._guard = None
        if self._connection is not None:
            self._connection.close()
        self._finish(True)

    def _finish(self, ok):
        if self.state == DONE:
            return
        self.state = DONE
        if self._guard is not None and self._guard.active():
            self._guard.cancel()
        self._guard = None
        if self._connection is not None:
            self._connection.close()
        self.view.finished(ok)

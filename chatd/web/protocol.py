"""
The web front end: one browser's WebSocket, speaking the JSON protocol.

It is a sibling of the line front end: it checks what arrives
(L{chatd.web.messages}), acts through the session API, and renders what only
this connection is told (its greeting, refusals) as JSON frames.  Everything
else reaches it through the same fan-out as every other front end, encoded
once per event by L{chatd.web.wire.WebWire}.  The connection's machinery
(outbox, pacing, timers, history placed among live lines, closing) is the
shared L{chatd.edge.connection.Connection}, and it passes the same
L{chatd.edge.gate.Gate} as every other connection.

Twisted's own C{twisted.web.websocket} carries the frames: it comes with the
Twisted chatd runs on (no second framework beside it, on the same reactor),
and hands over whole text messages.  The common frame, one whole masked
text message, is read by L{chatd.web.frames.FrameReader} instead, at a
fraction of the cost per line; the first frame of any other kind and all
after it go to Twisted's.  Its writer is used only for the handshake, pongs
and closes the peer starts, which it writes through the connection's outbox
(in order, and nothing after a close); chat frames go through the outbox
straight to the TCP transport (a server's frames are not masked, so a frame's
bytes are the same for every recipient), which keeps back-pressure, the
send-queue limit and per-turn coalescing exactly the line protocol's.
"""

import dataclasses
import re
from collections import deque

from twisted.logger import Logger

from chatd import __version__
from chatd.core.events import Entered
from chatd.core.names import NICK_RULES, normalRoomName, roomKey
from chatd.core.refusals import PasswordRequired, Refusal
from chatd.edge.connection import Connection
from chatd.edge.lines import LINE_FLOOR
from chatd.line import commands as lineCommands
from chatd.line import wire as lineWire
from chatd.line.commands import LineError
from chatd.line.protocol import ChatFactory
from chatd.web import wire
from chatd.web.frames import ControlFrames, FrameReader
from chatd.web.messages import MAX_FRAME_BYTES, MAX_TEXT_BYTES, BadMessage, parse
from chatd.web.refusals import describe
from chatd.web.wire import WebWire

HISTORY_DEFAULT = lineCommands.HISTORY_DEFAULT
HISTORY_MAX = lineCommands.HISTORY_MAX

UNFINISHED_LIMIT = 4 * MAX_FRAME_BYTES
"""Bytes a browser may send without finishing a message before it is
disconnected: Twisted keeps an unfinished message in memory, so this bounds
it (give or take one read).  Control frames (pings) do not count."""


def refusalCode(refusal: Refusal) -> str:
    """
    The error code of C{refusal}: its kind, in the protocol's spelling
    (C{NicknameTaken} is C{nickname-taken}).
    """
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(refusal).__name__).lower()


def refusalError(refusal: Refusal, re=None) -> dict:
    """
    The error frame's object for C{refusal}: its code, the web protocol's
    words for it (L{chatd.web.refusals}), and its fields.
    """
    more = {"re": re} if re is not None else {}
    try:
        text = describe(refusal)
    except KeyError:
        # A kind no protocol has words for (yet): its name.
        text = refusalCode(refusal).replace("-", " ")
    return wire.error(refusalCode(refusal), text, detail=dataclasses.asdict(refusal), **more)


class WebChatProtocol:
    """
    One browser's WebSocket (a L{twisted.web.websocket.WebSocketProtocol}).

    @ivar conn: the connection's L{Connection}.
    @ivar session: the L{chatd.core.session.Session} it acts through.
    """

    _log = Logger()

    conn = None
    session = None

    def __init__(self, factory, request):
        self.factory = factory
        self._channel = request.channel
        self._unfinished = 0
        self._controlFrames = ControlFrames()
        self._paused = False
        self._waiting = deque()
        # Bytes for the WebSocket library read behind messages that wait
        # (a close, a ping), a message's frames to a part: handed on once
        # those are handled.
        self._held = deque()

    # WebSocketProtocol

    def negotiationStarted(self, transport):
        self._ws = transport

    def negotiationFinished(self):
        channel = self._channel
        transport = channel.transport
        # The connection is a WebSocket now, not HTTP: no HTTP idle timeout,
        # and the outbox, not the HTTP channel, produces for the transport.
        channel.setTimeout(None)
        transport.unregisterProducer()
        # Whole text frames read here, the rest by the WebSocket library.
        self._library = channel.dataReceived
        frames = FrameReader(self.textMessageReceived, self._toLibrary, self._notText)
        channel.dataReceived = lambda data: self._dataReceived(frames, data)
        # What followed the upgrade request in the same read is still the
        # HTTP channel's: it hands it on as raw data once this returns,
        # which it would keep for a next request.  Those are frames too.
        channel.rawDataReceived = channel.dataReceived
        # Counted from here on as the connection it now is, not as HTTP.
        channel.uncount()
        self.conn = Connection(transport, self.factory.gate, WebWire, self)
        if not self.conn.live:
            return
        self._ws.transport = _LibraryFrames(self.conn)
        try:
            self.session = self.conn.open(self.factory.core)
        except Refusal as e:
            self.conn.closeWith(wire.message(refusalError(e)) + wire.closeFrame(1008))
            return
        self.send({"type": "hello", "server": f"chatd {__version__}",
                   "nickRules": NICK_RULES, "lobby": self.factory.core.lobby,
                   "maxText": MAX_TEXT_BYTES})

    def _dataReceived(self, frames, data):
        """
        Bytes for the WebSocket: counted, so that a message that never ends
        cannot grow without bound, and read by C{frames} (a
        L{FrameReader}) in one coalesced batch.
        """
        if self.conn is None or not self.conn.live or self.conn.transport.disconnecting:
            return
        self._unfinished += len(data)
        with self.factory.gate.coalescer:
            frames.dataReceived(data)
        if self._unfinished > UNFINISHED_LIMIT and self.conn.live:
            self.conn.quitReason = "message too large"
            self.conn.closeWith(wire.message(wire.error(
                "too-large", f"a message is at most {MAX_FRAME_BYTES} bytes; closing "
                "the connection")) + wire.closeFrame(1009))

    def _notText(self):
        if self.conn.live:
            self.conn.quitReason = "message not UTF-8"
            self.conn.closeWith(wire.message(wire.error(
                "bad-message", "a message is JSON text in UTF-8; closing the connection"))
                + wire.closeFrame(1007))

    def _toLibrary(self, data):
        """
        Bytes for the WebSocket library, in order behind the messages read
        before them: a close frame after lines that wait for pacing closes
        once they are said, as the line protocol's end of input does.  The
        library is handed them a message at a time, and nothing while a
        message waits: it would read a close behind it at once, in the same
        call.  Their control frames are no message's bytes (the library
        answers pings itself): they are not counted as unfinished.
        """
        frames = self._controlFrames
        control, ends = frames.follow(data)
        self._unfinished = max(0, self._unfinished - control)
        if frames.notText:
            # The library is handed the messages before it, never it.
            data = data[:ends[-1] if ends else 0]
        start = 0
        for end in ends:
            self._held.append(data[start:end])
            start = end
        if start < len(data):
            self._held.append(data[start:])
        if frames.notText:
            self._held.append(_NOT_TEXT)
        self._toLibraryWhileNothingWaits()

    def _toLibraryWhileNothingWaits(self):
        while self._held and not self._waiting:
            piece = self._held.popleft()
            if piece is _NOT_TEXT:
                self._held.clear()
                self._notText()
                return
            self._library(piece)
        frames = self._controlFrames
        if frames.controls and not self._paused and self.conn.live:
            # Each ping costs a pong: paced as lines are (IRC's PING is
            # one), so that a ping flood slows its sender, not the server.
            count, frames.controls = frames.controls, 0
            self.conn.lineHandled(count)

    def textMessageReceived(self, text):
        self._unfinished = 0
        if self.session is None:
            return
        if self._paused:
            # Read before the pause: handled, in order, once it ends.
            self._waiting.append(text)
            return
        self._handle(text)

    def bytesMessageReceived(self, data):
        self._unfinished = 0
        if self.session is not None and self.conn.accepting:
            self.error("bad-message", "binary messages are not part of this protocol; "
                       "send JSON text")

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        # (In the channel's place since the upgrade: see _Channel.)
        self._channel.uncount()
        # A message begun and not ended never will be: not input that waits
        # to be handled (which would keep the user, and their nickname, for
        # as long as the pacing its pings earned).
        self._unfinished = 0
        if self.conn is not None:
            self.conn.lost(reason)

    # What the Connection paces

    def pauseProducing(self):
        self._paused = True
        self.conn.transport.pauseProducing()

    def resumeProducing(self):
        self._paused = False
        with self.factory.gate.coalescer:
            while self._waiting and not self._paused:
                self._handle(self._waiting.popleft())
            if not self._paused:
                self._toLibraryWhileNothingWaits()
        if not self._paused and self.conn.live and not self.conn.transport.disconnecting:
            # Read on only once what was read is handled: the peer's end of
            # input (a close, or its socket's) is not seen before its lines;
            # not after a close just answered.
            self.conn.transport.resumeProducing()

    def connectionEnded(self):
        """
        The connection is over (see L{Connection}): nothing of it is kept
        here.
        """

    def unread(self):
        # Each waiting message, and each piece held for the library (a
        # ping's is paced as a line), counts as a line does: at least
        # LINE_FLOOR bytes (20,000 messages of "1" held the user's nickname
        # for half an hour after the peer left).
        return (self._unfinished + sum(max(len(text), LINE_FLOOR) for text in self._waiting)
                + sum(max(len(piece), LINE_FLOOR) for piece in self._held
                      if piece is not _NOT_TEXT))

    # Acting on a message

    def _handle(self, text):
        if not self.conn.accepting:
            return
        try:
            try:
                message = parse(text)
            except BadMessage as e:
                self.error(e.code, e.text, e.re)
                return
            self._act(message)
        finally:
            # Paced after it is handled: the next message may have to wait.
            self.conn.lineHandled()

    def _act(self, message):
        re = message["id"]
        try:
            getattr(self, "_do_" + message["type"])(message)
        except Refusal as e:
            self.send(refusalError(e, re))
        except LineError as e:
            self.error(getattr(e, "code", "command"), str(e), re)

    def _do_ping(self, m):
        self.send({"type": "pong", "data": m["data"] or "", "re": m["id"]})

    def _do_nick(self, m):
        """
        A first nickname or a new one; a registered one needs its password
        (refused with C{password-required} without it), checked later.
        """
        password = m["password"]
        if self.session.nick is None:
            if password is None:
                self._showRoom(self.session.claim(m["nick"]))
                return
            done = self.session.claim(m["nick"], password)
            done.addCallback(lambda room: room is not None and self._showRoom(room))
            # The login timeout waits for the password's check.
            self.conn.checking(done)
        else:
            done = self.session.rename(m["nick"], password)
            if password is None:
                return
        done.addErrback(self._refusedLater, m["id"])

    def _refusedLater(self, failure, re):
        """
        A request answered later (a password checked) was refused: say why.
        """
        if failure.check(Refusal):
            self.send(refusalError(failure.value, re))
            return
        self._log.failure("a request failed", failure)
        self.error("internal", "that did not work; try again later", re)

    def _do_join(self, m):
        room, joined = self.session.join(m["room"])
        if joined:
            self._showRoom(room)
        else:
            # Already a member: the room as it is, for the page to show.
            self.send(wire.fields(_entered(room, self.session.nick)))

    def _do_part(self, m):
        self.session.part(m["room"], m["reason"] or "")

    def _do_say(self, m):
        self.session.say(m["room"], m["text"])

    def _do_act(self, m):
        self.session.act(m["room"], m["text"])

    def _do_tell(self, m):
        self.session.tell(m["nick"], m["text"])

    def _do_topic(self, m):
        self.session.setTopic(m["room"], m["topic"])

    def _do_history(self, m):
        room = self.session.memberRoom(m["room"])
        count = HISTORY_DEFAULT if m["count"] is None else m["count"]
        if not 1 <= count <= HISTORY_MAX:
            raise LineError(f"count: from 1 to {HISTORY_MAX}")
        before = m["before"]
        if before is None:
            found = self.session.recent(room.name, count)
        else:
            # The store answers with a room's last lines: older ones are
            # found among the last HISTORY_MAX.
            found = self.session.recent(room.name, HISTORY_MAX)
            found.addCallback(lambda lines: [e for e in lines if e.id is not None
                                             and e.id < before][-count:])
        self.showReplay(room.name, found, count, older=before is not None)

    def _do_quit(self, m):
        self.quit(m["reason"] or "")

    def _do_command(self, m):
        """
        A line as typed in the page: the line front end's command table runs
        it, in the room the page shows; its events come as they do to anyone,
        its replies as C{reply} and C{error} frames.
        """
        answering = lineCommands.dispatch(_LineCommands(self, m["room"], m["id"]), m["line"])
        if answering is not None:
            answering.addErrback(lambda f: self._log.failure("a command failed", f))

    # Helpers

    def _showRoom(self, room):
        """
        After the core's welcome to C{room}: its last lines.
        """
        if self.session.keepsHistory and self.factory.replay > 0:
            self.showReplay(room.name, self.session.recent(room.name, self.factory.replay),
                            self.factory.replay, replay=True)

    def showReplay(self, room, found, asked, older=False, replay=False):
        """
        The room lines C{found} fires with, as history frames ended by a
        C{replayed} frame, in order among live lines: a join's C{replay}, or
        lines asked for (see L{Connection.showHistory}).  Fewer than
        C{asked} reach back as far as there is to show: C{first}, so that
        the page offers no older lines.
        """
        def render(stored):
            extra = {"history": True, "older": True} if older else {"history": True}
            data = [wire.message({**wire.fields(e), **extra}) for e in stored]
            data.append(wire.message({"type": "replayed", "room": room, "count": len(stored),
                                      "older": older, "first": len(stored) < asked}))
            return b"".join(data)

        self.conn.showHistory(found, render, self._historyRefused, replay)

    def _historyRefused(self, refusal):
        """
        The bytes that say history was refused (the store is busy).
        """
        return wire.message(refusalError(refusal))

    # Talking to the browser

    def send(self, obj):
        if self.conn.live:
            self.conn.send(wire.message(obj))

    def error(self, code, text, re=None):
        self.send(wire.error(code, text, **({"re": re} if re is not None else {})))

    def quit(self, reason):
        self.conn.quit(reason, wire.message(wire.reply("bye")) + wire.closeFrame(1000))


def _entered(room, nick):
    return Entered(room.name, nick, room.topic,
                   tuple(member.nick for member in room.members.values()))


class _LineCommands:
    """
    What the line front end's commands need of a connection, for a line
    typed in the page: the page's room is their current room; their replies
    become C{reply} and C{error} frames (a refusal's with its code, answering
    the command's message C{re}, as the page's own messages are refused),
    the room lines they show history frames.
    """

    # The registered nickname a command (/nick NAME before any nickname)
    # found needs a password: it comes in a nick message, not a next line.
    passwordFor = None

    def __init__(self, protocol, room, re):
        self._protocol = protocol
        self._room = room
        # Whether the page showed a room: one that names none shows a
        # private conversation (or nothing yet), where a command needing a
        # room must name it, not act on one the user does not see.
        self._roomShown = room is not None
        self._re = re
        self._shown = None
        self.session = protocol.session
        self.factory = protocol.factory

    def currentRoom(self):
        if self._room is not None:
            return self.session.memberRoom(self._room)
        rooms = self.session.rooms
        if not rooms:
            raise LineError("you are in no room; /join #room first")
        if not self._roomShown:
            raise LineError("this is not a room: go to a room first, or name it "
                            "(/part #room)")
        return rooms[-1]

    def talkIn(self, room):
        # The page keeps its own current room; this is the one entered.
        self._shown = room

    def leftByChoice(self, room):
        # The page names the room of every line it sends: once that one is
        # left (/part), the command's current room is another, as on the
        # line protocol, not one the user is no longer in.
        if self._room is not None and roomKey(normalRoomName(self._room)) == room.key:
            self._room = None

    def showHistory(self, found, header=None, replay=False):
        if replay:
            # A room just entered (/join, /ghost).
            self._protocol.showReplay(self._shown.name, found, self._protocol.factory.replay,
                                      replay=True)
            return

        def render(stored):
            # Lines found (/history, /search): a listing under its reply,
            # marked so, not lines to file among the room's own.
            text = header(stored) if header is not None else None
            frames = [wire.message(wire.reply(text))] if text is not None else []
            frames += [wire.message({**wire.fields(e), "history": True, "found": True})
                       for e in stored]
            return b"".join(frames)

        self._protocol.conn.showHistory(found, render, self._protocol._historyRefused)

    def send(self, data):
        # Lines a command built in the line protocol's own format (/who's
        # member list): the same words, as frames.
        for line in data.decode("utf-8").split("\r\n"):
            parsed = lineWire.parseLine(line) if line else None
            if parsed is not None:
                kind = {lineWire.ERROR: "error", lineWire.NOTICE: "notice"}.get(parsed.kind)
                if kind == "error":
                    self.error(parsed.text)
                else:
                    self._protocol.send({"type": kind or "reply", "text": parsed.text})

    def reply(self, text):
        self._protocol.send(wire.reply(text))

    def notice(self, text):
        self._protocol.send(wire.notice(text))

    def error(self, text):
        self._protocol.send(wire.error("refused", text))

    def refused(self, refusal):
        self._protocol.send(refusalError(refusal, self._re))

    def prompt(self, text):
        if self.passwordFor is not None:
            # As a nick message without its password is answered.
            self._protocol.send(refusalError(PasswordRequired(self.passwordFor), self._re))

    def quit(self, reason):
        self._protocol.quit(reason)


_NOT_TEXT = object()
"""Where, among the bytes held for the library, a text message that is not
UTF-8 began: refused there (L{WebChatProtocol._notText}), in order."""


class _LibraryFrames:
    """
    What the WebSocket library writes its own frames to (a pong, the close
    that answers the peer's): the connection's outbox, so that they go out
    in order with every other frame (a pong behind what was sent before its
    ping: RFC 6455 lets it overtake, chatd does not), and a close as the
    connection's last frame, nothing after it (section 5.5.1).
    """

    def __init__(self, conn):
        self._conn = conn

    def write(self, data):
        if self._conn.live:
            self._conn.send(data)

    def loseConnection(self):
        self._conn.closeWith(None)


class WebFactory:
    """
    Builds a L{WebChatProtocol} for each WebSocket of every C{--web}
    listener, all sharing one core and the server's gate.

    @ivar replay: how many lines of history a room shows on joining it.
    """

    def __init__(self, core, gate, replay=ChatFactory.REPLAY):
        self.core = core
        self.gate = gate
        self.replay = replay

    def buildProtocol(self, request):
        return WebChatProtocol(self, request)

"""
The web front end: one browser's WebSocket, speaking the JSON protocol.

It is a sibling of the line front end: it checks what arrives
(L{chatd.web.messages}), acts on the core, and renders what comes back as
JSON frames.  Events reach it through the same fan-out as every other front
end, encoded once per event by L{chatd.web.wire.WebWire}; what only this
connection is told (its room's members, an error) it builds itself.

Twisted's own C{twisted.web.websocket} carries the frames: it comes with
Twisted (no second framework beside it), runs on the reactor the rest of
chatd runs on, and hands over whole text messages.  Its write path is used
only for the handshake, pongs and closes; chat frames go through the
connection's L{Outbox} straight to the TCP transport, so that the send-queue
limit, back-pressure and per-turn coalescing are exactly the line
protocol's.
"""

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chatd import __version__
from chatd.core.chat import ChatError, User
from chatd.core.names import NICK_RULES, nickKey, normalRoomName, roomKey
from chatd.edge.limits import ACCEPT, DISCONNECT, ConnectionCounter, FloodGate, Limits
from chatd.edge.outbox import Coalescer, Outbox
from chatd.line import commands as lineCommands
from chatd.web import wire
from chatd.web.messages import MAX_FRAME_BYTES, MAX_TEXT_BYTES, BadMessage, parse
from chatd.web.wire import WebWire

HISTORY_DEFAULT = lineCommands.HISTORY_DEFAULT
HISTORY_MAX = lineCommands.HISTORY_MAX

UNFINISHED_LIMIT = 4 * MAX_FRAME_BYTES
"""Bytes a browser may send without finishing a message before it is
disconnected: Twisted keeps an unfinished message in memory, so this bounds
it (give or take one read)."""

# Commands typed in the page's input that this front end answers with its
# own JSON (a joined room's members, the sender's own message); every other
# /command is the line front end's, run by its own code.
_STRUCTURED = frozenset({"nick", "join", "part", "me", "msg", "topic", "quit", "ghost"})


class WebChatProtocol:
    """
    One browser's WebSocket (a L{twisted.web.websocket.WebSocketProtocol}).
    """

    _log = Logger()

    user = None
    _live = False
    _quitReason = None
    _timeout = None
    _idling = False

    def __init__(self, factory, request):
        self.factory = factory
        self.core = factory.core
        self._channel = request.channel
        address = request.getClientAddress()
        self.address = getattr(address, "host", None)
        port = getattr(address, "port", None)
        self.peer = f"{self.address}:{port}" if self.address is not None else str(address)
        self._unfinished = 0

    # WebSocketProtocol

    def negotiationStarted(self, transport):
        self._ws = transport

    def negotiationFinished(self):
        channel = self._channel
        self.transport = channel.transport
        # The connection is a WebSocket now, not HTTP: no HTTP idle timeout,
        # and the outbox, not the HTTP channel, produces for the transport.
        channel.setTimeout(None)
        self.transport.unregisterProducer()
        received = channel.dataReceived
        channel.dataReceived = lambda data: self._dataReceived(received, data)
        refusal = self.factory.admit(self)
        if refusal:
            self.transport.write(wire.message(wire.error("refused", f"Connection refused: {refusal}"))
                                 + wire.closeFrame(1008, "refused"))
            self.transport.loseConnection()
            self._log.info("refused {peer}: {why}", peer=self.peer, why=refusal)
            return
        self._live = True
        limits = self.factory.limits
        self.outbox = Outbox(self.transport, limits.sendQueueBytes, self._sendQueueOverflowed,
                             clock=self.factory.clock, grace=limits.sendQueueGrace,
                             coalescer=self.factory.coalescer)
        self.user = User(self.outbox, WebWire, host=self.address, hangUp=self._hangUp)
        self._flood = FloodGate(self.factory.clock, limits.floodRate, limits.floodBurst,
                                limits.floodKick)
        if limits.loginTimeout:
            self._timeout = self.factory.clock.callLater(
                limits.loginTimeout, self._closeBecause,
                f"no nickname chosen within {limits.loginTimeout:g} seconds")
        try:
            self.core.admit(self.user)
        except ChatError as e:
            self._log.info("refused {peer}: {why}", peer=self.peer, why=str(e))
            self._closeWith(wire.error("refused", str(e)))
            return
        self.send({"type": "hello", "server": f"chatd {__version__}",
                   "nickRules": NICK_RULES, "lobby": self.core.lobby,
                   "maxText": MAX_TEXT_BYTES})

    def _dataReceived(self, received, data):
        """
        Bytes for the WebSocket: counted, so that a message that never ends
        cannot grow without bound, and handled in one coalesced batch.
        """
        if not self._live or self.transport.disconnecting:
            return
        self._unfinished += len(data)
        with self.factory.coalescer:
            received(data)
        if self._unfinished > UNFINISHED_LIMIT and self._live:
            self._quitReason = "message too large"
            self._closeWith(wire.error("too-large", f"a message is at most {MAX_FRAME_BYTES} "
                                       "bytes; closing the connection"), code=1009)

    def textMessageReceived(self, text):
        self._unfinished = 0
        if not self._live or self.transport.disconnecting or self.factory.stopping:
            return
        verdict = self._flood.admit()
        if verdict is not ACCEPT:
            if verdict is DISCONNECT:
                self._closeBecause("flooding")
            else:
                self.error("flood", "you are sending messages too fast; this one was not delivered")
            return
        try:
            message = parse(text)
        except BadMessage as e:
            self.error(e.code, e.text, e.re)
        else:
            self._act(message)
        self._heard()

    def bytesMessageReceived(self, data):
        self._unfinished = 0
        if self._live:
            self.error("bad-message", "binary messages are not part of this protocol; "
                       "send JSON text")

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        if not self._live:
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
        self._log.info("{nick} ({peer}, web) disconnected: {why}",
                       nick=self.user.nick or "-", peer=self.peer, why=why)

    # Acting on a message

    def _act(self, message):
        kind = message["type"]
        re = message["id"]
        if self.user.nick is None and kind not in ("nick", "ping", "quit", "command"):
            self.error("nick-needed", "choose a nickname first", re)
            return
        try:
            getattr(self, "_do_" + kind)(message)
        except ChatError as e:
            code = "nick-refused" if kind == "nick" else "refused"
            self.error(code, str(e), re)

    def _do_ping(self, m):
        self.send({"type": "pong", "data": m["data"] or "", "re": m["id"]})

    def _do_nick(self, m):
        nick = m["nick"]
        if self.user.nick is None:
            self.core.claimNick(self.user, nick)
            self.send({"type": "you", "nick": self.user.nick})
            self._showRoom(self.user.current, replay=True)
            self.core.checkIdentity(self.user)
        else:
            self.core.rename(self.user, nick)
            self.send({"type": "you", "nick": self.user.nick})
            self.core.checkIdentity(self.user)

    def _do_join(self, m):
        before = len(self.user.rooms)
        room = self.core.join(self.user, m["room"])
        self._showRoom(room, replay=len(self.user.rooms) != before)

    def _do_part(self, m):
        room = self.core.part(self.user, self._memberRoom(m["room"]).name, m["reason"] or "")
        self.send({"type": "left", "room": room.name})

    def _do_say(self, m):
        self._inRoom(m["room"])
        self._nonEmpty(m["text"], "text")
        self.core.say(self.user, m["text"])

    def _do_act(self, m):
        self._inRoom(m["room"])
        self._nonEmpty(m["text"], "text")
        self.core.act(self.user, m["text"])

    def _do_tell(self, m):
        text = self._nonEmpty(m["text"], "text")
        self.core.tell(self.user, m["nick"], text)
        target = self.core.users.get(nickKey(m["nick"]))
        # The sender's own copy, filed under the recipient as the server knows them.
        self.send({"type": "private", "from": self.user.nick,
                   "to": target.nick if target is not None else m["nick"],
                   "text": text, "time": self.factory.clock.seconds()})

    def _do_topic(self, m):
        self._inRoom(m["room"])
        self.core.setTopic(self.user, m["topic"] or "")

    def _do_history(self, m):
        room = self._memberRoom(m["room"])
        count = m["count"] or HISTORY_DEFAULT
        if not 1 <= count <= HISTORY_MAX:
            raise ChatError(f"count: from 1 to {HISTORY_MAX}")
        before = m["before"]
        # The store gives a room's last lines; older ones are found among
        # the last HISTORY_MAX.
        found = self.core.recent(self.user, room, HISTORY_MAX if before is not None else count)
        if before is not None:
            found.addCallback(lambda lines: [e for e in lines if e.id is not None
                                             and e.id < before][-count:])
        self._showHistory(room, found, older=before is not None)

    def _do_quit(self, m):
        self.quit(m["reason"] or "")

    def _do_command(self, m):
        line = m["line"]
        if not line.startswith("/") or line.startswith("//"):
            # Not a command: a line for the room named, as typed.
            text = line[1:] if line.startswith("//") else line
            if self.user.nick is None:
                return self._do_nick({"nick": text, "id": m["id"]})
            return self._do_say({"room": m["room"], "text": text, "id": m["id"]})
        name, _, arg = line[1:].partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in _STRUCTURED and (arg or name == "quit"):
            return self._structured(name, arg, m)
        if m["room"] is not None and self.user.nick is not None:
            # The line front end's commands act on the current room.
            self.user.current = self._memberRoom(m["room"])
        answering = lineCommands.dispatch(_LineCommands(self), line)
        if answering is not None:
            answering.addErrback(lambda f: self._log.failure("a command failed", f))

    def _structured(self, name, arg, m):
        """
        A /command the page typed that this front end answers in JSON.
        """
        room = m["room"]
        first, _, rest = arg.partition(" ")
        rest = rest.strip()
        if name == "nick":
            return self._do_nick({"nick": first})
        if name == "join":
            return self._do_join({"room": first})
        if name == "part":
            return self._do_part({"room": first, "reason": rest})
        if name == "me":
            return self._do_act({"room": room, "text": arg})
        if name == "msg":
            if not rest:
                raise ChatError("usage: /msg NICK TEXT")
            return self._do_tell({"nick": first, "text": rest})
        if name == "topic":
            return self._do_topic({"room": room, "topic": "" if arg == "-" else arg})
        if name == "quit":
            return self.quit(arg)
        if name == "ghost":
            return self._ghost(first, rest)

    def _ghost(self, nick, password):
        if not password:
            raise ChatError("usage: /ghost NICK PASSWORD")
        arriving = self.user.nick is None
        done = self.core.ghost(self.user, nick, password)

        def ghosted(_):
            self.send({"type": "you", "nick": self.user.nick, "identified": True})
            if arriving:
                self._showRoom(self.user.current, replay=True)

        def refused(failure):
            failure.trap(ChatError)
            self.error("nick-refused" if arriving else "refused", failure.getErrorMessage())

        done.addCallbacks(ghosted, refused)
        done.addErrback(lambda f: self._log.failure("/ghost failed", f))

    # Helpers

    def _memberRoom(self, name):
        if name is None:
            raise ChatError("name a room")
        room = self.user.rooms.get(roomKey(normalRoomName(name)))
        if room is None:
            raise ChatError(f"you are not in {normalRoomName(name)}")
        return room

    def _inRoom(self, name):
        """
        Make the room C{name} the one the core's calls act on.
        """
        self.user.current = self._memberRoom(name)
        return self.user.current

    @staticmethod
    def _nonEmpty(text, name):
        if not text:
            raise ChatError(f"{name} is empty after cleaning; nothing was sent")
        return text

    def _showRoom(self, room, replay):
        """
        Tell the user about C{room}, which they are in: its name, topic and
        members, then (on joining) its last lines.
        """
        members = sorted((u.nick for u in room.members.values()), key=str.lower)
        self.send({"type": "room", "room": room.name, "topic": room.topic,
                   "members": members})
        if replay and self.core.history is not None and self.factory.replay > 0:
            self._showHistory(room, self.core.recent(self.user, room, self.factory.replay))

    def _showHistory(self, room, found, older=False):
        """
        The room lines C{found} fires with, as history frames, and after them
        a C{replayed} frame; placed after everything sent so far and before
        anything sent meanwhile.
        """
        def frames(stored):
            data = [WebWire.encodeHistory(e) if not older
                    else wire.message({**wire.fields(e), "history": True, "older": True})
                    for e in stored]
            data.append(wire.message({"type": "replayed", "room": room.name,
                                      "count": len(stored), "older": older}))
            return b"".join(data)

        def failed(failure):
            self._log.failure("history for {nick} failed", failure, nick=self.user.nick)
            return wire.message(wire.error("history", "history is unavailable right now"))

        if found.called:
            found.addCallbacks(frames, failed)
            found.addCallback(lambda data: self.outbox.send(data))
            return
        place = self.outbox.hold()
        tooLate = self.factory.clock.callLater(
            self.factory.HISTORY_WAIT, self.outbox.fill, place,
            wire.message(wire.error("history", "history took too long and was skipped")))

        def arrived(data):
            if tooLate.active():
                tooLate.cancel()
            self.outbox.fill(place, data)

        found.addCallbacks(frames, failed)
        found.addCallback(arrived)

    # Talking to the browser

    def send(self, obj):
        if self._live:
            self.outbox.send(wire.message(obj))

    def error(self, code, text, re=None):
        self.send(wire.error(code, text, **({"re": re} if re is not None else {})))

    def quit(self, reason):
        self._quitReason = reason or "quit"
        self.core.disconnect(self.user, reason)
        self._closeWith(wire.reply("bye"))

    def sendLast(self, obj):
        """
        Send C{obj} (if any) as this connection's last frame, then a close
        frame, ahead of any history still being read.
        """
        if obj is not None:
            self.outbox.send(wire.message(obj))
        self.outbox.send(wire.closeFrame(1000))
        self.outbox.finish()

    def _closeWith(self, obj, code=1000):
        if obj is not None:
            self.outbox.send(wire.message(obj))
        self.outbox.send(wire.closeFrame(code))
        self.outbox.finish()
        self.transport.loseConnection()

    def _hangUp(self):
        self._closeWith(None)

    def _closeBecause(self, why):
        self._quitReason = why
        self._closeWith(wire.notice(f"Closing your connection: {why}"))
        self._log.info("closing {nick} ({peer}, web): {why}",
                       nick=self.user.nick or "-", peer=self.peer, why=why)

    def _heard(self):
        if self.user is None or self.user.nick is None or not self._live:
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

    def _sendQueueOverflowed(self, pending):
        self._quitReason = "send queue exceeded"
        self._log.warn("dropping {nick} ({peer}, web): not reading; {pending} bytes "
                       "waiting to be sent", nick=self.user.nick or "-", peer=self.peer,
                       pending=pending)


class _LineCommands:
    """
    What the line front end's commands need of a connection, for a /command
    typed in the page: their replies become C{reply} and C{error} frames,
    the room lines they show become history frames.
    """

    def __init__(self, protocol):
        self._protocol = protocol
        self.core = protocol.core
        self.user = protocol.user
        self.factory = protocol.factory

    def reply(self, text):
        self._protocol.send(wire.reply(text))

    def notice(self, text):
        self._protocol.send(wire.notice(text))

    def error(self, text):
        self._protocol.send(wire.error("refused", text))

    def prompt(self, text):
        pass

    def quit(self, reason):
        self._protocol.quit(reason)

    def showHistory(self, found, header=None):
        def withHeader(stored):
            text = header(stored) if header is not None else None
            return ([wire.message(wire.reply(text))] if text is not None else []) + \
                [WebWire.encodeHistory(e) for e in stored]

        protocol = self._protocol
        found.addCallback(withHeader)
        found.addCallback(lambda frames: protocol._live and protocol.outbox.send(b"".join(frames)))
        found.addErrback(lambda f: protocol.error("history", "history is unavailable right now"))


class WebFactory:
    """
    Builds a L{WebChatProtocol} for each WebSocket, all sharing one core.

    @ivar connections: the open (admitted) connections.
    """

    HISTORY_WAIT = 3.0
    SHUTDOWN_GRACE = 3.0

    def __init__(self, core, clock, limits=Limits(), replay=20, coalescer=None, counter=None):
        self.core = core
        self.clock = clock
        self.limits = limits
        self.replay = replay
        self.coalescer = coalescer or Coalescer()
        self._counter = counter or ConnectionCounter(limits.maxConnections, limits.maxPerAddress)
        self.connections = set()
        self.stopping = False
        self._allClosed = None

    def buildProtocol(self, request):
        return WebChatProtocol(self, request)

    def admit(self, connection):
        refusal = self._counter.admit(connection.address)
        if refusal is None:
            self.connections.add(connection)
        return refusal

    def forget(self, connection):
        if connection in self.connections:
            self.connections.discard(connection)
            self._counter.release(connection.address)
        if not self.connections and self._allClosed is not None:
            allClosed, self._allClosed = self._allClosed, None
            allClosed.callback(None)

    def shutDown(self, text):
        """
        Tell every browser C{text}, stop acting on what they send and close
        their connections once what was queued for them is written; those
        that do not take it within L{SHUTDOWN_GRACE} seconds are cut off.

        @return: a L{Deferred} that fires when every connection is closed.
        """
        self.stopping = True
        self._allClosed = allClosed = Deferred()
        connections = list(self.connections)
        if not connections:
            self._allClosed = None
            allClosed.callback(None)
            return allClosed
        for connection in connections:
            connection.sendLast(wire.notice(text))
        for connection in connections:
            connection.transport.loseConnection()
        cutOff = self.clock.callLater(self.SHUTDOWN_GRACE, self._cutOff)
        allClosed.addBoth(lambda result: cutOff.active() and cutOff.cancel())
        return allClosed

    def _cutOff(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()


def _lossReason(reason):
    if reason.check(error.ConnectionDone):
        return "connection closed"
    return "connection lost"

"""
The IRC front end: one L{IrcProtocol} per IRC client, beside the line
protocol, over the same core and fan-out.

The protocol is thin: it splits the stream into lines (CRLF or LF), cleans
each with the edge (L{chatd.edge.sanitize}), parses it
(L{chatd.irc.message}), and hands it to one handler per command, which acts
through the connection's session and answers with replies and numerics.  What
happens in the rooms reaches the client as the fan-out's bytes, encoded once
for every IRC user by L{chatd.irc.wire.IrcWire}.
"""

import base64
import fnmatch
import time as _time

from twisted.internet import error
from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver

from chatd import __version__
from chatd.core import events
from chatd.core.errors import ChatError
from chatd.core.names import nickKey, normalRoomName
from chatd.edge.limits import ACCEPT, DISCONNECT, ConnectionCounter, FloodGate, Limits
from chatd.edge.outbox import Coalescer, Outbox
from chatd.edge.sanitize import cleanText
from chatd.irc import numerics as N
from chatd.irc import session as S
from chatd.irc.message import (MAX_BODY_BYTES, MAX_CLIENT_TAG_BYTES, MAX_LINE_BYTES,
                                encode, parse)
from chatd.irc.wire import (CTCP, HIDDEN_HOST, IrcWire, Personal, banMask, banTarget,
                             serverTime)

# Commands a client may send before it is registered.
_BEFORE_REGISTRATION = {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT",
                        "AUTHENTICATE"}
# The capabilities chatd offers, with their values for CAP LS 302.
# multi-prefix and userhost-in-names change only what NAMES shows (chatd has
# one prefix, so multi-prefix changes nothing at all).
CAPABILITIES = {"server-time": "", "sasl": "PLAIN", "message-tags": "",
                "echo-message": "", "multi-prefix": "", "userhost-in-names": ""}


class IrcOutbox:
    """
    What the fan-out sees as an IRC user's outbox: renders the events told to
    this user alone (L{Personal}) with their nickname, and drops the copies
    of a QUIT or NICK line the core sends once per shared room, then passes
    the bytes on to the real L{Outbox}.
    """

    __slots__ = ("_protocol", "_outbox", "_last", "_previous")

    def __init__(self, protocol, outbox):
        self._protocol = protocol
        self._outbox = outbox
        self._last = b""
        self._previous = b""

    def send(self, data):
        if type(data) is Personal:
            data = self._protocol.personal(data.event, self._previous)
            if not data:
                return
        elif data == self._last:
            # A quit or a rename is one event per room the user shares
            # with the recipient: IRC shows it once.
            return
        self._last = data if (b" QUIT " in data[:100] or b" NICK " in data[:100]) else b""
        self._previous = data
        self._outbox.send(data)

    def __getattr__(self, name):
        return getattr(self._outbox, name)


class IrcProtocol(LineReceiver):
    """
    One IRC client.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE_BYTES + 1

    _log = Logger()

    session = None
    _live = False
    registered = False
    nick = None
    username = None
    realname = ""
    away = None
    _capNegotiating = False
    _quitReason = None
    _whox = None
    _saslPending = False

    # Framework callbacks

    def connectionMade(self):
        address = self.transport.getPeer()
        self.address = getattr(address, "host", None)
        self.peer = f"{self.address}:{getattr(address, 'port', '')}"
        self.server = self.factory.wire.server
        refusal = self.factory.admit(self)
        if refusal:
            self.transport.write(encode("ERROR", f"Closing link: {refusal}"))
            self.transport.loseConnection()
            return
        self._live = True
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        limits = self.factory.limits
        self.caps = set()
        self._skipping = False
        self._replay = None
        self._sasl = None
        self.outbox = Outbox(self.transport, limits.sendQueueBytes,
                             self._sendQueueOverflowed, clock=self.factory.clock,
                             grace=limits.sendQueueGrace,
                             coalescer=self.factory.coalescer)
        self.wire = self.factory.wire
        self.session = S.Session(self.factory.core, _Client(self), self.address)
        self._flood = FloodGate(self.factory.clock, limits.floodRate,
                                limits.floodBurst, limits.floodKick)
        self._lastHeard = self._lastSpoke = self.factory.clock.seconds()
        self._pinged = False
        self._timeout = None
        if limits.loginTimeout:
            self._timeout = self.factory.clock.callLater(
                limits.loginTimeout, self.close, "Registration timed out")
        self._keepalive = self.factory.clock.callLater(
            self.factory.PING_INTERVAL, self._checkAlive)
        try:
            self.session.admit()
        except S.Refusal as e:
            self.close(str(e))

    def dataReceived(self, data):
        if not self._live:
            return
        with self.factory.coalescer:
            while data:
                if self._skipping:
                    end = data.find(b"\n")
                    if end < 0:
                        return
                    data = data[end + 1:]
                    self._skipping = False
                super().dataReceived(data)
                data, self._replay = self._replay, None

    def lineLengthExceeded(self, line):
        end = line.find(b"\n")
        if end < 0:
            self._skipping = True
        else:
            self._replay = line[end + 1:]
        self.numeric(N.ERR_INPUTTOOLONG, "Input line was too long")

    def lineReceived(self, raw):
        if not self._live or self.transport.disconnecting or self.factory.stopping:
            return
        self._lastHeard = self.factory.clock.seconds()
        self._pinged = False
        verdict = self._flood.admit()
        if verdict is not ACCEPT:
            if verdict is DISCONNECT:
                self.close("Excess flood")
            else:
                self.notice("you are sending lines too fast; that one was dropped")
            return
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if _tooLong(raw):
            self.numeric(N.ERR_INPUTTOOLONG, "Input line was too long")
            return
        raw, ctcp = _ctcp(raw)
        message = parse(cleanText(raw))
        if message is None:
            return
        command = message.command
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            # UTF8ONLY: the edge has repaired it (U+FFFD); say so.
            self.send("WARN", command, "INVALID_UTF8",
                      "Your message was not valid UTF-8 and was repaired")
        if not self.registered and command not in _BEFORE_REGISTRATION:
            self.numeric(N.ERR_NOTREGISTERED, "You have not registered")
            return
        handler = getattr(self, "irc_" + command, None)
        if handler is None:
            self.numeric(N.ERR_UNKNOWNCOMMAND, command, "Unknown command")
            return
        try:
            if command in ("PRIVMSG", "NOTICE"):
                handler(message.params, ctcp)
            else:
                handler(message.params)
        except _NeedMoreParams:
            self.numeric(N.ERR_NEEDMOREPARAMS, command, "Not enough parameters")

    def connectionLost(self, reason):
        if not self._live:
            return
        self._live = False
        for timer in (self._timeout, self._keepalive):
            if timer is not None and timer.active():
                timer.cancel()
        self.factory.forget(self)
        self.outbox.close()
        if self._quitReason is None and self.factory.stopping:
            self._quitReason = "Server shutting down"
        why = self._quitReason or ("Connection closed" if reason.check(error.ConnectionDone)
                                   else "Connection lost")
        self.session.quit(why)
        self._forgetNick()

    # Output

    def send(self, command, *params, prefix=None):
        self.outbox.send(encode(command, *params,
                                prefix=self.server if prefix is None else prefix))

    def numeric(self, code, *params):
        self.outbox.send(encode(code, self.nick or "*", *params, prefix=self.server))

    def notice(self, text):
        self.send("NOTICE", self.nick or "*", text)

    def personal(self, event, previous):
        """
        The bytes that show C{event}, told to this user alone (see
        L{IrcOutbox}); C{previous} is the last line the fan-out sent them.
        """
        if type(event) is events.PutOut and (
                f" KICK {event.room} {self.nick} ".encode("utf-8") in previous[:200]):
            # The KICK just shown already took them out of the channel.
            return b""
        return self.wire.personal(event, self.nick or "*")

    def close(self, reason):
        """
        Tell the client C{reason} with ERROR and close once it is written.
        """
        if not self._live:
            return
        if self._quitReason is None:
            self._quitReason = reason
        self.outbox.send(encode("ERROR", f"Closing link: ({self.username or '*'}@"
                                         f"{self.address}) [{reason}]"))
        self.outbox.finish()
        self.transport.loseConnection()

    def _sendQueueOverflowed(self, pending):
        self._quitReason = "SendQ exceeded"
        self._log.warn("dropping {nick} ({peer}): not reading; {pending} bytes waiting",
                       nick=self.nick or "-", peer=self.peer, pending=pending)

    def _hangUp(self):
        self.close(self._quitReason or "Disconnected by the server")

    def source(self):
        return f"{self.nick}!{self._userhost()}"

    def _userhost(self):
        return f"~{self.username or self.nick}@{HIDDEN_HOST}"

    # Keepalive

    def _checkAlive(self):
        if not self._live:
            return
        interval = self.factory.PING_INTERVAL
        silent = self.factory.clock.seconds() - self._lastHeard
        if silent >= interval:
            if self._pinged:
                self.close(f"Ping timeout: {int(silent)} seconds")
                return
            self._pinged = True
            self.send("PING", self.server)
            self._keepalive = self.factory.clock.callLater(interval, self._checkAlive)
            return
        self._keepalive = self.factory.clock.callLater(interval - silent, self._checkAlive)

    # Registration

    def irc_PASS(self, params):
        if self.registered:
            self.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")

    def irc_CAP(self, params):
        sub = _param(params, 0).upper()
        if sub == "LS":
            if not self.registered:
                self._capNegotiating = True
            version = params[1] if len(params) > 1 else ""
            offered = self._capabilities()
            if version.isdigit() and int(version) >= 302:
                caps = " ".join(f"{k}={v}" if v else k for k, v in offered.items())
            else:
                caps = " ".join(offered)
            self.send("CAP", self.nick or "*", "LS", caps)
        elif sub == "LIST":
            self.send("CAP", self.nick or "*", "LIST", " ".join(sorted(self.caps)))
        elif sub == "REQ":
            if not self.registered:
                self._capNegotiating = True
            wanted = _param(params, 1).split()
            names = [w.lstrip("-") for w in wanted]
            if all(name in self._capabilities() for name in names):
                for w in wanted:
                    if w.startswith("-"):
                        self.caps.discard(w[1:])
                    else:
                        self.caps.add(w)
                self._chooseWire()
                self.send("CAP", self.nick or "*", "ACK", " ".join(wanted))
            else:
                self.send("CAP", self.nick or "*", "NAK", " ".join(wanted))
        elif sub == "END":
            if not self.registered:
                self._capNegotiating = False
                self._tryRegister()
        else:
            self.numeric("410", sub or "*", "Invalid CAP command")

    def _capabilities(self):
        """
        The capabilities offered: SASL only where there are accounts.
        """
        if self.session.core.accounts is None:
            return {k: v for k, v in CAPABILITIES.items() if k != "sasl"}
        return CAPABILITIES

    def _chooseWire(self):
        """
        The wire format for the capabilities: with server-time tags or not.
        """
        wire = self.factory.wire
        if ("server-time" in self.caps) != wire.tagged:
            wire = wire.twin()
        self.wire = wire
        self.session.user.wire = wire

    def irc_NICK(self, params):
        nick = _param(params, 0)
        if not nick:
            self.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        if not self.registered:
            try:
                self.session.checkNick(nick)
            except S.InvalidNickname:
                self.numeric(N.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
                return
            except S.NicknameTaken:
                self.numeric(N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
                return
            self.nick = nick
            self._tryRegister()
            return
        if nick == self.nick:
            return
        old = self.source()
        try:
            self.session.rename(nick)
        except S.InvalidNickname:
            self.numeric(N.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
            return
        except S.NicknameTaken:
            self.numeric(N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        except S.Refusal as e:
            self.notice(str(e))
            return
        self._forgetNick()
        self.nick = nick
        self._rememberNick()
        self.outbox.send(encode("NICK", nick, prefix=old))

    def irc_USER(self, params):
        if self.registered or self.username is not None:
            self.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        if len(params) < 4 or not params[0] or not params[3]:
            raise _NeedMoreParams()
        # A username as the ident protocol would give it: short and plain.
        username = "".join(c for c in params[0] if c.isascii() and (c.isalnum() or c in "_-."))
        self.username = (username or "user")[:10]
        self.realname = params[3]
        self._tryRegister()

    def _tryRegister(self):
        if (self.registered or self._capNegotiating or self._saslPending
                or not self.nick or not self.username):
            return
        try:
            # IRC clients choose their channels (their own autojoin lists):
            # unlike the line protocol's users, nobody is put in the lobby.
            self.session.claim(self.nick, joinLobby=False)
        except S.NicknameTaken:
            self.numeric(N.ERR_NICKNAMEINUSE, self.nick, "Nickname is already in use")
            self.nick = None
            return
        except S.InvalidNickname:
            self.numeric(N.ERR_ERRONEUSNICKNAME, self.nick, "Erroneous nickname")
            self.nick = None
            return
        except S.Refusal as e:
            self.numeric(N.ERR_YOUREBANNEDCREEP, str(e))
            self.close(str(e))
            return
        self.registered = True
        self._rememberNick()
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        self._welcome()

    def _rememberNick(self):
        self.wire.users[nickKey(self.nick)] = self._userhost()
        self.factory.clients[nickKey(self.nick)] = self

    def _forgetNick(self):
        if self.nick is None:
            return
        key = nickKey(self.nick)
        if self.factory.clients.get(key) is self:
            del self.factory.clients[key]
            self.wire.users.pop(key, None)

    def _welcome(self):
        network = self.factory.network
        self.numeric(N.RPL_WELCOME, f"Welcome to the {network} IRC Network {self.source()}")
        self.numeric(N.RPL_YOURHOST,
                     f"Your host is {self.server}, running version chatd-{__version__}")
        self.numeric(N.RPL_CREATED, f"This server was created {self.factory.created}")
        self.numeric(N.RPL_MYINFO, self.server, f"chatd-{__version__}", "i", "bq")
        tokens = N.isupport(network)
        for start in range(0, len(tokens), 12):
            self.numeric(N.RPL_ISUPPORT, *tokens[start:start + 12],
                         "are supported by this server")
        self.irc_MOTD([])

    def irc_MOTD(self, params):
        motd = self.factory.motd
        if not motd:
            self.numeric(N.ERR_NOMOTD, "MOTD File is missing")
            return
        self.numeric(N.RPL_MOTDSTART, f"- {self.server} Message of the day - ")
        for line in motd:
            self.numeric(N.RPL_MOTD, f"- {line}")
        self.numeric(N.RPL_ENDOFMOTD, "End of /MOTD command.")

    # Keepalive and leaving

    def irc_PING(self, params):
        if not params:
            self.numeric("409", "No origin specified")
            return
        self.send("PONG", self.server, params[0])

    def irc_PONG(self, params):
        pass

    def irc_QUIT(self, params):
        reason = _param(params, 0)
        self._quitReason = f"Quit: {reason}" if reason else "Quit"
        self.session.quit(self._quitReason)
        self.close(self._quitReason)

    # Rooms

    def irc_JOIN(self, params):
        names = _required(params, 0)
        if names == "0":
            for room in list(self.session.rooms):
                self._part(room.name, "")
            return
        for name in names.split(","):
            if not name:
                continue
            if not name.startswith("#"):
                self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
                continue
            try:
                room, joinedNow = self.session.join(name)
            except S.InvalidRoomName:
                self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
                continue
            except S.TooManyRooms:
                self.numeric(N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
                continue
            except S.Banned as e:
                self.numeric(N.ERR_BANNEDFROMCHAN, name, f"Cannot join channel (+b): {e}")
                continue
            except S.Refusal as e:
                self.numeric(N.ERR_UNKNOWNERROR, "JOIN", str(e))
                continue
            if joinedNow:
                self._showJoined(room)

    def _showJoined(self, room):
        self.outbox.send(encode("JOIN", room.name, prefix=self.source()))
        if room.topic:
            self.numeric(N.RPL_TOPIC, room.name, room.topic)
        self._names(room)

    def _names(self, room):
        prefix = f"{N.RPL_NAMREPLY} {self.nick} = {room.name} :"
        names = [self._prefixed(room, user) for user in room.members.values()]
        for piece in _packWords(names, 400 - len(prefix)):
            self.numeric(N.RPL_NAMREPLY, "=", room.name, piece)
        self.numeric(N.RPL_ENDOFNAMES, room.name, "End of /NAMES list.")

    def _prefixed(self, room, user):
        flag = "@" if self.session.isModerator(room, user) else ""
        if "userhost-in-names" in self.caps:
            return flag + self.wire.source(user.nick)
        return flag + user.nick

    def irc_PART(self, params):
        reason = _param(params, 1)
        for name in _required(params, 0).split(","):
            if name:
                self._part(name, reason)

    def _part(self, name, reason):
        try:
            room = self.session.part(name, reason)
        except S.NoSuchRoom:
            self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
            return
        except S.NotInRoom:
            self.numeric(N.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return
        if reason:
            self.outbox.send(encode("PART", room.name, reason, prefix=self.source()))
        else:
            self.outbox.send(encode("PART", room.name, prefix=self.source()))

    def irc_TOPIC(self, params):
        name = _required(params, 0)
        if len(params) < 2:
            try:
                room = self.session.room(name)
            except S.NoSuchRoom:
                self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
                return
            if room.topic:
                self.numeric(N.RPL_TOPIC, room.name, room.topic)
            else:
                self.numeric(N.RPL_NOTOPIC, room.name, "No topic is set")
            return
        topic = params[1][:N.TOPICLEN]
        try:
            room = self.session.setTopic(name, topic)
        except S.NoSuchRoom:
            self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
            return
        except S.NotInRoom:
            self.numeric(N.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return
        except S.Muted:
            self.numeric(N.ERR_CHANOPRIVSNEEDED, name, "You are muted in this channel")
            return
        except S.Refusal:
            # The topic is already that: nothing changes, nothing to say.
            room = self.session.room(name)
            self.outbox.send(encode("TOPIC", room.name, topic, prefix=self.source()))
            return
        self.outbox.send(encode("TOPIC", room.name, topic, prefix=self.source()))

    def irc_NAMES(self, params):
        if not params or not params[0]:
            for room in self.session.rooms:
                self._names(room)
            return
        for name in params[0].split(","):
            try:
                room = self.session.room(name)
            except S.NoSuchRoom:
                self.numeric(N.RPL_ENDOFNAMES, name, "End of /NAMES list.")
                continue
            self._names(room)

    def irc_LIST(self, params):
        """
        LIST, with ELIST's M (masks), N (negated masks) and U (member counts)
        conditions: C{LIST #ch*,!*test,>2,<10}.
        """
        core = self.session.core
        masks, negated, conditions = [], [], []
        for item in _param(params, 0).split(","):
            if not item:
                continue
            if item[0] in "<>" and item[1:].isdigit():
                conditions.append((item[0], int(item[1:])))
            elif item.startswith("!"):
                negated.append(nickKey(item[1:]))
            else:
                masks.append(nickKey(item))
        self.numeric(N.RPL_LISTSTART, "Channel", "Users  Name")
        for key, room in sorted(core.rooms.items()):
            count = len(room.members)
            if masks and not any(fnmatch.fnmatchcase(key, m) for m in masks):
                continue
            if any(fnmatch.fnmatchcase(key, m) for m in negated):
                continue
            if any(count <= n if op == ">" else count >= n for op, n in conditions):
                continue
            self.numeric(N.RPL_LIST, room.name, str(count), room.topic)
        self.numeric(N.RPL_LISTEND, "End of /LIST")

    # Talking

    def irc_PRIVMSG(self, params, ctcp, notice=False):
        if not params or not params[0]:
            if not notice:
                self.numeric(N.ERR_NORECIPIENT, "No recipient given (PRIVMSG)")
            return
        if ctcp not in (None, "ACTION"):
            # Other CTCP queries (VERSION, PING, ...) are not passed on:
            # chatd's other front ends have no such thing.
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                self.numeric(N.ERR_NOTEXTTOSEND, "No text to send")
            return
        text = params[1]
        command = "NOTICE" if notice else "PRIVMSG"
        self._lastSpoke = self.factory.clock.seconds()
        for target in params[0].split(","):
            if not target:
                continue
            try:
                if target.startswith("#"):
                    self._toRoom(target, text, ctcp)
                else:
                    self._toNick(target, text, ctcp, command)
            except S.Refusal as e:
                if notice:
                    continue
                self._refusedMessage(target, e)

    def irc_NOTICE(self, params, ctcp):
        self.irc_PRIVMSG(params, ctcp, notice=True)

    def _toRoom(self, target, text, ctcp):
        room = self.session.room(target)
        if ctcp == "ACTION":
            self.session.act(target, text)
            shown = f"{CTCP}ACTION {text}{CTCP}"
        else:
            self.session.say(target, text)
            shown = text
        self._echo("PRIVMSG", room.name, shown)

    def _echo(self, command, target, text):
        if "echo-message" in self.caps:
            tags = None
            if "server-time" in self.caps:
                tags = {"time": serverTime(self.factory.clock.seconds())}
            self.outbox.send(encode(command, target, text, prefix=self.source(), tags=tags))

    def _toNick(self, target, text, ctcp, command):
        if nickKey(target) == "nickserv" and nickKey(target) not in self.session.core.users:
            self._nickServ(text)
            return
        if ctcp == "ACTION":
            # The core has no private action: the line protocol shows it as
            # a private message starting with "* nick".
            text = f"* {self.nick} {text}"
        self.session.tell(target, text)
        self._echo(command, target, text)
        other = self.factory.clients.get(nickKey(target))
        if command == "PRIVMSG" and other is not None and other.away is not None:
            self.numeric(N.RPL_AWAY, other.nick, other.away)

    def _nickServ(self, text):
        """
        NickServ, as IRC clients and their users expect to find it: IDENTIFY
        and REGISTER for chatd's registered nicknames.
        """
        verb, _, rest = text.partition(" ")
        words = rest.split()
        verb = verb.upper()
        if verb == "IDENTIFY" and words:
            done = self.session.identify(words[-1])
            success = f"You are now identified as {self.nick}"
        elif verb == "REGISTER" and words:
            done = self.session.register(words[0])
            success = f"{self.nick} is now registered to you"
        else:
            self._fromNickServ("Commands: IDENTIFY PASSWORD, REGISTER PASSWORD")
            return

        def failed(failure):
            if not failure.check(S.Refusal, ChatError):
                self._log.failure("NickServ {verb} failed", failure, verb=verb)
                self._fromNickServ("That did not work; try again later")
                return
            self._fromNickServ(failure.getErrorMessage())

        done.addCallbacks(lambda _: self._fromNickServ(success), failed)

    def _fromNickServ(self, text):
        if self._live:
            self.send("NOTICE", self.nick, text, prefix="NickServ!NickServ@services")

    def _refusedMessage(self, target, e):
        if isinstance(e, S.NoSuchUser):
            self.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        elif isinstance(e, S.NoSuchRoom):
            self.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        elif isinstance(e, S.NotInRoom):
            self.numeric(N.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (not a member)")
        elif isinstance(e, S.Muted):
            self.numeric(N.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (you are muted)")
        else:
            self.numeric(N.ERR_CANNOTSENDTOCHAN, target, str(e))

    # Who is who

    def irc_WHO(self, params):
        mask = _param(params, 0) or "*"
        core = self.session.core
        fields = _param(params, 1)
        if fields.startswith("%"):
            # WHOX: the fields asked for, and a token to send back.
            fields, _, token = fields[1:].partition(",")
            self._whox = (fields, token[:3] or "0")
        else:
            self._whox = None
        if mask.startswith("#"):
            try:
                room = self.session.room(mask)
            except S.NoSuchRoom:
                room = None
            if room is not None:
                for user in list(room.members.values()):
                    self._whoReply(room.name, user, "@" if self.session.isModerator(room, user)
                                   else "")
        elif "*" not in mask and "?" not in mask:
            user = core.users.get(nickKey(mask))
            if user is not None:
                self._whoReply("*", user, "")
        else:
            # Everyone is invisible (+i): a mask finds only the people who
            # share a room with the asker.
            pattern = nickKey(mask)
            me = self.session.user
            for key, user in list(core.users.items()):
                if fnmatch.fnmatchcase(key, pattern) and (
                        user is me or any(k in me.rooms for k in user.rooms)):
                    self._whoReply("*", user, "")
        self.numeric(N.RPL_ENDOFWHO, mask, "End of /WHO list.")

    def _details(self, user):
        """
        The username and real name to show for C{user}, of any front end.
        """
        client = self.factory.clients.get(nickKey(user.nick))
        if client is not None:
            return "~" + client.username, client.realname, client.away
        return "~" + user.nick, "chatd line user", None

    def _whoReply(self, where, user, flag):
        username, realname, away = self._details(user)
        here = "G" if away is not None else "H"
        if self.session.core.isOperator(user):
            here += "*"
        if self._whox is None:
            self.numeric(N.RPL_WHOREPLY, where, username, HIDDEN_HOST, self.server,
                         user.nick, here + flag, f"0 {realname}")
            return
        fields, token = self._whox
        client = self.factory.clients.get(nickKey(user.nick))
        idle = 0 if client is None else int(self.factory.clock.seconds() - client._lastSpoke)
        values = {"t": token, "c": where, "u": username, "i": "255.255.255.255",
                  "h": HIDDEN_HOST, "s": self.server, "n": user.nick, "f": here + flag,
                  "d": "0", "l": str(max(idle, 0)),
                  "a": user.nick if user.identified else "0", "o": "n/a", "r": realname}
        self.numeric(N.RPL_WHOSPCRPL, *[values[c] for c in "tcuihsnfdlaor" if c in fields])

    def irc_WHOIS(self, params):
        nick = _required(params, 0)
        if len(params) > 1:
            nick = params[1]
        nick = nick.split(",")[0]
        core = self.session.core
        user = core.users.get(nickKey(nick))
        if user is None:
            self.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            self.numeric(N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list.")
            return
        username, realname, away = self._details(user)
        self.numeric(N.RPL_WHOISUSER, user.nick, username, HIDDEN_HOST, "*",
                     realname)
        rooms = [("@" if self.session.isModerator(room, user) else "") + room.name
                 for room in user.rooms.values()]
        if rooms:
            self.numeric(N.RPL_WHOISCHANNELS, user.nick, " ".join(rooms))
        self.numeric(N.RPL_WHOISSERVER, user.nick, self.server, self.factory.network)
        if core.isOperator(user):
            self.numeric(N.RPL_WHOISOPERATOR, user.nick, "is an IRC operator")
        if user.identified:
            self.numeric(N.RPL_WHOISACCOUNT, user.nick, user.nick, "is logged in as")
        if away is not None:
            self.numeric(N.RPL_AWAY, user.nick, away)
        self.numeric(N.RPL_ENDOFWHOIS, user.nick, "End of /WHOIS list.")

    def irc_TAGMSG(self, params):
        # Client-only tags (typing notifications) have nowhere to go: the
        # other front ends have no such thing.
        pass

    def irc_AWAY(self, params):
        text = _param(params, 0)
        if text:
            self.away = text[:N.AWAYLEN]
            self.numeric(N.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.away = None
            self.numeric(N.RPL_UNAWAY, "You are no longer marked as being away")

    def irc_ISON(self, params):
        users = self.session.core.users
        found = [users[nickKey(n)].nick for p in params for n in p.split() if nickKey(n) in users]
        self.numeric("303", " ".join(found))

    def irc_USERHOST(self, params):
        users = self.session.core.users
        replies = []
        for nick in params[:5]:
            user = users.get(nickKey(nick))
            if user is not None:
                username, _, away = self._details(user)
                replies.append(f"{user.nick}={'-' if away else '+'}{username}@"
                               f"{HIDDEN_HOST}")
        self.numeric("302", " ".join(replies))

    # Moderation

    def irc_KICK(self, params):
        name = _required(params, 0)
        nicks = _required(params, 1)
        reason = _param(params, 2)[:N.KICKLEN]
        for nick in nicks.split(","):
            try:
                self.session.kick(name, nick, reason)
            except S.NoSuchRoom:
                self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
            except S.NotInRoom:
                self.numeric(N.ERR_NOTONCHANNEL, name, "You're not on that channel")
            except S.NotModerator:
                self.numeric(N.ERR_CHANOPRIVSNEEDED, name, "You're not channel operator")
            except S.NoSuchUser:
                self.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            except S.TargetNotInRoom:
                self.numeric(N.ERR_USERNOTINCHANNEL, nick, name, "They aren't on that channel")
            except S.Refusal as e:
                self.numeric(N.ERR_CHANOPRIVSNEEDED, name, str(e))

    def irc_MODE(self, params):
        target = _required(params, 0)
        if not target.startswith("#"):
            self._userMode(target, params[1:])
            return
        try:
            room = self.session.room(target)
        except S.NoSuchRoom:
            self.numeric(N.ERR_NOSUCHCHANNEL, target, "No such channel")
            return
        if len(params) < 2:
            self.numeric(N.RPL_CHANNELMODEIS, room.name, "+")
            return
        modes, args = params[1], list(params[2:])
        sign = "+"
        for char in modes:
            if char in "+-":
                sign = char
                continue
            if char in "bq" and not args:
                self._listMode(room, char)
                continue
            if char not in "bq":
                self.numeric(N.ERR_UNKNOWNMODE, char, "is not a mode chatd has")
                continue
            mask = args.pop(0)
            try:
                if char == "b":
                    (self.session.ban if sign == "+" else self.session.unban)(
                        room.name, banTarget(mask))
                elif sign == "+":
                    self.session.mute(room.name, banTarget(mask))
                else:
                    self.session.unmute(room.name, banTarget(mask))
            except S.NotInRoom:
                self.numeric(N.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
            except S.NotModerator:
                self.numeric(N.ERR_CHANOPRIVSNEEDED, room.name, "You're not channel operator")
            except S.Refusal as e:
                self.numeric(N.ERR_UNKNOWNERROR, "MODE", str(e))

    def _listMode(self, room, char):
        end = (N.RPL_ENDOFBANLIST, "End of channel ban list") if char == "b" else (
            N.RPL_ENDOFQUIETLIST, "q", "End of channel quiet list")
        try:
            if char == "b":
                for ban in self.session.bans(room.name):
                    self.numeric(N.RPL_BANLIST, room.name, banMask(ban.target), ban.by,
                                 str(int(ban.time)))
            else:
                self.session.memberRoom(room.name)
                if self.session.isModerator(room):
                    for key in room.muted:
                        self.numeric(N.RPL_QUIETLIST, room.name, "q", banMask(key))
        except S.Refusal:
            pass
        self.numeric(end[0], room.name, *end[1:])

    def _userMode(self, target, params):
        if nickKey(target) != nickKey(self.nick):
            if nickKey(target) in self.session.core.users:
                self.numeric(N.ERR_USERSDONTMATCH, "Can't change mode for other users")
            else:
                self.numeric(N.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        if not params:
            self.numeric(N.RPL_UMODEIS, "+i")
            return
        if any(c not in "+-i" for c in params[0]):
            self.numeric(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")

    # Accounts: SASL PLAIN against chatd's registered nicknames

    def irc_AUTHENTICATE(self, params):
        """
        SASL PLAIN: the client proves it owns a registered nickname before
        registering, so that a registered nickname needs no identifying
        afterwards.
        """
        arg = _required(params, 0)
        if self.registered or self.session.user.account is not None:
            self.numeric(N.ERR_SASLALREADY, "You have already authenticated using SASL")
            return
        if "sasl" not in self.caps or self._saslPending:
            self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
            return
        if arg == "*":
            self._sasl = None
            self.numeric(N.ERR_SASLABORTED, "SASL authentication aborted")
            return
        if self._sasl is None:
            if arg.upper() != "PLAIN":
                self.numeric(N.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
                self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
                return
            self._sasl = ""
            self.send("AUTHENTICATE", "+", prefix="")
            return
        if arg != "+":
            self._sasl += arg
        if len(self._sasl) > 800:
            self._sasl = None
            self.numeric(N.ERR_SASLTOOLONG, "SASL message too long")
            return
        if len(arg) == 400:
            # More follows.
            return
        data, self._sasl = self._sasl, None
        try:
            _, account, password = base64.b64decode(data, validate=True).decode(
                "utf-8").split("\0")
        except ValueError:
            self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
            return
        self._saslPending = True
        try:
            checked = self.session.checkPassword(account, password)
        except S.Refusal:
            checked = fail(S.Refused("wrong"))
        checked.addCallbacks(self._saslDone, self._saslFailed, callbackArgs=(account,))

    def _saslDone(self, result, account):
        self._saslPending = False
        if not self._live:
            return
        self.session.user.account = nickKey(account)
        self.numeric(N.RPL_LOGGEDIN, f"{self.nick or account}!{self._userhost()}", account,
                     f"You are now logged in as {account}")
        self.numeric(N.RPL_SASLSUCCESS, "SASL authentication successful")
        self._tryRegister()

    def _saslFailed(self, failure):
        self._saslPending = False
        if not self._live:
            return
        if not failure.check(S.Refusal):
            self._log.failure("SASL check failed", failure)
        self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
        self._tryRegister()


class _NeedMoreParams(Exception):
    pass


def _param(params, index):
    return params[index] if len(params) > index else ""


def _required(params, index):
    if len(params) <= index or not params[index]:
        raise _NeedMoreParams()
    return params[index]


def _tooLong(raw):
    """
    Whether C{raw} is over IRC's limits: 510 bytes of message and 4094 of
    client tags.
    """
    if raw.startswith(b"@"):
        space = raw.find(b" ")
        if space < 0 or space - 1 > MAX_CLIENT_TAG_BYTES:
            return True
        raw = raw[space + 1:].lstrip(b" ")
    return len(raw) > MAX_BODY_BYTES - 2


def _packWords(words, room):
    lines, current = [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > room:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current or not lines:
        lines.append(current)
    return lines


def _ctcp(raw):
    """
    Take a CTCP message (C{\\x01VERB text\\x01} as the trailing parameter)
    out of C{raw} before the edge strips its control characters.

    @return: the line without the CTCP markers, and the CTCP verb or L{None}.
    """
    start = raw.find(b" :\x01")
    if start < 0:
        return raw, None
    body = raw[start + 3:]
    if body.endswith(b"\x01"):
        body = body[:-1]
    verb, _, rest = body.partition(b" ")
    return raw[:start + 2] + rest, verb.decode("ascii", "replace").upper()


class _Client:
    """
    What the session needs of a connection: its outbox, wire and a way to
    close it.
    """

    def __init__(self, protocol):
        self.outbox = IrcOutbox(protocol, protocol.outbox)
        self.wire = protocol.factory.wire
        self.hangUp = protocol._hangUp


class IrcFactory(Factory):
    """
    Builds an L{IrcProtocol} for each IRC client, all over one core.

    @ivar clients: the registered IRC connections, by nickname key.
    """

    protocol = IrcProtocol
    noisy = False

    PING_INTERVAL = 120.0
    SHUTDOWN_GRACE = 3.0

    def __init__(self, core, clock, limits=Limits(), wire=None, network="chatd",
                 motd=None, coalesceTurns=False):
        self.core = core
        self.clock = clock
        self.limits = limits
        self.wire = wire or IrcWire()
        self.network = network
        self.motd = motd if motd is not None else [
            f"Welcome to chatd {__version__}.",
            "The rooms here are shared with nc, telnet and chat-client users;",
            f"they all start in {core.lobby}: /join {core.lobby} to meet them.",
        ]
        self.created = _time.strftime("%Y-%m-%d %H:%M:%S UTC", _time.gmtime(clock.seconds()))
        self._counter = ConnectionCounter(limits.maxConnections, limits.maxPerAddress)
        self.connections = set()
        self.clients = {}
        self.coalescer = Coalescer(clock if coalesceTurns else None)
        self.stopping = False
        self._allClosed = None

    def admit(self, connection):
        refusal = self._counter.admit(connection.address)
        if refusal is None:
            self.connections.add(connection)
        return refusal

    def forget(self, connection):
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self._counter.release(connection.address)
        if not self.connections and self._allClosed is not None:
            self._allClosed.callback(None)

    def shutDown(self, text):
        """
        Close every IRC connection with C{text} as its ERROR.

        @return: a L{Deferred} that fires when every connection is closed.
        """
        self.stopping = True
        self._allClosed = Deferred()
        if not self.connections:
            self._allClosed.callback(None)
            return self._allClosed
        for connection in list(self.connections):
            connection.close(text)
        cutOff = self.clock.callLater(self.SHUTDOWN_GRACE, self._cutOff)
        self._allClosed.addBoth(lambda result: cutOff.active() and cutOff.cancel())
        return self._allClosed

    def _cutOff(self):
        for connection in list(self.connections):
            connection.transport.abortConnection()

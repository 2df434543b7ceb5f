"""
The IRC front end: one L{IrcProtocol} per IRC client, beside the line
protocol, over the same core, fan-out and gate.

The protocol is thin: it splits the stream into lines (CRLF or LF), cleans
each with the edge (L{chatd.edge.sanitize}), parses it
(L{chatd.irc.message}), and hands it to one handler per command, which acts
through the connection's L{chatd.core.session.Session} and answers with
replies and numerics; the core's typed refusals become numerics
(L{chatd.irc.refusals}).  What happens in the rooms reaches the client as the
fan-out's bytes, encoded once for every IRC user by L{chatd.irc.wire.IrcWire}.
The outbox, pacing, timers and closing are the shared
L{chatd.edge.connection.Connection}'s.
"""

import base64
import binascii
import fnmatch
import time as _time
from datetime import datetime, timezone

from twisted.internet.defer import fail
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from chatd import __version__
from chatd.core import events
from chatd.core import refusals as R
from chatd.core.names import nickKey, nickProblem, roomKey
from chatd.edge.connection import Connection
from chatd.edge.lines import PacedLineReceiver
from chatd.edge.sanitize import cleanText
from chatd.irc import numerics as N
from chatd.irc.message import MAX_BODY_BYTES, MAX_CLIENT_TAG_BYTES, MAX_LINE_BYTES, encode, parse
from chatd.irc.refusals import reply as refusalReply
from chatd.irc.wire import (HIDDEN_HOST, TAG_CAPABILITIES, AwayLine, Echo, IrcWire,
                             Once, Personal, banMask, banTarget)

# Commands a client may send before it is registered.
_BEFORE_REGISTRATION = {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT",
                        "AUTHENTICATE"}
# WHO costs a line against the flood limits for every this many people it
# looks at (the line protocol's /who shows them a page of 100 per line): one
# of a room of 2,000 is 2,000 replies, 9 ms of the daemon's time.
WHO_PER_LINE = 100


def _listingCost(rooms):
    """
    What listing the members of C{rooms} costs against the flood limits, in
    lines: one for each room, and one more for every L{WHO_PER_LINE} of its
    members, as WHO costs (NAMES of #big,#big,... stalled everyone).
    """
    return sum(1 + len(room.members) // WHO_PER_LINE for room in rooms)


# The capabilities chatd offers, with their values for CAP LS 302.
# multi-prefix and userhost-in-names change only what NAMES shows (chatd has
# one prefix, so multi-prefix changes nothing at all).
CAPABILITIES = {"server-time": "", "sasl": "PLAIN", "message-tags": "",
                "echo-message": "", "multi-prefix": "", "userhost-in-names": "",
                "batch": "", "account-tag": "", "away-notify": "",
                "draft/chathistory": ""}


# Seconds a gone user's user@host is kept for the lines told after they went.
_FORGET_AFTER = 1.0


class IrcOutbox:
    """
    What the fan-out sees as an IRC user's outbox: renders the events told to
    this user alone (L{Personal}), and drops the second copy of a QUIT or
    NICK line (L{Once}: the core tells a quit or a rename once per room the
    recipient shares with the quitter, one room after the other, and the
    departures of a turn room after room), then passes the bytes on to the
    connection's outbox.  A plain line costs one type check; a room's run
    of them is shared by the connection's outbox (L{share}).
    """

    __slots__ = ("_protocol", "_outbox", "_previous")

    def __init__(self, protocol, outbox):
        self._protocol = protocol
        self._outbox = outbox
        self._previous = b""

    def send(self, data):
        data = self._render(data)
        if data:
            self._outbox.send(data)

    def hold(self):
        """
        Keep a place for bytes not ready yet (see L{Outbox.hold}): the
        broker's fan-out keeps one for what it delivers late.
        """
        return self._outbox.hold()

    # A room's run of plain lines (chatd.core.runs) is everyone's bytes,
    # with nothing to render: shared by the connection's outbox, as a line
    # user's is (sending each IRC member each line was most of an IRC
    # room's CPU per delivery).

    def share(self, run):
        if not self._outbox.share(run):
            return False
        # Lines now reach the peer without passing here: a QUIT or NICK
        # told after them is not the one it was just shown.
        self._previous = b""
        return True

    def unshare(self, run):
        self._outbox.unshare(run)

    def turn(self):
        return self._outbox.turn()

    def fill(self, place, data):
        self._outbox.fill(place, self._render(data) if data else b"")

    def _render(self, data):
        kind = type(data)
        if kind is not bytes:
            if kind is Personal:
                data = self._protocol.personal(data.event, self._previous)
                if not data:
                    return b""
            elif kind is Once:
                return self._once(data)
            elif kind is AwayLine:
                if data.capability not in self._protocol.caps:
                    return b""
                data = bytes(data)
            elif kind is Echo:
                if "echo-message" not in self._protocol.caps:
                    return b""
                data = self._protocol.wire.encode(data.event)
        self._previous = data
        return data

    def _once(self, data):
        """
        The bytes of C{data}, a L{Once}, less what this recipient was just
        shown of it: the same QUIT or NICK for another room, or the quits
        in another room's departures of the same batch.
        """
        previous = self._previous
        if data.batch is None:
            if type(previous) is Once and previous.keys == data.keys:
                return b""
        elif type(previous) is Once and previous.batch == data.batch:
            # A departure's QUIT is the same QUIT in each room it is told in.
            told = previous.told or (previous,)
            lines = [line for line, key in zip(data.lines, data.keys)
                     if not any(key in once.shown for once in told)]
            self._previous = Once((), data.batch, told + (data,))
            return b"".join(lines)
        self._previous = data
        return data.plain


class IrcProtocol(PacedLineReceiver):
    """
    One IRC client.

    @ivar conn: the connection's L{Connection}: outbox, pacing, timers.
    @ivar session: the L{chatd.core.session.Session}, opened when first
        needed (SASL or registration), with the wire format the negotiated
        capabilities ask for.
    """

    MAX_LENGTH = MAX_LINE_BYTES + 1

    _log = Logger()

    conn = None
    session = None
    registered = False
    nick = None
    username = None
    realname = ""
    _capNegotiating = False
    _saslPending = False
    _sasl = None
    _whox = None
    _keepalive = None
    _batches = 0
    _password = None

    # Framework callbacks

    def connectionMade(self):
        self.server = self.factory.wire.server
        self.wire = self.factory.wire
        self.caps = set()
        self.conn = Connection(self.transport, self.factory.gate, self.wire, self)
        if not self.conn.live:
            return
        self.clock = self.factory.gate.clock
        self._lastHeard = self.clock.seconds()
        self._pinged = False
        self._keepalive = self.clock.callLater(self.factory.PING_INTERVAL, self._checkAlive)

    def lineTooLong(self):
        self.numeric(N.ERR_INPUTTOOLONG, "Input line was too long")

    def handleLine(self, raw):
        self._lastHeard = self.clock.seconds()
        self._pinged = False
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
        except R.Refusal as refusal:
            self.refused(refusal, command)

    def connectionLost(self, reason):
        if self._keepalive is not None and self._keepalive.active():
            self._keepalive.cancel()
        super().connectionLost(reason)

    def connectionEnded(self):
        # Not when the transport is lost: lines read before it may still be
        # said, shown under the user's own prefix; nor at once: the QUIT is
        # told at the end of the turn (with others' departures), under it
        # too.  (A user who takes the nickname meanwhile keeps theirs.)
        self.clock.callLater(_FORGET_AFTER, self._forgetNick)

    # Output

    def send(self, command, *params, prefix=None):
        self.conn.send(encode(command, *params, prefix=self.server if prefix is None else prefix))

    def numeric(self, code, *params):
        self.conn.send(encode(code, self.nick or "*", *params, prefix=self.server))

    def notice(self, text):
        self.send("NOTICE", self.nick or "*", text)

    def refused(self, refusal, command):
        """
        Tell the client its C{command} was refused for C{refusal}.
        """
        code, params = refusalReply(refusal, command, self.registered)
        self.numeric(code, *params)

    def personal(self, event, previous):
        """
        The bytes that show C{event}, told to this user alone (see
        L{IrcOutbox}); C{previous} is the last line the fan-out sent them.
        """
        kind = type(event)
        if kind is events.Entered:
            return self._entered(event)
        if kind is events.NowKnownAs:
            if event.old is None or event.old == event.new:
                # Registration is shown by the welcome; a rename to the same
                # nickname by nothing.
                return b""
            source = self.source()
            self._forgetNick()
            self.nick = event.new
            self._rememberNick()
            return encode("NICK", event.new, prefix=source)
        if kind is events.PutOut and (
                f" KICK {event.room} {self.nick} ".encode("utf-8") in previous[:200]):
            # The KICK just shown already took them out of the channel.
            return b""
        return self.wire.personal(event, self.nick or "*")

    def source(self):
        return f"{self.nick}!{self._userhost()}"

    def _userhost(self, unnamed=None):
        # (Before NICK and USER, as SASL comes, the caller names them.)
        return f"~{self.username or self.nick or unnamed}@{HIDDEN_HOST}"

    # Keepalive

    def _checkAlive(self):
        if not self.conn.live:
            return
        interval = self.factory.PING_INTERVAL
        silent = self.clock.seconds() - self._lastHeard
        if silent >= interval:
            if self._pinged:
                self.conn.close(f"Ping timeout: {int(silent)} seconds")
                return
            self._pinged = True
            self.send("PING", self.server, prefix="")
            self._keepalive = self.clock.callLater(interval, self._checkAlive)
            return
        self._keepalive = self.clock.callLater(interval - silent, self._checkAlive)

    # The session, opened when first needed

    def _session(self):
        """
        The session, opened now if need be, with the wire format for the
        capabilities negotiated so far.

        @raise chatd.core.refusals.Refusal: the core will not have this
            connection (a banned address).
        """
        if self.session is None:
            self.conn.wire = self.wire
            self.session = self.factory.core.open(
                IrcOutbox(self, self.conn.outbox), self.wire, self.conn.address,
                lambda: self.conn.closeWith(None))
            self.conn.session = self.session
        return self.session

    # Registration

    def irc_PASS(self, params):
        """
        There is no server password: PASS, as many networks take it, is
        the password of the registered nickname the client registers with.
        """
        if self.registered:
            self.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        self._password = _required(params, 0)

    def irc_CAP(self, params):
        sub = _param(params, 0).upper()
        if sub == "LS":
            if not self.registered:
                self._capNegotiating = True
            version = _param(params, 1)
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
            caps = set(self.caps)
            for w in wanted:
                if w.startswith("-"):
                    caps.discard(w[1:])
                else:
                    caps.add(w)
            changesWire = (caps & TAG_CAPABILITIES) != (self.caps & TAG_CAPABILITIES)
            if (all(name in self._capabilities() for name in names)
                    and not (changesWire and self.session is not None)):
                self.caps = caps
                self.wire = self.wire.variant(caps)
                self.send("CAP", self.nick or "*", "ACK", " ".join(wanted))
            else:
                # (The tag capabilities, TAG_CAPABILITIES, are chosen with
                # the session's wire format, before SASL or registration,
                # for good.)
                self.send("CAP", self.nick or "*", "NAK", " ".join(wanted))
        elif sub == "END":
            if not self.registered:
                self._capNegotiating = False
                self._tryRegister()
        else:
            self.numeric("410", sub or "*", "Invalid CAP command")

    def _capabilities(self):
        """
        The capabilities offered: SASL only where there are accounts,
        history only where it is kept.
        """
        core = self.factory.core
        return {k: v for k, v in CAPABILITIES.items()
                if (k != "sasl" or core.accounts is not None)
                and (k != "draft/chathistory" or core.history is not None)}

    def irc_NICK(self, params):
        nick = _param(params, 0)
        if not nick:
            self.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        if self.registered:
            # Shown by the core's NowKnownAs (see personal).
            self.session.rename(nick)
            return
        # Said at once, as IRC servers do, rather than at registration;
        # but a registered nickname's owner may take it back from whoever
        # holds it, with the password PASS or SASL gives: the core decides,
        # at registration.
        core = self.factory.core
        problem = nickProblem(nick)
        if problem or (core.user(nick) is not None and not core.identity.isRegistered(nick)):
            self.refused(R.InvalidNickname(nick, problem) if problem
                         else R.NicknameTaken(nick, False), "NICK")
            return
        self.nick = nick
        self._tryRegister()

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
            session = self._session()
        except R.Refusal as refusal:
            self.refused(refusal, "NICK")
            self.conn.close(refusalReply(refusal, "NICK")[1][-1])
            return
        # The welcome comes first, before what claiming the nickname tells
        # the user (the core's confirmations, identification notices).
        place = self.conn.outbox.hold()
        try:
            # IRC clients choose their channels (their own autojoin lists):
            # unlike the line protocol's users, nobody is put in the lobby.
            session.claim(self.nick, lobby=False)
        except R.PasswordRequired as refusal:
            self.conn.outbox.fill(place, b"")
            if self._password is not None:
                # Proved with PASS, then registered.
                password, self._password = self._password, None
                self._prove(refusal.nick, password)
                return
            self.nick = None
            self.refused(refusal, "NICK")
            return
        except R.Refusal as refusal:
            self.conn.outbox.fill(place, b"")
            if isinstance(refusal, R.Banned):
                self.refused(refusal, "NICK")
                self.conn.close(refusalReply(refusal, "NICK")[1][-1])
                return
            self.nick = None
            code, params = refusalReply(refusal, "NICK", registered=False)
            self.conn.send(encode(code, "*", *params, prefix=self.server))
            return
        self.registered = True
        self._rememberNick()
        self.conn.outbox.fill(place, self._welcome())

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
        """
        The welcome burst: 001-005 and the MOTD.
        """
        network = self.factory.network
        me = self.nick

        def numeric(code, *params):
            return encode(code, me, *params, prefix=self.server)

        lines = [
            numeric(N.RPL_WELCOME, f"Welcome to the {network} IRC Network {self.source()}"),
            numeric(N.RPL_YOURHOST,
                    f"Your host is {self.server}, running version chatd-{__version__}"),
            numeric(N.RPL_CREATED, f"This server was created {self.factory.created}"),
            numeric(N.RPL_MYINFO, self.server, f"chatd-{__version__}", "i", "bq"),
        ]
        core = self.factory.core
        tokens = N.isupport(network, core.history is not None, core.maxRooms)
        for start in range(0, len(tokens), 12):
            lines.append(numeric(N.RPL_ISUPPORT, *tokens[start:start + 12],
                                 "are supported by this server"))
        lines.extend(self._motd())
        return b"".join(lines)

    def _motd(self):
        motd = self.factory.motd
        me = self.nick or "*"
        if not motd:
            return [encode(N.ERR_NOMOTD, me, "MOTD File is missing", prefix=self.server)]
        return ([encode(N.RPL_MOTDSTART, me, f"- {self.server} Message of the day - ",
                        prefix=self.server)]
                + [encode(N.RPL_MOTD, me, f"- {line}", prefix=self.server) for line in motd]
                + [encode(N.RPL_ENDOFMOTD, me, "End of /MOTD command.", prefix=self.server)])

    def irc_TIME(self, params):
        now = self.clock.seconds()
        self.numeric(N.RPL_TIME, self.server, str(int(now)),
                     _time.strftime("%A %B %d %Y -- %H:%M:%S UTC", _time.gmtime(now)))

    def irc_MOTD(self, params):
        for data in self._motd():
            self.conn.send(data)

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
        # (The core marks the words as the user's for everyone else.)
        shown = f"Quit: {reason}" if reason else "Quit"
        self.conn.quit(reason, encode(
            "ERROR", f"Closing link: ({self.username or '*'}@{HIDDEN_HOST}) [{shown}]"))

    # Rooms

    def irc_JOIN(self, params):
        """
        JOIN #a,#b...: each channel costs a line against flood pacing, as
        a JOIN of each would.
        """
        names = _required(params, 0)
        if names == "0":
            rooms = list(self.session.rooms)
            self.countAs(len(rooms))
            for room in rooms:
                self.session.part(room.name)
            return
        names = _distinct(names)
        self.countAs(len(names))
        for name in names:
            if not name.startswith("#"):
                self.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
                continue
            try:
                # Shown by the core's Entered (see personal).
                room, joinedNow = self.session.join(name)
            except R.Refusal as refusal:
                self.refused(refusal, "JOIN")
                continue
            # (Not asked for where it would be empty: no batch then either.)
            if (joinedNow and self.factory.replay and self.session.keepsHistory
                    and self.session.mayReplay(room.name)):
                self.conn.showHistory(self.session.recent(room.name, self.factory.replay),
                                      lambda stored, room=room.name: self._renderHistory(
                                          room, stored),
                                      self._renderRefusal, replay=True)

    def _renderRefusal(self, refusal):
        code, params = refusalReply(refusal, "JOIN")
        return encode(code, self.nick or "*", *params, prefix=self.server)

    def _renderHistory(self, room, stored, always=False):
        """
        The lines that replay C{stored}: with the batch capability, inside a
        C{chathistory} batch, so that clients know them for the past (an
        empty one too if C{always}: the answer to CHATHISTORY).
        """
        lines = [self.wire.encodeHistory(event) for event in stored]
        if not (lines or always) or "batch" not in self.caps:
            return b"".join(lines)
        self._batches += 1
        ref = f"h{self._batches}"
        tag = f"@batch={ref}".encode()
        tagged = [tag + b";" + data[1:] if data.startswith(b"@") else tag + b" " + data
                  for data in lines]
        return b"".join([encode("BATCH", f"+{ref}", "chathistory", room, prefix=self.server),
                         *tagged, encode("BATCH", f"-{ref}", prefix=self.server)])

    def irc_CHATHISTORY(self, params):
        """
        draft/chathistory, as Ergo has it: LATEST, BEFORE, AFTER, AROUND and
        BETWEEN a room's stored lines, by msgid (the history id every stored
        line carries with message-tags) or timestamp, at most
        L{N.CHATHISTORY_MAX}, oldest first, in a C{chathistory} batch.  Read
        through the session as any request for more history is (members
        only, under the store's limits); private messages are never kept,
        so a nickname's history is an empty batch.
        """
        sub = _required(params, 0).upper()
        if sub not in _CHATHISTORY:
            self._fail("CHATHISTORY", "UNKNOWN_COMMAND", sub, "Unknown subcommand")
            return
        args = params[1:]
        if len(args) < _CHATHISTORY[sub]:
            self._fail("CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters")
            return
        target, *refs, limit = args[:_CHATHISTORY[sub]]
        bounds = [None if sub == "LATEST" and ref == "*" else _msgref(ref) for ref in refs]
        if not limit.isdigit() or int(limit) < 1 or False in bounds:
            self._fail("CHATHISTORY", "INVALID_PARAMS", sub, "Invalid parameters")
            return
        count = min(int(limit), N.CHATHISTORY_MAX)
        if not target.startswith("#"):
            if self.factory.core.user(target) is None:
                self._fail("CHATHISTORY", "INVALID_TARGET", sub, target, "No such target")
            else:
                self.conn.send(self._renderHistory(target, [], always=True))
            return
        try:
            room = self.session.memberRoom(target)
            found = self._chathistory(sub, room.name, count, bounds)
        except R.Refusal as refusal:
            if isinstance(refusal, (R.NotInRoom, R.NoSuchRoom)):
                self._fail("CHATHISTORY", "INVALID_TARGET", sub, target, "Not a member")
            else:
                self._fail("CHATHISTORY", "MESSAGE_ERROR", sub, target,
                           refusalReply(refusal, "CHATHISTORY")[1][-1])
            return
        self.conn.showHistory(found, lambda stored: self._renderHistory(room.name, stored,
                                                                        always=True),
                              lambda refusal: self._failLine(
                                  "CHATHISTORY", "MESSAGE_ERROR", sub, target,
                                  refusalReply(refusal, "CHATHISTORY")[1][-1]))

    def _chathistory(self, sub, room, count, bounds):
        """
        The read that answers CHATHISTORY C{sub} for C{room}.
        """
        page = self.session.page
        if sub == "LATEST":
            return page(room, count, after=_past(bounds[0]))
        if sub == "BEFORE":
            return page(room, count, before=bounds[0])
        if sub == "AFTER":
            return page(room, count, after=_past(bounds[0]), oldest=True)
        if sub == "AROUND":
            # Half before it, the rest from it on.
            older = page(room, count // 2, before=bounds[0]) if count > 1 else None
            kind, value = bounds[0]
            fromIt = (kind, value - 1) if kind == "id" else (kind, value - _TICK / 1000)

            def newer(found):
                return page(room, count - len(found), after=fromIt, oldest=True
                            ).addCallback(lambda more: found + more)
            return older.addCallback(newer) if older is not None else newer([])
        first, second = bounds
        if first[0] == second[0] and first[1] > second[1]:
            # Backwards from the first: the newest lines before it.
            return page(room, count, before=first, after=_past(second))
        return page(room, count, after=_past(first), before=second, oldest=True)

    def _fail(self, command, code, *params):
        self.conn.send(self._failLine(command, code, *params))

    def _failLine(self, command, code, *params):
        return encode("FAIL", command, code, *params, prefix=self.server)

    def _entered(self, event):
        """
        What a newcomer to a channel is shown: its own JOIN, the topic and
        the names.
        """
        lines = [encode("JOIN", event.room, prefix=self.source())]
        if event.topic:
            lines.append(encode(N.RPL_TOPIC, self.nick, event.room, event.topic,
                                prefix=self.server))
        room = self.factory.core.rooms.get(roomKey(event.room))
        lines.extend(self._namesLines(room, event.room, event.members))
        return b"".join(lines)

    def _namesLines(self, room, name, nicks):
        core = self.factory.core
        names = []
        for nick in nicks:
            user = core.user(nick)
            if user is not None:
                names.append(self._prefixed(room, user))
        head = f":{self.server} {N.RPL_NAMREPLY} {self.nick} = {name} :"
        lines = [encode(N.RPL_NAMREPLY, self.nick, "=", name, piece, prefix=self.server,
                        trailing=True)
                 for piece in _packWords(names, MAX_BODY_BYTES - 2 - len(head))]
        lines.append(encode(N.RPL_ENDOFNAMES, self.nick, name, "End of /NAMES list.",
                            prefix=self.server))
        return lines

    def _isModerator(self, room, user):
        """
        Whether C{user} may moderate C{room} (L{None}: nothing): shown as
        C{@}.
        """
        return room is not None and self.factory.core.moderation.isModerator(user, room)

    def _prefixed(self, room, user):
        flag = "@" if self._isModerator(room, user) else ""
        if "userhost-in-names" in self.caps:
            return flag + self.wire.source(user.nick)
        return flag + user.nick

    def irc_PART(self, params):
        reason = _param(params, 1)
        names = _distinct(_required(params, 0))
        self.countAs(len(names))
        for name in names:
            try:
                # Shown by the wire's own confirmation of Parted.
                self.session.part(name, reason)
            except R.NotInRoom as refusal:
                if roomKey(refusal.room) not in self.factory.core.rooms:
                    refusal = R.NoSuchRoom(refusal.room)
                self.refused(refusal, "PART")
            except R.Refusal as refusal:
                self.refused(refusal, "PART")

    def irc_TOPIC(self, params):
        name = _required(params, 0)
        if len(params) < 2:
            room = self.session.room(name)
            if room.topic:
                self.numeric(N.RPL_TOPIC, room.name, room.topic)
            else:
                self.numeric(N.RPL_NOTOPIC, room.name, "No topic is set")
            return
        topic = params[1][:N.TOPICLEN]
        try:
            # Shown by the wire's own confirmation of TopicChanged.
            self.session.setTopic(name, topic)
        except R.NotInRoom as refusal:
            self.session.room(name)
            self.refused(refusal, "TOPIC")
        except R.Muted:
            self.numeric(N.ERR_CHANOPRIVSNEEDED, name, "You are muted in this channel")
        except R.TopicUnchanged as refusal:
            # Nothing changes, so nobody else is told; the setter sees the
            # topic it asked for, as IRC servers show it.
            self.conn.send(encode("TOPIC", refusal.room, topic, prefix=self.source()))

    def irc_NAMES(self, params):
        """
        NAMES: every channel the user is in, or those named; for several
        named, as RFC 2812 has it, their 353s and one 366 naming them all.
        """
        core = self.factory.core
        if not params or not params[0].strip(","):
            self.countAs(_listingCost(self.session.rooms))
            for room in self.session.rooms:
                for data in self._namesLines(room, room.name, _nicks(room)):
                    self.conn.send(data)
            if not self.session.rooms:
                # In no channel: still an end, for a client that waits for it.
                self.numeric(N.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
            return
        # Each channel once, however often named (as PRIVMSG's targets).
        named = {roomKey(name): name for name in params[0].split(",") if name}
        found = [(name, core.rooms.get(key)) for key, name in named.items()]
        self.countAs(_listingCost(room for _, room in found if room is not None))
        for name, room in found:
            if room is None:
                if len(found) == 1:
                    self.numeric(N.RPL_ENDOFNAMES, name, "End of /NAMES list.")
                continue
            lines = self._namesLines(room, room.name, _nicks(room))
            for data in lines if len(found) == 1 else lines[:-1]:
                self.conn.send(data)
        if len(found) > 1:
            self.numeric(N.RPL_ENDOFNAMES, params[0], "End of /NAMES list.")

    def irc_LIST(self, params):
        """
        LIST, with ELIST's M (masks), N (negated masks) and U (member counts)
        conditions: C{LIST #ch*,!*test,>2,<10}.
        """
        core = self.factory.core
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
        # Every room is looked at, against every mask.
        self.countAs(1 + len(core.rooms) * max(1, len(masks) + len(negated)) // WHO_PER_LINE)
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
        if ctcp not in (None, "ACTION") or notice and ctcp is not None:
            # Other CTCP queries (VERSION, PING, ...) are not passed on:
            # chatd's other front ends have no such thing; nor is any CTCP
            # in a NOTICE (a CTCP reply: an ACTION there would lose the
            # notice's mark, which bots rely on not to answer).
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                self.numeric(N.ERR_NOTEXTTOSEND, "No text to send")
            return
        text = params[1]
        command = "NOTICE" if notice else "PRIVMSG"
        for target in self._targets(params[0], N.MESSAGE_TARGETS, command, notice):
            try:
                if target.startswith("#"):
                    self._toRoom(target, text, ctcp, notice)
                else:
                    self._toNick(target, text, ctcp, command)
            except R.Refusal as refusal:
                # No automatic reply to a NOTICE, errors included.
                if not notice:
                    if isinstance(refusal, R.NotInRoom) and \
                            roomKey(refusal.room) not in self.factory.core.rooms:
                        refusal = R.NoSuchRoom(refusal.room)
                    self.refused(refusal, command)

    def _targets(self, field, most, command, quiet=False):
        """
        The targets a command names in C{field}, each once (as the core
        folds names), and at most C{most} of them (TARGMAX), as Solanum
        takes them: the first C{most}, and 407 for the rest (unless
        C{quiet}: nothing answers a NOTICE).  Each counts as a line against
        flood pacing.
        """
        targets = _distinct(field)
        if len(targets) > most:
            if not quiet:
                self.numeric(N.ERR_TOOMANYTARGETS, targets[most],
                             f"Too many recipients. Only {most} processed")
            targets = targets[:most]
        self.countAs(len(targets))
        return targets

    def irc_NOTICE(self, params, ctcp):
        # A notice in the core too: IRC users get a NOTICE, line users
        # "#room -alice- text" (README).
        self.irc_PRIVMSG(params, ctcp, notice=True)

    def _toRoom(self, target, text, ctcp, notice):
        if ctcp == "ACTION":
            self.session.act(target, text)
        else:
            # Echoed by the wire's own confirmation (EchoLine).
            self.session.say(target, text, notice)

    def _toNick(self, target, text, ctcp, command):
        if nickKey(target) == "nickserv":
            # Always the service, never a user (the name is reserved; a user
            # who held it from before would be sent passwords).
            self._nickServ(text)
            return
        if ctcp == "ACTION":
            # The core has no private action: it goes as a private message
            # starting with "* nick", as the line protocol would show it.
            text = f"* {self.nick} {text}"
        # Someone away: the core tells the sender (Away, shown as 301).
        self.session.tell(target, text, command == "NOTICE")

    def _nickServ(self, text):
        """
        NickServ, as IRC clients and their users expect to find it: IDENTIFY,
        GHOST and REGISTER for chatd's registered nicknames.
        """
        verb, _, rest = text.partition(" ")
        words = rest.split()
        verb = verb.upper()
        try:
            if verb == "GHOST" and len(words) == 2:
                # As the line protocol's /ghost: the nickname taken back from
                # whoever holds it, shown as NICK, 900.
                done = self.session.ghost(words[0], words[1])
                success = None
            elif verb == "IDENTIFY" and len(words) == 2 and nickKey(words[0]) != nickKey(self.nick):
                # Take another registered nickname: shown as NICK, 900.
                done = self.session.rename(words[0], words[1])
                success = None
            elif verb == "IDENTIFY" and words:
                # Confirmed by the core's Identified (900).
                done = self.session.identify(words[-1])
                success = None
            elif verb == "REGISTER" and words:
                done = self.session.register(words[0])
                success = f"{self.nick} is now registered to you"
            else:
                self._fromNickServ("Commands: IDENTIFY [NICK] PASSWORD, GHOST NICK PASSWORD, "
                                   "REGISTER PASSWORD")
                return
        except R.Refusal as refusal:
            done = fail(refusal)

        def failed(failure):
            if not failure.check(R.Refusal):
                self._log.failure("NickServ {verb} failed", failure, verb=verb)
                self._fromNickServ("That did not work; try again later")
                return
            code, params = refusalReply(failure.value, verb)
            self._fromNickServ(params[-1])

        done.addCallbacks(lambda _: success and self._fromNickServ(success), failed)

    def _fromNickServ(self, text):
        if self.conn.live:
            self.send("NOTICE", self.nick, text, prefix="NickServ!NickServ@services")

    def irc_OPER(self, params):
        """
        OPER NAME PASSWORD: chatd's operators are registered nicknames named
        by --operator, so OPER proves one, as NickServ IDENTIFY does: the
        nickname in use, or NAME taken (shown as NICK).  There is no other
        kind of operator: under another nickname, nobody is one.
        """
        name, password = _required(params, 0), _required(params, 1)
        if nickKey(name) not in self.factory.core.moderation.operators:
            self.numeric(N.ERR_NOOPERHOST, f"{name} is not an operator's nickname")
            return
        if self.session.isOperator and nickKey(name) == nickKey(self.nick):
            self.numeric(N.RPL_YOUREOPER, "You are now an IRC operator")
            return
        try:
            if nickKey(name) == nickKey(self.nick):
                done = self.session.identify(password)
            else:
                done = self.session.rename(name, password)
        except R.Refusal as refusal:
            done = fail(refusal)

        def proved(_):
            if self.conn.live and self.session.isOperator:
                self.numeric(N.RPL_YOUREOPER, "You are now an IRC operator")

        def failed(failure):
            if not failure.check(R.Refusal):
                self._log.failure("OPER failed", failure)
                self.numeric(N.ERR_UNKNOWNERROR, "OPER", "That did not work; try again later")
            elif failure.check(R.WrongPassword):
                self.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
            elif self.conn.live:
                self.refused(failure.value, "OPER")

        done.addCallbacks(proved, failed)

    # Who is who

    def irc_WHO(self, params):
        mask = _param(params, 0) or "*"
        core = self.factory.core
        fields = _param(params, 1)
        if fields.startswith("%"):
            # WHOX: the fields asked for, and a token to send back.
            fields, _, token = fields[1:].partition(",")
            self._whox = (fields, token[:3] or "0")
        else:
            self._whox = None
        if mask.startswith("#"):
            room = core.rooms.get(roomKey(mask))
            if room is not None:
                self.countAs(_listingCost([room]))
                for user in list(room.members.values()):
                    self._whoReply(room.name, user,
                                   "@" if self._isModerator(room, user) else "")
        elif "*" not in mask and "?" not in mask:
            user = core.user(mask)
            if user is not None:
                self._whoReply("*", user, "")
        else:
            # Everyone is invisible (+i): a mask finds only the people who
            # share a room with the asker.
            self.countAs(1 + len(core.users) // WHO_PER_LINE)
            pattern = nickKey(mask)
            mine = {roomKey(room.name) for room in self.session.rooms}
            for key, user in list(core.users.items()):
                if fnmatch.fnmatchcase(key, pattern) and (
                        key == nickKey(self.nick) or mine.intersection(user.rooms)):
                    self._whoReply("*", user, "")
        self.numeric(N.RPL_ENDOFWHO, mask, "End of /WHO list.")

    def _details(self, user):
        """
        The username, real name and away message (L{None} when not away) to
        show for C{user}, of any front end.
        """
        client = self.factory.clients.get(nickKey(user.nick))
        away = user.away or None
        if client is not None:
            return "~" + client.username, client.realname, away
        frontEnd = getattr(user.wire, "frontEnd", None)
        return "~" + user.nick, f"chatd {frontEnd} user" if frontEnd else "chatd user", away

    def _whoReply(self, where, user, flag):
        username, realname, away = self._details(user)
        here = "G" if away is not None else "H"
        if self.factory.core.moderation.isOperator(user):
            here += "*"
        if self._whox is None:
            self.numeric(N.RPL_WHOREPLY, where, username, HIDDEN_HOST, self.server,
                         user.nick, here + flag, f"0 {realname}")
            return
        fields, token = self._whox
        idle = int(self.clock.seconds() - user.active)
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
        core = self.factory.core
        try:
            whois = self.session.whois(nick)
        except R.NoSuchUser as refusal:
            self.refused(refusal, "WHOIS")
            self.numeric(N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list.")
            return
        user = core.user(nick)
        username, realname, _ = self._details(user)
        self.numeric(N.RPL_WHOISUSER, whois.nick, username, HIDDEN_HOST, "*", realname)
        rooms = []
        for name in whois.rooms:
            room = core.rooms.get(roomKey(name))
            rooms.append(("@" if self._isModerator(room, user) else "") + name)
        if rooms:
            self.numeric(N.RPL_WHOISCHANNELS, whois.nick, " ".join(rooms))
        self.numeric(N.RPL_WHOISSERVER, whois.nick, self.server, self.factory.network)
        if whois.operator:
            self.numeric(N.RPL_WHOISOPERATOR, whois.nick, "is an IRC operator")
        if whois.identified:
            self.numeric(N.RPL_WHOISACCOUNT, whois.nick, whois.nick, "is logged in as")
        if whois.away:
            self.numeric(N.RPL_AWAY, whois.nick, whois.away)
        self.numeric(N.RPL_WHOISIDLE, whois.nick, str(int(whois.idle)), str(int(whois.since)),
                     "seconds idle, signon time")
        self.numeric(N.RPL_ENDOFWHOIS, whois.nick, "End of /WHOIS list.")

    def irc_TAGMSG(self, params):
        # Client-only tags (typing notifications) have nowhere to go: the
        # other front ends have no such thing.
        pass

    def irc_AWAY(self, params):
        text = _param(params, 0)[:N.AWAYLEN]
        self.session.setAway(text)
        if text:
            self.numeric(N.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.numeric(N.RPL_UNAWAY, "You are no longer marked as being away")

    def irc_ISON(self, params):
        core = self.factory.core
        found = [core.user(n).nick for p in params for n in p.split() if core.user(n)]
        self.numeric("303", " ".join(found))

    def irc_USERHOST(self, params):
        replies = []
        for nick in params[:5]:
            user = self.factory.core.user(nick)
            if user is not None:
                username, _, away = self._details(user)
                replies.append(f"{user.nick}={'-' if away else '+'}{username}@{HIDDEN_HOST}")
        self.numeric("302", " ".join(replies))

    # Moderation

    def irc_KICK(self, params):
        """
        KICK #room nick[,nick...], or as many rooms as nicks, in pairs.
        """
        names = _required(params, 0).split(",")
        nicks = _required(params, 1).split(",")
        reason = _param(params, 2)[:N.KICKLEN]
        if len(names) == 1:
            names = names * len(nicks)
        elif len(names) != len(nicks):
            raise _NeedMoreParams()
        pairs = list(zip(names, nicks))
        if len(pairs) > N.KICK_TARGETS:
            self.numeric(N.ERR_TOOMANYTARGETS, nicks[N.KICK_TARGETS],
                         f"Too many targets. Only {N.KICK_TARGETS} processed")
            pairs = pairs[:N.KICK_TARGETS]
        self.countAs(len(pairs))
        for name, nick in pairs:
            try:
                # Shown by the wire's own confirmation of Kicked.
                self.session.kick(name, nick, reason)
            except R.NotInRoom as refusal:
                gone = roomKey(refusal.room) not in self.factory.core.rooms
                self.refused(R.NoSuchRoom(refusal.room) if gone else refusal, "KICK")
            except R.NotMember as refusal:
                gone = self.factory.core.user(nick) is None
                self.refused(R.NoSuchUser(nick) if gone else refusal, "KICK")

    def irc_MODE(self, params):
        target = _required(params, 0)
        if not target.startswith("#"):
            self._userMode(target, params[1:])
            return
        room = self.session.room(target)
        if len(params) < 2:
            self.numeric(N.RPL_CHANNELMODEIS, room.name, "+")
            return
        modes, args = params[1], list(params[2:])
        # Each change (a ban, a mute: said to the whole room) costs a line.
        self.countAs(sum(char not in "+-" for char in modes))
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
                # Shown by the wire's own confirmation.
                if char == "b" and sign == "+":
                    self.session.ban(room.name, banTarget(mask))
                elif char == "b":
                    self.session.unban(room.name, banTarget(mask))
                elif sign == "+":
                    self.session.mute(room.name, banTarget(mask))
                else:
                    self.session.unmute(room.name, banTarget(mask))
            except R.Refusal as refusal:
                self.refused(refusal, "MODE")

    def _listMode(self, room, char):
        if char == "b":
            try:
                for ban in self.session.bans(room.name):
                    self.numeric(N.RPL_BANLIST, room.name, banMask(ban.target), ban.by,
                                 str(int(ban.time)))
            except R.Refusal:
                pass
            self.numeric(N.RPL_ENDOFBANLIST, room.name, "End of channel ban list")
            return
        if self.session.isIn(room) and self._isModerator(room, self.factory.core.user(self.nick)):
            for key in room.muted:
                self.numeric(N.RPL_QUIETLIST, room.name, "q", banMask(key))
        self.numeric(N.RPL_ENDOFQUIETLIST, room.name, "q", "End of channel quiet list")

    def _userMode(self, target, params):
        if nickKey(target) != nickKey(self.nick):
            if self.factory.core.user(target) is not None:
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
        if self.registered:
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
            authorize, account, password = base64.b64decode(data, validate=True).decode(
                "utf-8").split("\0")
        except (ValueError, binascii.Error):
            self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
            return
        if authorize and nickKey(authorize) != nickKey(account):
            # Acting as another account than the one proved is nobody's
            # right here (RFC 4616: the server then fails the exchange).
            self.numeric(N.ERR_SASLFAIL, "SASL authentication failed")
            return
        self._saslPending = True
        try:
            checked = self._session().authenticate(account, password)
        except R.Refusal as refusal:
            checked = fail(refusal)
        checked.addCallbacks(self._saslDone, self._saslFailed, callbackArgs=(account,))
        # (Registration waits for the answer: so does the login timeout.)
        self.conn.checking(checked)

    def _prove(self, nick, password):
        """
        Check C{password} for the registered nickname C{nick} (given with
        PASS), then go on registering; a wrong one is 464, and registration
        goes on unproved, as after a failed SASL: the nickname is refused
        (433, saying how to take it back), so that the client chooses
        another, as IRC clients do after a 433 and not after a 464.
        """
        self._saslPending = True

        def proved(result):
            self._saslPending = False
            self._tryRegister()
            if self.registered:
                # After the welcome, as a client that authenticated with
                # SASL is told before it.
                self._loggedIn(nick)

        def wrong(failure):
            self._saslPending = False
            failure.trap(R.Refusal)
            if self.conn.live:
                self.conn.send(encode(N.ERR_PASSWDMISMATCH, "*", "Password incorrect",
                                      prefix=self.server))
                self._tryRegister()

        try:
            checked = self._session().authenticate(nick, password)
        except R.Refusal as refusal:
            checked = fail(refusal)
        checked.addCallbacks(proved, wrong)
        self.conn.checking(checked)

    def _saslDone(self, result, account):
        self._saslPending = False
        if not self.conn.live:
            return
        self._loggedIn(account)
        self.numeric(N.RPL_SASLSUCCESS, "SASL authentication successful")
        self._tryRegister()

    def _loggedIn(self, account):
        # Before NICK and USER (SASL comes first), the account names them.
        self.numeric(N.RPL_LOGGEDIN, f"{self.nick or account}!{self._userhost(account)}", account,
                     f"You are now logged in as {account}")

    def _saslFailed(self, failure):
        self._saslPending = False
        if not self.conn.live:
            return
        if not failure.check(R.Refusal):
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


# CHATHISTORY's subcommands, with how many parameters each takes.
_CHATHISTORY = {"LATEST": 3, "BEFORE": 3, "AFTER": 3, "AROUND": 3, "BETWEEN": 4}


# A server-time tag gives milliseconds: a line tagged T was said within the
# millisecond from T on.
_TICK = 0.001


def _past(bound):
    """
    The bound after which lines come after the line C{bound} names: past
    the millisecond a timestamp names, which holds the line it was read
    from.
    """
    if bound is None or bound[0] == "id":
        return bound
    return ("time", bound[1] + _TICK - _TICK / 1000)


def _msgref(ref):
    """
    A CHATHISTORY message reference as a history bound: C{msgid=ID} is
    C{("id", ID)}, C{timestamp=...} C{("time", SECONDS)}; L{False} when it
    is neither.
    """
    kind, _, value = ref.partition("=")
    if kind == "msgid" and value.isdigit():
        return ("id", int(value))
    if kind == "timestamp":
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return ("time", (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp())
    return False


def _distinct(field):
    """
    The names in a comma-separated C{field}, in order, each once: empty ones
    and repeats (C{#Dev} after C{#dev}, as the core folds names) left out.
    """
    seen, names = set(), []
    for name in field.split(","):
        key = roomKey(name) if name.startswith("#") else nickKey(name)
        if name and key not in seen:
            seen.add(key)
            names.append(name)
    return names


def _nicks(room):
    return [user.nick for user in room.members.values()]


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


class IrcFactory(Factory):
    """
    Builds an L{IrcProtocol} for each connection to an IRC listener.

    @ivar core: the L{chatd.core.chat.ChatCore} every connection acts on.
    @ivar gate: the L{chatd.edge.gate.Gate} shared with every other listener.
    @ivar wire: the L{IrcWire} for clients without tag capabilities (those
        with some use C{wire.variant(caps)}).
    @ivar clients: the registered IRC connections, by nickname key.
    @ivar replay: how many of a room's last lines a client joining it is
        shown, when the core keeps history.
    """

    protocol = IrcProtocol
    noisy = False

    PING_INTERVAL = 120.0

    def __init__(self, core, gate, wire=None, network="chatd", motd=None, replay=20):
        self.core = core
        self.gate = gate
        self.wire = wire or IrcWire()
        self.wire.accountOf = self._accountOf
        self.network = network
        self.replay = replay
        self.motd = motd if motd is not None else [
            f"Welcome to chatd {__version__}.",
            "The rooms here are shared with nc, telnet and chat-client users;",
            f"they all start in {core.lobby}: /join {core.lobby} to meet them.",
        ]
        self.created = _time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                      _time.gmtime(gate.clock.seconds()))
        self.clients = {}

    def _accountOf(self, nick):
        """
        The account of the user called C{nick}, of any front end, while they
        are identified (for C{account-tag}), else L{None}.
        """
        user = self.core.user(nick)
        return user.nick if user is not None and user.identified else None

"""
IRC as a wire format for the fan-out.

L{IrcWire.encode} turns one core event into the IRC line every IRC recipient
gets; the fan-out calls it once per event for all IRC users together, exactly
as it calls the line protocol's wire once for all line users.  A user's
source (C{nick!user@host}) comes from the wire's directory, which the IRC
connections keep up to date; users of other front ends get
C{nick!~nick@HOST}, where C{HOST} is the same fixed name (chatd does not show
anyone's address).

Events told to one user alone (the welcome to a channel, a nickname
change, being put out of a room) depend on the recipient: their nickname,
their capabilities, what they were just told.  L{IrcWire.encode} returns
them as L{Personal} bytes, which the recipient's connection renders
(L{chatd.irc.protocol.IrcOutbox}).
"""

import dataclasses
from datetime import datetime, timezone
from functools import cached_property

from chatd.core import events
from chatd.core.arrivals import BatchLines
from chatd.core.names import nickKey
from chatd.irc.message import MAX_BODY_BYTES, splitText
from chatd.line.wire import duration
from chatd.irc.message import encode as line

HIDDEN_HOST = "chatd"
CTCP = "\x01"


class Personal(bytes):
    """
    The placeholder for an event told to one user, rendered by their
    connection; empty, so that nothing shows if it ever reached a socket.
    """


    def __new__(cls, event):
        self = super().__new__(cls, b"")
        self.event = event
        return self

    def __bool__(self):
        # Something to deliver, for whoever tests "if data:" before sending.
        return True


class AwayLine(bytes):
    """
    An AWAY line, for the recipients that asked for C{away-notify} alone
    (see L{chatd.irc.protocol.IrcOutbox}).
    """

    __slots__ = ()
    capability = "away-notify"


class Echo(Personal):
    """
    The placeholder for a user's own message, shown back to them (by their
    connection: L{chatd.irc.protocol.IrcOutbox}) only if they asked for
    C{echo-message}, and then encoded as everyone else sees it, its msgid
    included.
    """


class Once(bytes):
    """
    Lines a recipient should see once even when the core tells them once per
    room they share with the user concerned (a QUIT, a NICK): see
    L{chatd.irc.protocol.IrcOutbox}, which drops those it has just shown.

    @ivar plain: the same bytes as a plain C{bytes}, made once for every
        recipient (the outbox tells its batches from plain bytes by type).
    @ivar lines: the lines, one by one.
    @ivar batch: for a room's departures announced together, the number of
        the announcement (L{events.Departed.batch}), which tells other
        rooms' departures in it; else L{None}.
    @ivar told: the departures of C{batch} a recipient was shown, room
        after room, when this stands for them (L{IrcOutbox}); else L{None}.
    @ivar keys: what each line says, whatever room it is told for: the
        line itself, but a QUIT's user alone (a room that mutes them hears
        their quit without its reason, another line for the same QUIT).
    """

    def __new__(cls, lines, batch=None, told=None, keys=None):
        plain = b"".join(lines)
        self = super().__new__(cls, plain)
        self.plain = plain
        self.lines = lines
        self.batch = batch
        self.told = told
        self.keys = lines if keys is None else keys
        return self

    @cached_property
    def shown(self):
        """
        The keys as a set: made for the recipients it is shown to after
        another room's departures of its batch, once for all of them.
        """
        return frozenset(self.keys)


def serverTime(time: float) -> str:
    """
    C{time} (POSIX seconds) as the server-time tag gives it.
    """
    return datetime.fromtimestamp(time, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _reasonOr(reason, default):
    return reason or default


TAG_CAPABILITIES = frozenset({"server-time", "account-tag", "message-tags"})
"""The capabilities that add tags to what others do: each set of them is a
wire format of its own."""


class IrcWire:
    """
    Encodes core events as IRC lines.

    One instance serves each set of tag capabilities clients chose (none;
    C{server-time}: every line that has a time carries it; C{account-tag}:
    every line from an identified user carries their account; both), all
    sharing one directory of users; C{message-tags} adds each stored
    line's C{msgid} (its history id, which C{CHATHISTORY} takes).  Each is
    its own wire format, so the fan-out encodes an event at most once for
    each.

    @ivar server: the server's name, the source of its own messages.
    @ivar users: C{user@host} of each IRC user, by nickname key.
    @ivar tags: the tag capabilities of this wire's clients.
    @ivar tagged: whether lines carry C{server-time} tags.
    @ivar accountOf: the account of the user called C{nick} while they are
        identified, else L{None} (set by the IRC front end, which knows the
        core).
    @ivar batchLines: the C{JOIN} lines of the last batch of arrivals shown.
    """

    def __init__(self, server="irc.chatd", users=None, tags=frozenset()):
        self.server = server
        self.users = {} if users is None else users
        self.tags = frozenset(tags)
        self.tagged = "server-time" in self.tags
        self._accountTagged = "account-tag" in self.tags
        self._msgids = "message-tags" in self.tags
        self.accountOf = lambda nick: None
        self.batchLines = BatchLines()
        self._variants = {self.tags: self}

    def variant(self, caps):
        """
        The wire for clients with the capabilities C{caps}.
        """
        tags = frozenset(caps) & TAG_CAPABILITIES
        wire = self._variants.get(tags)
        if wire is None:
            wire = self._variants[tags] = IrcWire(self.server, self.users, tags)
            wire.accountOf = self.accountOf
            wire._variants = self._variants
        return wire

    def tagsFrom(self, nick, time=None, msgid=None):
        """
        The tags of a line from C{nick} at C{time} (L{None}: untimed), the
        stored line C{msgid} (or L{None}), for this wire's clients; L{None}
        when there are none.
        """
        if not self.tags:
            return None
        tags = {}
        if self._msgids and msgid is not None:
            tags["msgid"] = str(msgid)
        if self.tagged and time:
            tags["time"] = serverTime(time)
        if self._accountTagged:
            account = self.accountOf(nick)
            if account is not None:
                tags["account"] = account
        return tags or None

    def _text(self, command, target, text, nick, time, action=False, msgid=None):
        """
        The lines that carry C{text} from the user C{nick} to C{target},
        said at C{time}, stored as C{msgid} (or L{None}).

        Text an IRC client could have sent in one line (510 bytes with its
        command and target) goes in one line, longer than 512 bytes by the
        source in front of it, as Ergo does and as clients accept: IRC
        senders' words arrive whole.  Longer text (the line protocol allows
        2048 bytes) is cut between words into as many lines as it takes.
        """
        wrap = (f"{CTCP}ACTION ", CTCP) if action else ("", "")
        tags = self.tagsFrom(nick, time, msgid)
        source = self.source(nick)
        whole = wrap[0] + text + wrap[1]
        colon = not whole or " " in whole or whole.startswith(":")
        if len(f"{command} {target} {':' * colon}{whole}\r\n".encode("utf-8")) <= MAX_BODY_BYTES:
            return line(command, target, whole, prefix=source, tags=tags)
        overhead = len(f"{command} {target} :{wrap[0]}{wrap[1]}\r\n".encode("utf-8"))
        return b"".join(
            line(command, target, wrap[0] + piece + wrap[1], prefix=source, tags=tags)
            for piece in splitText(text, MAX_BODY_BYTES - overhead))

    def source(self, nick):
        """
        The C{nick!user@host} that shows C{nick} as the source of a message.
        """
        userhost = self.users.get(nickKey(nick))
        if userhost is None:
            return f"{nick}!~{nick}@{HIDDEN_HOST}"
        return f"{nick}!{userhost}"

    def encode(self, event) -> bytes:
        kind = type(event)
        encoder = _ROOM_LINES.get(kind)
        if encoder is not None:
            return encoder(self, event)
        if kind is events.PrivatelySaid:
            text, acted = event.text, f"* {event.sender} "
            # A private action comes as a message "* nick waves" (the core
            # has none): a CTCP ACTION again for IRC.
            action = not event.notice and text.startswith(acted) and len(text) > len(acted)
            return self._text("NOTICE" if event.notice else "PRIVMSG", event.target,
                              text[len(acted):] if action else text, event.sender, event.time,
                              action=action)
        # Told by the machinery around the core, before or after a session.
        if kind is events.Closing:
            return line("ERROR", f"Closing link: {event.reason}")
        if kind is events.Refused:
            return line("ERROR", f"Connection refused: {event.reason}")
        if kind is events.ShuttingDown:
            return line("ERROR", "Server shutting down")
        if kind is events.SlowedDown:
            return line("NOTICE", event.nick or "*",
                        "You are sending faster than the server handles; "
                        "your lines wait their turn", prefix=self.server)
        if kind is events.HistoryUnavailable:
            return line("NOTICE", event.nick or "*", "History took too long and was skipped"
                        if event.tooSlow else "History is unavailable right now",
                        prefix=self.server)
        return Personal(event)

    def encodeOwn(self, event):
        """
        The actor's confirmation: IRC echoes a PART, TOPIC, KICK or MODE to
        whoever did it; messages are echoed only with echo-message (by the
        connection, which knows its capabilities).
        """
        kind = type(event)
        if kind in _ECHOED:
            return self.encode(event)
        if kind in _MESSAGES:
            return Echo(event)
        return None

    def encodeHistory(self, event) -> bytes:
        """
        C{event}, a stored room line, replayed: with its original time as a
        C{server-time} tag, or without the capability, in front of the text
        as the line protocol's history lines show it.
        """
        if not self.tagged and type(event) in (events.Said, events.Acted):
            stamp = datetime.fromtimestamp(event.time, timezone.utc).strftime("[%Y-%m-%d %H:%M] ")
            event = dataclasses.replace(event, text=stamp + event.text)
        # Who is identified now says nothing of who was then.
        return self.variant(self.tags - {"account-tag"}).encode(event)

    def personal(self, event, me) -> bytes:
        """
        The lines that show C{event}, told to the user called C{me} alone,
        for the events whose lines depend on nothing but the recipient's
        nickname.
        """
        kind = type(event)
        server = self.server
        if kind is events.PutOut:
            return line("KICK", event.room, me, "a moderator put you out", prefix=server)
        if kind is events.Expelled:
            # The connection's last line, which IRC clients show as the
            # reason they were disconnected.
            until = f" for {duration(event.duration)}" if event.duration else ""
            return line("ERROR", f"Closing link: {event.by} banned you from this server{until}"
                        + (f" ({event.reason})" if event.reason else ""))
        if kind is events.Identified:
            return line("900", me, f"{me}!{self.users.get(nickKey(me), '*@*')}", event.nick,
                        f"You are now logged in as {event.nick}", prefix=server)
        if kind is events.PasswordDelayed:
            return line("NOTICE", me, "Too many wrong passwords from your address lately: "
                        f"this one for {event.nick} is checked in {duration(event.seconds)}",
                        prefix=server)
        if kind is events.Away:
            return line("301", me, event.nick, event.text, prefix=server)
        if kind is events.Ghosted:
            # The connection's last line, which IRC clients show as the
            # reason they were disconnected.
            return line("ERROR", f"Closing link: the owner of {event.nick} took the "
                        "nickname back")
        if kind is events.RenameRefused:
            # As a NICK refused at once would be: the client keeps its nickname.
            if event.taken:
                return line("433", me, event.nick,
                            "Nickname is already in use", prefix=server)
            return line("437", me, event.nick,
                        "Nickname is temporarily unavailable", prefix=server)
        return b""


def _said(wire, e):
    return wire._text("NOTICE" if e.notice else "PRIVMSG", e.room, e.text, e.nick, e.time,
                      msgid=e.id)


def _acted(wire, e):
    return wire._text("PRIVMSG", e.room, e.text, e.nick, e.time, action=True, msgid=e.id)


def _from(nick, command, *params, stored=False):
    """
    An encoder of the line C{command} with C{params} (functions of the
    event) from the user C{nick} (a function of the event); C{stored}: the
    event is a stored line, with a time and an id.
    """
    def encode(wire, e):
        who = nick(e)
        return line(command, *[param(e) for param in params], prefix=wire.source(who),
                    tags=wire.tagsFrom(who, e.time, e.id) if stored else wire.tagsFrom(who))
    return encode


def _part(wire, e):
    params = (e.room, e.reason) if e.reason else (e.room,)
    return line("PART", *params, prefix=wire.source(e.nick), tags=wire.tagsFrom(e.nick))


def _room(e):
    return e.room


def _nick(e):
    return e.nick


def _by(e):
    return e.by


def _mode(mode, target):
    return _from(_by, "MODE", _room, lambda e: mode, lambda e: banMask(target(e)))


_roomBan = _mode("+b", lambda e: e.target)


def _serverBan(wire, e):
    # No channel mode: MODE #room b would not list it.
    span = f" for {duration(e.duration)}" if e.duration is not None else ""
    why = f" ({e.reason})" if e.reason else ""
    return line("NOTICE", e.room, f"{e.by} banned {e.target} from the server{span}{why}",
                prefix=wire.server)


_joined = _from(_nick, "JOIN", _room)
_quit = _from(_nick, "QUIT", lambda e: e.reason or "Quit")
_renamed = _from(lambda e: e.old, "NICK", lambda e: e.new)


def _quitKey(e):
    # A QUIT names no room: one user's is the same QUIT for every room.
    return ("QUIT", e.nick)


def _departed(wire, e):
    """
    One PART or QUIT each, a quit once however many of the batch's rooms
    the recipient shares with its user.
    """
    lines, keys = [], []
    for d in e.departures:
        if type(d) is events.Parted:
            line = _part(wire, d)
            lines.append(line)
            keys.append(line)
        else:
            lines.append(_quit(wire, d))
            keys.append(_quitKey(d))
    return Once(tuple(lines), e.batch, keys=tuple(keys))


_ROOM_LINES = {
    events.Said: _said,
    events.Acted: _acted,
    events.Joined: _joined,
    # IRC has no word for several arrivals: one JOIN each, made once a batch.
    events.Arrived: lambda w, e: w.batchLines.show(
        e, lambda room, nick: _joined(w, events.Joined(room, nick))),
    events.Parted: _part,
    events.Quit: lambda w, e: Once((_quit(w, e),), keys=(_quitKey(e),)),
    events.Departed: _departed,
    events.Renamed: lambda w, e: Once((_renamed(w, e),)),
    events.TopicChanged: _from(_nick, "TOPIC", _room, lambda e: e.topic, stored=True),
    events.Kicked: _from(_by, "KICK", _room, _nick, lambda e: e.reason or e.by),
    events.Banned: lambda w, e: _serverBan(w, e) if e.server else _roomBan(w, e),
    events.Unbanned: _mode("-b", lambda e: e.target),
    events.Muted: lambda w, e: _mode("+q", _nick)(w, e) + (
        line("MODE", e.room, "-o", e.nick, prefix=w.source(e.by), tags=w.tagsFrom(e.by))
        if e.demoted else b""),
    events.Unmuted: _mode("-q", _nick),
    events.AwayChanged: lambda w, e: AwayLine(
        line("AWAY", e.text, prefix=w.source(e.nick), tags=w.tagsFrom(e.nick)) if e.text
        else line("AWAY", prefix=w.source(e.nick), tags=w.tagsFrom(e.nick))),
}
_MESSAGES = {events.Said, events.Acted, events.PrivatelySaid}
_ECHOED = {events.Parted, events.TopicChanged, events.Kicked, events.Banned,
           events.Unbanned, events.Muted, events.Unmuted}


def banMask(target: str) -> str:
    """
    A chatd ban target (a nickname or an address) as an IRC ban mask.
    """
    if "." in target or ":" in target or "/" in target:
        return f"*!*@{target}"
    return f"{target}!*@*"


def banTarget(mask: str) -> str:
    """
    The chatd ban target (a nickname or an address) an IRC ban mask names.
    """
    nick, _, host = mask.partition("!")
    user, _, host = host.partition("@")
    if nick in ("", "*") and host not in ("", "*"):
        return host
    return nick

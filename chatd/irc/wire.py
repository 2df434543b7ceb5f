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

from datetime import datetime, timezone

from chatd.core import events
from chatd.core.names import nickKey
from chatd.irc.message import MAX_BODY_BYTES, splitText
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


class Once(bytes):
    """
    A line a recipient should see once even when the core tells it once per
    room they share (a QUIT, a NICK): see L{chatd.irc.protocol.IrcOutbox}.
    """

    __slots__ = ()


def serverTime(time: float) -> str:
    """
    C{time} (POSIX seconds) as the server-time tag gives it.
    """
    return datetime.fromtimestamp(time, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _reasonOr(reason, default):
    return reason or default


class IrcWire:
    """
    Encodes core events as IRC lines.

    Two instances serve one server: one for the clients that asked for the
    C{server-time} capability (every line that has a time carries it as a
    tag) and one for the others; both share one directory of users.  Each
    is its own wire format, so the fan-out encodes an event at most once for
    each.

    @ivar server: the server's name, the source of its own messages.
    @ivar users: C{user@host} of each IRC user, by nickname key.
    @ivar tagged: whether lines carry C{server-time} tags.
    """

    def __init__(self, server="irc.chatd", users=None, tagged=False):
        self.server = server
        self.users = {} if users is None else users
        self.tagged = tagged
        self._twin = None

    def twin(self):
        """
        The same wire with C{server-time} tags (or without, for the tagged one).
        """
        if self._twin is None:
            self._twin = IrcWire(self.server, self.users, not self.tagged)
            self._twin._twin = self
        return self._twin

    def _text(self, command, target, text, source, time, action=False):
        """
        The lines that carry C{text} from C{source} to C{target}.

        Text an IRC client could have sent in one line (510 bytes with its
        command and target) goes in one line, longer than 512 bytes by the
        source in front of it, as Ergo does and as clients accept: IRC
        senders' words arrive whole.  Longer text (the line protocol allows
        2048 bytes) is cut between words into as many lines as it takes.
        """
        wrap = (f"{CTCP}ACTION ", CTCP) if action else ("", "")
        tags = {"time": serverTime(time)} if self.tagged and time else None
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
            return self._text("PRIVMSG", event.target, event.text, self.source(event.sender),
                              event.time)
        # Told by the machinery around the core, before or after a session.
        if kind is events.Closing:
            return line("ERROR", f"Closing link: {event.reason}")
        if kind is events.Refused:
            return line("ERROR", f"Connection refused: {event.reason}")
        if kind is events.ShuttingDown:
            return line("ERROR", "Server shutting down")
        if kind is events.SlowedDown:
            return line("NOTICE", "*", "You are sending faster than the server handles; "
                        "your lines wait their turn", prefix=self.server)
        if kind is events.HistoryUnavailable:
            return line("NOTICE", "*", "History took too long and was skipped"
                        if event.tooSlow else "History is unavailable right now",
                        prefix=self.server)
        return Personal(event)

    def encodeOwn(self, event):
        """
        The actor's confirmation: IRC echoes a PART, TOPIC, KICK or MODE to
        whoever did it; messages are echoed only with echo-message (by the
        connection, which knows its capabilities).
        """
        if type(event) in _ECHOED:
            return self.encode(event)
        return None

    def encodeHistory(self, event) -> bytes:
        """
        C{event}, a stored room line, replayed: with its original time as a
        C{server-time} tag, or without the capability, in front of the text
        as the line protocol's history lines show it.
        """
        if not self.tagged and type(event) in (events.Said, events.Acted):
            stamp = datetime.fromtimestamp(event.time, timezone.utc).strftime("[%Y-%m-%d %H:%M] ")
            event = type(event)(event.room, event.nick, stamp + event.text, event.time, event.id)
        return self.encode(event)

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
            why = f" for {int(event.duration)} seconds" if event.duration else ""
            return line("NOTICE", me, f"{event.by} banned you from this server{why}"
                        + (f" ({event.reason})" if event.reason else ""), prefix=server)
        if kind is events.Identified:
            return line("900", me, f"{me}!{self.users.get(nickKey(me), '*@*')}", event.nick,
                        f"You are now logged in as {event.nick}", prefix=server)
        if kind is events.PasswordDelayed:
            return line("NOTICE", me, f"Too many wrong passwords for {event.nick} lately: "
                        f"this one is checked in {event.seconds} seconds", prefix=server)
        if kind is events.Away:
            return line("301", me, event.nick, event.text, prefix=server)
        if kind is events.Ghosted:
            return line("NOTICE", me, f"The owner of {event.nick} took the nickname "
                        "back; goodbye", prefix=server)
        return b""


def _roomText(command, action=False):
    return lambda wire, e: wire._text(command, e.room, e.text, wire.source(e.nick), e.time,
                                      action)


def _part(wire, e):
    if e.reason:
        return line("PART", e.room, e.reason, prefix=wire.source(e.nick))
    return line("PART", e.room, prefix=wire.source(e.nick))


def _topic(wire, e):
    tags = {"time": serverTime(e.time)} if wire.tagged and e.time else None
    return line("TOPIC", e.room, e.topic, prefix=wire.source(e.nick), tags=tags)


_ROOM_LINES = {
    events.Said: _roomText("PRIVMSG"),
    events.Acted: _roomText("PRIVMSG", action=True),
    events.Joined: lambda w, e: line("JOIN", e.room, prefix=w.source(e.nick)),
    # IRC has no word for several arrivals: one JOIN each.
    events.Arrived: lambda w, e: b"".join(line("JOIN", e.room, prefix=w.source(nick))
                                          for nick in e.nicks),
    events.Parted: _part,
    events.Quit: lambda w, e: Once(line("QUIT", e.reason or "Quit", prefix=w.source(e.nick))),
    events.Renamed: lambda w, e: Once(line("NICK", e.new, prefix=w.source(e.old))),
    events.TopicChanged: _topic,
    events.Kicked: lambda w, e: line("KICK", e.room, e.nick, e.reason or e.by,
                                     prefix=w.source(e.by)),
    events.Banned: lambda w, e: line("MODE", e.room, "+b", banMask(e.target),
                                     prefix=w.source(e.by)),
    events.Unbanned: lambda w, e: line("MODE", e.room, "-b", banMask(e.target),
                                       prefix=w.source(e.by)),
    events.Muted: lambda w, e: line("MODE", e.room, "+q", banMask(e.nick),
                                    prefix=w.source(e.by)),
    events.Unmuted: lambda w, e: line("MODE", e.room, "-q", banMask(e.nick),
                                      prefix=w.source(e.by)),
}
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

"""
IRC as a wire format for the fan-out.

L{IrcWire.encode} turns one core event into the IRC line every IRC recipient
gets; the fan-out calls it once per event for all IRC users together, exactly
as it calls the line protocol's wire once for all line users.  A user's
source (C{nick!user@host}) comes from the wire's directory, which the IRC
connections keep up to date; users of other front ends get
C{nick!~nick@HOST}, where C{HOST} is the same fixed name (chatd does not show
anyone's address).

Events told to one user alone (put out of a room, renamed to a guest, a
private message) need the recipient's own nickname, which the event does not
carry: L{IrcWire.encode} returns them as L{Personal} bytes, which the
recipient's connection renders (L{chatd.irc.protocol.IrcOutbox}).
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
        if kind is events.Said:
            return self._text("PRIVMSG", event.room, event.text, self.source(event.nick),
                              event.time)
        if kind is events.Acted:
            return self._text("PRIVMSG", event.room, event.text, self.source(event.nick),
                              event.time, action=True)
        if kind is events.Joined:
            return line("JOIN", event.room, prefix=self.source(event.nick))
        if kind is events.Parted:
            if event.reason:
                return line("PART", event.room, event.reason, prefix=self.source(event.nick))
            return line("PART", event.room, prefix=self.source(event.nick))
        if kind is events.Quit:
            return line("QUIT", _reasonOr(event.reason, "Quit"),
                        prefix=self.source(event.nick))
        if kind is events.Renamed:
            return line("NICK", event.new, prefix=self.source(event.old))
        if kind is events.TopicChanged:
            tags = {"time": serverTime(event.time)} if self.tagged and event.time else None
            return line("TOPIC", event.room, event.topic, prefix=self.source(event.nick),
                        tags=tags)
        if kind is events.Kicked:
            return line("KICK", event.room, event.nick, _reasonOr(event.reason, event.by),
                        prefix=self.source(event.by))
        if kind is events.Banned:
            return line("MODE", event.room, "+b", banMask(event.target),
                        prefix=self.source(event.by))
        if kind is events.Unbanned:
            return line("MODE", event.room, "-b", banMask(event.target),
                        prefix=self.source(event.by))
        if kind is events.Muted:
            return line("MODE", event.room, "+q", banMask(event.nick),
                        prefix=self.source(event.by))
        if kind is events.Unmuted:
            return line("MODE", event.room, "-q", banMask(event.nick),
                        prefix=self.source(event.by))
        return Personal(event)

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
        The lines that show C{event}, told to the user called C{me} alone.
        """
        kind = type(event)
        server = self.server
        if kind is events.PrivatelySaid:
            target = getattr(event, "target", me)
            return self._text("PRIVMSG", target, event.text, self.source(event.sender),
                              event.time)
        if kind is events.PutOut:
            return line("KICK", event.room, me, "a moderator put you out",
                        prefix=server)
        if kind is events.GuestRenamed:
            return line("NICK", event.new, prefix=self.source(event.old))
        if kind is events.NowKnownAs:
            # Shown by the GuestRenamed before it.
            return b""
        if kind is events.Expelled:
            why = f" for {int(event.duration)} seconds" if event.duration else ""
            return line("NOTICE", me, f"{event.by} banned you from this server{why}"
                        + (f" ({event.reason})" if event.reason else ""), prefix=server)
        if kind is events.IdentifyRequired:
            return line("NOTICE", me, f"{event.nick} is a registered nickname: identify "
                        f"(SASL PLAIN, or /msg NickServ IDENTIFY PASSWORD) within "
                        f"{int(event.seconds)} seconds, or you will be renamed",
                        prefix=server)
        if kind is events.Ghosted:
            return line("NOTICE", me, f"the owner of {event.nick} took the nickname "
                        "back; goodbye", prefix=server)
        # A room event told to one user (the kicked user's KICK, say).
        data = self.encode(event)
        return b"" if type(data) is Personal else data


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

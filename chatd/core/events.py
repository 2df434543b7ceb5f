"""
What happens in chat, as plain values.

The core emits these; each front end's wire format turns them into bytes (see
L{chatd.core.fanout}).  A room event names its room; the actor is named by
nickname, as it was when the event happened.  The actor of a room event
receives it too, as their confirmation: each wire format decides whether and
how to show it to them (C{encodeOwn}).

Room messages, actions and topic changes are the lines worth keeping: they
carry the server time they happened and, when the server keeps history, the
stable id under which they are stored (L{None} when it keeps none).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Said:
    room: str
    nick: str
    text: str
    time: float
    id: int | None = None
    notice: bool = False
    """Said as a notice (IRC's NOTICE): text that asks for no answer, which
    clients show apart and never answer automatically."""


@dataclass(frozen=True, slots=True)
class Acted:
    room: str
    nick: str
    text: str
    time: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PrivatelySaid:
    sender: str
    target: str
    text: str
    time: float
    notice: bool = False
    """As L{Said.notice}."""


@dataclass(frozen=True, slots=True)
class Away:
    """
    Told to whoever sends C{nick} a private message while C{nick} is away.
    """

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class AwayChanged:
    """
    C{nick} went away for C{text}, or is back (C{""}): told to whoever
    shares a room with them, for the wire formats that show it (IRC's
    away-notify); the others show nothing.
    """

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    nick: str


@dataclass(frozen=True, slots=True)
class Arrived:
    """
    Several users joined C{room}, in this order, and are announced together
    (see L{chatd.core.arrivals}): each of C{nicks[since:]} as a L{Joined}
    would show it.  A newcomer of the batch, shown the members on entering,
    is told only those after them: the batch's C{nicks} with a later
    C{since}, so that a wire format can make the batch's lines once and
    send each newcomer their tail (in a batch of N newcomers, N lines made
    rather than N²/2).
    """

    room: str
    nicks: tuple[str, ...]
    since: int = 0


@dataclass(frozen=True, slots=True)
class Entered:
    """
    Told to the user who joined C{room} (the others are told L{Joined}):
    what a newcomer is shown first.
    """

    room: str
    nick: str
    topic: str
    members: tuple[str, ...]
    """Every member's nickname, the newcomer's included, in the order they
    joined."""
    listed: tuple[str, ...] | None = field(default=None, compare=False)
    """The same nicknames in the order people look names up
    (L{chatd.core.names.sortedNicks}), kept by the core for a room of at
    most L{chatd.core.chat.LISTED_MAX} members; else L{None}, and whoever
    lists them sorts them."""


@dataclass(frozen=True, slots=True)
class Parted:
    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quit:
    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Departed:
    """
    Users left C{room}, in this order, and are announced together (see
    L{chatd.core.departures}): each of C{departures} (a L{Parted} or a
    L{Quit}) as it would show alone.
    """

    room: str
    departures: tuple[Parted | Quit, ...]
    batch: int = 0
    """The number of the announcement it is part of: the departures of every
    room announced in one go share it, so that a wire format that shows a
    quit once however many rooms it is told for (IRC) can drop the
    repeats."""


@dataclass(frozen=True, slots=True)
class Renamed:
    room: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class TopicChanged:
    room: str
    nick: str
    topic: str
    time: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Kicked:
    room: str
    nick: str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Banned:
    room: str
    target: str
    by: str
    duration: float | None
    reason: str
    server: bool = False
    """Whether the ban is from the whole server rather than this room."""


@dataclass(frozen=True, slots=True)
class Unbanned:
    room: str
    target: str
    by: str


@dataclass(frozen=True, slots=True)
class Muted:
    room: str
    nick: str
    by: str
    duration: float | None
    demoted: bool = False
    """Whether the muted user was the room's creator, who moderates it no
    more."""


@dataclass(frozen=True, slots=True)
class Unmuted:
    room: str
    nick: str
    by: str


@dataclass(frozen=True, slots=True)
class Expelled:
    """
    Told to a user alone: they are banned from the server and are let go.
    """

    by: str
    duration: float | None
    reason: str


# Registered nicknames: told to the user concerned alone.


@dataclass(frozen=True, slots=True)
class Identified:
    """
    The user proved the registered nickname C{nick} is theirs.
    """

    nick: str


@dataclass(frozen=True, slots=True)
class PasswordDelayed:
    """
    Too many wrong passwords came from the user's address lately (for
    C{nick}, or for any nickname): the one just given for C{nick} is checked
    in C{seconds}, not refused.
    """

    nick: str
    seconds: int


@dataclass(frozen=True, slots=True)
class Ghosted:
    """
    Told to a connection whose registered nickname its owner took back.
    """

    nick: str


# Told to one user whose nickname or rooms changed without their asking, in
# the words of the replies that clients follow ("you are now", "left").


@dataclass(frozen=True, slots=True)
class NowKnownAs:
    """
    The user's nickname is now C{new}: chosen (C{old} is L{None}), changed,
    or changed for them.
    """

    old: str | None
    new: str


@dataclass(frozen=True, slots=True)
class RenameRefused:
    """
    The user's change to the nickname C{nick}, which this server accepted,
    could not be confirmed with the other servers sharing its rooms: taken
    there at the same moment (C{taken}), or they could not be reached.  The
    user is still C{kept}, in the rooms they were in; nobody saw the change.
    """

    nick: str
    kept: str
    taken: bool


@dataclass(frozen=True, slots=True)
class PutOut:
    """
    The user is no longer in C{room}: a moderator put them out.
    """

    room: str


# Told to one connection by the machinery around the core.


@dataclass(frozen=True, slots=True)
class Refused:
    """
    The connection is not admitted, for C{reason}; it closes next.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class SlowedDown:
    """
    The connection sends faster than its lines are handled: they wait, in
    order, and reading from it pauses meanwhile.  C{nick}: the user's
    nickname, if they have one (IRC addresses its notice to it).
    """

    nick: str | None = None


@dataclass(frozen=True, slots=True)
class Closing:
    """
    The server is closing the connection, for C{reason}.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class ShuttingDown:
    """
    The server is going down; the connection closes next.
    """


@dataclass(frozen=True, slots=True)
class HistoryUnavailable:
    """
    History asked for could not be shown: the store failed, or was too slow
    (C{tooSlow}) and live lines could wait no longer.  C{nick}: as for
    L{SlowedDown}.
    """

    tooSlow: bool
    nick: str | None = None

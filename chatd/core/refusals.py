"""
Why the core refuses a request, as typed values.

Each refusal names what went wrong and carries what a front end needs to say
it in its own way: the line protocol as a C{!!!} line
(L{chatd.line.refusals}), IRC as a numeric, the browser as an error code.
None of them holds a sentence meant for a person, except where the reason
itself is a rule's wording (what a nickname may look like).
"""

from dataclasses import dataclass


class Refusal(Exception):
    """
    A request the core refuses; the subclass says why, in its fields.
    """

    def __str__(self):
        # For logs and tracebacks: the generated repr names the kind and
        # its fields.
        return repr(self)


# Names


@dataclass
class NoNickname(Refusal):
    """The request needs a nickname, and none is chosen yet."""


@dataclass
class AlreadyNamed(Refusal):
    """A first nickname was already chosen: C{nick}."""

    nick: str


@dataclass
class InvalidNickname(Refusal):
    nick: str
    reason: str


@dataclass
class PasswordRequired(Refusal):
    """
    C{nick} is registered and the user has not proved it is theirs: the
    request needs its password (a front end asks for it, then calls again
    with it).
    """

    nick: str


@dataclass
class NicknameTaken(Refusal):
    nick: str
    registered: bool
    """Whether it is registered, so that its owner may take it back."""


@dataclass
class InvalidRoomName(Refusal):
    name: str
    reason: str


# Rooms and users


@dataclass
class NoSuchUser(Refusal):
    nick: str


@dataclass
class NoSuchRoom(Refusal):
    room: str


@dataclass
class NotInRoom(Refusal):
    room: str


@dataclass
class TooManyRooms(Refusal):
    count: int
    room: str = ""
    """The room that was not joined."""


@dataclass
class Empty(Refusal):
    """
    A text to say, act or tell is empty (or only spaces, once cleaned):
    nothing to send, and IRC cannot carry it.
    """


@dataclass
class TopicUnchanged(Refusal):
    room: str
    topic: str


@dataclass
class NoHistory(Refusal):
    """The server keeps no history."""


@dataclass
class HistoryRefused(Refusal):
    """
    The history store refused or gave up on a read (too many waiting, a
    search too costly); C{reason} is its own words.
    """

    reason: str


# Moderation


@dataclass
class Banned(Refusal):
    room: str
    """The room, or C{""} for the whole server."""
    seconds: int | None
    """How long the ban still holds, or L{None} until lifted."""
    reason: str


@dataclass
class Muted(Refusal):
    room: str


@dataclass
class NotModerator(Refusal):
    room: str


@dataclass
class NotMember(Refusal):
    """C{nick} is not in C{room}, so cannot be kicked or muted there."""

    nick: str
    room: str


@dataclass
class NotToYourself(Refusal):
    """A moderator's action aimed at themselves."""


@dataclass
class BanYourself(Refusal):
    """A moderator's ban that names themselves."""


@dataclass
class IsModerator(Refusal):
    nick: str
    room: str


@dataclass
class IsOperator(Refusal):
    nick: str


@dataclass
class CoversOwnAddress(Refusal):
    target: str


@dataclass
class CoversEveryone(Refusal):
    """A ban on a range that holds every address (C{0.0.0.0/0}, C{::/0})."""

    target: str


@dataclass
class CoversOperator(Refusal):
    """A ban that would cover the operator C{nick}, who is connected."""

    target: str
    nick: str


@dataclass
class NoRenameWhileMuted(Refusal):
    """A muted user may not change nickname (the mute is theirs anyway)."""

    room: str


@dataclass
class InvalidBanTarget(Refusal):
    target: str


@dataclass
class NotBanned(Refusal):
    target: str


@dataclass
class NotMuted(Refusal):
    nick: str
    room: str


@dataclass
class MutedByHigher(Refusal):
    """
    C{nick}'s mute in C{room} was set by a moderator of a higher rank (an
    operator, the owner) than whoever would lift or change it (the owner,
    the creator).
    """

    nick: str
    room: str


@dataclass
class BannedByHigher(Refusal):
    """
    The ban on C{target} in C{room} was set by its owner, and a creator
    would lift or change it.
    """

    target: str
    room: str


# Registered nicknames


@dataclass
class NoAccounts(Refusal):
    """The server keeps no accounts."""


@dataclass
class AlreadyRegistered(Refusal):
    nick: str


@dataclass
class WeakPassword(Refusal):
    minimum: int


@dataclass
class AlreadyIdentified(Refusal):
    nick: str


@dataclass
class NotRegistered(Refusal):
    nick: str


@dataclass
class IdentifyFirst(Refusal):
    nick: str


@dataclass
class AttemptWaiting(Refusal):
    """
    A password for C{nick} from this connection is still being checked:
    one attempt at a time.
    """

    nick: str


@dataclass
class PasswordChanging(Refusal):
    """
    The password of C{nick} is being changed: until it is, no proof made
    by anyone but the changer takes the nickname (the change may void it).
    """

    nick: str


@dataclass
class TooManyRegistrations(Refusal):
    """Registrations from this address come too fast; try in C{seconds}."""

    seconds: int


@dataclass
class WrongPassword(Refusal):
    nick: str


@dataclass
class AccountRefused(Refusal):
    """The account store said no; C{reason} is its own words."""

    reason: str

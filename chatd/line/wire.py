"""
The line protocol's wire format, shared by the server and the client.

Every server line is UTF-8 text ending in CRLF, and its kind shows in its first
characters:

    #lobby <alice> hello            a room message
    * #lobby alice waves            an action (/me)
    *alice* psst                    a private message to you
    -- #lobby bob has joined        a room event: join, part, quit, rename, topic,
                                    and moderators' kicks, bans and mutes
    -- #lobby ann, bob and 48 others have joined
                                    many arrivals at once (see L{AGGREGATE_FROM})
    -- #lobby ann, bob and 48 others have quit (Connection lost)
                                    many departures at once: "have left" when
                                    some parted; a reason when all gave it
    -!- Welcome to chatd            a notice from the server
    !!! no such user: carol         an error: your last line was refused
    === joined #lobby               a reply to your command
    ??? Choose a nickname           the server waits for you to answer
    ~ 2026-11-25T21:03:11Z #lobby <alice> hello
                                    history: a room line from the past, with
                                    the UTC time the server received it

Once published this format stays stable: scripts and the companion client
parse it with L{parseLine}.
"""

import math
import re
from datetime import datetime, timezone
from dataclasses import dataclass

from chatd.core import events
from chatd.core.names import sortedNicks

DELIMITER = b"\r\n"

ROOM_MESSAGE = "message"
ACTION = "action"
PRIVATE = "private"
ROOM_EVENT = "event"
NOTICE = "notice"
ERROR = "error"
REPLY = "reply"
PROMPT = "prompt"
HISTORY = "history"


def encodeLine(line: str) -> bytes:
    """
    C{line} as it goes on the wire: UTF-8, ended by the delimiter.
    """
    return line.encode("utf-8") + DELIMITER


def notice(text: str) -> str:
    return "-!- " + text


def error(text: str) -> str:
    return "!!! " + text


def reply(text: str) -> str:
    return "=== " + text


def prompt(text: str) -> str:
    return "??? " + text


def timestamp(time: float) -> str:
    """
    C{time} (POSIX seconds) as history lines show it: UTC, ISO 8601, seconds.
    """
    return datetime.fromtimestamp(time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(time: float, line: str) -> str:
    """
    Mark C{line}, a room line received at C{time} (POSIX seconds), as history.
    """
    return f"~ {timestamp(time)} {line}"


def _quitLine(e):
    return f"-- {e.room} {e.nick} has quit" + (f" ({e.reason})" if e.reason else "")


def _partLine(e):
    return f"-- {e.room} {e.nick} has left" + (f" ({e.reason})" if e.reason else "")


def _topicLine(e):
    if e.topic:
        return f"-- {e.room} {e.nick} set the topic: {e.topic}"
    return f"-- {e.room} {e.nick} cleared the topic"


def duration(seconds) -> str:
    """
    C{seconds} as people read it and moderators type it, in at most two
    units: 90s is 1m 30s, 7180s is 1h 59m (rounded down), 7200s is 2h.
    """
    seconds = max(0, math.ceil(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if seconds >= size or size == 1:
            text = f"{seconds // size}{unit}"
            if size > 1:
                smaller, smallSize = units[i + 1]
                rest = seconds % size // smallSize
                if rest:
                    text += f" {rest}{smaller}"
            return text


def _reason(reason):
    return f" ({reason})" if reason else ""


def _for(seconds):
    return "" if seconds is None else f" for {duration(seconds)}"


def _bannedLine(e):
    where = " from the server" if e.server else ""
    return f"-- {e.room} {e.by} banned {e.target}{where}{_for(e.duration)}{_reason(e.reason)}"


# Arrivals announced together (chatd.core.arrivals) show as one line from
# this many on, naming the first two; fewer show one line each.
AGGREGATE_FROM = 4


def _arrivedLines(e):
    nicks = e.nicks[e.since:] if e.since else e.nicks
    if len(nicks) < AGGREGATE_FROM:
        return "\r\n".join(f"-- {e.room} {nick} has joined" for nick in nicks)
    return f"-- {e.room} {nicks[0]}, {nicks[1]} and {len(nicks) - 2} others have joined"


def _departedLines(e):
    """
    Departures announced together (chatd.core.departures): as many lines
    as arrivals would be, the aggregate saying "quit" when they all quit,
    "left" when some parted, and a reason when every one gave the same.
    """
    gone = e.departures
    if len(gone) < AGGREGATE_FROM:
        return "\r\n".join(_FORMATS[type(d)](d) for d in gone)
    verb = "quit" if all(type(d) is events.Quit for d in gone) else "left"
    reasons = {d.reason for d in gone}
    reason = _reason(reasons.pop()) if len(reasons) == 1 else ""
    return (f"-- {e.room} {gone[0].nick}, {gone[1].nick} and {len(gone) - 2} others "
            f"have {verb}{reason}")


# A room's members are listed this many at a time: all of them on entering
# a room of at most this many, and a page of /who in a bigger one.
WHO_PAGE = 100


def members(room: str, nicks, listed=None) -> str:
    """
    The reply that lists the members of C{room}, by nickname, in the order
    people look names up: C{listed}, when given sorted already, or
    C{nicks} sorted.
    """
    names = sortedNicks(nicks) if listed is None else listed
    return reply(f"{room} members ({len(names)}): {' '.join(names)}")


def whoPages(total: int) -> int:
    """
    How many pages of L{WHO_PAGE} list a room of C{total} members (one,
    however empty).
    """
    return max(1, -(-total // WHO_PAGE))


def membersPage(room: str, nicks, total: int, page: int) -> str:
    """
    The reply that lists page C{page} (from 1) of C{room}'s C{total}
    members, C{nicks} (sorted already).
    """
    return reply(f"{room} members ({total}), page {page} of {whoPages(total)}: "
                 f"{' '.join(nicks)}")


def tooManyMembers(room: str, total: int) -> str:
    """
    What a newcomer to a room too big to list is told instead of its members.
    """
    return reply(f"{room} members ({total}), too many to list: "
                 f"/who {room} PAGE shows them {WHO_PAGE} at a time")


def _enteredLines(e):
    lines = [reply(f"joined {e.room}")]
    if e.topic:
        lines.append(reply(f"{e.room} topic: {e.topic}"))
    if len(e.members) > WHO_PAGE:
        # Sorting and sending thousands of names to every newcomer of a big
        # room would cost more than all the rest of their arrival.
        lines.append(tooManyMembers(e.room, len(e.members)))
    else:
        lines.append(members(e.room, e.members, e.listed))
    return "\r\n".join(lines)


def _renameRefused(e):
    why = (f"the nickname {e.nick} was taken on another server at the same moment"
           if e.taken else "the other chat servers cannot be reached to check "
           f"nicknames; try {e.nick} again in a moment")
    return f"{why}; you are still {e.kept}"


_FORMATS = {
    events.Said: lambda e: (f"{e.room} -{e.nick}- {e.text}" if e.notice
                            else f"{e.room} <{e.nick}> {e.text}"),
    events.Acted: lambda e: f"* {e.room} {e.nick} {e.text}",
    events.PrivatelySaid: lambda e: (f"-{e.sender}- {e.text}" if e.notice
                                     else f"*{e.sender}* {e.text}"),
    events.Joined: lambda e: f"-- {e.room} {e.nick} has joined",
    events.Arrived: _arrivedLines,
    events.Parted: _partLine,
    events.Quit: _quitLine,
    events.Departed: _departedLines,
    events.Renamed: lambda e: f"-- {e.room} {e.old} is now known as {e.new}",
    events.TopicChanged: _topicLine,
    events.Kicked: lambda e: f"-- {e.room} {e.nick} was kicked by {e.by}{_reason(e.reason)}",
    events.Banned: _bannedLine,
    events.Unbanned: lambda e: f"-- {e.room} {e.by} lifted the ban on {e.target}",
    events.Muted: lambda e: f"-- {e.room} {e.by} muted {e.nick}{_for(e.duration)}",
    events.Unmuted: lambda e: f"-- {e.room} {e.by} unmuted {e.nick}",
    events.Expelled: lambda e: notice(
        f"{e.by} banned you from this server{_for(e.duration)}{_reason(e.reason)}"),
    events.PasswordDelayed: lambda e: notice(
        f"many wrong passwords came from your address lately; your password for "
        f"{e.nick} is checked in {duration(e.seconds)}"),
    events.Ghosted: lambda e: notice(
        f"the owner of {e.nick} took the nickname back; goodbye"),
    events.Entered: _enteredLines,
    events.NowKnownAs: lambda e: reply(f"you are now {e.new}"),
    events.RenameRefused: lambda e: error(_renameRefused(e)),
    events.Identified: lambda e: reply(f"you are identified as {e.nick}"),
    events.Away: lambda e: reply(f"{e.nick} is away: {e.text}"),
    events.PutOut: lambda e: reply(f"left {e.room}"),
    events.Refused: lambda e: notice(f"Connection refused: {e.reason}"),
    events.SlowedDown: lambda e: notice(
        "you are sending fast; your lines are being delayed"),
    events.Closing: lambda e: notice(f"Closing your connection: {e.reason}"),
    events.ShuttingDown: lambda e: notice("The server is going down. Goodbye."),
    events.HistoryUnavailable: lambda e: error(
        "history took too long and was skipped" if e.tooSlow
        else "history is unavailable right now"),
}

# What the actor of an event is told: the replies to their own command.
_OWN = {
    events.PrivatelySaid: lambda e: reply(f"to {e.target}: {e.text}"),
    events.Parted: lambda e: reply(f"left {e.room}"),
    events.TopicChanged: lambda e: reply(f"{e.room} topic set: {e.topic}" if e.topic
                                         else f"{e.room} topic cleared"),
}


def formatEvent(event) -> str:
    """
    The line (without its delimiter) that shows C{event}.
    """
    return _FORMATS[type(event)](event)


class LineWire:
    """
    The line protocol as a wire format for the fan-out.
    """

    # What its users are called where a front end shows who is on which
    # (IRC's WHO and WHOIS give it as their real name).
    frontEnd = "line"

    @staticmethod
    def encode(event) -> bytes:
        if event.__class__ is events.AwayChanged:
            # Shown on asking (/whois, /who, a private message's reply).
            return b""
        return encodeLine(formatEvent(event))

    @staticmethod
    def encodeOwn(event) -> bytes | None:
        """
        The reply that confirms C{event} to its actor; L{None} for events
        the actor is not told of (their own room messages are not echoed).
        """
        own = _OWN.get(type(event))
        return None if own is None else encodeLine(own(event))

    @staticmethod
    def encodeHistory(event) -> bytes:
        """
        C{event}, a stored room line, marked as history with its time.
        """
        return encodeLine(history(event.time, formatEvent(event)))


@dataclass(frozen=True)
class ServerLine:
    """
    A parsed server line.  Fields a kind does not have are empty.
    """

    kind: str
    text: str
    room: str = ""
    nick: str = ""
    time: str = ""
    """For history lines, the UTC time in ISO 8601 form."""
    original: str = ""
    """For history lines, the kind of the line from the past."""
    notice: bool = False
    """For room and private messages, whether it is a notice (an IRC user's
    NOTICE: C{#room -nick- text}, C{-nick- text})."""


_PARSERS = [
    (re.compile(r"(?P<room>#\S+) <(?P<nick>[^>\s]+)> ?(?P<text>.*)\Z", re.S), ROOM_MESSAGE),
    (re.compile(r"\* (?P<room>#\S+) (?P<nick>\S+) ?(?P<text>.*)\Z", re.S), ACTION),
    (re.compile(r"\*(?P<nick>[^*\s]+)\* ?(?P<text>.*)\Z", re.S), PRIVATE),
    (re.compile(r"-- (?P<room>#\S+) (?P<text>.*)\Z", re.S), ROOM_EVENT),
]
# Notices (an IRC user's NOTICE): room and private messages, marked.
_NOTICES = [
    (re.compile(r"(?P<room>#\S+) -(?P<nick>[^-!\s]\S*)- ?(?P<text>.*)\Z", re.S), ROOM_MESSAGE),
    (re.compile(r"-(?P<nick>[^-!\s]\S*)- ?(?P<text>.*)\Z", re.S), PRIVATE),
]
_SIGILS = {"-!- ": NOTICE, "!!! ": ERROR, "=== ": REPLY, "??? ": PROMPT}


def parseLine(line: str) -> ServerLine | None:
    """
    Recognise a server line, or return L{None} for a line of no known kind.
    """
    if line.startswith("~ "):
        stamp, _, rest = line[2:].partition(" ")
        past = parseLine(rest)
        if past is None or past.kind == HISTORY:
            return None
        return ServerLine(HISTORY, past.text, past.room, past.nick, stamp, past.kind,
                          past.notice)
    kind = _SIGILS.get(line[:4])
    if kind is not None:
        return ServerLine(kind, line[4:])
    for pattern, kind in _PARSERS:
        match = pattern.match(line)
        if match:
            return ServerLine(kind=kind, **match.groupdict())
    for pattern, kind in _NOTICES:
        match = pattern.match(line)
        if match:
            return ServerLine(kind=kind, notice=True, **match.groupdict())
    return None

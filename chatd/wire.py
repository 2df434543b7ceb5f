"""
The line protocol's wire format, shared by the server and the client.

Every server line is UTF-8 text ending in CRLF, and its kind shows in its first
characters:

    #lobby <alice> hello            a room message
    * #lobby alice waves            an action (/me)
    *alice* psst                    a private message to you
    -- #lobby bob has joined        a room event: join, part, quit, rename, topic
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

import re
from datetime import datetime, timezone
from dataclasses import dataclass

from chatd import events

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


_FORMATS = {
    events.Said: lambda e: f"{e.room} <{e.nick}> {e.text}",
    events.Acted: lambda e: f"* {e.room} {e.nick} {e.text}",
    events.PrivatelySaid: lambda e: f"*{e.sender}* {e.text}",
    events.Joined: lambda e: f"-- {e.room} {e.nick} has joined",
    events.Parted: _partLine,
    events.Quit: _quitLine,
    events.Renamed: lambda e: f"-- {e.room} {e.old} is now known as {e.new}",
    events.TopicChanged: _topicLine,
    events.ServerNotice: lambda e: notice(e.text),
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

    @staticmethod
    def encode(event) -> bytes:
        return formatEvent(event).encode("utf-8") + DELIMITER

    @staticmethod
    def encodeHistory(event) -> bytes:
        """
        C{event}, a stored room line, marked as history with its time.
        """
        return history(event.time, formatEvent(event)).encode("utf-8") + DELIMITER


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


_PARSERS = [
    (re.compile(r"(?P<room>#\S+) <(?P<nick>[^>\s]+)> ?(?P<text>.*)\Z", re.S), ROOM_MESSAGE),
    (re.compile(r"\* (?P<room>#\S+) (?P<nick>\S+) ?(?P<text>.*)\Z", re.S), ACTION),
    (re.compile(r"\*(?P<nick>[^*\s]+)\* ?(?P<text>.*)\Z", re.S), PRIVATE),
    (re.compile(r"-- (?P<room>#\S+) (?P<text>.*)\Z", re.S), ROOM_EVENT),
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
        return ServerLine(HISTORY, past.text, past.room, past.nick, stamp, past.kind)
    kind = _SIGILS.get(line[:4])
    if kind is not None:
        return ServerLine(kind, line[4:])
    for pattern, kind in _PARSERS:
        match = pattern.match(line)
        if match:
            return ServerLine(kind=kind, **match.groupdict())
    return None

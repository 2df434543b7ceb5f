"""
The web client's wire format: each event as one JSON object, in one
WebSocket text frame.

A server's frames are not masked (RFC 6455, section 5.1), so the bytes of a
frame are the same for every recipient: L{WebWire.encode} builds the whole
frame once per event, and the fan-out hands that same C{bytes} object to every
browser's outbox, exactly as it does with a line for the line protocol.

The objects are documented in the README ("The web client"); their C{type}
names what happened and every other field is a plain value.
"""

import json

from chatd.core import events
from chatd.core.arrivals import BatchLines
from chatd.core.runs import RUN_BYTES
from chatd.core.names import sortedNicks
from chatd.line.wire import duration

OPCODE_TEXT = 0x1
OPCODE_CLOSE = 0x8


def frame(payload: bytes, opcode: int = OPCODE_TEXT) -> bytes:
    """
    One final, unmasked WebSocket frame holding C{payload}.
    """
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, size))
    elif size < 0x10000:
        header = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return header + payload


# One encoder for every frame (json.dumps with arguments builds a new
# encoder per call: per line said, and per member told of arrivals).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj) -> bytes:
    """
    C{obj} as compact JSON, UTF-8.
    """
    return _ENCODER.encode(obj).encode("utf-8")


def message(obj) -> bytes:
    """
    C{obj} as a whole text frame.
    """
    return frame(dumps(obj))


def closeFrame(code: int = 1000, reason: str = "") -> bytes:
    """
    A close frame with C{code} and a short C{reason} (at most 123 bytes).
    """
    return frame(code.to_bytes(2, "big") + reason.encode("utf-8")[:123], OPCODE_CLOSE)


def notice(text: str) -> dict:
    return {"type": "notice", "text": text}


def reply(text: str) -> dict:
    return {"type": "reply", "text": text}


def error(code: str, text: str, **more) -> dict:
    return {"type": "error", "code": code, "text": text, **more}


def _line(kind):
    def fields(e):
        shown = {"type": kind, "room": e.room, "nick": e.nick, "text": e.text,
                 "time": e.time, "id": e.id}
        if getattr(e, "notice", False):
            shown["notice"] = True
        return shown
    return fields


def _private(e):
    shown = {"type": "private", "from": e.sender, "to": e.target, "text": e.text,
             "time": e.time}
    if e.notice:
        shown["notice"] = True
    return shown


def _topic(e):
    return {"type": "topic", "room": e.room, "nick": e.nick, "topic": e.topic,
            "time": e.time, "id": e.id}


_FIELDS = {
    events.Said: _line("said"),
    events.Acted: _line("acted"),
    events.PrivatelySaid: _private,
    events.Away: lambda e: {"type": "away", "nick": e.nick, "text": e.text},
    events.AwayChanged: lambda e: {"type": "presence", "nick": e.nick, "away": e.text},
    events.Joined: lambda e: {"type": "joined", "room": e.room, "nick": e.nick},
    events.Entered: lambda e: {"type": "room", "room": e.room, "topic": e.topic,
                               "members": (sortedNicks(e.members) if e.listed is None
                                           else list(e.listed))},
    events.Parted: lambda e: {"type": "parted", "room": e.room, "nick": e.nick,
                              "reason": e.reason},
    events.Quit: lambda e: {"type": "quit", "room": e.room, "nick": e.nick,
                            "reason": e.reason},
    events.Renamed: lambda e: {"type": "renamed", "room": e.room, "old": e.old,
                               "new": e.new},
    events.TopicChanged: _topic,
    events.Kicked: lambda e: {"type": "kicked", "room": e.room, "nick": e.nick,
                              "by": e.by, "reason": e.reason},
    events.Banned: lambda e: {"type": "banned", "room": e.room, "target": e.target,
                              "by": e.by, "duration": e.duration, "reason": e.reason,
                              "server": e.server},
    events.Unbanned: lambda e: {"type": "unbanned", "room": e.room, "target": e.target,
                                "by": e.by},
    events.Muted: lambda e: {"type": "muted", "room": e.room, "nick": e.nick,
                             "by": e.by, "duration": e.duration},
    events.Unmuted: lambda e: {"type": "unmuted", "room": e.room, "nick": e.nick,
                               "by": e.by},
    events.Expelled: lambda e: {"type": "expelled", "by": e.by, "duration": e.duration,
                                "reason": e.reason},
    events.Identified: lambda e: {"type": "identified", "nick": e.nick},
    events.PasswordDelayed: lambda e: notice(
        f"many wrong passwords came from your address lately; your password for "
        f"{e.nick} is checked in {duration(e.seconds)}"),
    events.Ghosted: lambda e: {"type": "ghosted", "nick": e.nick},
    events.NowKnownAs: lambda e: {"type": "you", "nick": e.new, "old": e.old},
    events.RenameRefused: lambda e: error(
        "nickname-taken" if e.taken else "nickname-unconfirmed",
        f"the nickname {e.nick} was taken on another server at the same moment"
        if e.taken else "the other chat servers cannot be reached to check nicknames; "
        f"try {e.nick} again in a moment", nick=e.nick, kept=e.kept),
    events.PutOut: lambda e: {"type": "left", "room": e.room, "putOut": True},
    events.Refused: lambda e: error("refused", f"Connection refused: {e.reason}"),
    events.SlowedDown: lambda e: notice("you are sending fast; your messages are "
                                        "being delayed"),
    events.Closing: lambda e: notice(f"Closing your connection: {e.reason}"),
    events.ShuttingDown: lambda e: notice("The server is going down. Goodbye."),
    events.HistoryUnavailable: lambda e: error(
        "history", "history took too long and was skipped" if e.tooSlow
        else "history is unavailable right now"),
}

# Events after which the server closes the connection: their frame is
# followed by a close frame with this code.
_CLOSE_CODES = {
    events.Refused: 1008,
    events.Expelled: 1008,
    events.Ghosted: 1008,
    events.Closing: 1000,
    events.ShuttingDown: 1001,
}

# What the actor is sent of their own doing: their own lines (the same frame
# as everyone's, so that the page shows them once, with the server's time and
# id), and their leaving a room.
_OWN = {
    events.Said: None,
    events.Acted: None,
    events.PrivatelySaid: None,
    events.TopicChanged: None,
    events.Parted: lambda e: {"type": "left", "room": e.room},
}


def _joinedFrame(room, nick):
    return message(fields(events.Joined(room, nick)))


# The frames of the last batch of arrivals shown (one set for every browser:
# a frame is the same for all).
_batchFrames = BatchLines()


def fields(event) -> dict:
    """
    The JSON object that shows C{event}.
    """
    return _FIELDS[type(event)](event)


class WebWire:
    """
    The web client's JSON as a wire format for the fan-out (see
    L{chatd.core.fanout}).
    """

    # A room's run of frames ends at twice a line room's bytes: a frame is
    # ~1.8x a line (144 against 82 bytes at fanout-1000-web), so it holds
    # about as many lines, and begins (a share per member) as often.
    runBytes = 2 * RUN_BYTES

    # (See chatd.line.wire.LineWire.frontEnd.)
    frontEnd = "web"

    @staticmethod
    def encode(event) -> bytes:
        if type(event) is events.Arrived:
            # Arrivals announced together: the frames of their joins, so that
            # a browser follows them as it follows one.
            return _batchFrames.show(event, _joinedFrame)
        if type(event) is events.Departed:
            # Departures announced together: the frame of each, likewise.
            return b"".join(message(fields(departure)) for departure in event.departures)
        data = message(fields(event))
        code = _CLOSE_CODES.get(type(event))
        return data if code is None else data + closeFrame(code)

    @staticmethod
    def encodeOwn(event) -> bytes | None:
        """
        The actor's own copy of C{event}: the same frame as everyone's for a
        line they said, C{left} for a room they left, nothing for the rest.
        """
        if type(event) not in _OWN:
            return None
        own = _OWN[type(event)]
        return WebWire.encode(event) if own is None else message(own(event))

    @staticmethod
    def ownIsEveryones(event) -> bool:
        """
        Whether the actor's copy of C{event} is the frame everyone gets (a
        line they said): the fan-out then sends it to them as to any member,
        without encoding it twice or ending their share of the room's run.
        """
        return type(event) in _OWN and _OWN[type(event)] is None

    @staticmethod
    def encodeHistory(event) -> bytes:
        """
        C{event}, a stored room line, marked as history.
        """
        return message({**fields(event), "history": True})

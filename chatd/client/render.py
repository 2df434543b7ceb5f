"""
How a server line looks to the user: the same words the server sent, with
colour by kind of line and a stable colour per nickname.

Colour is ANSI SGR, off when C{NO_COLOR} is set or the output is not a
terminal (see L{wantColour}).
"""

import unicodedata
import zlib

from chatd.line import wire

_RESET = "\x1b[0m"
_BOLD = "1"
_DIM = "2"

# Colours of the kinds of line: room lines stay plain so that the nickname's
# colour stands out; everything the server itself says is set apart.
_KIND_COLOURS = {
    wire.PRIVATE: "35",  # magenta
    wire.ROOM_EVENT: _DIM,
    wire.NOTICE: "36",  # cyan
    wire.ERROR: "31",  # red
    wire.REPLY: "32",  # green
    wire.PROMPT: "33",  # yellow
    wire.HISTORY: _DIM,
}
NOTE_COLOUR = "33"

# Nickname colours: readable on dark and light backgrounds alike.
_NICK_COLOURS = ["31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96"]


def wantColour(environ, isTerminal: bool) -> bool:
    """
    Whether to colour the output: not when C{NO_COLOR} is set to anything
    non-empty (https://no-color.org), nor when it is not a terminal.
    """
    return isTerminal and not environ.get("NO_COLOR")


def nickColour(nick: str) -> str:
    """
    The colour of C{nick}: the same in every session and on every machine (a
    CRC, not the salted C{hash}), and the same whatever its case, as the
    server compares nicknames.
    """
    return _NICK_COLOURS[zlib.crc32(nick.lower().encode("utf-8")) % len(_NICK_COLOURS)]


def safe(text: str) -> str:
    """
    C{text} without control characters, so that a line from the network can
    never move the cursor or change the terminal's state.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")


def _paint(text, code, colour):
    if not colour or not code:
        return text
    return f"\x1b[{code}m{text}{_RESET}"


def _nick(nick, colour, own=False):
    return _paint(nick, _BOLD + ";" + nickColour(nick) if own else nickColour(nick), colour)


def formatLine(raw: str, line, colour: bool) -> str:
    """
    Show the server line C{raw}, parsed as C{line} (a L{wire.ServerLine}, or
    L{None} for a line of no known kind, shown as it came).
    """
    raw = safe(raw)
    if not colour or line is None:
        return raw
    if line.kind == wire.ROOM_MESSAGE:
        if line.notice:
            return f"{line.room} -{_nick(line.nick, colour)}- {safe(line.text)}"
        return f"{line.room} <{_nick(line.nick, colour)}> {safe(line.text)}"
    if line.kind == wire.ACTION:
        return f"* {line.room} {_nick(line.nick, colour)} {safe(line.text)}"
    if line.kind == wire.PRIVATE:
        sender = f"-{line.nick}-" if line.notice else f"*{line.nick}*"
        return _paint(sender, _BOLD + ";35", colour) + " " + safe(line.text)
    return _paint(raw, _KIND_COLOURS.get(line.kind), colour)


def formatOwn(line, colour: bool) -> str:
    """
    Show a line the user sent, as the others will see it (the server does
    not echo it back): C{line} is a L{wire.ServerLine} of kind
    L{wire.ROOM_MESSAGE} or L{wire.ACTION}, or L{wire.PRIVATE} with C{nick}
    the recipient, shown as C{-> *bob* text}.
    """
    text = safe(line.text)
    if line.kind == wire.PRIVATE:
        return _paint(f"-> *{line.nick}*", _BOLD + ";35", colour) + " " + text
    nick = _nick(line.nick, colour, own=True)
    if line.kind == wire.ACTION:
        return f"* {line.room} {nick} {text}"
    return f"{line.room} <{nick}> {text}"


def formatNote(text: str, colour: bool) -> str:
    """
    Show something the client itself says (not the server): connection
    trouble, a nickname it picked instead.
    """
    return _paint("[chat-client] " + text, NOTE_COLOUR, colour)

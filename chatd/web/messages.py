"""
What a browser may send: JSON objects, checked and cleaned here, at the
edge, before anything acts on them.

A frame that is not one of the objects the README lists is refused with a
L{BadMessage} naming what is wrong; nothing behind this module sees it.  Text
fields are cleaned exactly as the line protocol cleans a line (control
characters, escapes and bidirectional overrides removed) and bounded by the
same 2048 bytes.
"""

import json

from chatd.edge.sanitize import cleanString

MAX_TEXT_BYTES = 2048
"""The line protocol's limit on a line, for every text a browser sends."""

MAX_FRAME_BYTES = 16 * 1024
"""The most a JSON frame may hold: a text at its limit, escaped, fits."""

MAX_WORD = 64
"""Nicknames and room names are far shorter; a longer one is refused by the
rules that know them, this only bounds what reaches them."""


class BadMessage(Exception):
    """
    A frame that is not a message of the protocol.

    @ivar code: the error code the client is sent.
    @ivar text: what is wrong, for a person.
    @ivar re: the C{id} the client gave the message, if one could be read.
    """

    def __init__(self, code, text, re=None):
        super().__init__(text)
        self.code = code
        self.text = text
        self.re = re


# The fields of each message: name -> (kind, required).  Kinds: "word" (a
# nickname or room name), "text" (something a person wrote), "int".
_TEXT, _WORD, _INT = "text", "word", "int"

SCHEMA = {
    "nick": {"nick": (_WORD, True), "password": (_TEXT, False)},
    "join": {"room": (_WORD, True)},
    "part": {"room": (_WORD, True), "reason": (_TEXT, False)},
    "say": {"room": (_WORD, True), "text": (_TEXT, True)},
    "act": {"room": (_WORD, True), "text": (_TEXT, True)},
    "tell": {"nick": (_WORD, True), "text": (_TEXT, True)},
    "topic": {"room": (_WORD, True), "topic": (_TEXT, True)},
    "history": {"room": (_WORD, True), "count": (_INT, False), "before": (_INT, False)},
    "command": {"room": (_WORD, False), "line": (_TEXT, True)},
    "ping": {"data": (_TEXT, False)},
    "quit": {"reason": (_TEXT, False)},
}


def _reject(value):
    raise ValueError(f"{value} is not JSON")


# One decoder for every message (json.loads with an argument builds a new
# decoder, and its scanner, per call: per line a browser says).  NaN and
# Infinity are not JSON.
_DECODER = json.JSONDecoder(parse_constant=_reject)


def parse(data: str) -> dict:
    """
    The message a text frame holds, with every field checked and its text
    cleaned; absent optional fields are L{None}.

    @raise BadMessage: when it is not one.
    """
    if len(data) > MAX_FRAME_BYTES or len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise BadMessage("too-large", f"a message is at most {MAX_FRAME_BYTES} bytes; "
                         "it was not delivered")
    try:
        # Nesting deep enough to exhaust the parser's stack is refused, not
        # a crash.
        obj = _DECODER.decode(data)
    except (ValueError, RecursionError):
        raise BadMessage("bad-json", "that was not valid JSON") from None
    if not isinstance(obj, dict):
        raise BadMessage("bad-message", "a message is a JSON object")
    re = obj.get("id")
    if not (re is None or isinstance(re, (int, str)) and not isinstance(re, bool)
            and len(str(re)) <= MAX_WORD):
        raise BadMessage("bad-message", "id: a number or a short string")
    kind = obj.get("type")
    fields = SCHEMA.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise BadMessage("unknown-type", "type: one of " + ", ".join(SCHEMA), re)
    message = {"type": kind, "id": re}
    for name, (fieldKind, required) in fields.items():
        value = obj.get(name)
        if value is None:
            if required:
                raise BadMessage("bad-message", f"{kind}: {name} is required", re)
            message[name] = None
            continue
        message[name] = _check(kind, name, fieldKind, value, re)
    return message


def _check(kind, name, fieldKind, value, re):
    if fieldKind == _INT:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
            raise BadMessage("bad-message", f"{kind}: {name} is a whole number", re)
        return value
    if not isinstance(value, str):
        raise BadMessage("bad-message", f"{kind}: {name} is a string", re)
    # (Encoded so, a lone surrogate is 3 bytes, as the U+FFFD it becomes.)
    size = len(value.encode("utf-8", "surrogatepass"))
    if fieldKind == _WORD:
        if size > MAX_WORD:
            raise BadMessage("bad-message", f"{kind}: {name} is too long", re)
        return cleanString(value)
    if size > MAX_TEXT_BYTES:
        raise BadMessage("too-long", f"{name} too long: at most {MAX_TEXT_BYTES} bytes; "
                         "it was not delivered", re)
    return cleanString(value)

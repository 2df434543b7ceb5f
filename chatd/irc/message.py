"""
IRC messages: parsing a client's line and serializing the server's.

The grammar is the one the modern client protocol describes
(modern.ircdocs.horse and the IRCv3 message-tags specification)::

    [@tags SPACE] [:prefix SPACE] command *(SPACE param) [SPACE :trailing]

The line has already been split off the stream, decoded and cleaned by the
edge (L{chatd.edge.sanitize.cleanText}); what is parsed here is safe text.
"""

from dataclasses import dataclass, field

# The body of a line (everything but the tags), CRLF included, and the tags
# a client may send in front of it.
MAX_BODY_BYTES = 512
MAX_CLIENT_TAG_BYTES = 4094
# The longest line a client may send: tags, their "@" and space, and a body.
MAX_LINE_BYTES = MAX_BODY_BYTES + MAX_CLIENT_TAG_BYTES + 2

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_UNESCAPE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r",
                               "\n": "\\n"})


@dataclass(frozen=True, slots=True)
class Message:
    """
    One IRC message.

    @ivar tags: the message tags, name to value ("" for a tag without one).
    @ivar prefix: the source without its ":", or "".
    @ivar command: the command, upper-cased, or a three-digit numeric.
    @ivar params: the parameters, the trailing one included, without ":".
    """

    command: str
    params: tuple = ()
    prefix: str = ""
    tags: dict = field(default_factory=dict)


def unescapeTag(value: str) -> str:
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_TAG_ESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def escapeTag(value: str) -> str:
    return value.translate(_TAG_UNESCAPE)


def parse(line: str) -> Message | None:
    """
    Parse one line (without its CRLF); L{None} for a line with no command.
    """
    tags = {}
    rest = line.lstrip(" ")
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            if not item:
                continue
            name, _, value = item.partition("=")
            tags[name] = unescapeTag(value)
        rest = rest.lstrip(" ")
    prefix = ""
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing = None
    head, sep, tail = rest.partition(" :")
    if sep:
        trailing = tail
    elif head.startswith(":"):
        head, trailing = "", head[1:]
    words = head.split()
    if not words:
        return None
    command, params = words[0].upper(), words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command, tuple(params), prefix, tags)


def serialize(command: str, *params: str, prefix: str = "", tags: dict | None = None,
              trailing: bool = False) -> str:
    """
    The line (without CRLF) for a message; the last parameter is sent as a
    trailing one when it needs to be (empty, holding a space, or starting
    with ":"), or always with C{trailing} (a list of names, which clients
    read from the ":" on, even when it holds one).

    A line longer than L{MAX_BODY_BYTES} without its tags and source is cut,
    at a character boundary, from its last parameter: senders split text that
    may be long first (see L{splitText}), so this only guards the limit.
    """
    parts = []
    if tags:
        parts.append("@" + ";".join(
            name if value in ("", None) else f"{name}={escapeTag(str(value))}"
            for name, value in tags.items()))
    if prefix:
        parts.append(":" + prefix)
    parts.append(command)
    if params:
        *middle, last = params
        parts.extend(middle)
        if trailing or not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    line = " ".join(parts)
    # The source does not count: see IrcWire._text.
    skip = sum(len(part.encode("utf-8")) + 1 for part in parts[:bool(tags) + bool(prefix)])
    body = len(line.encode("utf-8")) - skip
    if body > MAX_BODY_BYTES - 2:
        line = _cut(line, len(line.encode("utf-8")) - (body - (MAX_BODY_BYTES - 2)))
    return line


def encode(command: str, *params: str, prefix: str = "", tags: dict | None = None,
           trailing: bool = False) -> bytes:
    """
    L{serialize}'s line as the bytes on the wire, CRLF included.
    """
    return serialize(command, *params, prefix=prefix, tags=tags,
                     trailing=trailing).encode("utf-8") + b"\r\n"


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", "ignore")


def splitText(text: str, room: int) -> list[str]:
    """
    C{text} in pieces of at most C{room} UTF-8 bytes, cut at spaces where
    possible and never inside a character.
    """
    pieces = []
    data = text
    while len(data.encode("utf-8")) > room:
        head = _cut(data, room)
        space = head.rfind(" ")
        if space > len(head) // 2:
            head = head[:space]
        pieces.append(head)
        data = data[len(head):].lstrip(" ")
    if data or not pieces:
        pieces.append(data)
    return pieces

"""
IRC messages: parsing what clients send and serializing what the server sends.
"""

from chatd.irc.message import (MAX_BODY_BYTES, Message, encode, escapeTag, parse,
                               serialize, splitText, unescapeTag)


def test_parseFull():
    """
    Tags, source, command, middle parameters and a trailing parameter are
    all recognised; the command is upper-cased and the trailing one keeps
    its spaces.
    """
    assert parse("@time=2020-01-01T00:00:00Z;+typing :nick!u@h privmsg #room :hi  there") == \
        Message("PRIVMSG", ("#room", "hi  there"), "nick!u@h",
                {"time": "2020-01-01T00:00:00Z", "+typing": ""})


def test_parseWithoutTrailing():
    """
    Parameters without a trailing one, and extra spaces between them.
    """
    assert parse("USER  guest 0 *  :Real Name") == Message("USER", ("guest", "0", "*", "Real Name"))
    assert parse("JOIN #a,#b") == Message("JOIN", ("#a,#b",))
    assert parse("PING") == Message("PING", ())


def test_parseEmptyTrailing():
    """
    An empty trailing parameter is a parameter (TOPIC #room : clears it).
    """
    assert parse("TOPIC #room :") == Message("TOPIC", ("#room", ""))


def test_parseNothing():
    """
    A line with no command is no message.
    """
    assert parse("") is None
    assert parse("   ") is None
    assert parse(":source.only") is None


def test_tagEscapes():
    """
    Tag values escape ; space \\ CR LF and unescape back.
    """
    value = "a;b c\\d\r\n"
    assert escapeTag(value) == "a\\:b\\sc\\\\d\\r\\n"
    assert unescapeTag(escapeTag(value)) == value


def test_serializeTrailing():
    """
    The last parameter gets a ":" only when it needs one: empty, with a
    space, or starting with ":".
    """
    assert serialize("PRIVMSG", "#room", "hi") == "PRIVMSG #room hi"
    assert serialize("PRIVMSG", "#room", "hi there") == "PRIVMSG #room :hi there"
    assert serialize("TOPIC", "#room", "") == "TOPIC #room :"
    assert serialize("PRIVMSG", "#room", ":)") == "PRIVMSG #room ::)"
    assert serialize("001", "nick", "Welcome", prefix="irc.chatd") == \
        ":irc.chatd 001 nick Welcome"
    assert encode("PING", "x", tags={"time": "T"}) == b"@time=T PING x\r\n"


def test_serializeCutsAtTheLimit():
    """
    A line longer than 512 bytes (without source and tags) is cut at a
    character boundary, never inside one.
    """
    line = serialize("PRIVMSG", "#room", "é" * 600, prefix="someone!u@h")
    body = line[len(":someone!u@h "):]
    assert len(body.encode("utf-8")) <= MAX_BODY_BYTES - 2
    assert len(body.encode("utf-8")) >= MAX_BODY_BYTES - 3
    assert body.endswith("é")


def test_splitText():
    """
    Text is split between words where it can, under the byte limit, and
    nothing is lost but the spaces at the cuts.
    """
    text = " ".join(["word"] * 100)
    pieces = splitText(text, 50)
    assert all(len(p.encode()) <= 50 for p in pieces)
    assert " ".join(pieces) == text
    assert splitText("short", 50) == ["short"]
    assert "".join(splitText("€" * 40, 10)) == "€" * 40

"""
The edge: telnet negotiation and unsafe characters never get through.
"""

from chatd.edge.sanitize import TelnetFilter, cleanText

IAC, DO, WILL, SB, SE = b"\xff", b"\xfd", b"\xfb", b"\xfa", b"\xf0"


def test_plainBytesPassUntouched():
    """
    Data without IAC comes out as it went in.
    """
    assert TelnetFilter().feed(b"hello\r\n") == b"hello\r\n"


def test_negotiationRemoved():
    """
    WILL/DO option requests, two-byte commands and subnegotiations vanish.
    """
    data = IAC + DO + b"\x01hi" + IAC + b"\xf1" + b" there" + IAC + SB + b"\x18\x00xterm" + IAC + SE + b"!"
    assert TelnetFilter().feed(data) == b"hi there!"


def test_negotiationSplitAcrossReads():
    """
    A negotiation cut between two reads is still removed whole.
    """
    f = TelnetFilter()
    assert f.feed(b"ab" + IAC) == b"ab"
    assert f.feed(WILL) == b""
    assert f.feed(b"\x03cd" + IAC + SB + b"\x18") == b"cd"
    assert f.feed(b"xterm" + IAC) == b""
    assert f.feed(SE + b"ef") == b"ef"


def test_invalidUtf8Replaced():
    """
    Bytes that are not UTF-8 become U+FFFD instead of failing.
    """
    assert cleanText(b"caf\xe9 \xff\xfe ok") == "caf\ufffd \ufffd\ufffd ok"


def test_escapeSequencesStripped():
    """
    Colours, cursor moves, title changes and C1 controls are removed entirely.
    """
    raw = "\x1b[31mred\x1b[0m \x1b[2J\x1b[H\x1b]0;pwned\x07x\x1b(B\u009b1mz\x1bc".encode()
    assert cleanText(raw) == "red xz"


def test_ircColoursStrippedWithTheirNumbers():
    """
    An IRC client's colours go with their numbers (foreground, background,
    hexadecimal), not leaving digits in the text; bold and the rest are
    controls.  Digits after a colour's two are text.
    """
    raw = "\x0304red \x02bold\x02 \x034,12on blue\x03 \x03123 \x04ff0000,00ff00hex\x04.".encode()
    assert cleanText(raw) == "red bold on blue 3 hex."


def test_controlAndBidiCharactersStripped():
    """
    NUL, BEL, backspace, DEL and bidirectional overrides are removed; a tab
    becomes a space.
    """
    raw = "a\x00b\x07c\x08d\x7fe\tf\u202eg\u2066h".encode()
    assert cleanText(raw) == "abcde fgh"


def test_unicodeKept():
    """
    Ordinary non-ASCII text is kept as it is.
    """
    assert cleanText("héllo wörld € 漢字 👋".encode()) == "héllo wörld € 漢字 👋"


def test_strayIacKeepsFollowingLines():
    """
    An IAC followed by a byte that is no telnet command (a stray 0xFF from nc)
    is kept, as the invalid UTF-8 it is (shown as U+FFFD), and negotiates
    nothing: the newline after it still ends the line.
    """
    f = TelnetFilter()
    assert f.feed(b"bad \xff\nnext\n") == b"bad \xff\nnext\n"
    assert f.negotiations == 0


def test_strayVerbBeforeALineEndKeepsTheLineEnd():
    """
    IAC and a verb (0xFF 0xFE: DONT) just before a line end negotiate
    nothing: the line end stays, and the bytes are kept as text.
    """
    f = TelnetFilter()
    assert f.feed(b"/away gone\xff\xfe\n/join #odd\n") == (
        b"/away gone\xff\xfe\n/join #odd\n")
    assert f.feed(b"x\xff\xfb\r\n") == b"x\xff\xfb\r\n"
    assert f.negotiations == 0


def test_doubledIacIsOneLiteralByte():
    """
    IAC IAC is telnet's escape for a 0xFF byte: one is kept, and nothing was
    negotiated.  Only what negotiates is counted.
    """
    f = TelnetFilter()
    assert f.feed(b"\xff" * 7) == b"\xff" * 3
    # (The seventh, split from the eighth, makes one with it.)
    assert f.feed(b"\xff\xff\n") == b"\xff\xff\n"
    assert f.negotiations == 0
    f.feed(IAC + DO + b"\x01" + IAC + b"\xf1" + IAC + SB + b"\x18\x00xterm" + IAC + SE + b"ok")
    assert f.negotiations == 3


def test_unterminatedSubnegotiationIsBounded():
    """
    An IAC SB never closed swallows a bounded number of bytes, not the rest of
    the connection.
    """
    f = TelnetFilter()
    out = f.feed(IAC + SB + b"z" * TelnetFilter.MAX_SUBNEGOTIATION + b"hello\n")
    assert out == b"hello\n"


def test_requestsRefusedTimingMarkAcknowledged():
    """
    DO and WILL requests are refused, so the client stops waiting; DO
    TIMING-MARK (sent by telnet after Ctrl-C) is acknowledged with WILL, or
    telnet would discard all later output; WONT and DONT get no answer.
    """
    replies = []
    f = TelnetFilter(replies.append)
    f.feed(IAC + DO + b"\x01" + IAC + WILL + b"\x18" + IAC + b"\xf4" + IAC + DO + b"\x06")
    f.feed(IAC + b"\xfc\x01" + IAC + b"\xfe\x01")
    assert replies == [IAC + b"\xfc\x01", IAC + b"\xfe\x18", IAC + WILL + b"\x06"]

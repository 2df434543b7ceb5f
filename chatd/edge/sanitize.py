"""
The edge: bytes from the network become clean, safe text.

Everything behind this module may assume that text holds no control
characters, no terminal escape sequences and no bidirectional overrides, so
nothing a user sends can move another user's cursor, recolour their screen or
reorder what they see.
"""

import re

IAC = 0xFF
_SB, _SE = 0xFA, 0xF0
_WILL, _WONT, _DO, _DONT = 0xFB, 0xFC, 0xFD, 0xFE
TIMING_MARK = 6
_LINE_ENDS = b"\r\n"

# Terminal escape sequences, in their 7-bit and C1 forms: CSI (ESC [ ...
# final byte), OSC and the other string commands (ESC ] ... BEL or ST), and
# two-character escapes; and IRC clients' colours with their numbers (^C
# then a colour and a background, ^D then hexadecimal ones), which would
# leave the numbers behind.  Lone C1 controls are caught by _CONTROLS below.
_ESCAPES = re.compile(
    "(?:\x1b\\[|\u009b)[0-?]*[ -/]*[@-~]?"
    "|(?:\x1b[]PX^_]|[\u0090\u0098\u009d-\u009f])[^\x07\x1b\u009c]*(?:\x07|\x1b\\\\|\u009c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?"
    r"|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
)
# C0 and C1 controls, DEL, and the invisible formatting characters that
# reorder or hide text: bidirectional embeddings, overrides and isolates.
_CONTROLS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


class TelnetFilter:
    """
    Removes telnet negotiation (IAC sequences) from a byte stream.

    A negotiation may be split across reads, so the filter keeps its state
    between calls.  Every option is refused, except that a timing mark is
    acknowledged: after Ctrl-C, telnet discards all output until the server
    answers its DO TIMING-MARK, so leaving it unanswered would silence the
    session for good.  Bytes that merely look like the
    start of a negotiation (nc users can send anything) are kept as they
    are (0xFF is no UTF-8: it is shown as U+FFFD), and never cost the lines
    after them: an IAC before a byte that is no telnet command, or a verb
    before a line end; an unclosed subnegotiation costs a bounded number of
    bytes.

    @ivar negotiations: how many negotiations and commands the last
        L{feed} removed (what pacing charges for).
    """

    __slots__ = ("_state", "_subnegLength", "_reply", "_verb", "negotiations")

    # States: what the next byte means.
    _DATA, _COMMAND, _OPTION, _SUBNEG, _SUBNEG_IAC = range(5)

    # Real subnegotiations (terminal type, window size) are a few bytes long.
    MAX_SUBNEGOTIATION = 64

    def __init__(self, reply=lambda data: None):
        """
        @param reply: called with the bytes to send back to the client.
        """
        self._state = self._DATA
        self._subnegLength = 0
        self._reply = reply
        self._verb = None
        self.negotiations = 0

    def feed(self, data: bytes) -> bytes:
        """
        Return C{data} without its telnet negotiation.
        """
        self.negotiations = 0
        if self._state == self._DATA and IAC not in data:
            return data
        out = bytearray()
        state = self._state
        done = 0
        for byte in data:
            if state == self._DATA:
                if byte == IAC:
                    state = self._COMMAND
                else:
                    out.append(byte)
            elif state == self._COMMAND:
                if _WILL <= byte <= _DONT:
                    state = self._OPTION
                    self._verb = byte
                elif byte == _SB:
                    state = self._SUBNEG
                    self._subnegLength = 0
                elif byte == IAC:
                    # IAC IAC: a literal 0xFF.
                    state = self._DATA
                    out.append(IAC)
                elif byte >= _SE:
                    # A one-byte command (NOP, AYT, interrupt...): dropped.
                    state = self._DATA
                    done += 1
                else:
                    # No command at all: it was never negotiation.
                    state = self._DATA
                    out += bytes((IAC, byte))
            elif state == self._OPTION:
                state = self._DATA
                if byte in _LINE_ENDS:
                    # No option telnet negotiates: a stray verb before the
                    # end of a line, which stays one.
                    out += bytes((IAC, self._verb, byte))
                else:
                    done += 1
                    self._answer(self._verb, byte)
            elif self._subnegLength == self.MAX_SUBNEGOTIATION:
                # Never closed: it was not a negotiation; back to data.
                if byte == IAC:
                    state = self._COMMAND
                else:
                    state = self._DATA
                    out.append(byte)
            else:
                self._subnegLength += 1
                if state == self._SUBNEG:
                    if byte == IAC:
                        state = self._SUBNEG_IAC
                elif byte == _SE:
                    state = self._DATA
                    done += 1
                else:
                    state = self._SUBNEG
        self._state = state
        self.negotiations = done
        return bytes(out)

    def _answer(self, verb, option):
        # Only requests are answered (never WONT/DONT), so two parties that
        # both refuse cannot loop.
        if verb == _DO:
            agree = _WILL if option == TIMING_MARK else _WONT
            self._reply(bytes((IAC, agree, option)))
        elif verb == _WILL:
            self._reply(bytes((IAC, _DONT, option)))


# Surrogates: in a decoded string only lone ones are left (a pair is the
# character it encodes), and those are no characters.
_SURROGATES = re.compile("[\ud800-\udfff]")


def cleanText(raw: bytes) -> str:
    """
    Decode one line from the network into safe text.

    Invalid UTF-8 becomes U+FFFD, a tab becomes a space, and escape sequences
    and control characters disappear; surrounding white space is trimmed.
    """
    text = raw.decode("utf-8", "replace")
    if text.isprintable():
        return text.strip()
    return _cleaned(text)


def cleanString(text: str) -> str:
    """
    Safe text from text already decoded (a JSON string), as L{cleanText}
    makes it of a line: a lone surrogate, which JSON can escape
    (C{"\\ud800"}) but which is no character, becomes one U+FFFD, as
    invalid UTF-8 does.
    """
    if text.isprintable():
        return text.strip()
    return _cleaned(_SURROGATES.sub("\ufffd", text))


def _cleaned(text):
    text = _ESCAPES.sub("", text.replace("\t", " "))
    return _CONTROLS.sub("", text).strip()

"""
A browser's chat messages read straight off the socket.

Nearly every frame a browser sends is one whole, masked text message of a
few hundred bytes (RFC 6455, section 5.2: FIN set, no RSV bit, opcode 1).
Through wsproto and Twisted's WebSocket each costs a generator's events, a
dispatch, an incremental UTF-8 decoder and a buffer per message, per line a
sender says: at a busy room's rate most of the web's input cost.
L{FrameReader} reads such frames itself and hands their text on; the first
frame of any other kind (a close, a ping, a fragment, a binary or oversized
message, a bad mask bit) and everything after it go to the WebSocket library
unchanged, from that frame's first byte, so that every case the library
handles (and refuses) is still its own.  A whole text frame that is not
UTF-8 is reported instead (the library would close with Python's decoding
error as the only reason), and nothing after it is read.
"""

import codecs

from chatd.web.messages import MAX_FRAME_BYTES

_FINAL_TEXT = 0x81
_MASKED = 0x80
# A length this reader leaves to the library.
_TOO_LARGE = MAX_FRAME_BYTES + 1


def unmask(payload: bytes, mask: bytes) -> bytes:
    """
    C{payload} XORed with the four bytes of C{mask}, repeated (in C: as two
    big integers).
    """
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


class FrameReader:
    """
    Reads whole masked text frames of one connection, until the first frame
    of another kind, from which on the WebSocket library reads everything.

    @ivar text: called with each text message read here (a L{str}).
    @ivar other: called with the bytes the library is to read.
    @ivar notText: called with no argument for a text frame that is not
        UTF-8, after which nothing more is read.
    """

    __slots__ = ("text", "other", "notText", "_buffer", "_handedOver")

    def __init__(self, text, other, notText):
        self.text = text
        self.other = other
        self.notText = notText
        # Bytes of a frame not yet whole.
        self._buffer = b""
        self._handedOver = False

    def dataReceived(self, data):
        if self._handedOver:
            self.other(data)
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        start, end = 0, len(data)
        while end - start >= 2:
            first, size = data[start], data[start + 1]
            if first != _FINAL_TEXT or not size & _MASKED:
                self._handOver(data[start:])
                return
            size &= 0x7F
            head = start + 6
            if size == 126:
                if end - start < 4:
                    break
                size = int.from_bytes(data[start + 2:start + 4], "big")
                head = start + 8
                if size < 126:
                    # Not the shortest length: the library's to refuse.
                    size = _TOO_LARGE
            elif size == 127:
                size = _TOO_LARGE
            if size > MAX_FRAME_BYTES:
                self._handOver(data[start:])
                return
            if end - head < size:
                break
            try:
                text = unmask(data[head:head + size], data[head - 4:head]).decode("utf-8")
            except UnicodeDecodeError:
                self._handedOver = True
                self.other = _ignore
                self.notText()
                return
            start = head + size
            self.text(text)
        if start < end:
            self._buffer = data[start:]

    def _handOver(self, data):
        self._handedOver = True
        self.other(data)


def _ignore(data):
    pass


# A control frame's opcodes: close, ping, pong (RFC 6455, section 5.5); and
# a data frame's: continuation, text, binary.  The rest are reserved.
_CONTROL_OPCODES = (0x8, 0x9, 0xA)
# Those that may come again and again: a ping, a pong (a close ends it all).
_ANSWERED_OPCODES = (0x9, 0xA)
_DATA_OPCODES = (0x0, 0x1, 0x2)
_MAX_CONTROL_PAYLOAD = 125
# The longest frame header: two bytes, eight of length, four of mask.
_MAX_HEADER = 14


class ControlFrames:
    """
    Follows the frames handed to the WebSocket library, to tell which of
    their bytes are control frames (a ping, a pong, a close): those are
    never part of a message (RFC 6455, section 5.5), may come between its
    fragments (section 5.4), and the library answers pings itself, so a
    peer's pings are no message growing in memory.  It also tells where
    each message ends (a final data frame), so that the library can be
    handed one message at a time.

    A frame that is no valid client frame (a reserved bit or opcode, no
    mask, a control frame fragmented or over 125 bytes) is the library's to
    refuse: it and everything after it count as message bytes, and no
    message ends in them.

    A text message's payload is decoded as it comes (a fragmented one, or
    one after a ping): one that is not UTF-8 is told (L{notText}) before the
    library reads it, which would close with Python's decoding error as the
    only reason.

    @ivar controls: how many pings and pongs began since it was last reset
        (each costs the server an answer or a step: they are paced).
    @ivar notText: whether a text message that is not UTF-8 began after the
        last message end L{follow} gave; nothing after it is followed.
    """

    __slots__ = ("_header", "_left", "_control", "_endsMessage", "_lost", "controls",
                 "_decoder", "_mask", "_masked", "notText")

    def __init__(self):
        # The start of a frame header that is not yet whole.
        self._header = b""
        # Payload bytes of the current frame still to come, and its kind.
        self._left = 0
        self._control = False
        self._endsMessage = False
        self._lost = False
        self.controls = 0
        # The current text message's decoder, and its frame's mask and how
        # many of its payload bytes were unmasked.
        self._decoder = None
        self._mask = b""
        self._masked = 0
        self.notText = False

    def follow(self, data: bytes) -> tuple[int, list[int]]:
        """
        Of C{data}, the next bytes for the library: how many belong to
        control frames, and the offsets just past each frame that ends a
        message.
        """
        control = 0
        ends = []
        at, end = 0, len(data)
        while at < end and not self._lost:
            if self._left:
                taken = min(self._left, end - at)
                if self._decoder is not None and not self._control:
                    self._decode(data[at:at + taken])
                    if self.notText:
                        self._lost = True
                        break
                self._left -= taken
                at += taken
                if self._control:
                    control += taken
            else:
                header = self._header + data[at:at + _MAX_HEADER - len(self._header)]
                length = _headerLength(header)
                if length is None or len(header) < length:
                    self._header = header
                    break
                at += length - len(self._header)
                self._header = b""
                self._startFrame(header[:length])
                if self._control:
                    control += length
            if self._endsMessage and not self._left:
                if self._decoder is not None:
                    # Its end: a sequence cut short is not UTF-8 either.
                    self._decode(b"", final=True)
                    if self.notText:
                        self._lost = True
                        break
                    self._decoder = None
                self._endsMessage = False
                ends.append(at)
        return control, ends

    def _decode(self, payload, final=False):
        """
        Decode C{payload}, the next masked bytes of the current text
        message's frame; a sequence that is not UTF-8 sets L{notText}.
        """
        turn = self._masked % 4
        self._masked += len(payload)
        try:
            self._decoder.decode(unmask(payload, self._mask[turn:] + self._mask[:turn]),
                                 final)
        except UnicodeDecodeError:
            self.notText = True

    def _startFrame(self, header):
        first, size = header[0], header[1] & 0x7F
        if size == 126:
            size = int.from_bytes(header[2:4], "big")
        elif size == 127:
            size = int.from_bytes(header[2:10], "big")
        opcode = first & 0x0F
        self._control = opcode in _CONTROL_OPCODES
        valid = header[1] & _MASKED and not first & 0x70 and (
            opcode in _DATA_OPCODES
            or self._control and first & 0x80 and size <= _MAX_CONTROL_PAYLOAD)
        if not valid:
            self._lost = True
            self._control = False
        elif opcode in _ANSWERED_OPCODES:
            self.controls += 1
        elif opcode == 0x1:
            self._decoder = _utf8()
        elif opcode == 0x2:
            self._decoder = None
        if valid and not self._control:
            self._mask, self._masked = header[-4:], 0
        self._endsMessage = bool(valid and opcode in _DATA_OPCODES and first & 0x80)
        self._left = size


_utf8 = codecs.getincrementaldecoder("utf-8")


def _headerLength(header):
    """
    The length of the frame header C{header} begins, or L{None} until it
    holds the two bytes that tell.
    """
    if len(header) < 2:
        return None
    length = 2 + {126: 2, 127: 8}.get(header[1] & 0x7F, 0)
    return length + 4 if header[1] & _MASKED else length

"""
A browser's chat messages read straight off the socket.

Nearly every frame a browser sends is one whole, masked text message of a
few hundred bytes (RFC 6455, section 5.2: FIN set, no RSV bit, opcode 1).
Through wsproto and Twisted's WebSocket each costs a generator's events, a
dispatch, an incremental UTF-8 decoder and a buffer per message, per line a
sender says: at a busy room's rate most of the web's input cost.
L{FrameReader} reads such frames itself and hands their text on; the first
frame of any other kind (a close, a ping, a fragment, a binary or oversized
message, a bad mask bit or bad UTF-8) and everything after it go to the
WebSocket library unchanged, from that frame's first byte, so that every
case the library handles (and refuses) is still its own.
"""

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
    """

    __slots__ = ("text", "other", "_buffer", "_handedOver")

    def __init__(self, text, other):
        self.text = text
        self.other = other
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
                self._handOver(data[start:])
                return
            start = head + size
            self.text(text)
        if start < end:
            self._buffer = data[start:]

    def _handOver(self, data):
        self._handedOver = True
        self.other(data)

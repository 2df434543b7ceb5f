"""
A browser's whole text frames read by L{chatd.web.frames.FrameReader}, and
everything else handed to the WebSocket library from the first other frame
on, byte for byte.
"""

import json
import os

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatd.edge.limits import Limits
from chatd.edge.lines import LINE_FLOOR
from chatd.web.frames import ControlFrames, FrameReader, unmask
from chatd.web.messages import MAX_FRAME_BYTES
from chatd.web.resource import WebSite
from websupport import WebMemoryServer, masked, readFrames


class Reader:
    def __init__(self):
        self.texts, self.other, self.notText = [], [], 0
        self.reader = FrameReader(self.texts.append, self.other.append, self._notText)

    def _notText(self):
        self.notText += 1

    def feed(self, *chunks):
        for chunk in chunks:
            self.reader.dataReceived(chunk)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 1000, MAX_FRAME_BYTES])
def test_unmaskIsItsOwnInverse(size):
    payload = os.urandom(size)
    mask = os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert unmask(payload, mask) == expected
    assert unmask(expected, mask) == payload


def test_wholeTextFramesReadHere():
    r = Reader()
    r.feed(masked("hé".encode()) + masked(b"x" * 300) + masked(b""))
    assert r.texts == ["hé", "x" * 300, ""]
    assert r.other == []


def test_frameSplitAnywhereReadOnceWhole():
    data = masked(b'{"type":"say"}') + masked("ü".encode() * 200)
    r = Reader()
    r.feed(*(data[i:i + 1] for i in range(len(data))))
    assert r.texts == ['{"type":"say"}', "ü" * 200]
    assert r.other == []


@pytest.mark.parametrize("other", [
    masked(b"\x03\xe8", opcode=0x8),            # a close
    masked(b"are you there", opcode=0x9),       # a ping
    masked(b"half", final=False),               # a fragment
    masked(b"\x00\x01", opcode=0x2),            # a binary message
    bytes((0x81, 5)) + b"hello",                 # not masked
    bytes((0xC1, 0x80 | 2)) + b"abcd" + b"xy",   # an RSV bit
    masked(b"short", lengthBytes=2),            # a length not the shortest
    masked(b"x" * (MAX_FRAME_BYTES + 1)),       # too large for a message
    masked(b"x" * 10, lengthBytes=8),           # a 64-bit length
])
def test_otherFramesAndAllAfterGoToTheLibrary(other):
    """
    From the first frame of another kind on, the library is handed every
    byte, unchanged, the later text frames too.
    """
    r = Reader()
    before, after = masked(b"one"), masked(b"two")
    r.feed(before + other[:3], other[3:] + after[:2], after[2:])
    assert r.texts == ["one"]
    assert b"".join(r.other) == other + after


def test_aTextFrameNotUtf8IsReportedAndNothingAfterIsRead():
    """
    A whole text frame that is not UTF-8 is reported, once, and nothing
    after it is read here or handed to the library.
    """
    r = Reader()
    r.feed(masked(b"one") + masked(b"\xff\xfe")[:3], masked(b"\xff\xfe")[3:] + masked(b"two"))
    r.feed(masked(b"three"))
    assert (r.texts, r.other, r.notText) == (["one"], [], 1)


def test_browsersFramesReachTheRoom():
    """
    Frames as the browser's socket brings them, split and together, go
    through the reader to the session: the room hears each line once.
    """
    server = WebMemoryServer()
    amy = server.browser("amy")
    bob = server.browser("bob")
    for browser in (amy, bob):
        browser.send(type="join", room="#a")
        browser.messages()
    data = b"".join(masked(json.dumps({"type": "say", "room": "#a", "text": text}).encode())
                    for text in ("one", "two", "three"))
    receive = amy.request.channel.dataReceived
    receive(data[:7])
    receive(data[7:])
    said = [m["text"] for m in bob.messages() if m["type"] == "said"]
    assert said == ["one", "two", "three"]


def test_aCloseAfterPacedLinesWaitsForThem():
    """
    A browser that sends more lines than its burst and then a close frame,
    in one read, has every line said, in order, before the close reaches the
    WebSocket library; reading stays paused until then, so the end of its
    input is not seen before its lines either (found by a trial: the lines
    waiting for pacing were lost with the connection).
    """
    server = WebMemoryServer(limits=Limits(floodBurst=3, floodRate=1))
    amy = server.browser("amy")
    bob = server.browser("bob")
    bob.messages()
    toLibrary = []
    amy.proto._library = lambda data: toLibrary.append((data, said(bob)))
    close = masked(b"\x03\xe8", opcode=0x8)
    heard = []

    def said(browser):
        heard.extend(m["text"] for m in browser.messages() if m["type"] == "said")
        return list(heard)

    amy.request.channel.dataReceived(b"".join(
        masked(json.dumps({"type": "say", "room": "#lobby", "text": f"m{i}"}).encode())
        for i in range(5)) + close)
    assert said(bob) == ["m0", "m1"] and toLibrary == []
    # The close waits as read and not yet handled, as the lines do (each
    # counted as at least a line's LINE_FLOOR bytes).
    assert amy.proto.unread() == max(len(close), LINE_FLOOR) + sum(
        max(len(json.dumps({"type": "say", "room": "#lobby", "text": f"m{i}"})), LINE_FLOOR)
        for i in (2, 3, 4))
    for second in range(3):
        assert amy.transport.producerState == "paused"
        server.clock.advance(1)
    # The last line took the last token: the close waits for the next.
    assert said(bob) == ["m0", "m1", "m2", "m3", "m4"] and toLibrary == []
    assert amy.transport.producerState == "paused"
    server.clock.advance(1)
    assert toLibrary == [(close, ["m0", "m1", "m2", "m3", "m4"])]
    assert amy.transport.producerState == "producing"


@pytest.mark.parametrize("first", [
    masked(b"hi", opcode=0x9),                                          # a ping
    masked(b'{"type":"ping",', final=False) + masked(b'"data":"x"}', opcode=0x0),
], ids=["ping", "fragmented"])
def test_aCloseAfterPacedLinesWaitsForThemInTheLibrary(first):
    """
    Once a frame has taken the browser's input to the WebSocket library (a
    ping, a fragmented message), a close read behind lines that wait for
    pacing still waits for them, as on the reader's own path: every line is
    said, in order, then the close is answered, as the last frame (found by
    a trial: the library read the lines and the close in one go, and the
    close ended the connection at once, dropping the lines past the burst).
    """
    server = WebMemoryServer(limits=Limits(floodBurst=3, floodRate=1))
    bob = server.browser("bob")
    bob.messages()
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    channel = WebSite(server.web).buildProtocol(transport.getPeer())
    channel.makeConnection(transport)
    lines = [f"m{i}" for i in range(6)]
    close = masked((1000).to_bytes(2, "big"), opcode=0x8)
    channel.dataReceived(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        + masked(b'{"type":"nick","nick":"amy"}') + first
        + b"".join(masked(json.dumps({"type": "say", "room": "#lobby", "text": text}).encode())
                   for text in lines)
        + close)
    heard = []
    # Past the burst, a line a second; the close once every line is said.
    for second in range(len(lines) + 1):
        heard += [m["text"] for m in bob.messages() if m["type"] == "said"]
        assert heard == lines or not transport.disconnecting, heard
        server.clock.advance(1)
    assert heard == lines
    frames = readFrames(transport.value().split(b"\r\n\r\n", 1)[1])
    assert frames[-1] == (0x8, (1000).to_bytes(2, "big"))
    assert [json.loads(payload).get("text") for opcode, payload in frames
            if opcode == 1 and b'"said"' in payload] == lines
    assert transport.disconnecting


def test_controlFramesCountedApartFromMessages():
    """
    Of the bytes handed to the WebSocket library, L{ControlFrames} tells
    which are control frames (pings, pongs, a close), however the reads cut
    them: never part of a message, even between its fragments.
    """
    ping, pong = masked(b"p" * 125, opcode=0x9), masked(b"", opcode=0xA)
    fragment, last = masked(b"f" * 300, final=False), masked(b"l" * 70000, opcode=0x0)
    close = masked((1000).to_bytes(2, "big"), opcode=0x8)
    stream = ping + fragment + pong + ping + last + close
    control = len(ping) * 2 + len(pong) + len(close)
    for cut in (1, 7, 1000, len(stream)):
        frames = ControlFrames()
        counted = sum(frames.follow(stream[at:at + cut])[0]
                      for at in range(0, len(stream), cut))
        assert counted == control, cut


@pytest.mark.parametrize("bad", [False, True])
def test_textMessagesDecodedAsTheyCome(bad):
    """
    L{ControlFrames} decodes each text message's payload across its
    fragments and however the reads cut them (each frame its own mask):
    UTF-8 split between fragments is UTF-8; a byte that is not is told, at
    whatever read it comes in, and nothing after it is followed.
    """
    text = ("é€漢字 " * 40).encode("utf-8") + (b"\xff" if bad else b"")
    first, rest = text[:101], text[101:]
    stream = (masked(b"p", opcode=0x9) + masked(first, final=False, mask=b"\x01\x02\x03\x04")
              + masked(b"q", opcode=0x9) + masked(rest, opcode=0x0, mask=b"\xf0\x0f\xaa\x55")
              + masked(b"after"))
    for cut in (1, 3, 7, 64, len(stream)):
        frames = ControlFrames()
        ends = []
        for at in range(0, len(stream), cut):
            ends += [at + end for end in frames.follow(stream[at:at + cut])[1]]
        assert frames.notText is bad, cut
        messageEnd = len(stream) - len(masked(b"after"))
        assert ends == ([] if bad else [messageEnd, len(stream)]), cut


@pytest.mark.parametrize("frame", [
    masked(b"p" * 126, opcode=0x9),
    masked(b"p", opcode=0x9, final=False),
    bytes((0x89 | 0x40, 0x81)) + b"\0\0\0\0p",
    bytes((0x89, 0x01)) + b"p",
    masked(b"?", opcode=0xB),
])
def test_framesTheLibraryRefusesAreNoControlFrames(frame):
    """
    A frame no valid control frame (too long, fragmented, a reserved bit,
    not masked, a reserved opcode) counts as message bytes, and so does
    everything after it, which the library will not read as frames.
    """
    frames = ControlFrames()
    assert frames.follow(frame + masked(b"", opcode=0x9)) == (0, [])

"""
The web front end's JSON protocol, on in-memory transports beside line
clients over one real core: what a browser sends, what every member gets,
and how bad frames are answered.
"""

import json

import pytest
from twisted.internet import error
from twisted.python.failure import Failure

from chatd.edge.limits import Limits
from chatd.web import wire
from chatd.web.messages import MAX_FRAME_BYTES, MAX_TEXT_BYTES
from chatd.web.protocol import UNFINISHED_LIMIT
from chatd.web.wire import WebWire
from support import MemoryAccounts, MemoryHistory, guessedWrongFromLoopback
from websupport import WebMemoryServer, masked, readFrames


# Kept on main only until the front ends drop them: never emitted nor raised.


@pytest.fixture
def web():
    return WebMemoryServer()


def lastError(browser):
    errors = [m for m in browser.messages() if m["type"] == "error"]
    assert len(errors) == 1, errors
    return errors[0]


def test_hello_then_nickname_then_lobby(web):
    """
    A browser is greeted with the nickname rules; choosing a nickname
    confirms it and shows the lobby with its members and topic.
    """
    web.connect("bob")
    browser = web.browser()
    browser.send(type="nick", nick="alice")
    assert browser.messages() == [
        {"type": "you", "nick": "alice", "old": None},
        {"type": "room", "room": "#lobby", "topic": "", "members": ["alice", "bob"]},
    ]


def test_hello(web):
    """
    The first frame says which server this is, the nickname rules, the lobby
    and the text limit.
    """
    from websupport import Browser
    from twisted.internet.address import IPv4Address
    browser = Browser(web.web, IPv4Address("TCP", "127.0.0.1", 1))
    [hello] = browser.messages()
    assert hello["type"] == "hello"
    assert hello["lobby"] == "#lobby"
    assert hello["maxText"] == MAX_TEXT_BYTES
    assert "ASCII letters" in hello["nickRules"]
    assert hello["server"].startswith("chatd ")


def test_taken_nickname_try_another(web):
    """
    A taken or invalid nickname is refused with the reason, and the same
    connection may try again.
    """
    web.connect("alice")
    browser = web.browser()
    browser.send(type="nick", nick="Alice")
    assert lastError(browser) == {
        "type": "error", "code": "nickname-taken", "text": "the nickname Alice is taken",
        "detail": {"nick": "Alice", "registered": False}}
    browser.send(type="nick", nick="9lives")
    error = lastError(browser)
    assert error["code"] == "invalid-nickname"
    assert "not starting with a digit" in error["text"]
    browser.login("alice2")


def test_nothing_before_a_nickname(web):
    """
    Before a nickname, saying anything is refused with a code the page
    understands.
    """
    browser = web.browser()
    browser.send(type="say", room="#lobby", text="hi")
    assert lastError(browser)["code"] == "no-nickname"


def test_room_message_reaches_every_other_member_once(web):
    """
    A browser's message reaches the other browser and the line client once
    each, in order; the sender is not sent it back as someone else's.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    carol = web.connect("carol")
    alice.messages()
    alice.send(type="say", room="#lobby", text="one")
    alice.send(type="say", room="#lobby", text="two")
    said = [m for m in bob.messages() if m["type"] == "said"]
    assert [(m["room"], m["nick"], m["text"]) for m in said] == [
        ("#lobby", "alice", "one"), ("#lobby", "alice", "two")]
    assert carol.lines() == ["#lobby <alice> one", "#lobby <alice> two"]
    # The sender's own copies, the same frames, so the page shows them once.
    own = alice.messages()
    assert own == said


def test_line_user_reaches_browser(web):
    """
    What a line client says reaches a browser as a said frame with the
    server's time.
    """
    browser = web.browser("alice")
    carol = web.connect("carol")
    browser.messages()
    carol.send("hello from nc")
    carol.send("/me waves")
    got = browser.messages()
    assert [(m["type"], m["nick"], m["text"]) for m in got] == [
        ("said", "carol", "hello from nc"), ("acted", "carol", "waves")]
    assert all(m["room"] == "#lobby" and isinstance(m["time"], float) for m in got)


def test_encoded_once_for_all_browsers(web, monkeypatch):
    """
    The fan-out encodes an event once for every browser in the room, and
    every browser is handed the very same bytes.
    """
    browsers = [web.browser(f"b{i}") for i in range(4)]
    for b in browsers:
        b.messages()
    calls = []
    original = WebWire.encode
    monkeypatch.setattr(WebWire, "encode", staticmethod(
        lambda event: calls.append(event) or original(event)))
    carol = web.connect("carol")
    carol.send("hi all")
    assert [type(e).__name__ for e in calls] == ["Joined", "Said"]
    received = {b.transport.value() for b in browsers}
    assert len(received) == 1


def test_private_message_reaches_only_its_recipient(web):
    """
    A private message reaches its recipient alone; the sender gets their own
    copy naming the recipient; nobody else gets anything.
    """
    alice, bob, eve = web.browser("alice"), web.browser("bob"), web.browser("eve")
    carol = web.connect("carol")
    for b in (alice, bob, eve):
        b.messages()
    alice.send(type="tell", nick="BOB", text="psst")
    [got] = bob.messages()
    assert (got["type"], got["from"], got["text"]) == ("private", "alice", "psst")
    [own] = alice.messages()
    assert (own["type"], own["from"], own["to"], own["text"]) == ("private", "alice", "bob", "psst")
    assert eve.messages() == []
    assert carol.lines() == []
    alice.send(type="tell", nick="carol", text="to nc")
    assert carol.lines() == ["*alice* to nc"]
    # To oneself: once, as received, not again as the sender's
    # confirmation, on every front end.
    alice.messages()
    alice.send(type="tell", nick="alice", text="note to self")
    [own] = alice.messages()
    assert (own["from"], own["to"], own["text"]) == ("alice", "alice", "note to self")
    carol.send("/msg carol mine")
    assert carol.lines() == ["*carol* mine"]


def test_join_part_and_members_live(web):
    """
    Joining shows the room to the joiner and a joined event to its members;
    leaving confirms to the leaver and tells the others.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    alice.messages()
    alice.send(type="join", room="dev")
    assert alice.messages() == [{"type": "room", "room": "#dev", "topic": "",
                                 "members": ["alice"]}]
    bob.messages()
    bob.send(type="join", room="#DEV")
    assert bob.messages() == [{"type": "room", "room": "#dev", "topic": "",
                               "members": ["alice", "bob"]}]
    assert alice.messages() == [{"type": "joined", "room": "#dev", "nick": "bob"}]
    bob.send(type="part", room="#dev", reason="lunch")
    assert bob.messages() == [{"type": "left", "room": "#dev"}]
    assert alice.messages() == [{"type": "parted", "room": "#dev", "nick": "bob",
                                 "reason": "lunch"}]


def test_say_names_its_room(web):
    """
    Every message names its room, and goes to that room, not the one joined
    last; a room the sender is not in is refused.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    alice.send(type="join", room="#dev")
    bob.messages()
    alice.send(type="say", room="#lobby", text="in the lobby")
    [said] = bob.messages()
    assert (said["room"], said["text"]) == ("#lobby", "in the lobby")
    bob.send(type="say", room="#dev", text="not a member")
    assert lastError(bob) == {"type": "error", "code": "not-in-room",
                              "text": "you are not in #dev", "detail": {"room": "#dev"}}


def test_topic_live(web):
    """
    A topic set from the page reaches the room's members as a topic frame;
    an empty topic clears it.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.send(type="topic", room="#lobby", topic="release friday")
    [topic] = bob.messages()
    assert (topic["type"], topic["nick"], topic["topic"]) == ("topic", "alice", "release friday")
    alice.send(type="topic", room="#lobby", topic="")
    [topic] = bob.messages()
    assert topic["topic"] == ""


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad-json"),
    ("[1, 2]", "bad-message"),
    ('{"type": "dance"}', "unknown-type"),
    ('{"text": "no type"}', "unknown-type"),
    ('{"type": "say", "room": "#lobby"}', "bad-message"),
    # (Without its topic it is no topic to set: it cleared the topic.)
    ('{"type": "topic", "room": "#lobby"}', "bad-message"),
    ('{"type": "say", "room": "#lobby", "text": 5}', "bad-message"),
    ('{"type": "say", "room": ["#lobby"], "text": "x"}', "bad-message"),
    ('{"type": "history", "room": "#lobby", "count": NaN}', "bad-json"),
    ('{"type": "history", "room": "#lobby", "count": -Infinity}', "bad-json"),
    ('\ufeff{"type": "ping"}', "bad-json"),
    ('{"type": "ping"} {"type": "ping"}', "bad-json"),
    ('{"type": "history", "room": "#lobby", "count": true}', "bad-message"),
    ('{"type": "say", "room": "#lobby", "text": "x", "id": {"a": 1}}', "bad-message"),
    ("[" * 5000 + "]" * 5000, "bad-json"),
    ("\ud800", "bad-json"),
])
def test_malformed_frames_answered(web, frame, code):
    """
    A frame that is not a message of the protocol gets an error saying so,
    and the connection goes on.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.sendText(frame)
    assert lastError(alice)["code"] == code
    assert bob.messages() == []
    alice.send(type="say", room="#lobby", text="still here")
    assert [m["text"] for m in bob.messages()] == ["still here"]


def test_error_names_the_message_id(web):
    """
    An error answers the message's own id, so a client can pair them.
    """
    alice = web.browser("alice")
    alice.send(type="say", room="#nowhere", text="x", id=7)
    assert lastError(alice)["re"] == 7


def test_oversized_frame_refused(web):
    """
    A whole frame over the limit is refused, not parsed, and the connection
    goes on.
    """
    alice = web.browser("alice")
    alice.send(type="say", room="#lobby", text="x" * (MAX_FRAME_BYTES + 1))
    assert lastError(alice)["code"] == "too-large"
    alice.send(type="ping", data="after")
    assert alice.messages() == [{"type": "pong", "data": "after", "re": None}]


def test_text_over_the_line_limit_not_delivered(web):
    """
    Text over the line protocol's 2048 bytes is refused as too long and not
    delivered; text at the limit is.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.send(type="say", room="#lobby", text="é" * (MAX_TEXT_BYTES // 2) + "x")
    assert lastError(alice)["code"] == "too-long"
    assert bob.messages() == []
    alice.send(type="say", room="#lobby", text="é" * (MAX_TEXT_BYTES // 2))
    assert len(bob.messages()) == 1


def test_text_cleaned_at_the_edge(web):
    """
    Escape sequences, control characters and bidirectional overrides are
    removed from what a browser sends, as from a line; text that is empty
    after that is refused.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    carol = web.connect("carol")
    bob.messages()
    alice.send(type="say", room="#lobby", text="\x1b[31mred\u202e\x07 <b>x</b>")
    [said] = bob.messages()
    assert said["text"] == "red <b>x</b>"
    assert carol.lines() == ["#lobby <alice> red <b>x</b>"]
    alice.send(type="say", room="#lobby", text="\x1b[2J\x00")
    assert lastError(alice)["code"] == "empty"
    assert bob.messages() == []


def test_lone_surrogate_is_one_replacement_character(web):
    """
    A lone surrogate, which JSON can escape ("\\ud800") but which is no
    character, shows as one U+FFFD, as invalid UTF-8 in a line does; a pair
    is the character it encodes.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.sendText(r'{"type":"say","room":"#lobby","text":"a\ud800b\udfffc\ud83d\ude00"}')
    [said] = bob.messages()
    assert said["text"] == "a\ufffdb\ufffdc\U0001f600"


def test_binary_frame_refused(web):
    """
    Binary frames are not part of the protocol: an error, and the connection
    goes on.
    """
    alice = web.browser("alice")
    alice.proto.bytesMessageReceived(b"\x00\x01")
    assert lastError(alice)["code"] == "bad-message"
    assert alice.transport.connected


def test_unfinished_message_bounded(web):
    """
    Bytes of a message that never ends are counted; past the bound the
    browser is told why and disconnected with close code 1009.
    """
    alice = web.browser("alice")
    alice.request.channel.dataReceived(b"x" * (UNFINISHED_LIMIT // 2))
    assert alice.transport.connected
    alice.request.channel.dataReceived(b"x" * (UNFINISHED_LIMIT // 2 + 1))
    frames = alice.frames()
    assert json.loads(frames[-2][1])["code"] == "too-large"
    assert frames[-1] == (8, (1009).to_bytes(2, "big"))
    assert not alice.transport.connected


def test_whole_messages_reset_the_bound(web):
    """
    Bytes of messages that do end never add up to the bound.
    """
    alice = web.browser("alice")
    for _ in range(10):
        alice.request.channel.dataReceived(b"x" * (UNFINISHED_LIMIT // 4))
        alice.proto.textMessageReceived('{"type": "ping"}')
    assert alice.transport.connected


def test_pings_never_reach_the_bound(web):
    """
    Control frames are no message's bytes: a browser may ping (and pong)
    forever, however many bytes of them it sends without a message.
    """
    alice = web.browser("alice")
    ping, pong = masked(b"p" * 125, opcode=0x9), masked(b"p" * 125, opcode=0xA)
    for _ in range(2 * UNFINISHED_LIMIT // (len(ping) + len(pong))):
        alice.request.channel.dataReceived(ping + pong)
    assert alice.transport.connected


def test_pings_are_paced_as_lines(web):
    """
    Each ping (any control frame) counts as a line against the flood
    limits: past the burst the connection is not read for a while, and its
    sender is told, as for lines (the library answers each, in order).
    """
    alice = web.browser("alice")
    alice.request.channel.dataReceived(masked(b"p", opcode=0x9) * 200)
    assert any(message["type"] == "notice" and "you are sending fast" in message["text"]
               for message in alice.messages())
    assert alice.transport.producerState == "paused"
    web.clock.advance(60)
    assert alice.transport.producerState == "producing"
    assert alice.transport.connected


def test_a_connection_lost_with_a_frame_begun_goes_at_once(web):
    """
    A connection lost after a ping flood (paced: its reading held) with a
    frame begun, which can never end, goes at once: nothing of it waits to
    be said (it kept its user, and nickname, for as long as the pings'
    pacing, half an hour for 9,000).
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.request.channel.dataReceived(masked(b"p", opcode=0x9) * 200 + masked(b"x" * 10)[:2])
    assert alice.transport.producerState == "paused"
    alice.transport.loseConnection()
    assert bob.messages() == [{"type": "quit", "room": "#lobby", "nick": "alice",
                               "reason": "connection closed"}]
    assert web.core.user("alice") is None


def test_pings_between_fragments_still_bounded(web):
    """
    Pings between the fragments of a message that never ends do not hide
    its bytes: past the bound it is closed with 1009.
    """
    alice = web.browser("alice")
    fragment = masked(b"x" * 8192, final=False)
    ping = masked(b"p", opcode=0x9)
    alice.request.channel.dataReceived(fragment + ping)
    for _ in range(UNFINISHED_LIMIT // len(fragment)):
        alice.request.channel.dataReceived(masked(b"x" * 8192, opcode=0x0, final=False) + ping)
    assert alice.frames()[-1] == (8, (1009).to_bytes(2, "big"))
    assert not alice.transport.connected


_NOT_UTF8 = b'{"type": "say", "room": "#lobby", "text": "\xff"}'


@pytest.mark.parametrize("raw", [
    masked(_NOT_UTF8),
    # Past the reader of whole frames, read by the WebSocket library:
    masked(b"p", opcode=0x9) + masked(_NOT_UTF8),
    masked(_NOT_UTF8[:20], final=False) + masked(_NOT_UTF8[20:], opcode=0x0),
    masked(_NOT_UTF8[:45], final=False) + masked(b"p", opcode=0x9)
    + masked(_NOT_UTF8[45:], opcode=0x0),
    masked(b"p", opcode=0x9) + masked('{"text": "caf\u00e9'.encode()[:-1]),
], ids=["whole", "after-a-ping", "fragmented", "ping-between-fragments", "cut-short"])
def test_a_message_not_utf8_is_refused_saying_why(web, raw):
    """
    A text message that is not UTF-8 is answered with an error saying so,
    then a close with 1007 (not the decoder's words as the close's reason);
    the room hears why the user left.  So it is when the WebSocket library
    would read it (fragmented, or after a ping), which gave Python's
    decoding error as the close's reason and nothing else.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.messages()
    alice.request.channel.dataReceived(raw)
    frames = alice.frames()
    assert [(opcode, json.loads(payload) if opcode == 1 else payload)
            for opcode, payload in frames] == [
        (1, {"type": "error", "code": "bad-message",
             "text": "a message is JSON text in UTF-8; closing the connection"}),
        (8, (1007).to_bytes(2, "big"))]
    assert not alice.transport.connected
    assert bob.messages() == [{"type": "quit", "room": "#lobby", "nick": "alice",
                               "reason": "message not UTF-8"}]


def test_flood_paced():
    """
    The line protocol's flood control holds: past the burst, messages wait
    their turn at the sustained rate (told once), in order, none refused.
    """
    web = WebMemoryServer(limits=Limits(floodBurst=3, floodRate=1))
    alice = web.browser("alice")
    bob = web.browser("bob")
    bob.messages()
    alice.messages()
    for i in range(5):
        alice.send(type="say", room="#lobby", text=f"m{i}")
    # The nickname took the first token.
    assert [m["text"] for m in bob.messages()] == ["m0", "m1"]
    assert [m["type"] for m in alice.messages()] == ["said", "said", "notice"]
    web.clock.advance(1)
    assert [m["text"] for m in bob.messages()] == ["m2"]
    web.clock.advance(1)
    assert [m["text"] for m in bob.messages()] == ["m3"]
    web.clock.advance(1)
    assert [m["text"] for m in bob.messages()] == ["m4"]
    # Reading paused meanwhile, and goes on once the bucket has a token.
    assert alice.transport.producerState == "paused"
    web.clock.advance(1)
    assert alice.transport.producerState == "producing"
    assert alice.transport.connected


def test_lines_waiting_for_pacing_are_said_after_a_broken_connection():
    """
    A connection that breaks with messages still waiting for flood pacing
    has them said all the same, at the pace, as a line client's are; then
    its user quits with the loss's reason, and nothing more is written to it
    (see the README's "Floods", and tests/test_linger.py).
    """
    web = WebMemoryServer(limits=Limits(floodBurst=3, floodRate=1))
    alice, carol = web.browser("alice", host="192.0.2.7"), web.connect("carol")
    bob = web.browser("bob")
    bob.messages()
    web.clock.advance(10)
    for i in range(5):
        alice.send(type="say", room="#lobby", text=f"m{i}")
    carol.sendBytes(b"".join(b"c%d\n" % i for i in range(5)))
    assert [m.get("text") for m in bob.messages()] == ["m0", "m1", "m2", "c0", "c1", "c2"]
    alice.transport.clear()
    carol.transport.clear()
    alice.transport.loseConnection()
    # A reset, as TCP reports one: the transport is gone, then its protocol told.
    carol.transport.connected = False
    carol.proto.connectionLost(Failure(error.ConnectionLost()))
    assert web.gate.fromAddress("192.0.2.7") == 1
    web.clock.advance(1)
    assert [(m["type"], m["nick"], m["text"]) for m in bob.messages()] == [
        ("said", "alice", "m3"), ("said", "carol", "c3")]
    web.clock.advance(1)
    assert [(m["type"], m["nick"], m.get("text") or m.get("reason"))
            for m in bob.messages()] == [
        ("said", "alice", "m4"), ("quit", "alice", "connection closed"),
        ("said", "carol", "c4"), ("quit", "carol", "connection lost")]
    assert alice.transport.value() == b"" and carol.transport.value() == b""
    assert web.gate.connections == {bob.proto.conn}


def test_login_timeout():
    """
    A browser that chooses no nickname in time is told why and closed.
    """
    web = WebMemoryServer(limits=Limits(loginTimeout=5))
    browser = web.browser()
    web.clock.advance(5)
    [notice] = browser.messages()
    assert notice == {"type": "notice",
                      "text": "Closing your connection: not logged in within 5 seconds"}
    assert not browser.transport.connected


def test_connection_limit():
    """
    A browser beyond the per-address limit is refused with the reason.
    """
    web = WebMemoryServer(limits=Limits(maxPerAddress=1))
    web.browser("alice", host="10.0.0.1")
    from websupport import Browser
    from twisted.internet.address import IPv4Address
    second = Browser(web.web, IPv4Address("TCP", "10.0.0.1", 2))
    [refusal] = second.messages()
    assert refusal == {"type": "error", "code": "refused",
                       "text": "Connection refused: too many connections from 10.0.0.1"}
    assert not second.transport.connected


def test_http_connections_count_against_the_limits():
    """
    An HTTP connection counts against the connection limits from its start,
    as every other connection does (one address held every descriptor of
    the daemon with requests it never finished): past the per-address limit
    the next is answered 503 with the reason, and so is a line connection
    from the address; one that closes, or becomes a WebSocket (counted then
    as that, once), frees its place.
    """
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransportWithDisconnection

    from chatd.web.resource import WebSite

    web = WebMemoryServer(limits=Limits(maxPerAddress=3))
    site = WebSite(web.web)
    address = IPv4Address("TCP", "10.0.0.9", 40000)

    def connect():
        transport = StringTransportWithDisconnection(
            peerAddress=address, hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
        protocol = site.buildProtocol(address)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport

    held = [connect() for _ in range(3)]
    for channel, transport in held:
        channel.dataReceived(b"GET /ws HTTP/1.1\r\n")
    assert web.gate.fromAddress("10.0.0.9") == 3
    refused, transport = connect()
    assert transport.value().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert transport.value().endswith(b"\r\n\r\nConnection refused: too many connections "
                                      b"from 10.0.0.9\n")
    assert not transport.connected
    line = web.connect(host="10.0.0.9")
    assert line.lines() == ["-!- Connection refused: too many connections from 10.0.0.9"]
    held[0][0].connectionLost(Failure(error.ConnectionDone()))
    assert web.gate.fromAddress("10.0.0.9") == 2
    channel, transport = held[1]
    channel.dataReceived(
        b"Host: 127.0.0.1:8080\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert b" 101 " in transport.value().split(b"\r\n", 1)[0]
    assert web.gate.fromAddress("10.0.0.9") == 2
    channel.connectionLost(Failure(error.ConnectionDone()))
    assert web.gate.fromAddress("10.0.0.9") == 1


def test_commands_typed_in_the_page(web):
    """
    A /command without a button of its own is run by the line front end's
    command table, in the room the page shows; its replies come as reply
    frames, its refusals as errors.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    alice.messages()
    alice.send(type="command", room="#lobby", line="/who")
    assert alice.messages() == [{"type": "reply", "text": "#lobby members (2): alice bob"}]
    alice.send(type="command", room="#lobby", line="/frobnicate")
    error = lastError(alice)
    assert error["text"] == "unknown command /frobnicate; /help lists the commands"
    bob.messages()
    alice.send(type="command", room="#lobby", line="/me dances")
    [acted] = bob.messages()
    assert (acted["type"], acted["text"]) == ("acted", "dances")
    assert alice.messages() == [acted]
    alice.send(type="command", room="#lobby", line="/join #ops")
    assert alice.messages() == [{"type": "room", "room": "#ops", "topic": "",
                                 "members": ["alice"]}]
    alice.send(type="command", room="#lobby", line="/topic -")
    assert lastError(alice)["text"] == "#lobby has no topic"
    # A /part of the page's room is answered as the line protocol answers
    # it (a trial: then "you are not in #ops", of the room just left).
    alice.send(type="command", room="#ops", line="/part")
    assert alice.messages() == [{"type": "left", "room": "#ops"},
                                {"type": "reply", "text": "now talking in #lobby"}]


@pytest.mark.parametrize("line", ["/part", "/topic hello", "/who", "/history 3", "/kick bob"])
def test_command_in_no_room_names_its_room(web, line):
    """
    A command typed where the page shows no room (a private conversation)
    that needs one is refused, saying to name it: it acted on the room last
    joined, which the page did not show (a trial: /part in a private
    conversation left #lobby, out of sight).  Named, it is done.
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    alice.messages(), bob.messages()
    alice.send(type="command", room=None, line=line)
    assert lastError(alice)["text"] == ("this is not a room: go to a room first, or name it "
                                        "(/part #room)")
    assert alice.messages() == [] and bob.messages() == []
    alice.send(type="command", room=None, line="/part #lobby")
    assert {"type": "left", "room": "#lobby"} in alice.messages()


@pytest.mark.parametrize("line", ["", "   ", "\x01\x02", "\x1b[31m"])
def test_command_empty_once_cleaned_is_refused(web, line):
    """
    A command line that is empty once cleaned is refused as an empty say
    is (found by a trial: it said an empty line, stored, and sent to IRC
    users as the invalid "PRIVMSG #room :").
    """
    alice, bob = web.browser("alice"), web.browser("bob")
    alice.messages(), bob.messages()
    alice.send(type="command", room="#lobby", line=line)
    assert lastError(alice)["code"] == "empty"
    assert bob.messages() == []


def test_timed_room_ban_says_its_time_left_after_a_rename(web):
    """
    A browser put out of a room by a timed ban on its nickname is told the
    time left when refused entry, under another nickname as under the
    banned one.
    """
    boss, bob = web.browser("boss"), web.browser("bob")
    boss.send(type="join", room="#den")
    bob.send(type="join", room="#den")
    boss.send(type="command", room="#den", line="/ban bob 10m")
    web.clock.advance(60)
    bob.send(type="nick", nick="other")
    bob.messages()
    bob.send(type="join", room="#den")
    error = lastError(bob)
    assert (error["code"], error["text"], error["detail"]["seconds"]) == (
        "banned", "you are banned from #den for 9m more", 540)


def test_replay_on_join_then_live():
    """
    Joining a room replays its last lines as history frames, ended by a
    replayed frame; lines said while the store reads come after them.
    """
    history = MemoryHistory()
    web = WebMemoryServer(history=history)
    carol = web.connect("carol")
    history.answer()
    carol.send("first")
    carol.send("second")
    alice = web.browser()
    alice.send(type="nick", nick="alice")
    carol.send("live")
    assert [m["type"] for m in alice.messages()] == ["you", "room"]
    history.answer()
    got = alice.messages()
    assert [(m["type"], m.get("text"), m.get("history")) for m in got] == [
        ("said", "first", True), ("said", "second", True),
        ("replayed", None, None), ("said", "live", None)]
    assert got[0]["id"] < got[1]["id"] < got[3]["id"]


def test_older_lines_on_demand():
    """
    Asking for lines before an id gives the ones just older than it, marked
    as older history.
    """
    history = MemoryHistory()
    web = WebMemoryServer(history=history, replay=2)
    carol = web.connect("carol")
    for i in range(5):
        carol.send(f"l{i}")
    alice = web.browser()
    alice.send(type="nick", nick="alice")
    history.answer()
    replay = [m for m in alice.messages() if m["type"] == "said"]
    assert [m["text"] for m in replay] == ["l3", "l4"]
    alice.send(type="history", room="#lobby", before=replay[0]["id"], count=2)
    history.answer()
    got = alice.messages()
    assert [(m.get("text"), m.get("older")) for m in got] == [
        ("l1", True), ("l2", True), (None, True)]
    assert got[-1] == {"type": "replayed", "room": "#lobby", "count": 2, "older": True,
                       "first": False}
    # Asked for more than are left: they reach the room's first line.
    alice.send(type="history", room="#lobby", before=got[0]["id"], count=2)
    history.answer()
    got = alice.messages()
    assert [(m.get("text"), m.get("older")) for m in got] == [("l0", True), (None, True)]
    assert got[-1] == {"type": "replayed", "room": "#lobby", "count": 1, "older": True,
                       "first": True}
    # So does a join's replay of a room with fewer lines than a replay.
    alice.send(type="join", room="#quiet")
    history.answer()
    assert alice.messages()[-1] == {"type": "replayed", "room": "#quiet", "count": 0,
                                    "older": False, "first": True}


def test_one_history_request_at_a_time():
    """
    A page's second history request waits until the store answered its
    first (one read asked for per connection at a time); both are answered.
    """
    history = MemoryHistory()
    web = WebMemoryServer(history=history, replay=2)
    carol = web.connect("carol")
    carol.send("l0")
    alice = web.browser()
    alice.send(type="nick", nick="alice")
    history.answer()
    alice.messages()
    asked = []
    real = history.recent
    history.recent = lambda room, count: asked.append(count) or real(room, count)
    alice.send(type="history", room="#lobby", count=1)
    alice.send(type="history", room="#lobby", count=2)
    assert asked == [1]
    history.answer()
    assert asked == [1, 2]
    history.answer()
    got = [m for m in alice.messages() if m["type"] == "replayed"]
    assert [m["count"] for m in got] == [1, 1]


def test_historyCountOutsideItsRangeIsRefused():
    """
    A history request's count is from 1 to 500, as the line protocol's
    /history: 0 is refused, not read as the default of 50.
    """
    history = MemoryHistory()
    web = WebMemoryServer(history=history)
    alice = web.browser("alice")
    history.answer()
    alice.messages()
    asked = []
    history.recent = lambda room, count: asked.append(count)
    for count in (0, 501):
        alice.send(type="history", room="#lobby", count=count, id=count)
    got = alice.messages()
    assert [(m["type"], m["re"], m["text"]) for m in got] == [
        ("error", 0, "count: from 1 to 500"), ("error", 501, "count: from 1 to 500")]
    assert asked == []


def test_quit_closes():
    """
    A quit is announced to the room with its reason and closes the socket
    after a last frame.
    """
    web = WebMemoryServer()
    alice, bob = web.browser("alice"), web.browser("bob")
    bob.messages()
    alice.send(type="quit", reason="bye all")
    frames = alice.frames()
    assert frames[-1][0] == 8
    assert not alice.transport.connected
    assert bob.messages() == [{"type": "quit", "room": "#lobby", "nick": "alice",
                               "reason": "Quit: bye all"}]


def test_frame_lengths():
    """
    Frames of every length form are well formed.
    """
    for size in (0, 125, 126, 65535, 65536):
        [(opcode, payload)] = readFrames(wire.frame(b"x" * size))
        assert (opcode, len(payload)) == (1, size)


def test_event_fields_plain_values():
    """
    Every event the core has is encoded, as plain JSON.
    """
    from chatd.core import events
    import dataclasses
    for cls in [c for c in vars(events).values() if dataclasses.is_dataclass(c)
               ]:
        args = {f.name: (1.0 if f.type in ("float", "float | None") else
                         False if f.type == "bool" else
                         (events.Quit("x", "x", "x"),) if "Quit" in str(f.type) else
                         # (An Arrived's since: from its first arrival on.)
                         0 if f.name == "since" else
                         1 if "int" in str(f.type) else "x")
                for f in dataclasses.fields(cls)}
        [(opcode, payload), *close] = readFrames(WebWire.encode(cls(**args)))
        assert opcode == 1 and isinstance(json.loads(payload)["type"], str), cls
        assert [opcode for opcode, _ in close] in ([], [8]), cls


def test_search_and_history_commands_list_lines():
    """
    /search and /history typed in the page answer with their reply, then the
    lines found, marked as found (not lines to file among the room's own).
    """
    history = MemoryHistory()
    web = WebMemoryServer(history=history)
    carol = web.connect("carol")
    history.answer()
    carol.send("the deploy is done")
    carol.send("lunch?")
    alice = web.browser()
    alice.send(type="nick", nick="alice")
    history.answer()
    alice.messages()
    alice.send(type="command", room="#lobby", line="/search deploy")
    history.answer()
    got = alice.messages()
    assert [(m["type"], m.get("text"), m.get("found")) for m in got] == [
        ("reply", "1 line in your rooms with deploy, newest first", None),
        ("said", "the deploy is done", True)]
    assert history.searched == [["#lobby"]]
    alice.send(type="command", room="#lobby", line="/history 1")
    history.answer()
    assert [(m["type"], m.get("text"), m.get("found")) for m in alice.messages()] == [
        ("reply", "#lobby: the last 1 line", None), ("said", "lunch?", True)]


def test_every_refusal_has_a_code():
    """
    Every refusal of the core becomes an error frame: a code from its kind,
    words for it, and its fields as plain JSON.
    """
    import dataclasses
    from chatd.core import refusals
    from chatd.web.protocol import refusalError

    kinds = [c for c in vars(refusals).values()
             if isinstance(c, type) and issubclass(c, refusals.Refusal)
             and c is not refusals.Refusal]
    assert len(kinds) > 20
    for kind in kinds:
        args = {f.name: (1 if "int" in str(f.type) else
                         False if "bool" in str(f.type) else "x")
                for f in dataclasses.fields(kind)}
        frame = refusalError(kind(**args))
        assert re_code.match(frame["code"]), frame
        assert frame["text"] and json.dumps(frame)
    assert refusalError(refusals.NicknameTaken("bob", True))["code"] == "nickname-taken"
    assert refusalError(refusals.NotInRoom("#x"))["code"] == "not-in-room"


import re as _re  # noqa: E402
re_code = _re.compile(r"[a-z]+(-[a-z]+)*\Z")


def test_receive_queue_bound():
    """
    A browser that keeps more unread messages waiting than --recv-queue
    allows, for longer than --recv-queue-time, is closed for flooding.
    """
    web = WebMemoryServer(limits=Limits(floodBurst=2, floodRate=1, recvQueueBytes=1024,
                                        recvQueueTime=2))
    alice = web.browser("alice")
    alice.messages()
    for i in range(40):
        alice.send(type="say", room="#lobby", text=f"{i:02} " + "x" * 60)
    assert alice.proto.unread() > 1024
    for _ in range(3):
        web.clock.advance(1)
    notices = [m for m in alice.messages() if m["type"] == "notice"]
    assert notices[-1]["text"].startswith("Closing your connection: Excess Flood")
    assert not alice.transport.connected


def test_short_messages_count_as_lines_against_the_bound():
    """
    Waiting messages count as at least 64 bytes each, as waiting lines do:
    a browser that sends thousands of tiny messages and goes is closed as a
    flood over the bound, not kept (its nickname held) for as long as they
    take at the flood rate (a trial: half an hour).
    """
    web = WebMemoryServer(limits=Limits(floodBurst=3, floodRate=1, recvQueueBytes=1024,
                                        recvQueueTime=5))
    alice, bob = web.browser("alice"), web.connect("bob")
    alice.messages(), bob.lines()
    for _ in range(300):
        alice.sendText("1")
    alice.transport.loseConnection()
    web.clock.pump([0.5] * 12)
    assert bob.lines()[-1] == ("-- #lobby alice has quit (Excess Flood: more than "
                               "1024 bytes unread for 5 seconds)")
    assert web.core.user("alice") is None


def test_registered_nickname_needs_its_password():
    """
    A registered nickname is claimed with its password: without one the
    browser is asked for it (password-required), a wrong one is refused, the
    right one gives the nickname and lets its stale holder go.
    """
    from support import MemoryAccounts
    web = WebMemoryServer(accounts=MemoryAccounts())
    owner = web.connect("nora")
    owner.send("/register s3cret-pass")
    owner.lines()
    browser = web.browser()
    browser.send(type="nick", nick="nora", id=1)
    assert lastError(browser) == {"type": "error", "code": "password-required",
                                  "text": lastErrorText(web, "nora"),
                                  "detail": {"nick": "nora"}, "re": 1}
    browser.send(type="nick", nick="nora", password="wrong-pass", id=2)
    error = lastError(browser)
    assert (error["code"], error["text"], error["re"]) == (
        "wrong-password", "wrong password for nora", 2)
    browser.send(type="nick", nick="nora", password="s3cret-pass")
    got = browser.messages()
    assert {"type": "you", "nick": "nora", "old": None} in got
    assert {"type": "identified", "nick": "nora"} in got
    assert [m["room"] for m in got if m["type"] == "room"] == ["#lobby"]
    assert not owner.transport.connected


def test_password_delay_never_outlasts_the_login_timeout():
    """
    After many wrong passwords from one address the owner's right one waits
    up to a minute, as long as the login timeout: the timeout waits for the
    check, so the owner gets in (the page was closed when the timeout came
    first).
    """
    from support import MemoryAccounts
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    web = WebMemoryServer(accounts=accounts, limits=Limits(loginTimeout=60))
    guessedWrongFromLoopback(web.core, "boss")
    browser = web.browser()
    browser.send(type="nick", nick="boss", password="boss-password")
    browser.messages()
    web.clock.pump([1] * 61)
    assert {"type": "identified", "nick": "boss"} in browser.messages()
    assert browser.transport.connected


def test_ghost_typed_refusals_have_their_codes():
    """
    /ghost typed in the page with a wrong password is refused with
    wrong-password, as a nick message with one is, answering its message;
    the holder keeps the nickname.  With the right one the nickname is the
    browser's, identified.
    """
    from support import MemoryAccounts
    web = WebMemoryServer(accounts=MemoryAccounts())
    owner = web.connect("nora")
    owner.send("/register s3cret-pass")
    owner.lines()
    browser = web.browser()
    browser.send(type="nick", nick="nora_")
    browser.messages()
    browser.send(type="command", room="#lobby", line="/ghost nora wrong-pass", id=7)
    assert browser.messages() == [{"type": "error", "code": "wrong-password",
                                   "text": "wrong password for nora",
                                   "detail": {"nick": "nora"}, "re": 7}]
    assert owner.transport.connected
    browser.send(type="command", room="#lobby", line="/ghost nora s3cret-pass", id=8)
    got = browser.messages()
    assert {"type": "identified", "nick": "nora"} in got
    assert {"type": "you", "nick": "nora", "old": "nora_"} in got
    assert not owner.transport.connected


def lastErrorText(web, nick):
    return f"{nick} is registered: if it is yours, give its password; otherwise choose another"


def test_registered_nickname_refusals_say_what_to_do_here():
    """
    A registered nickname refused is told in the web protocol's words: give
    its password (the page asks for it; a nick message carries it), not the
    line protocol's commands, which a browser has no place to type at login.
    """
    from chatd.core import refusals
    from chatd.web.protocol import refusalError

    required = refusalError(refusals.PasswordRequired("nora"))["text"]
    taken = refusalError(refusals.NicknameTaken("nora", True))["text"]
    assert required == lastErrorText(None, "nora")
    assert taken == "the nickname nora is taken; if it is yours, give its password to take it back"
    assert refusalError(refusals.NicknameTaken("nora", False))["text"] == (
        "the nickname nora is taken")


def test_notices_are_marked():
    """
    A notice (an IRC user's NOTICE) is a said or private message with
    "notice": true; other messages carry no such field.
    """
    from chatd.core import events

    def shown(event):
        [(opcode, payload)] = readFrames(WebWire.encode(event))
        return json.loads(payload)

    assert shown(events.Said("#r", "al", "hi", 5.0, 7, notice=True)) == {
        "type": "said", "room": "#r", "nick": "al", "text": "hi", "time": 5.0, "id": 7,
        "notice": True}
    assert "notice" not in shown(events.Said("#r", "al", "hi", 5.0, 7))
    assert shown(events.PrivatelySaid("al", "bo", "psst", 5.0, notice=True)) == {
        "type": "private", "from": "al", "to": "bo", "text": "psst", "time": 5.0,
        "notice": True}


def test_ownIsEveryonesForLinesSaidOnly():
    """
    The actor's copy of a line it said (or acted, or a topic it set) is
    everyone's frame, which the fan-out may then send it as a member; a room
    it left is shown it otherwise, and a join not at all.
    """
    from chatd.core import events
    said = events.Said("#a", "amy", "hi", time=1, id=2)
    assert WebWire.ownIsEveryones(said)
    assert WebWire.encodeOwn(said) == WebWire.encode(said)
    assert not WebWire.ownIsEveryones(events.Parted("#a", "amy", ""))
    assert not WebWire.ownIsEveryones(events.Joined("#a", "amy"))


def test_arrivalsAreTheirJoinsFrames():
    """
    Arrivals announced together are the frames of each join, in order; the
    same bytes however often they are asked for.
    """
    from chatd.core import events
    nicks = tuple(f"n{i}" for i in range(5))
    joins = b"".join(WebWire.encode(events.Joined("#a", nick)) for nick in nicks)
    assert WebWire.encode(events.Arrived("#a", nicks)) == joins
    assert WebWire.encode(events.Arrived("#a", nicks)) == joins
    assert WebWire.encode(events.Arrived("#b", nicks[3:])) == b"".join(
        WebWire.encode(events.Joined("#b", nick)) for nick in nicks[3:])


def test_commands_before_a_nickname():
    """
    A command message before any nickname: a plain line claims it, as at
    the line protocol's prompt; /nick of a registered one asks for its
    password as a nick message without one is asked (it was not answered;
    a plain line raised an error in the daemon).
    """
    from chatd.core import refusals
    from chatd.web.protocol import refusalError

    accounts = MemoryAccounts()
    accounts.passwords["regd"] = "regd-password"
    web = WebMemoryServer(accounts=accounts)
    plain = web.browser()
    plain.send(type="command", line="plainnick")
    assert {"type": "you", "nick": "plainnick", "old": None} in plain.messages()
    registered = web.browser()
    registered.send(type="command", line="/nick regd", id=7)
    assert registered.messages() == [
        {"type": "error", "code": "password-required", "re": 7, "detail": {"nick": "regd"},
         "text": refusalError(refusals.PasswordRequired("regd"))["text"]}]
    registered.send(type="nick", nick="regd", password="regd-password")
    assert {"type": "you", "nick": "regd", "old": None} in registered.messages()

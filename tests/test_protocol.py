"""
The line protocol over in-memory transports: the real factory, core and
fan-out, each client on its own StringTransport.
"""

from chatd.edge.limits import Limits
from chatd.line.protocol import MAX_LINE_BYTES


def test_greetingAndPrompt(server):
    """
    A new connection is told what chatd is and how to use it, then asked for
    a nickname.
    """
    client = server.connect()
    lines = client.lines()
    assert lines[0].startswith("-!- Welcome to chatd")
    assert "/help" in lines[0]
    assert lines[1].startswith("??? Choose a nickname")
    assert len(lines) == 2


def test_loginJoinsLobby(server):
    """
    Answering the prompt claims the nickname and joins #lobby, and the reply
    lists the members.
    """
    server.connect("alice")
    bob = server.connect()
    bob.lines()
    bob.send("bob")
    assert bob.lines() == [
        "=== you are now bob",
        "=== joined #lobby",
        "=== #lobby members (2): alice bob",
    ]


def test_takenNickGetsAnotherTry(server):
    """
    A taken nickname (in any case) gets a reason and a new prompt on the same
    connection, and the next answer is taken.
    """
    server.connect("alice")
    other = server.connect()
    other.lines()
    other.send("ALICE")
    assert other.lines() == ["!!! the nickname ALICE is taken", "??? Choose another nickname:"]
    other.send("#bad")
    lines = other.lines()
    assert lines[0].startswith("!!! a nickname is 1-16 characters")
    assert lines[1] == "??? Choose another nickname:"
    other.send("alice2")
    assert other.lines()[0] == "=== you are now alice2"


def test_commandsBeforeNick(server):
    """
    Before a nickname only /help, /nick and /quit work; others are refused.
    """
    client = server.connect()
    client.lines()
    client.send("/join #x")
    assert client.lines() == ["!!! choose a nickname first", "??? Choose another nickname:"]
    client.send("/nick carol")
    assert client.lines()[0] == "=== you are now carol"


def test_messageFanOut(server):
    """
    A plain line reaches every other member of the room exactly once and in
    order, names its room and sender, and is not echoed to the sender.
    """
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    for c in (alice, bob, carol):
        c.lines()
    alice.send("hello")
    bob.send("hi alice")
    alice.send("how are you")
    assert alice.lines() == ["#lobby <bob> hi alice"]
    assert bob.lines() == ["#lobby <alice> hello", "#lobby <alice> how are you"]
    assert carol.lines() == ["#lobby <alice> hello", "#lobby <bob> hi alice",
                             "#lobby <alice> how are you"]


def test_rooms(server):
    """
    /join moves plain text to the new room; members of other rooms hear
    nothing; join and part are announced to the room.
    """
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    alice.lines(), bob.lines()
    alice.send("/join #dev")
    assert alice.lines() == ["=== joined #dev", "=== #dev members (1): alice"]
    bob.send("/join dev")
    assert alice.lines() == ["-- #dev bob has joined"]
    assert bob.lines() == ["=== joined #dev", "=== #dev members (2): alice bob"]
    alice.send("dev only")
    assert bob.lines() == ["#dev <alice> dev only"]
    assert carol.lines() == []
    bob.send("/part #dev see you")
    assert bob.lines() == ["=== left #dev", "=== now talking in #lobby"]
    assert alice.lines() == ["-- #dev bob has left (see you)"]


def test_switchCurrentRoom(server):
    """
    /join of a room one is already in switches the current room.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/join #dev")
    alice.send("/join #lobby")
    assert alice.lines()[-1] == "=== now talking in #lobby"
    bob.lines()
    alice.send("back here")
    assert bob.lines() == ["#lobby <alice> back here"]


def test_actionAndLiteralSlash(server):
    """
    /me sends an action; a line starting with // sends a literal /.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/me waves")
    alice.send("//etc/passwd is a file")
    assert bob.lines() == ["* #lobby alice waves", "#lobby <alice> /etc/passwd is a file"]
    assert alice.lines() == []


def test_privateMessage(server):
    """
    /msg reaches its target alone, and the sender is told it went out; an
    unknown target is an error for the sender only.
    """
    alice, bob, carol = server.connect("alice"), server.connect("bob"), server.connect("carol")
    for c in (alice, bob, carol):
        c.lines()
    alice.send("/msg bob psst, secret")
    assert bob.lines() == ["*alice* psst, secret"]
    assert carol.lines() == []
    assert alice.lines() == ["=== to bob: psst, secret"]
    alice.send("/msg zed hello")
    assert alice.lines() == ["!!! no such user: zed"]
    alice.send("/msg bob")
    assert alice.lines() == ["!!! usage: /msg NICK TEXT"]
    assert bob.lines() == [] and carol.lines() == []
    # A private /me goes as IRC's private ACTION does (and reaches IRC as
    # one): the core has no private action.
    alice.send("/msg bob /me waves privately")
    assert bob.lines() == ["*alice* * alice waves privately"]
    assert carol.lines() == []
    # A /me with no action is no message "/me".
    alice.lines()
    alice.send("/msg bob /me ")
    assert alice.lines() == ["!!! usage: /msg NICK /me ACTION"]
    assert bob.lines() == [] and carol.lines() == []


def test_renameAnnounced(server):
    """
    /nick renames, replies to the user and tells their rooms; the old name is
    free at once.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/nick alicia")
    assert alice.lines() == ["=== you are now alicia"]
    assert bob.lines() == ["-- #lobby alice is now known as alicia"]
    server.connect("alice")
    alice.send("hi")
    assert bob.lines() == ["-- #lobby alice has joined", "#lobby <alicia> hi"]


def test_renameToTakenNick(server):
    """
    /nick to a taken name is refused and the user keeps their name.
    """
    alice, _ = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/nick Bob")
    assert alice.lines() == ["!!! the nickname Bob is taken"]


def test_roomsWhoTopic(server):
    """
    /rooms lists rooms with counts and topics, /who lists members, /topic
    shows and sets the topic and announces the change.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    bob.send("/join #dev")
    alice.lines(), bob.lines()
    alice.send("/topic")
    assert alice.lines() == ["=== #lobby has no topic"]
    alice.send("/topic cake at noon")
    assert alice.lines() == ["=== #lobby topic set: cake at noon"]
    assert bob.lines() == ["-- #lobby alice set the topic: cake at noon"]
    alice.send("/rooms")
    assert alice.lines() == ["=== 2 rooms", "=== #dev (1)", "=== #lobby (2) cake at noon"]
    alice.send("/who")
    assert alice.lines() == ["=== #lobby members (2): alice bob"]
    alice.send("/who #dev")
    assert alice.lines() == ["=== #dev members (1): bob", "=== #dev moderators: bob"]
    alice.send("/who #nowhere")
    assert alice.lines() == ["!!! no such room: #nowhere"]


def test_helpListsEveryCommand(server):
    """
    /help has a line for every command in the table.
    """
    from chatd.line.commands import COMMANDS

    client = server.connect("alice")
    client.send("/help")
    lines = client.lines()
    for name in COMMANDS:
        assert any(line.startswith(f"=== /{name}") for line in lines), name


def test_unknownCommand(server):
    """
    An unknown command is an error, and nothing is sent to the room.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/frobnicate now")
    assert alice.lines() == ["!!! unknown command /frobnicate; /help lists the commands"]
    assert bob.lines() == []


def test_quit(server):
    """
    /quit says goodbye, tells the room the reason and closes the connection.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/quit off to lunch")
    assert alice.lines() == ["=== bye"]
    assert not alice.transport.connected
    assert bob.lines() == ["-- #lobby alice has quit (Quit: off to lunch)"]
    assert "alice" not in server.core.users


def test_disconnectFreesNick(server):
    """
    A dropped connection frees its nickname at once and its rooms are told.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.transport.loseConnection()
    assert bob.lines() == ["-- #lobby alice has quit (connection closed)"]
    server.connect("alice")


def test_crlfAndLf(server):
    """
    Lines may end in LF or CRLF; the CR never reaches anyone.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.sendBytes(b"one\r\ntwo\nthree\r\n")
    assert bob.lines() == ["#lobby <alice> one", "#lobby <alice> two", "#lobby <alice> three"]


def test_utf8SplitAcrossPackets(server):
    """
    A character whose bytes arrive in separate packets is decoded correctly.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    data = "h€llo 漢字\n".encode()
    for i in range(len(data)):
        alice.sendBytes(data[i:i + 1])
    assert bob.lines() == ["#lobby <alice> h€llo 漢字"]


def test_invalidUtf8Replaced(server):
    """
    Invalid UTF-8 is replaced, not fatal.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.sendBytes(b"bad \xc3\x28 bytes \xfe\n")
    assert bob.lines() == ["#lobby <alice> bad \ufffd( bytes \ufffd"]
    assert alice.transport.connected


def test_telnetNegotiationNeverShown(server):
    """
    Telnet IAC sequences, even split across packets and inside a line, are
    removed before anyone sees the line.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.sendBytes(b"\xff\xfd\x03\xff\xfb\x18hel")
    alice.sendBytes(b"lo\xff")
    alice.sendBytes(b"\xf4 there\xff\xfa\x18\x00xterm\xff\xf0\r\n")
    assert bob.lines() == ["#lobby <alice> hello there"]


def test_escapeSequencesCannotReachOthers(server):
    """
    Colours, cursor movement and screen clearing are stripped from messages,
    actions, topics, quit reasons and private messages alike.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    evil = "\x1b[2J\x1b[31mred\x1b[0m\x07\x08"
    alice.send(f"msg {evil}")
    alice.send(f"/me {evil}")
    alice.send(f"/topic {evil}")
    alice.send(f"/msg bob {evil}")
    alice.send(f"/quit {evil}")
    received = "\n".join(bob.lines())
    assert "\x1b" not in received and "\x07" not in received and "\x08" not in received
    assert received.count("red") == 5


def test_controlOnlyLineIgnored(server):
    """
    A line that is empty once cleaned (blank, or only escapes) sends nothing.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.sendBytes(b"\n   \r\n\x1b[2J\n")
    assert bob.lines() == [] and alice.lines() == []


def test_overlongLineRejectedConnectionUsable(server):
    """
    A line over the limit gets an error and is not delivered; the lines around
    it, even in the same packet, are delivered; the connection stays usable.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    huge = b"x" * (MAX_LINE_BYTES + 10)
    alice.sendBytes(b"before\n" + huge + b"\nafter\n")
    assert bob.lines() == ["#lobby <alice> before", "#lobby <alice> after"]
    assert alice.lines() == [f"!!! line too long: at most {MAX_LINE_BYTES} bytes; it was not delivered"]
    assert alice.transport.connected


def test_overlongLineInPieces(server):
    """
    An over-long line arriving in many packets is refused once and skipped up
    to its end; the next line goes through.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    for _ in range(10):
        alice.sendBytes(b"y" * 1000)
    alice.sendBytes(b"yyy\nok now\n")
    assert bob.lines() == ["#lobby <alice> ok now"]
    assert len(alice.lines()) == 1


def test_lineAtLimitAccepted(server):
    """
    A line of exactly the maximum length is delivered.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.sendBytes(b"z" * MAX_LINE_BYTES + b"\n")
    assert bob.lines() == ["#lobby <alice> " + "z" * MAX_LINE_BYTES]


def test_slowReaderDroppedOthersServed(server):
    """
    A client whose transport stops taking data is cut off once its send
    queue passes the limit, while the others keep getting every line.
    """
    small = type(server)(limits=Limits(sendQueueBytes=4096, sendQueueGrace=0, floodBurst=1000))
    alice, bob, carol = small.connect("alice"), small.connect("bob"), small.connect("carol")
    bob.proto.conn.outbox.pauseProducing()
    alice.lines(), carol.lines()
    for i in range(200):
        alice.send(f"line {i} " + "p" * 40)
    assert bob.transport.disconnected
    received = carol.lines()
    # An in-memory transport reports the loss at once (a real one a moment
    # later), so the quit shows up among the messages.
    received.remove("-- #lobby bob has quit (send queue exceeded)")
    assert received == [f"#lobby <alice> line {i} " + "p" * 40 for i in range(200)]


def test_lineAtLimitWithCrLfAccepted(server):
    """
    The limit excludes the line ending: a full-length line ending in CRLF (as
    telnet sends) is delivered too.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.sendBytes(b"w" * MAX_LINE_BYTES + b"\r\n")
    assert bob.lines() == ["#lobby <alice> " + "w" * MAX_LINE_BYTES]
    alice.sendBytes(b"w" * (MAX_LINE_BYTES + 1) + b"\r\n")
    assert bob.lines() == []
    assert alice.lines()[-1].startswith("!!! line too long")


def test_partNamesRoomWithoutHash(server):
    """
    /part's first word names the room, with or without #; a room one is not
    in is an error and the current room is kept.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/join #dev")
    alice.lines(), bob.lines()
    alice.send("/part nosuch bye")
    assert alice.lines() == ["!!! you are not in #nosuch"]
    alice.send("/part lobby bye all")
    assert alice.lines() == ["=== left #lobby", "=== now talking in #dev"]
    assert bob.lines() == ["-- #lobby alice has left (bye all)"]


def test_topicCleared(server):
    """
    /topic - clears the topic and announces it.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/topic cake")
    alice.lines(), bob.lines()
    alice.send("/topic -")
    assert alice.lines() == ["=== #lobby topic cleared"]
    assert bob.lines() == ["-- #lobby alice cleared the topic"]


def test_unchangedTopicIsNotAnnounced(server):
    """
    Clearing a topic that is not there, or setting the one there is, changes
    nothing: the user is told so, and the room hears nothing (nor does its
    history keep anything), so it cannot be used to fill either.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.send("/topic -")
    assert alice.lines() == ["!!! #lobby has no topic"]
    alice.send("/topic cake")
    alice.lines(), bob.lines()
    alice.send("/topic cake")
    assert alice.lines() == ["!!! #lobby topic is already: cake"]
    assert bob.lines() == []


def test_pingIsABarrier(server):
    """
    /ping answers with its text, before and after choosing a nickname; before,
    the prompt is repeated.
    """
    client = server.connect()
    client.lines()
    client.send("/ping 42")
    assert client.lines() == ["=== pong 42", "??? Choose a nickname:"]
    client.send("zoe")
    client.lines()
    client.send("/ping")
    assert client.lines() == ["=== pong"]


def test_extraWordsRefused(server):
    """
    /join and /who take one room name (and /who a page number); more words
    are a usage error rather than a silent guess.
    """
    alice = server.connect("alice")
    alice.send("/join #bad room")
    assert alice.lines() == ["!!! usage: /join #ROOM"]
    alice.send("/who #lobby extra")
    assert alice.lines() == [
        "!!! usage: /who [#ROOM] [PAGE], PAGE a number from 1 to 999999999"]
    alice.send("/who #lobby -1")
    assert alice.lines() == [
        "!!! usage: /who [#ROOM] [PAGE], PAGE a number from 1 to 999999999"]
    alice.send("/who #lobby 2 3")
    assert alice.lines() == ["!!! usage: /who [#ROOM] [PAGE]"]
    alice.send("/who nosuch")
    assert alice.lines() == ["!!! no such room: #nosuch"]


def test_awayWhoisAndAliases(server):
    """
    /away is told to whoever messages you and shown by /who; /whois says
    who someone is; /names and /list are /who and /rooms; /part of a room
    one is not in says so.
    """
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    bob.send("/away lunch")
    assert bob.lines() == ["=== you are marked away: lunch"]
    server.clock.advance(90)
    alice.send("/msg bob back soon?")
    assert alice.lines() == ["=== to bob: back soon?", "=== bob is away: lunch"]
    assert bob.lines() == ["*alice* back soon?"]
    alice.send("/names")
    assert alice.lines() == ["=== #lobby members (2): alice bob", "=== #lobby away: bob (lunch)"]
    alice.send("/whois bob")
    assert alice.lines() == ["=== bob: not identified; in #lobby; idle 1m 30s; away: lunch"]
    alice.send("/whois zed")
    assert alice.lines() == ["!!! no such user: zed"]
    bob.send("/away")
    assert bob.lines() == ["=== you are back"]
    bob.send("/away")
    assert bob.lines() == ["=== you were not away"]
    alice.send("/who")
    assert alice.lines() == ["=== #lobby members (2): alice bob"]
    alice.send("/list")
    assert alice.lines() == ["=== 1 room", "=== #lobby (2)"]
    alice.send("/part #dev")
    assert alice.lines() == ["!!! you are not in #dev"]


def test_lobbyKeepsItsTopicWhenEmpty(server):
    """
    The lobby keeps its topic while nobody is in it: the next to arrive is
    shown it.
    """
    alice = server.connect("alice")
    alice.send("/topic release on Friday")
    alice.send("/quit")
    bob = server.connect()
    bob.send("bob")
    assert bob.lines()[-3:] == ["=== joined #lobby", "=== #lobby topic: release on Friday",
                                "=== #lobby members (1): bob"]


def test_bytesFfThatNegotiateNothingAreTextAndCostNoLines():
    """
    0xFF bytes outside a telnet negotiation (an nc user can send anything)
    are invalid UTF-8 like any other, shown as U+FFFD, and cost what the
    line they are in costs, not a line each: a line of them does not stop
    its sender.
    """
    from support import MemoryServer

    server = MemoryServer(limits=Limits(floodRate=1, floodBurst=5))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.lines()
    alice.sendBytes(b"\xff" * 2048 + b"\n")
    alice.sendBytes(b"odd \xff end\n")
    assert bob.lines() == ["#lobby <alice> " + "\ufffd" * 1024,
                           "#lobby <alice> odd \ufffd end"]
    assert alice.transport.producerState == "producing"


def test_strayTelnetVerbKeepsTheLineEnd(server):
    """
    A line that ends in 0xFF 0xFE (telnet's IAC DONT, but with no option
    after it) still ends there: the next line is a line of its own.
    """
    alice = server.connect("alice")
    alice.lines()
    alice.sendBytes(b"/away gone\xff\xfe\n/join #odd\n")
    got = alice.lines()
    assert got[0] == "=== you are marked away: gone\ufffd\ufffd", got
    assert got[1] == "=== joined #odd"

"""
The IRC front end, in memory: the real core, fan-out and both front ends,
each client on its own StringTransport.  Every test checks the exact lines
each client gets, so that a line sent twice, to the wrong person or out of
order fails it.
"""

import base64
import re

import pytest
from twisted.internet.address import IPv4Address

from chatd.edge.limits import Limits
from chatd.irc.protocol import IrcFactory
from chatd.web.protocol import WebFactory
from ircsupport import IrcMemoryServer
from support import MemoryAccounts, MemoryHistory, guessedWrongFromLoopback
from websupport import Browser

S = ":irc.chatd"


@pytest.fixture
def server():
    return IrcMemoryServer()


def test_registrationBurst(server):
    """
    NICK and USER register: 001-004, ISUPPORT telling chatd's rules, and the
    MOTD; nobody is put in any channel.
    """
    alice = server.connectIrc()
    alice.send("NICK alice")
    assert alice.lines() == []
    alice.send("USER al 0 * :Alice Liddell")
    lines = alice.lines()
    assert [line.split()[1] for line in lines] == [
        "001", "002", "003", "004", "005", "005", "375", "372", "372", "372", "376"]
    assert lines[0] == f"{S} 001 alice :Welcome to the chatd IRC Network alice!~al@chatd"
    tokens = " ".join(lines[4:6]).split()
    for token in ["CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=16", "CHANNELLEN=33",
                  "TOPICLEN=390", "PREFIX=(o)@", "CHANMODES=bq,,,", "NETWORK=chatd",
                  "UTF8ONLY"]:
        assert token in tokens
    assert server.core.users["alice"].rooms == {}


def test_noMotd():
    """
    Without a MOTD, 422 says so.
    """
    server = IrcMemoryServer(irc={"motd": []})
    alice = server.connectIrc()
    alice.send("NICK alice")
    alice.send("USER al 0 * :Alice")
    assert alice.lines()[-1] == f"{S} 422 alice :MOTD File is missing"


def test_pingBeforeRegistration(server):
    """
    PING is answered before registration; other commands get 451.
    """
    client = server.connectIrc()
    client.send("PING :token")
    client.send("JOIN #room")
    assert client.lines() == [f"{S} PONG irc.chatd token",
                              f"{S} 451 * :You have not registered"]


def test_nicknameErrors(server):
    """
    A taken nickname is 433 and an invalid one 432, before and after
    registration; NICK without one is 431; a failed change keeps the old
    nickname.
    """
    server.connectIrc("alice")
    server.connect("bob")
    carol = server.connectIrc()
    carol.send("NICK Alice")
    carol.send("NICK bob")
    carol.send("NICK 9lives")
    carol.send("NICK")
    assert carol.lines() == [
        f"{S} 433 * Alice :Nickname is already in use",
        f"{S} 433 * bob :Nickname is already in use",
        f"{S} 432 * 9lives :Erroneous nickname",
        f"{S} 431 * :No nickname given"]
    carol.send("NICK carol")
    carol.send("USER c 0 * :Carol")
    carol.lines()
    carol.send("NICK alice")
    assert carol.lines() == [f"{S} 433 carol alice :Nickname is already in use"]
    assert server.core.users["carol"].nick == "carol"


def test_userErrors(server):
    """
    USER with too few parameters is 461; USER again is 462.
    """
    client = server.connectIrc()
    client.send("USER only")
    assert client.lines() == [f"{S} 461 * USER :Not enough parameters"]
    alice = server.connectIrc("alice")
    alice.send("USER al 0 * :Again")
    assert alice.lines() == [f"{S} 462 alice :You may not reregister"]


def test_capNegotiationHoldsRegistration(server):
    """
    CAP LS 302 lists the capabilities with values; registration waits for
    CAP END; REQ of an unknown capability is NAKed whole.
    """
    client = server.connectIrc()
    client.send("CAP LS 302")
    client.send("NICK alice")
    client.send("USER al 0 * :Alice")
    assert client.lines() == [f"{S} CAP * LS :server-time message-tags echo-message "
                              "multi-prefix userhost-in-names batch account-tag away-notify"]
    client.send("CAP REQ :server-time bogus")
    client.send("CAP REQ :echo-message")
    assert client.lines() == [f"{S} CAP alice NAK :server-time bogus",
                              f"{S} CAP alice ACK echo-message"]
    client.send("CAP END")
    assert client.lines()[0].startswith(f"{S} 001 alice ")


def test_joinAndNames(server):
    """
    JOIN: the joiner gets its own JOIN, the topic (332) and the names
    (353/366, the creator of a line user's room shown as @); each other
    member, IRC or line, is told once.
    """
    alice = server.connectIrc("alice")
    bob = server.connect("bob")
    bob.send("/join #dev")
    bob.send("/topic all about dev")
    bob.lines()
    alice.send("JOIN #dev")
    assert alice.lines() == [
        ":alice!~alice@chatd JOIN #dev",
        f"{S} 332 alice #dev :all about dev",
        f"{S} 353 alice = #dev :@bob alice",
        f"{S} 366 alice #dev :End of /NAMES list."]
    assert bob.lines() == ["-- #dev alice has joined"]
    carol = server.connectIrc("carol")
    carol.send("JOIN #dev,#other")
    carol.lines()
    assert alice.lines() == [":carol!~carol@chatd JOIN #dev"]
    assert bob.lines() == ["-- #dev carol has joined"]


def test_joinErrors(server):
    """
    A name chatd does not allow is 403; joining twice says nothing.
    """
    alice = server.connectIrc("alice")
    alice.send("JOIN #bad!name")
    alice.send("JOIN nohash")
    assert alice.lines() == [f"{S} 403 alice #bad!name :No such channel",
                             f"{S} 403 alice nohash :No such channel"]
    alice.send("JOIN #a")
    alice.lines()
    alice.send("JOIN #a")
    assert alice.lines() == []


def test_tooManyChannelsNamesTheChannel(server):
    """
    A JOIN past the most rooms a user may be in is 405 naming the channel
    not joined (RFC 2812), not "*".
    """
    alice = server.connectIrc("alice")
    maxRooms = server.core.maxRooms
    for i in range(maxRooms):
        alice.send(f"JOIN #r{i}")
        # (Within the flood limits.)
        server.clock.advance(1)
    alice.lines()
    alice.send("JOIN #onetoomany")
    assert alice.lines() == [
        f"{S} 405 alice #onetoomany :You have joined too many channels ({maxRooms})"]


def test_passwordDelayIsSaidAsTheLineProtocolSaysIt():
    """
    The notice that a password is checked later reads as the line
    protocol's and the README's ("checked in 4s"): never "1 seconds".
    """
    from chatd.core import events
    from chatd.irc.wire import IrcWire
    from chatd.web.wire import WebWire

    for seconds, said in ((1, "1s"), (4, "4s"), (90, "1m 30s")):
        event = events.PasswordDelayed("boss", seconds)
        assert IrcWire().personal(event, "me").endswith(
            f"this one for boss is checked in {said}\r\n".encode())
        assert f"boss is checked in {said}".encode() in WebWire.encode(event)


def test_roomMessages(server):
    """
    A PRIVMSG to a room reaches every other member once, IRC and line
    users alike, and not the sender; a line user's message reaches IRC
    users as a PRIVMSG.
    """
    alice, carol = server.connectIrc("alice"), server.connectIrc("carol")
    bob = server.connect("bob")
    outsider = server.connectIrc("dave")
    for c in (alice, carol):
        c.send("JOIN #dev")
    bob.send("/join #dev")
    for c in (alice, carol, bob, outsider):
        c.lines()
    alice.send("PRIVMSG #dev :hello all")
    alice.send("PRIVMSG #dev :second")
    assert alice.lines() == []
    assert carol.lines() == [":alice!~alice@chatd PRIVMSG #dev :hello all",
                             ":alice!~alice@chatd PRIVMSG #dev second"]
    assert bob.lines() == ["#dev <alice> hello all", "#dev <alice> second"]
    bob.send("hi from the line")
    assert alice.lines() == [":bob!~bob@chatd PRIVMSG #dev :hi from the line"]
    assert carol.lines() == [":bob!~bob@chatd PRIVMSG #dev :hi from the line"]
    assert outsider.lines() == []


def test_actions(server):
    """
    A line user's /me is a CTCP ACTION for IRC users, and an IRC user's
    CTCP ACTION is an action for line users; other CTCPs, and any in a
    NOTICE, are not passed on.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    alice.send("JOIN #lobby")
    alice.lines(), bob.lines()
    bob.send("/me waves")
    assert alice.lines() == [":bob!~bob@chatd PRIVMSG #lobby :\x01ACTION waves\x01"]
    alice.send("PRIVMSG #lobby :\x01ACTION waves back\x01")
    assert bob.lines() == ["* #lobby alice waves back"]
    alice.send("PRIVMSG bob :\x01VERSION\x01")
    assert bob.lines() == [] and alice.lines() == []
    # A private action reaches a line user as a message "* alice ...",
    # and an IRC user as an ACTION again, as does a line user's /me in /msg.
    carol = server.connectIrc("carol")
    carol.lines()
    alice.send("PRIVMSG bob :\x01ACTION nods\x01")
    alice.send("PRIVMSG carol :\x01ACTION nods\x01")
    bob.send("/msg carol /me bows")
    assert bob.lines() == ["*alice* * alice nods", "=== to carol: * bob bows"]
    assert carol.lines() == [":alice!~alice@chatd PRIVMSG carol :\x01ACTION nods\x01",
                             ":bob!~bob@chatd PRIVMSG carol :\x01ACTION bows\x01"]
    # A CTCP in a NOTICE is a CTCP reply, not passed on either: an ACTION
    # there lost its notice mark (which bots rely on to avoid loops).
    for target in ("#lobby", "bob"):
        alice.send(f"NOTICE {target} :\x01ACTION waves quietly\x01")
    assert bob.lines() == [] and alice.lines() == []


def test_emptyActionRefused(server):
    """
    A CTCP ACTION with no text is refused as a PRIVMSG with none is (412),
    to a room or a nickname: nothing empty reaches anyone.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    alice.send("JOIN #lobby")
    alice.lines(), bob.lines()
    for target in ("#lobby", "bob"):
        for action in ("\x01ACTION\x01", "\x01ACTION \x01", "\x01ACTION   \x01"):
            alice.send(f"PRIVMSG {target} :{action}")
            assert alice.lines() == [":irc.chatd 412 alice :No text to send"]
    assert bob.lines() == []


def test_privateMessages(server):
    """
    A private message reaches its target alone, from IRC to line, line to
    IRC and IRC to IRC; an unknown target is 401.
    """
    alice, carol = server.connectIrc("alice"), server.connectIrc("carol")
    bob = server.connect("bob")
    alice.send("PRIVMSG bob :psst")
    assert bob.lines() == ["*alice* psst"]
    bob.send("/msg alice back")
    assert alice.lines() == [":bob!~bob@chatd PRIVMSG alice back"]
    assert bob.lines() == ["=== to alice: back"]
    alice.send("PRIVMSG carol :just you")
    assert carol.lines() == [":alice!~alice@chatd PRIVMSG carol :just you"]
    assert bob.lines() == []
    alice.send("PRIVMSG nobody :hello?")
    assert alice.lines() == [f"{S} 401 alice nobody :No such nick/channel"]
    alice.send("NOTICE nobody :hello?")
    assert alice.lines() == []


def test_notices(server):
    """
    A NOTICE stays a notice in the core: IRC users get a NOTICE, line users
    see the sender between dashes, in a room or privately; a line user's
    message is never one.  Nothing answers a notice, not even an away
    reply.
    """
    alice, carol = server.connectIrc("alice"), server.connectIrc("carol")
    bob = server.connect("bob")
    for c in (alice, carol):
        c.send("JOIN #dev")
    bob.send("/join #dev")
    for c in (alice, carol, bob):
        c.lines()
    alice.send("NOTICE #dev :the build is green")
    assert alice.lines() == []
    assert carol.lines() == [":alice!~alice@chatd NOTICE #dev :the build is green"]
    assert bob.lines() == ["#dev -alice- the build is green"]
    carol.send("AWAY :lunch")
    carol.lines()
    alice.send("NOTICE carol :ping me later")
    alice.send("NOTICE bob :and you")
    assert carol.lines() == [":alice!~alice@chatd NOTICE carol :ping me later"]
    assert bob.lines() == ["-alice- and you"]
    assert alice.lines() == []
    alice.send("PRIVMSG carol :hello")
    assert alice.lines() == [f"{S} 301 alice carol lunch"]


def test_messageErrors(server):
    """
    No recipient is 411, no text 412, a room one is not in 404, a room
    that does not exist 401.
    """
    alice, bob = server.connectIrc("alice"), server.connectIrc("bob")
    bob.send("JOIN #theirs")
    alice.send("PRIVMSG")
    alice.send("PRIVMSG #theirs")
    alice.send("PRIVMSG #theirs :hi")
    alice.send("PRIVMSG #nowhere :hi")
    assert alice.lines() == [
        f"{S} 411 alice :No recipient given (PRIVMSG)",
        f"{S} 412 alice :No text to send",
        f"{S} 404 alice #theirs :Cannot send to channel (not a member)",
        f"{S} 401 alice #nowhere :No such nick/channel"]


def test_echoMessageAndServerTime():
    """
    With echo-message the sender gets its message back; with server-time
    every message carries the time it was said, and clients without it do
    not.
    """
    server = IrcMemoryServer()
    server.clock.advance(1700000000)
    alice = server.connectIrc()
    alice.send("CAP REQ :echo-message server-time")
    alice.send("NICK alice")
    alice.send("USER a 0 * :A")
    alice.send("CAP END")
    bob = server.connectIrc("bob")
    alice.send("JOIN #t")
    bob.send("JOIN #t")
    alice.lines(), bob.lines()
    bob.send("PRIVMSG #t :hi")
    assert alice.lines() == ["@time=2023-11-14T22:13:20.000Z :bob!~bob@chatd PRIVMSG #t hi"]
    alice.send("PRIVMSG #t :yo")
    assert alice.lines() == ["@time=2023-11-14T22:13:20.000Z :alice!~a@chatd PRIVMSG #t yo"]
    assert bob.lines() == [":alice!~a@chatd PRIVMSG #t yo"]


@pytest.mark.parametrize("caps", ["", "echo-message"])
def test_privateMessageToSelfShownOnce(caps):
    """
    A private message to oneself is shown once, with echo-message or
    without: the copy received is the echo (a client that asked for
    echo-message shows what comes back, and would show it twice).
    """
    server = IrcMemoryServer()
    alice = _withCaps(server, "alice", caps) if caps else server.connectIrc("alice")
    alice.lines()
    alice.send("PRIVMSG alice :note to self")
    alice.send("PRIVMSG ALICE :shouted")
    assert alice.lines() == [":alice!~alice@chatd PRIVMSG alice :note to self",
                             ":alice!~alice@chatd PRIVMSG alice shouted"]


def test_eventEncodedOncePerWire(server, monkeypatch):
    """
    The fan-out encodes a room message once for all IRC users (and once
    for all line users), not once per recipient.
    """
    clients = [server.connectIrc(f"user{i}") for i in range(5)]
    for c in clients:
        c.send("JOIN #big")
    for c in clients:
        c.lines()
    calls = []
    wire = server.irc.wire
    original = wire.encode
    monkeypatch.setattr(wire, "encode", lambda e: calls.append(e) or original(e))
    clients[0].send("PRIVMSG #big :once")
    assert len(calls) == 1
    assert [c.lines() for c in clients[1:]] == [[":user0!~user0@chatd PRIVMSG #big once"]] * 4


def test_longLineTextIsSplit(server):
    """
    A line user's long message reaches IRC users whole, in several lines of
    at most 512 bytes (not counting the source in front), cut between words.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    alice.send("JOIN #lobby")
    alice.lines()
    text = " ".join(f"w{i}" for i in range(400))
    bob.send(text)
    lines = alice.lines()
    assert len(lines) > 1
    source = ":bob!~bob@chatd "
    assert all(line.startswith(source) and len(line[len(source):].encode()) + 2 <= 512
               for line in lines)
    assert " ".join(line.split(" :", 1)[1] for line in lines) == text


def test_partAndQuit(server):
    """
    PART is echoed to the parter and told to the others; QUIT is told once
    to someone sharing two rooms, and the quitter gets ERROR and is closed.
    """
    alice, bob = server.connectIrc("alice"), server.connectIrc("bob")
    line = server.connect("carol")
    for room in ("#a", "#b"):
        alice.send(f"JOIN {room}")
        bob.send(f"JOIN {room}")
    line.send("/join #a")
    alice.lines(), bob.lines(), line.lines()
    alice.send("PART #b :bye b")
    assert alice.lines() == [":alice!~alice@chatd PART #b :bye b"]
    assert bob.lines() == [":alice!~alice@chatd PART #b :bye b"]
    alice.send("JOIN #b")
    alice.lines(), bob.lines()
    alice.send("QUIT :off to bed")
    # (No address: the README promises none is ever shown.)
    assert alice.lines() == ["ERROR :Closing link: (alice@chatd) [Quit: off to bed]"]
    assert not alice.transport.connected
    assert bob.lines() == [":alice!~alice@chatd QUIT :Quit: off to bed"]
    assert line.lines() == ["-- #a alice has quit (Quit: off to bed)"]
    assert "alice" not in server.core.users


def test_partErrors(server):
    """
    Leaving a room one is not in is 442; one that does not exist 403.
    """
    alice, bob = server.connectIrc("alice"), server.connectIrc("bob")
    bob.send("JOIN #x")
    alice.send("PART #x")
    alice.send("PART #none")
    assert alice.lines() == [f"{S} 442 alice #x :You're not on that channel",
                             f"{S} 403 alice #none :No such channel"]


def test_renameSeenOnceByEveryone(server):
    """
    A nickname change is echoed to the renamer, and shown once to someone
    sharing two rooms with them, even from the line protocol.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    for room in ("#a", "#b"):
        alice.send(f"JOIN {room}")
        bob.send(f"/join {room}")
    alice.lines(), bob.lines()
    bob.send("/nick robert")
    assert alice.lines() == [":bob!~bob@chatd NICK robert"]
    assert bob.lines() == ["=== you are now robert"]
    alice.send("NICK alicia")
    assert alice.lines() == [":alice!~alice@chatd NICK alicia"]
    assert bob.lines() == ["-- #a alice is now known as alicia",
                           "-- #b alice is now known as alicia"]


def test_renameAfterArrivalsNotYetAnnouncedSeenOnce():
    """
    A rename in the turn of arrivals not yet announced in rooms it is shown
    in (the renamer's own, typed ahead; another user's) reaches an IRC
    member of both rooms once, after those arrivals: it came twice, the
    second room's JOIN between the copies, under the name already changed.
    """
    server = IrcMemoryServer(announceTogether=True)
    alice = server.connectIrc("alice")
    alice.send("JOIN #a")
    alice.send("JOIN #b")
    server.clock.advance(0)
    alice.lines()
    bob = server.connect()
    bob.sendBytes(b"bob\n/join #a\n/join #b\n/nick robert\n")
    server.clock.advance(0)
    assert alice.lines() == [":bob!~bob@chatd JOIN #a", ":bob!~bob@chatd JOIN #b",
                             ":bob!~bob@chatd NICK robert"]
    carol = server.connect("carol")
    server.clock.advance(0)
    alice.lines()
    carol.send("/join #b")
    bob.send("/nick bobby")
    server.clock.advance(0)
    assert alice.lines() == [":carol!~carol@chatd JOIN #b",
                             ":robert!~robert@chatd NICK bobby"]


def test_topic(server):
    """
    TOPIC shows (331/332) and sets the topic; the setter and every member
    see TOPIC, line users their own line.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    alice.send("JOIN #lobby")
    alice.lines(), bob.lines()
    alice.send("TOPIC #lobby")
    alice.send("TOPIC #lobby :new topic")
    assert alice.lines() == [f"{S} 331 alice #lobby :No topic is set",
                             ":alice!~alice@chatd TOPIC #lobby :new topic"]
    assert bob.lines() == ["-- #lobby alice set the topic: new topic"]
    bob.send("/topic from the line")
    assert alice.lines() == [":bob!~bob@chatd TOPIC #lobby :from the line"]
    alice.send("TOPIC #lobby")
    assert alice.lines() == [f"{S} 332 alice #lobby :from the line"]


def test_whoWhoisListNames(server):
    """
    WHO, WHOIS, LIST and NAMES show IRC, line and web users alike, each
    other front end's users named as such in the real name.
    """
    alice = server.connectIrc("alice", username="al")
    server.connect("bob")
    web = WebFactory(server.core, server.gate)
    Browser(web, IPv4Address("TCP", "127.0.0.1", 45000)).send(type="nick", nick="carol")
    alice.send("JOIN #lobby")
    alice.send("AWAY :lunch")
    alice.lines()
    alice.send("WHO #lobby")
    assert alice.lines() == [
        f"{S} 352 alice #lobby ~bob chatd irc.chatd bob H :0 chatd line user",
        f"{S} 352 alice #lobby ~carol chatd irc.chatd carol H :0 chatd web user",
        f"{S} 352 alice #lobby ~al chatd irc.chatd alice G :0 Real alice",
        f"{S} 315 alice #lobby :End of /WHO list."]
    alice.send("WHOIS bob")
    assert alice.lines() == [
        f"{S} 311 alice bob ~bob chatd * :chatd line user",
        f"{S} 319 alice bob #lobby",
        f"{S} 312 alice bob irc.chatd chatd",
        f"{S} 317 alice bob 0 0 :seconds idle, signon time",
        f"{S} 318 alice bob :End of /WHOIS list."]
    alice.send("WHOIS nobody")
    assert alice.lines() == [f"{S} 401 alice nobody :No such nick/channel",
                             f"{S} 318 alice nobody :End of /WHOIS list."]
    alice.send("LIST")
    assert alice.lines() == [f"{S} 321 alice Channel :Users  Name",
                             f"{S} 322 alice #lobby 3 :",
                             f"{S} 323 alice :End of /LIST"]
    alice.send("NAMES #lobby")
    assert alice.lines() == [f"{S} 353 alice = #lobby :bob carol alice",
                             f"{S} 366 alice #lobby :End of /NAMES list."]
    # A list of one name is a trailing parameter too, as clients read it.
    alice.send("JOIN #solo")
    alice.send("NAMES #solo")
    assert alice.lines()[-2:] == [f"{S} 353 alice = #solo :@alice",
                                  f"{S} 366 alice #solo :End of /NAMES list."]


def test_away(server):
    """
    AWAY sets (306) and clears (305); a PRIVMSG to someone away, IRC or
    line user, gets 301.
    """
    alice, carol = server.connectIrc("alice"), server.connectIrc("carol")
    alice.send("AWAY :at lunch")
    assert alice.lines() == [f"{S} 306 alice :You have been marked as being away"]
    carol.send("PRIVMSG alice :there?")
    assert carol.lines() == [f"{S} 301 carol alice :at lunch"]
    alice.send("AWAY")
    assert alice.lines() == [":carol!~carol@chatd PRIVMSG alice there?",
                             f"{S} 305 alice :You are no longer marked as being away"]
    bob = server.connect("bob")
    bob.send("/away gone fishing")
    bob.lines()
    carol.send("PRIVMSG bob :hi")
    assert carol.lines() == [f"{S} 301 carol bob :gone fishing"]
    assert bob.lines() == ["*carol* hi"]


def test_unknownCommand(server):
    """
    An unknown command is 421.
    """
    alice = server.connectIrc("alice")
    alice.send("FROB x")
    assert alice.lines() == [f"{S} 421 alice FROB :Unknown command"]


def test_lineTooLong(server):
    """
    A line over 512 bytes is refused with 417, and the lines after it are
    read.
    """
    alice = server.connectIrc("alice")
    alice.sendBytes(b"PRIVMSG #x :" + b"a" * 600 + b"\r\nPING :after\r\n")
    assert alice.lines() == [f"{S} 417 alice :Input line was too long",
                             f"{S} PONG irc.chatd after"]


def test_lfAndEdgeCleaning(server):
    """
    Lines may end in LF alone; control characters and escapes are removed
    by the edge before anyone sees them.
    """
    alice, bob = server.connectIrc("alice"), server.connect("bob")
    alice.send("JOIN #lobby")
    alice.lines(), bob.lines()
    alice.sendBytes(b"PRIVMSG #lobby :red \x1b[31mtext\x07\n")
    assert bob.lines() == ["#lobby <alice> red text"]


def test_kickNeedsModerator(server):
    """
    KICK from someone who may not moderate the room (not its creator) is
    482, and nobody is kicked.
    """
    alice, bob = server.connectIrc("alice"), server.connectIrc("bob")
    bob.send("JOIN #r")
    alice.send("JOIN #r")
    alice.lines(), bob.lines()
    alice.send("KICK #r bob :out")
    assert alice.lines() == [f"{S} 482 alice #r :You're not channel operator"]
    assert bob.lines() == []


def _identified(server, nick, password="a-good-password"):
    """
    An IRC client that logs in with SASL PLAIN as the registered C{nick}.
    """
    server.core.accounts.passwords[nick] = password
    client = server.connectIrc()
    client.send("CAP REQ :sasl")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE " + base64.b64encode(f"\0{nick}\0{password}".encode()).decode())
    client.send("CAP END")
    return client


def test_saslPlain():
    """
    SASL PLAIN proves a registered nickname at login: 900 and 903, and the
    user is identified; a wrong password is 904 and registration goes on
    unidentified.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    alice = _identified(server, "alice")
    lines = alice.lines()
    assert lines[:4] == [f"{S} CAP * ACK sasl", "AUTHENTICATE +",
                         f"{S} 900 alice alice!~alice@chatd alice :You are now logged in as alice",
                         f"{S} 903 alice :SASL authentication successful"]
    assert lines[4].startswith(f"{S} 001 alice ")
    assert server.core.users["alice"].identified
    server.core.accounts.passwords["bob"] = "bobs-password"
    bob = server.connectIrc()
    bob.send("CAP REQ :sasl")
    bob.send("AUTHENTICATE PLAIN")
    bob.send("AUTHENTICATE " + base64.b64encode(b"\0bob\0wrong-password").decode())
    assert bob.lines()[-1] == f"{S} 904 * :SASL authentication failed"
    # Proving bob's password to act as alice fails too (RFC 4616); acting
    # as oneself, named again, is fine.
    mallory = server.connectIrc()
    mallory.send("CAP REQ :sasl")
    mallory.send("AUTHENTICATE PLAIN")
    mallory.send("AUTHENTICATE " + base64.b64encode(b"alice\0bob\0bobs-password").decode())
    assert mallory.lines()[-1] == f"{S} 904 * :SASL authentication failed"
    mallory.send("AUTHENTICATE PLAIN")
    mallory.send("AUTHENTICATE " + base64.b64encode(b"BOB\0bob\0bobs-password").decode())
    # (Before NICK and USER: the account names them, not "None".)
    assert mallory.lines()[-2:] == [
        f"{S} 900 * bob!~bob@chatd bob :You are now logged in as bob",
        f"{S} 903 * :SASL authentication successful"]


def test_ownerModeration():
    """
    An identified owner shows as @, kicks (every member sees KICK once,
    the kicked one included), bans (+b: whom it covers is kicked, seen by
    everyone) and mutes (+q); the muted member gets 404.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    alice = _identified(server, "alice")
    bob, carol = server.connectIrc("bob"), server.connect("carol")
    alice.send("JOIN #mine")
    bob.send("JOIN #mine")
    carol.send("/join #mine")
    alice.lines(), bob.lines(), carol.lines()
    bob.send("NAMES #mine")
    assert bob.lines()[0] == f"{S} 353 bob = #mine :@alice bob carol"
    alice.send("MODE #mine +q bob")
    assert alice.lines() == [":alice!~alice@chatd MODE #mine +q bob!*@*"]
    assert bob.lines() == [":alice!~alice@chatd MODE #mine +q bob!*@*"]
    bob.send("PRIVMSG #mine :can I talk?")
    assert bob.lines() == [f"{S} 404 bob #mine :Cannot send to channel (you are muted)"]
    assert carol.lines() == ["-- #mine alice muted bob"]
    alice.send("KICK #mine bob :bye")
    kick = ":alice!~alice@chatd KICK #mine bob bye"
    assert alice.lines() == [kick]
    assert bob.lines() == [kick]
    assert carol.lines() == ["-- #mine bob was kicked by alice (bye)"]
    alice.send("MODE #mine +b carol")
    assert alice.lines() == [":alice!~alice@chatd MODE #mine +b carol!*@*",
                             ":alice!~alice@chatd KICK #mine carol banned"]
    assert carol.lines() == ["-- #mine alice banned carol",
                             "-- #mine carol was kicked by alice (banned)", "=== left #mine"]
    alice.send("MODE #mine b")
    assert alice.lines() == [f"{S} 367 alice #mine carol!*@* alice 0",
                             f"{S} 368 alice #mine :End of channel ban list"]
    bob.send("JOIN #mine")
    bob.lines(), alice.lines()
    alice.send("MODE #mine +b bob")
    assert bob.lines() == [":alice!~alice@chatd MODE #mine +b bob!*@*",
                           ":alice!~alice@chatd KICK #mine bob banned"]


def test_timedRoomBanSaysItsTimeLeftAfterNick(server):
    """
    A client put out of a channel by a timed ban on its nickname is told
    the time left at JOIN (474) under the banned nickname and under
    another one alike.
    """
    boss, bob = server.connect("boss"), server.connectIrc("bob")
    boss.send("/join #den")
    bob.send("JOIN #den")
    boss.send("/ban bob 10m")
    server.clock.advance(60)
    bob.lines()
    bob.send("JOIN #den")
    assert bob.lines() == [f"{S} 474 bob #den :Cannot join channel (+b): "
                           "You are banned from #den for 540 more seconds"]
    bob.send("NICK other")
    bob.send("JOIN #den")
    assert bob.lines() == [":bob!~bob@chatd NICK other",
                           f"{S} 474 other #den :Cannot join channel (+b): "
                           "You are banned from #den for 540 more seconds"]


@pytest.mark.parametrize("rooms", [("#a", "#b"), ("#b", "#a")])
def test_quitOfAUserMutedInOneSharedChannelIsShownOnce(server, rooms):
    """
    A user muted in one of the channels a client shares with them quits
    with words: the client gets one QUIT, with the words the other channel
    heard, though the muted channel's quit (without them) is another line
    (found checking quits: the QUIT came twice); whichever channel the
    quitter joined first (the first channel's quit decided, without them).
    """
    boss = server.connect("boss")
    boss.send("/join #b")
    boss.send("/part #lobby")
    watcher = server.connectIrc("watcher")
    watcher.send("JOIN #a,#b")
    quitter = server.connect("quitter")
    for room in rooms:
        quitter.send(f"/join {room}")
    boss.send("/mute quitter")
    server.clock.advance(1)
    watcher.lines(), boss.lines()
    quitter.send("/quit bye")
    server.clock.advance(1)
    assert watcher.lines() == [":quitter!~quitter@chatd QUIT :Quit: bye"]
    assert boss.lines() == ["-- #b quitter has quit"]


def test_keepalive(server):
    """
    A silent client is PINGed, and closed if it stays silent; any line
    counts as an answer.
    """
    alice = server.connectIrc("alice")
    server.clock.advance(IrcFactory.PING_INTERVAL)
    assert alice.lines() == ["PING irc.chatd"]
    alice.send("PONG irc.chatd")
    server.clock.advance(IrcFactory.PING_INTERVAL)
    assert alice.lines() == ["PING irc.chatd"]
    assert alice.transport.connected
    server.clock.advance(IrcFactory.PING_INTERVAL)
    assert alice.lines() == ["ERROR :Closing link: Ping timeout: 240 seconds"]
    assert not alice.transport.connected


def test_closedConnectionLeaves(server):
    """
    A connection lost without QUIT leaves its rooms with a QUIT and frees
    its nickname.
    """
    alice, bob = server.connectIrc("alice"), server.connectIrc("bob")
    alice.send("JOIN #r")
    bob.send("JOIN #r")
    alice.lines(), bob.lines()
    alice.transport.loseConnection()
    assert bob.lines() == [":alice!~alice@chatd QUIT :connection closed"]
    assert "alice" not in server.core.users


def test_everyRefusalHasANumeric():
    """
    Every refusal the core can raise has an IRC rendering: a numeric and
    words, so that no refusal reaches an IRC client as a traceback.
    """
    import dataclasses

    from chatd.core import refusals as R
    from chatd.irc.refusals import reply

    retired = {R.Refusal}
    kinds = [k for k in vars(R).values()
             if isinstance(k, type) and issubclass(k, R.Refusal) and k not in retired]
    for kind in kinds:
        values = {f.name: ("#r" if f.type in ("str", str) else 1)
                  for f in dataclasses.fields(kind)}
        if "registered" in values or "fromAddress" in values:
            values.update({k: False for k in ("registered", "fromAddress") if k in values})
        code, params = reply(kind(**values), "PRIVMSG")
        assert len(code) == 3 and code.isdigit(), kind
        assert params and params[-1], kind


def test_historyOnJoin():
    """
    Joining a room shows its last lines once they are read, before what is
    said meanwhile; with server-time they carry their original time.
    """
    from support import MemoryHistory

    history = MemoryHistory()
    server = IrcMemoryServer(history=history)
    server.clock.advance(1700000000)
    bob = server.connect("bob")
    bob.send("before you came")
    history.answer()
    alice = server.connectIrc()
    alice.send("CAP REQ server-time")
    alice.send("NICK alice")
    alice.send("USER a 0 * :A")
    alice.send("CAP END")
    alice.lines()
    alice.send("JOIN #lobby")
    bob.send("while reading")
    assert alice.lines() == [
        ":alice!~a@chatd JOIN #lobby",
        f"{S} 353 alice = #lobby :bob alice",
        f"{S} 366 alice #lobby :End of /NAMES list."]
    history.answer()
    assert alice.lines() == [
        "@time=2023-11-14T22:13:20.000Z :bob!~bob@chatd PRIVMSG #lobby :before you came",
        "@time=2023-11-14T22:13:20.000Z :bob!~bob@chatd PRIVMSG #lobby :while reading"]


def test_joinOfARoomWithNothingStoredReadsNothing():
    """
    Joining a room the store holds nothing for asks it for no replay (an
    empty one shows nothing, not even a batch); a room with lines stored
    is replayed as before.
    """
    from test_history_commands import TellingHistory

    history = TellingHistory()
    server = IrcMemoryServer(history=history)
    bob = server.connect("bob")
    bob.send("said here")
    alice = server.connectIrc()
    alice.send("CAP REQ batch")
    alice.send("NICK alice")
    alice.send("USER a 0 * :A")
    alice.send("CAP END")
    alice.lines()
    alice.send("JOIN #quiet")
    assert history.read == []
    alice.send("JOIN #lobby")
    assert history.read == ["#lobby"]


def test_shutdownEndsWithError(server):
    """
    When the server shuts down, an IRC client's last line is ERROR, and
    its connection closes.
    """
    alice = server.connectIrc("alice")
    server.gate.shutDown()
    assert alice.lines() == ["ERROR :Server shutting down"]
    assert not alice.transport.connected


def test_bannedAddressIsRefusedAtRegistration():
    """
    An address banned from the server is told 465 and ERROR, and gets no
    nickname.
    """
    from chatd.core.bans import ADDRESS, Ban

    server = IrcMemoryServer()
    server.core.moderation.restoreBans([Ban(ADDRESS, "10.0.0.9", "", None, "spam", "op", 0)])
    client = server.connectIrc(host="10.0.0.9")
    client.send("NICK mallory")
    client.send("USER m 0 * :M")
    assert client.lines() == [f"{S} 465 mallory :You are banned from this server (spam)",
                              "ERROR :Closing link: You are banned from this server (spam)"]
    assert server.core.user("mallory") is None
    assert not client.transport.connected


def test_nobodyCanBeNickServ():
    """
    NickServ and the other service names are reserved on every front end:
    nobody can take one and be sent what IRC users send the services (their
    passwords, with /msg NickServ IDENTIFY), which the service answers.
    """
    accounts = MemoryAccounts()
    accounts.passwords["alice"] = "alices-password"
    server = IrcMemoryServer(accounts=accounts)
    mallory = server.connect()
    mallory.lines()
    for name in ("NickServ", "chanserv", "OperServ"):
        mallory.send(name)
        assert mallory.lines() == [f"!!! {name} is reserved", "??? Choose another nickname:"]
    mallory.send("mallory")
    ircMallory = server.connectIrc()
    ircMallory.send("NICK NickServ")
    ircMallory.send("USER m 0 * :M")
    assert [m.command for m in ircMallory.messages()] == ["432"]
    alice = server.connectIrc("alice_")
    alice.send("PRIVMSG NickServ :IDENTIFY alice alices-password")
    assert [m.command for m in alice.messages()] == ["900", "NICK"]
    assert server.core.user("alice").identified
    mallory.lines()
    assert not [line for line in mallory.lines() if "alices-password" in line]


@pytest.mark.parametrize("prove", ["PASS", "SASL"])
def test_passwordDelayNeverOutlastsTheLoginTimeout(prove):
    """
    After many wrong passwords from one address the owner's right one, given
    with PASS or SASL, waits up to a minute, as long as the login timeout:
    the timeout waits for the check, so the owner gets in (IRC was closed
    when the timeout came first; the line protocol waited).
    """
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    server = IrcMemoryServer(accounts=accounts, limits=Limits(loginTimeout=60))
    guessedWrongFromLoopback(server.core, "boss")
    owner = server.connectIrc()
    if prove == "PASS":
        owner.send("PASS boss-password")
    else:
        owner.send("CAP REQ :sasl")
        owner.send("AUTHENTICATE PLAIN")
        owner.send("AUTHENTICATE " + base64.b64encode(b"boss\0boss\0boss-password").decode())
        owner.send("CAP END")
    owner.send("NICK boss")
    owner.send("USER boss 0 * :Boss")
    owner.lines()
    server.clock.pump([1] * 61)
    assert "001" in [m.command for m in owner.messages()]
    assert server.core.user("boss").identified
    assert not owner.transport.disconnecting


_TAKE_ALICE = ("Nickname is registered: if it is yours, connect with its password (PASS or "
               "SASL) or /msg NickServ GHOST alice PASSWORD; whoever holds it is let go")


def test_registeredNicknameNeedsItsPassword():
    """
    A registered nickname is refused without proof (433, saying how), taken
    with PASS, and refused with a wrong PASS (464, then 433 as without
    proof, as after a failed SASL, so that the client may choose another
    nickname and register: IRC clients send no NICK after a 464).
    """
    accounts = MemoryAccounts()
    accounts.passwords["alice"] = "alices-password"
    server = IrcMemoryServer(accounts=accounts)
    client = server.connectIrc()
    client.send("NICK alice")
    client.send("USER al 0 * :A")
    assert client.lines() == [f"{S} 433 * alice :{_TAKE_ALICE}"]
    assert server.core.user("alice") is None
    wrong = server.connectIrc()
    wrong.send("PASS not-her-password")
    wrong.send("NICK alice")
    wrong.send("USER al 0 * :A")
    assert wrong.lines() == [f"{S} 464 * :Password incorrect", f"{S} 433 * alice :{_TAKE_ALICE}"]
    wrong.send("NICK alice_")
    assert wrong.lines()[0] == f"{S} 001 alice_ :Welcome to the chatd IRC Network alice_!~al@chatd"
    right = server.connectIrc()
    right.send("PASS alices-password")
    right.send("NICK alice")
    right.send("USER al 0 * :A")
    lines = right.lines()
    assert lines[0].startswith(f"{S} 001 alice ")
    assert server.core.user("alice").identified


def test_registeredNicknameOnceConnectedSaysNickServ():
    """
    Once connected, NICK of a registered nickname unproved is refused with
    a 433 that says what applies then, NickServ (PASS and SASL are for
    connecting): the nickname held by another or free, and nobody renamed.
    """
    accounts = MemoryAccounts()
    accounts.passwords["alice"] = "alices-password"
    server = IrcMemoryServer(accounts=accounts)
    bob = server.connectIrc("bob")
    take = ("Nickname is registered: if it is yours, /msg NickServ GHOST alice PASSWORD "
            "(or IDENTIFY alice PASSWORD); whoever holds it is let go")
    bob.send("NICK alice")
    assert bob.lines() == [f"{S} 433 bob alice :{take}"]
    holder = server.connectIrc()
    holder.send("PASS alices-password")
    holder.send("NICK alice")
    holder.send("USER al 0 * :A")
    bob.send("NICK alice")
    assert bob.lines() == [f"{S} 433 bob alice :{take}"]
    assert server.core.user("bob") is not None
    assert server.irc.clients["alice"].transport is holder.transport


def test_historyInABatch():
    """
    With the batch capability, the replayed lines come inside a
    chathistory batch, each tagged with it.
    """
    from support import MemoryHistory

    history = MemoryHistory()
    server = IrcMemoryServer(history=history)
    server.clock.advance(1700000000)
    bob = server.connect("bob")
    bob.send("one")
    bob.send("/me two")
    alice = server.connectIrc()
    alice.send("CAP REQ :batch server-time")
    alice.send("NICK alice")
    alice.send("USER a 0 * :A")
    alice.send("CAP END")
    alice.send("JOIN #lobby")
    alice.lines()
    history.answer()
    assert alice.lines() == [
        f"{S} BATCH +h1 chathistory #lobby",
        "@batch=h1;time=2023-11-14T22:13:20.000Z :bob!~bob@chatd PRIVMSG #lobby one",
        "@batch=h1;time=2023-11-14T22:13:20.000Z :bob!~bob@chatd PRIVMSG #lobby "
        ":\x01ACTION two\x01",
        f"{S} BATCH -h1"]


def test_bannedNicknameIsRefused():
    """
    A nickname banned from the server cannot register: 465 and ERROR.
    """
    from chatd.core.bans import NICK, Ban

    server = IrcMemoryServer()
    server.core.moderation.restoreBans([Ban(NICK, "troll", "", None, "", "op", 0)])
    client = server.connectIrc()
    client.send("NICK troll")
    client.send("USER t 0 * :T")
    assert client.lines() == [f"{S} 465 troll :You are banned from this server",
                              "ERROR :Closing link: You are banned from this server"]
    assert server.core.user("troll") is None


def test_serverBanClosesWithError():
    """
    A user an operator bans from the server is told why in ERROR, the
    last line, which IRC clients show as the reason they were disconnected
    (it was a NOTICE then a bare close); the time as the line protocol and
    the operator's /ban write it.
    """
    accounts = MemoryAccounts()
    accounts.passwords.update(boss="boss-password")
    server = IrcMemoryServer(accounts=accounts, operators=["boss"])
    troll = server.connectIrc("troll")
    boss = server.connect()
    boss.send("/nick boss boss-password")
    boss.send("/ban troll 2h flooding")
    assert troll.lines() == [
        "ERROR :Closing link: boss banned you from this server for 2h (flooding)"]
    assert not troll.transport.connected
    untimed = server.connectIrc("pest")
    boss.send("/ban pest")
    assert untimed.lines() == ["ERROR :Closing link: boss banned you from this server"]
    assert not untimed.transport.connected


def test_serverBanToldAsANoticeNotAChannelMode():
    """
    A server ban is told in its target's channels as a NOTICE from the
    server: a MODE +b there would be a channel ban that MODE #den b does
    not list.
    """
    accounts = MemoryAccounts()
    accounts.passwords.update(boss="boss-password")
    server = IrcMemoryServer(accounts=accounts, operators=["boss"])
    troll, watcher = server.connectIrc("troll"), server.connectIrc("watcher")
    for person in (troll, watcher):
        person.send("JOIN #den")
    boss = server.connect()
    boss.send("/nick boss boss-password")
    troll.lines(), watcher.lines()
    boss.send("/ban troll 2h flooding")
    assert watcher.lines() == [
        f"{S} NOTICE #den :boss banned troll from the server for 2h (flooding)",
        ":troll!~troll@chatd QUIT banned"]
    watcher.send("MODE #den b")
    assert watcher.lines() == [f"{S} 368 watcher #den :End of channel ban list"]


def test_aLostConnectionsQuitKeepsItsUserName():
    """
    The QUIT of a user whose connection was lost shows the user name it
    registered with, as its JOIN did (it was forgotten before the
    departure, told at the end of the turn, was written: ~nick instead).
    """
    server = IrcMemoryServer(announceTogether=True, coalesceTurns=True)
    alice = server.connectIrc("alice", username="realname")
    bob = server.connectIrc("bob")
    for client in (alice, bob):
        client.send("JOIN #x")
    server.clock.advance(0)
    bob.lines()
    alice.transport.loseConnection()
    server.clock.advance(0)
    assert bob.lines() == [":alice!~realname@chatd QUIT :connection closed"]
    server.clock.advance(60)
    carol = server.connectIrc("alice", username="carol")
    carol.send("JOIN #x")
    server.clock.advance(0)
    assert bob.lines() == [":alice!~carol@chatd JOIN #x"]


def test_outboxHoldAndFillRender(server):
    """
    What is delivered into a kept place of an IRC user's outbox (the
    broker's fan-out does that) is rendered as a direct send would be, in
    its place.
    """
    from chatd.core import events

    alice = server.connectIrc("alice")
    outbox = server.core.user("alice").outbox
    place = outbox.hold()
    outbox.send(b"after\r\n")
    assert alice.lines() == []
    outbox.fill(place, server.irc.wire.encode(events.PutOut("#r")))
    assert alice.lines() == [f"{S} KICK #r alice :a moderator put you out", "after"]


def test_creatorIsChannelOperator(server):
    """
    The creator of a channel is its operator while they stay (a core rule,
    shown as @ in NAMES, WHO and WHOIS): they kick, several nicknames at
    once or in room and nickname pairs, each KICK its own line.
    """
    alice, bob, carol = (server.connectIrc(n) for n in ("alice", "bob", "carol"))
    for client in (alice, bob, carol):
        client.send("JOIN #r")
    alice.lines(), bob.lines(), carol.lines()
    bob.send("NAMES #r")
    assert bob.lines() == [f"{S} 353 bob = #r :@alice bob carol",
                           f"{S} 366 bob #r :End of /NAMES list."]
    bob.send("WHO #r")
    assert [line.split()[8] for line in bob.lines()[:-1]] == ["H@", "H", "H"]
    bob.send("WHOIS alice")
    assert f"{S} 319 bob alice @#r" in bob.lines()
    alice.send("KICK #r,#r bob,carol :bye")
    assert alice.lines() == [":alice!~alice@chatd KICK #r bob bye",
                             ":alice!~alice@chatd KICK #r carol bye"]
    alice.send("KICK #r,#r bob")
    assert alice.lines() == [f"{S} 461 alice KICK :Not enough parameters"]


def test_namesOfSeveralChannels(server):
    """
    NAMES of several channels: their 353s, then one 366 naming them all
    (RFC 2812); a channel that does not exist adds nothing.
    """
    alice = server.connectIrc("alice")
    alice.send("JOIN #a,#b")
    alice.lines()
    alice.send("NAMES #a,#none,#b")
    assert alice.lines() == [f"{S} 353 alice = #a :@alice",
                             f"{S} 353 alice = #b :@alice",
                             f"{S} 366 alice #a,#none,#b :End of /NAMES list."]
    # In no channel, NAMES alone still ends (a trial: it had no answer).
    for name in ("#a", "#b", "#lobby"):
        alice.send(f"PART {name}")
    alice.lines()
    alice.send("NAMES")
    assert alice.lines() == [f"{S} 366 alice * :End of /NAMES list."]
    # Nor is a list of no channel left without an end (a retrial).
    alice.send("NAMES ,,,")
    assert alice.lines() == [f"{S} 366 alice * :End of /NAMES list."]


def test_operProvesAnOperatorsNickname():
    """
    OPER NAME PASSWORD proves the registered operator nickname NAME, taking
    it (NICK, 900, then 381; WHO shows *); again, it just says 381.  A
    nickname that is no operator's is 491, a wrong password 464, and
    neither makes anyone an operator.
    """
    accounts = MemoryAccounts()
    accounts.passwords.update(boss="boss-password")
    server = IrcMemoryServer(accounts=accounts, operators=["boss"])
    boss, other = server.connectIrc("bossy"), server.connectIrc("someone")
    boss.send("OPER boss wrong-password")
    boss.send("OPER someone x")
    assert boss.lines() == [f"{S} 464 bossy :Password incorrect",
                            f"{S} 491 bossy :someone is not an operator's nickname"]
    other.send("WHO bossy")
    assert other.lines()[0] == f"{S} 352 someone * ~bossy chatd irc.chatd bossy H :0 Real bossy"
    boss.send("OPER boss boss-password")
    assert boss.lines() == [
        f"{S} 900 bossy bossy!~bossy@chatd boss :You are now logged in as boss",
        ":bossy!~bossy@chatd NICK boss",
        f"{S} 381 boss :You are now an IRC operator"]
    other.send("WHO boss")
    assert other.lines()[0] == f"{S} 352 someone * ~bossy chatd irc.chatd boss H* :0 Real bossy"
    boss.send("OPER boss anything")
    assert boss.lines() == [f"{S} 381 boss :You are now an IRC operator"]


def _withCaps(server, nick, caps):
    """
    An IRC client registered as C{nick} with the capabilities C{caps}.
    """
    client = server.connectIrc()
    client.send(f"CAP REQ :{caps}")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    client.send("CAP END")
    client.lines()
    return client


def test_accountTag():
    """
    With account-tag, what an identified user does (messages of either
    front end, joins, topics, echoes) carries their account; nothing from
    someone unidentified does, and clients without the capability see no
    tag.  It is chosen before registration: later it is refused.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    alice = _identified(server, "alice")
    carol = server.connect("carol")
    carol.send("/register carols-password")
    watcher = _withCaps(server, "watcher", "account-tag echo-message")
    plain = server.connectIrc("plain")
    bob = server.connectIrc("bob")
    for client in (watcher, plain):
        client.send("JOIN #lobby")
    alice.lines(), carol.lines(), watcher.lines(), plain.lines()
    alice.send("JOIN #lobby")
    bob.send("JOIN #lobby")
    alice.send("PRIVMSG #lobby :hi")
    carol.send("hello")
    bob.send("PRIVMSG #lobby :yo")
    watcher.send("PRIVMSG #lobby :mine")
    assert watcher.lines() == [
        "@account=alice :alice!~alice@chatd JOIN #lobby",
        ":bob!~bob@chatd JOIN #lobby",
        "@account=alice :alice!~alice@chatd PRIVMSG #lobby hi",
        "@account=carol :carol!~carol@chatd PRIVMSG #lobby hello",
        ":bob!~bob@chatd PRIVMSG #lobby yo",
        ":watcher!~watcher@chatd PRIVMSG #lobby mine"]
    assert plain.lines()[2] == ":alice!~alice@chatd PRIVMSG #lobby hi"
    watcher.send("CAP REQ :-account-tag")
    assert watcher.lines() == [f"{S} CAP watcher NAK -account-tag"]


def test_awayNotify():
    """
    With away-notify, those who share a room with someone going away or
    coming back, from either front end, get AWAY (with the reason, or none);
    nobody else does, and nothing is said when nothing changes.
    """
    server = IrcMemoryServer()
    watcher = _withCaps(server, "watcher", "away-notify")
    plain, alice, elsewhere = (server.connectIrc(n) for n in ("plain", "alice", "elsewhere"))
    bob = server.connect("bob")
    for client in (watcher, plain, alice):
        client.send("JOIN #lobby")
    for client in (watcher, plain, alice, bob, elsewhere):
        client.lines()
    alice.send("AWAY :lunch")
    alice.send("AWAY :lunch")
    bob.send("/away meeting")
    alice.send("AWAY")
    assert watcher.lines() == [":alice!~alice@chatd AWAY lunch",
                               ":bob!~bob@chatd AWAY meeting",
                               ":alice!~alice@chatd AWAY"]
    assert plain.lines() == [] and elsewhere.lines() == []
    assert bob.lines() == ["=== you are marked away: meeting"]


def _historyServer():
    """
    A server keeping history, with eight lines said in #lobby by a line
    user a second apart (ids 1 to 8), and an IRC client, alice, in #lobby
    with batch, server-time, message-tags and draft/chathistory.
    """
    history = MemoryHistory()
    server = IrcMemoryServer(history=history, irc={"replay": 0})
    server.clock.advance(1700000000)
    bob = server.connect("bob")
    for i in range(1, 9):
        bob.send(f"line {i}")
        server.clock.advance(1)
    alice = _withCaps(server, "alice", "batch server-time message-tags draft/chathistory")
    alice.send("JOIN #lobby")
    alice.lines()
    return server, history, alice


def _batch(alice, history):
    """
    The msgids of the lines in the one chathistory batch alice gets next
    (once the store answered: AROUND reads twice).
    """
    history.answer()
    history.answer()
    lines = alice.lines()
    assert lines[0].endswith(" BATCH +h1 chathistory #lobby") and lines[-1].endswith(
        " BATCH -h1"), lines
    return [int(re.search(r"msgid=(\d+)", line).group(1)) for line in lines[1:-1]]


def test_chathistorySelectors():
    """
    CHATHISTORY answers LATEST, BEFORE, AFTER, AROUND and BETWEEN (both
    ways) by msgid or timestamp, oldest first, in a batch whose lines carry
    batch, msgid and time; a limit above 100 is 100.
    """
    cases = {
        "LATEST #lobby * 3": [6, 7, 8],
        "LATEST #lobby msgid=6 10": [7, 8],
        "BEFORE #lobby msgid=4 2": [2, 3],
        "AFTER #lobby msgid=4 2": [5, 6],
        "AROUND #lobby msgid=5 4": [3, 4, 5, 6],
        "BETWEEN #lobby msgid=2 msgid=7 3": [3, 4, 5],
        "BETWEEN #lobby msgid=7 msgid=2 3": [4, 5, 6],
        "BEFORE #lobby timestamp=2023-11-14T22:13:23.000Z 10": [1, 2, 3],
        "AFTER #LOBBY timestamp=2023-11-14T22:13:25.500Z 1000": [7, 8],
        # A line's own timestamp: after it, or around it, it included.
        "AFTER #lobby timestamp=2023-11-14T22:13:24.000Z 2": [6, 7],
        "AROUND #lobby timestamp=2023-11-14T22:13:24.000Z 2": [4, 5],
        "LATEST #lobby timestamp=2023-11-14T22:13:26.000Z 5": [8],
    }
    for command, ids in cases.items():
        server, history, alice = _historyServer()
        alice.send("CHATHISTORY " + command)
        assert _batch(alice, history) == ids, command
    server, history, alice = _historyServer()
    alice.send("CHATHISTORY LATEST #lobby * 1")
    history.answer()
    assert alice.lines() == [
        f"{S} BATCH +h1 chathistory #lobby",
        "@batch=h1;msgid=8;time=2023-11-14T22:13:27.000Z :bob!~bob@chatd PRIVMSG #lobby "
        ":line 8",
        f"{S} BATCH -h1"]


def test_chathistoryRefusals():
    """
    CHATHISTORY refuses what it cannot answer with FAIL: an unknown
    subcommand, missing or invalid parameters, a room the user is not in;
    a nickname's history (private messages are never kept) is an empty
    batch.  Without history the capability is not offered.
    """
    server, history, alice = _historyServer()
    server.connect("carol")
    alice.lines()
    for command in ("TARGETS * * 10", "BEFORE #lobby 10", "BEFORE #lobby msgid=x 10",
                    "BEFORE #lobby msgid=3 0", "BEFORE #elsewhere msgid=3 5",
                    "LATEST nobody * 5", "LATEST carol * 5"):
        alice.send("CHATHISTORY " + command)
    assert alice.lines() == [
        f"{S} FAIL CHATHISTORY UNKNOWN_COMMAND TARGETS :Unknown subcommand",
        f"{S} FAIL CHATHISTORY NEED_MORE_PARAMS BEFORE :Missing parameters",
        f"{S} FAIL CHATHISTORY INVALID_PARAMS BEFORE :Invalid parameters",
        f"{S} FAIL CHATHISTORY INVALID_PARAMS BEFORE :Invalid parameters",
        f"{S} FAIL CHATHISTORY INVALID_TARGET BEFORE #elsewhere :Not a member",
        f"{S} FAIL CHATHISTORY INVALID_TARGET LATEST nobody :No such target",
        f"{S} BATCH +h1 chathistory carol",
        f"{S} BATCH -h1"]
    client = IrcMemoryServer().connectIrc()
    client.send("CAP LS 302")
    assert "chathistory" not in client.lines()[0]


def test_chathistoryUnderTheStoresLimits():
    """
    CHATHISTORY reads as any request for more history does: when the store
    is too busy to take it, the client gets FAIL MESSAGE_ERROR with the
    store's reason, and nothing else.
    """
    from twisted.internet.defer import fail

    from chatd.storage import HistoryBusy

    server, history, alice = _historyServer()
    history.page = lambda *args, **kwargs: fail(HistoryBusy("history is busy; try again"))
    alice.send("CHATHISTORY LATEST #lobby * 5")
    assert alice.lines() == [
        f"{S} FAIL CHATHISTORY MESSAGE_ERROR LATEST #lobby :History is unavailable right now "
        "(history is busy; try again)"]


def test_chathistoryOneReadAtATime():
    """
    A client's second CHATHISTORY waits, unread, until the store answered
    its first (one read asked for per connection at a time); both are
    answered, in order.
    """
    server, history, alice = _historyServer()
    asked = []
    real = history.page
    history.page = lambda *args, **kwargs: asked.append(args[1]) or real(*args, **kwargs)
    alice.sendBytes(b"CHATHISTORY LATEST #lobby * 2\r\nCHATHISTORY LATEST #lobby * 3\r\n")
    assert asked == [2]
    history.answer()
    assert asked == [2, 3]
    history.answer()
    batches = [line for line in alice.lines() if " BATCH +" in line]
    assert len(batches) == 2


def test_msgidOnStoredLines():
    """
    With message-tags, every stored line (live, echoed or replayed) carries
    its history id as msgid, which CHATHISTORY takes; clients without it
    see no tag.
    """
    server, history, alice = _historyServer()
    alice.send("CAP REQ :echo-message")
    assert alice.lines() == [f"{S} CAP alice ACK echo-message"]
    plain = server.connectIrc("plain")
    plain.send("JOIN #lobby")
    alice.lines(), plain.lines()
    alice.send("PRIVMSG #lobby :live")
    assert alice.lines() == ["@msgid=9;time=2023-11-14T22:13:28.000Z :alice!~alice@chatd "
                             "PRIVMSG #lobby live"]
    assert plain.lines() == [":alice!~alice@chatd PRIVMSG #lobby live"]


def test_mutedCreatorIsDeopped():
    """
    An operator who mutes a channel's creator takes their @ away: IRC
    clients are told with -o after the +q.
    """
    accounts = MemoryAccounts()
    accounts.passwords["boss"] = "boss-password"
    server = IrcMemoryServer(accounts=accounts, operators=["boss"])
    alice = server.connectIrc("alice")
    boss = _identified(server, "boss", "boss-password")
    alice.send("JOIN #r")
    boss.send("JOIN #r")
    alice.lines(), boss.lines()
    boss.send("MODE #r +q alice")
    assert alice.lines() == [":boss!~boss@chatd MODE #r +q alice!*@*",
                             ":boss!~boss@chatd MODE #r -o alice"]
    assert len(boss.lines()) == 2
    boss.send("NAMES #r")
    assert boss.lines()[0] == f"{S} 353 boss = #r :alice @boss"


def test_time(server):
    """
    TIME: the server's time, as a POSIX timestamp and for people (391).
    """
    server.clock.advance(1700000000)
    alice = server.connectIrc("alice")
    alice.send("TIME")
    assert alice.lines() == [
        f"{S} 391 alice irc.chatd 1700000000 :Tuesday November 14 2023 -- 22:13:20 UTC"]


SLOWED = (f"{S} NOTICE %s :You are sending faster than the server handles; "
          "your lines wait their turn")


def test_messageTargetsAreDistinctAndAtMostTargmax():
    """
    PRIVMSG to a list of targets reaches each once, however often (and in
    whatever case) it is named, and at most TARGMAX's four: the rest are
    refused with one 407 naming the first left out.  A room named over and
    over is said to, and stored, once.  A NOTICE is refused nothing aloud.
    """
    history = MemoryHistory()
    server = IrcMemoryServer(history=history, limits=Limits(floodBurst=1000))
    alice = server.connectIrc("alice")
    others = {nick: server.connectIrc(nick) for nick in ("v", "w", "x", "y", "z")}
    alice.send("JOIN #r")
    alice.lines()
    alice.send("PRIVMSG " + ",".join(["v", "V"] * 60) + " :just once")
    assert others["v"].lines() == [":alice!~alice@chatd PRIVMSG v :just once"]
    assert alice.lines() == []
    alice.send("PRIVMSG " + ",".join(["#r", "#R"] * 75) + " :once here")
    history.answer()
    assert [event.text for event in history.lines] == ["once here"]
    alice.send("PRIVMSG v,w,v,x,y,z :to four")
    assert alice.lines() == [f"{S} 407 alice z :Too many recipients. Only 4 processed"]
    for nick in "vwxy":
        assert others[nick].lines() == [f":alice!~alice@chatd PRIVMSG {nick} :to four"]
    assert others["z"].lines() == []
    alice.send("NOTICE z,y,x,w,v :quiet one")
    assert alice.lines() == []
    assert others["v"].lines() == []
    for nick in "zyxw":
        assert others[nick].lines() == [f":alice!~alice@chatd NOTICE {nick} :quiet one"]


def test_eachMessageTargetCostsALine():
    """
    A line naming four targets costs four lines against flood pacing: a
    burst of eight takes two such lines, and the third waits.
    """
    server = IrcMemoryServer(limits=Limits(floodRate=1, floodBurst=8))
    alice = server.connectIrc("alice")
    others = [server.connectIrc(nick) for nick in ("v", "w", "x", "y")]
    server.clock.advance(10)
    alice.sendBytes(b"PRIVMSG v,w,x,y :one\r\nPRIVMSG v,w,x,y :two\r\n"
                    b"PRIVMSG v,w,x,y :three\r\n")
    assert alice.lines() == [SLOWED % "alice"]
    assert alice.transport.producerState == "paused"
    for client in others:
        assert [line.split()[-1] for line in client.lines()] == ["one", "two"]
    server.clock.advance(4)
    for client in others:
        assert [line.split()[-1] for line in client.lines()] == ["three"]


def test_whoCostsALinePerHundredPeopleLookedAt():
    """
    WHO of a room costs a line against flood pacing, and one more for every
    100 members (each a reply: WHO of a room of 2,000 took 9 ms), as a WHO
    mask does for every 100 users looked through; a small room's, one line.
    """
    server = IrcMemoryServer(limits=Limits(floodRate=1, floodBurst=7, maxConnections=300,
                                           maxPerAddress=300))
    alice = server.connectIrc("alice")
    for i in range(250):
        server.connect(f"m{i}").send("/join #big")
    alice.send("JOIN #small")
    server.clock.advance(10)
    alice.lines()
    alice.send("WHO #small")
    alice.send("WHO #big")
    assert alice.transport.producerState == "producing"
    alice.send("WHO #big")
    # 1 + 3 + 3 lines of a burst of 7: the next waits.
    assert alice.transport.producerState == "paused"
    assert sum(" 352 " in line for line in alice.lines()) == 1 + 250 + 250
    server.clock.advance(10)
    assert alice.transport.producerState == "producing"
    alice.send("WHO m1*")
    alice.send("WHO m2*")
    # 1 + 252 // 100 each: 6 of 7.
    assert alice.transport.producerState == "producing"
    alice.send("WHO #small")
    assert alice.transport.producerState == "paused"


def test_namesAndListCostAsWhoDoes():
    """
    NAMES costs a line per channel, each named once, and one more for every
    100 members, as WHO does; LIST a line, and one more for every 100 rooms
    times its masks (a trial: 40 lines of NAMES #lobby,#lobby,... in a lobby
    of 2,500 held everyone else up for 9 s).
    """
    server = IrcMemoryServer(limits=Limits(floodRate=1, floodBurst=8, maxConnections=600,
                                           maxPerAddress=600))
    alice = server.connectIrc("alice")
    for i in range(250):
        server.connect(f"m{i}").send("/join #big")
    server.clock.advance(10)
    alice.lines()
    alice.send("NAMES #big,#big,#BIG,#none")
    # Named once: 1 + 2 lines of 8.
    assert sum(" 366 " in line for line in alice.lines()) == 1
    alice.send("NAMES #big")
    assert alice.transport.producerState == "producing"
    alice.send("NAMES #big")
    # 3 + 3 + 3 of 8: the next waits.
    assert alice.transport.producerState == "paused"
    server.clock.advance(20)
    assert alice.transport.producerState == "producing"
    for i in range(250):
        server.connect(f"r{i}").send(f"/join #room{i}")
    server.clock.advance(20)
    alice.lines()
    # 252 rooms (#lobby, #big, #room0-249): against 2 masks,
    # 1 + 2 x 252 // 100 = 6 lines.
    alice.send("LIST #room1*,!#room2*")
    assert alice.transport.producerState == "producing"
    alice.send("LIST")
    # 6 + 3 of 8.
    assert alice.transport.producerState == "paused"


def test_eachRoomJoinedOrPartedCostsALine():
    """
    JOIN and PART of several channels cost a line per channel (each named
    once), as a JOIN or PART of each would; ISUPPORT says so (no TARGMAX
    for them) and how many channels one may be in (CHANLIMIT).
    """
    server = IrcMemoryServer(limits=Limits(floodRate=1, floodBurst=6))
    alice = server.connectIrc()
    alice.send("NICK alice")
    alice.send("USER a 0 * :A")
    tokens = " ".join(line for line in alice.lines() if " 005 " in line).split()
    assert "CHANLIMIT=#:20" in tokens
    assert "TARGMAX=JOIN:,PART:,NAMES:,LIST:,KICK:4,PRIVMSG:4,NOTICE:4,WHOIS:1" in tokens
    server.clock.advance(10)
    alice.send("JOIN #a,#b,#A,#c")
    assert alice.transport.producerState == "producing"
    alice.send("PART #a,#b,#c")
    assert alice.transport.producerState == "paused"
    assert [line.split()[1] for line in alice.lines() if " NOTICE " not in line] == [
        "JOIN", "353", "366", "JOIN", "353", "366", "JOIN", "353", "366",
        "PART", "PART", "PART"]


def test_kickTargetsAtMostTargmax():
    """
    KICK names at most TARGMAX's four: the rest are refused with 407.
    """
    server = IrcMemoryServer(limits=Limits(floodBurst=1000))
    alice = server.connectIrc("alice")
    others = [server.connectIrc(nick) for nick in ("v", "w", "x", "y", "z")]
    for client in [alice] + others:
        client.send("JOIN #r")
    alice.lines()
    alice.send("KICK #r v,w,x,y,z :out")
    lines = alice.lines()
    assert lines[0] == f"{S} 407 alice z :Too many targets. Only 4 processed"
    assert [line.split()[3] for line in lines[1:]] == ["v", "w", "x", "y"]
    assert "z" in server.core.rooms["#r"].members


def test_serverNoticesNameTheUser():
    """
    The notices the connection's machinery sends (history given up on, a
    flood) are addressed to the user's nickname once they have one.
    """
    from chatd.edge.connection import Connection

    history = MemoryHistory()
    server = IrcMemoryServer(history=history)
    alice = server.connectIrc("alice")
    alice.send("JOIN #lobby")
    server.clock.advance(Connection.HISTORY_WAIT)
    assert alice.lines()[-1] == f"{S} NOTICE alice :History took too long and was skipped"


def test_eachModeChangeCostsALine():
    """
    A MODE line of several changes costs a line per change against flood
    pacing, as a MODE line for each would.
    """
    server = IrcMemoryServer(limits=Limits(floodRate=1, floodBurst=3))
    alice = server.connectIrc("alice")
    others = [server.connectIrc(nick) for nick in ("v", "w", "x")]
    for client in [alice] + others:
        client.send("JOIN #r")
    server.clock.advance(10)
    alice.lines()
    alice.send("MODE #r +qqq v w x")
    assert alice.transport.producerState == "paused"
    assert alice.lines() == [f":alice!~alice@chatd MODE #r +q {nick}!*@*" for nick in "vwx"] + [
        SLOWED % "alice"]


def _ghostAndWatcher(server):
    """
    alice, registered and identified, on a connection gone stale, in #room
    with bob: both IRC clients, their output cleared.
    """
    server.core.accounts.passwords["alice"] = "alices-password"
    ghost = server.connectIrc()
    ghost.send("PASS alices-password")
    ghost.send("NICK alice")
    ghost.send("USER al 0 * :A")
    bob = server.connectIrc("bob")
    ghost.send("JOIN #room")
    bob.send("JOIN #room")
    ghost.lines(), bob.lines()
    return ghost, bob


_GHOSTED = ["ERROR :Closing link: the owner of alice took the nickname back"]


def test_passTakesBackANicknameInUse():
    """
    NICK of a registered nickname another connection holds is not refused
    at once when PASS gave its password: at registration the owner gets it,
    and the holder is told why and closed, its channels seeing it quit.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    ghost, bob = _ghostAndWatcher(server)
    owner = server.connectIrc()
    owner.send("PASS alices-password")
    owner.send("NICK alice")
    assert owner.lines() == []
    owner.send("USER al 0 * :A")
    lines = owner.lines()
    assert lines[0] == f"{S} 001 alice :Welcome to the chatd IRC Network alice!~al@chatd"
    assert lines[-1] == f"{S} 900 alice alice!~al@chatd alice :You are now logged in as alice"
    assert ghost.lines() == _GHOSTED and not ghost.transport.connected
    assert bob.lines() == [":alice!~al@chatd QUIT ghosted"]
    assert server.core.user("alice").identified
    assert server.irc.clients["alice"].transport is owner.transport


def test_saslTakesBackANicknameInUse():
    """
    SASL PLAIN takes a registered nickname in use back at registration, as
    PASS does.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    ghost, bob = _ghostAndWatcher(server)
    owner = _identified(server, "alice")
    assert f"{S} 001 alice :Welcome to the chatd IRC Network alice!~alice@chatd" in owner.lines()
    assert ghost.lines() == _GHOSTED
    assert bob.lines() == [":alice!~al@chatd QUIT ghosted"]


def test_nicknameInUseWithoutItsPassword():
    """
    Without its password, NICK of a registered nickname in use is 433
    saying how its owner takes it back; with a wrong PASS it is 464 and
    that 433: the holder keeps it, nobody is told anything.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    ghost, bob = _ghostAndWatcher(server)
    client = server.connectIrc()
    client.send("NICK alice")
    client.send("USER al 0 * :A")
    assert client.lines() == [f"{S} 433 * alice :{_TAKE_ALICE}"]
    wrong = server.connectIrc()
    wrong.send("PASS not-her-password")
    wrong.send("NICK alice")
    wrong.send("USER al 0 * :A")
    assert wrong.lines() == [f"{S} 464 * :Password incorrect", f"{S} 433 * alice :{_TAKE_ALICE}"]
    assert ghost.lines() == [] and bob.lines() == [] and ghost.transport.connected
    assert server.irc.clients["alice"].transport is ghost.transport


def test_nickServGhost():
    """
    Once registered under another nickname, /msg NickServ GHOST NICK
    PASSWORD takes NICK back (seen as NICK, then 900), the holder closed;
    a wrong password is one notice from NickServ, and nothing changes.
    """
    server = IrcMemoryServer(accounts=MemoryAccounts())
    ghost, bob = _ghostAndWatcher(server)
    owner = server.connectIrc("alice_")
    owner.send("PRIVMSG NickServ :GHOST alice not-her-password")
    assert owner.lines() == [
        ":NickServ!NickServ@services NOTICE alice_ :Wrong password for alice"]
    assert ghost.lines() == [] and ghost.transport.connected
    owner.send("PRIVMSG NickServ :GHOST alice alices-password")
    assert ghost.lines() == _GHOSTED
    assert bob.lines() == [":alice!~al@chatd QUIT ghosted"]
    assert owner.lines() == [
        f"{S} 900 alice_ alice_!~alice_@chatd alice :You are now logged in as alice",
        ":alice_!~alice_@chatd NICK alice"]
    assert server.core.user("alice").identified

"""
The session's confirmation of what it sends: a line counts as said only once
the pong of the ping after it is back; errors before that pong are the line's
refusals; at most WINDOW lines wait for confirmation; every wait has a
deadline; and a server that refuses lines as too fast is followed without
losing them.  With a fake view, connection and clock.
"""

from twisted.internet.task import Clock

from chatd.line import wire
from chatd.client.session import Session
from clientfakes import OWN_PING, FakeConnection, FakeView, connectedSession, loggedIn, WELCOME

TOO_FAST = "!!! you are sending lines too fast; this one was not delivered"


class FakeInput:
    """
    Stdin as a push producer: records whether it is paused.
    """

    def __init__(self):
        self.paused = False
        self.calls = []

    def pauseProducing(self):
        self.paused = True
        self.calls.append("pause")

    def resumeProducing(self):
        self.paused = False
        self.calls.append("resume")


def _own(nick, text, room="#lobby"):
    return wire.ServerLine(wire.ROOM_MESSAGE, text, room, nick)


def test_saidOnlyOnceConfirmed():
    """
    On a terminal a line is sent with a ping of its own and shown as said
    only when the pong comes back; the pong itself is not shown.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("hello")
    assert conn.sent[0] == "hello"
    assert conn.sent[1].startswith(OWN_PING)
    assert view.own == []
    view.shown.clear()
    conn.answerPings(session)
    assert view.own == [_own("dave", "hello")]
    assert view.shown == []


def test_refusedLineShownAsRefused():
    """
    A line the server answers with an error is shown as refused, never as
    said; the error itself is shown as it came.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("/msg nobody hi")
    session.send("x" * 3000)
    conn.answerPings(session, "!!! no such user: nobody")
    conn.answerPings(session, "!!! line too long: at most 2048 bytes; it was not delivered")
    assert view.own == []
    assert view.notes == ["refused by the server, not said: /msg nobody hi",
                          "refused by the server, not said: " + "x" * 3000]
    assert view.shown[-2:] == ["!!! no such user: nobody",
                               "!!! line too long: at most 2048 bytes; it was not delivered"]


def test_lineRefusedWithNoCurrentRoomShownAsRefused():
    """
    Put out of its room (a kick), the session has no current room: a line
    typed then is refused by the server, and shown as refused, as any other
    refused line is (the trial saw only the server's error).
    """
    session, view, conn, _ = connectedSession("dave")
    session.lineReceived("=== left #lobby")
    assert session.current is None
    session.send("typed after the kick")
    conn.answerPings(session, "!!! you were put out of #lobby: /join a room to choose "
                              "where your lines go")
    assert view.own == []
    assert view.notes == ["refused by the server, not said: typed after the kick"]


def test_terminalSendsOneLineAtATime():
    """
    On a terminal the next line goes only once the one before is confirmed,
    so that an error before a pong is surely that line's.
    """
    session, view, conn, _ = connectedSession("dave")
    for text in ["one", "two", "three"]:
        session.send(text)
    assert conn.said() == ["one"]
    conn.answerPings(session)
    assert conn.said() == ["one", "two"]
    conn.answerPings(session, "!!! you are muted in #lobby")
    assert conn.said() == ["one", "two", "three"]
    conn.answerPings(session)
    assert view.own == [_own("dave", "one"), _own("dave", "three")]
    assert view.notes == ["refused by the server, not said: two"]


def test_pipeErrorsBelongToTheBatchBeforeThePong():
    """
    In pipe mode, with several batches in flight, an error before a pong is
    counted against that pong's lines only: a too-fast refusal in the second
    batch leaves the first one delivered.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    with session.batch():
        for n in range(Session.BATCH * 2):
            session.send(f"line {n}")
    first, second = conn.unanswered()
    session.lineReceived(f"=== pong {first}")
    session.lineReceived(TOO_FAST)
    session.lineReceived(f"=== pong {second}")
    session.quit()
    conn.answerPings(session)
    session.lineReceived("=== bye")
    session.disconnected("closed by the server")
    assert view.notes == ["1 line not delivered: refused by the server as too fast"]


def test_echoFollowsTheServer():
    """
    A line is echoed as the server took it: after /join #ops it shows in
    #ops even though it was typed before the join was confirmed.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("/join #ops")
    session.send("hi ops")
    session.lineReceived("=== joined #ops")
    session.lineReceived("=== #ops members (1): dave")
    conn.confirmAll(session)
    assert view.own == [_own("dave", "hi ops", "#ops")]


def test_usersOwnPingIsShown():
    """
    A /ping the user typed is the user's: its pong is shown.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("/ping here")
    session.lineReceived("=== pong here")
    conn.answerPings(session)
    assert "=== pong here" in view.shown
    assert not [line for line in view.shown if "chat-client-" in line]


def test_pipeWindowPausesInput():
    """
    In pipe mode at most WINDOW lines wait for confirmation, one ping per
    BATCH lines; more lines wait in the session and the input is paused
    while a window's worth waits, resumed once they are sent.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    stdin = FakeInput()
    session.setInput(stdin)
    lines = [f"line {n}" for n in range(Session.WINDOW * 2 + 3)]
    with session.batch():
        for line in lines:
            session.send(line)
    assert conn.said() == lines[:Session.WINDOW]
    assert len(conn.unanswered()) == Session.WINDOW // Session.BATCH
    assert stdin.paused
    conn.answerPings(session)
    assert conn.said() == lines[:Session.WINDOW * 2]
    assert stdin.paused
    conn.answerPings(session)
    assert conn.said() == lines
    assert stdin.calls == ["pause", "resume"]


def test_pipeLinesOfOneReadShareAPing():
    """
    In pipe mode the lines of one batch (one read) are confirmed by one
    ping; a line on its own gets its own.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    with session.batch():
        session.send("a")
        session.send("b")
        session.send("c")
    session.send("d")
    assert conn.sent[:3] == ["a", "b", "c"]
    assert conn.sent[3].startswith(OWN_PING)
    assert conn.sent[4] == "d"
    assert conn.sent[5].startswith(OWN_PING)
    assert len(conn.sent) == 6


def test_confirmationDeadline():
    """
    A server that confirms nothing for CONFIRM_TIMEOUT is given up: the
    connection is closed, and a script learns that its lines may be lost
    (status 1).
    """
    session, view, conn, clock = connectedSession("bot", interactive=False)
    session.send("hello")
    clock.advance(Session.CONFIRM_TIMEOUT - 1)
    assert not conn.closed
    clock.advance(1)
    assert conn.closed
    assert view.notes == [f"example:55555 confirmed nothing for "
                          f"{Session.CONFIRM_TIMEOUT:g} s; closing the connection"]
    session.disconnected("closed by the client")
    assert view.notes[-1] == ("connection to example:55555 lost (closed by the client) "
                              "before the server confirmed 1 line")
    assert view.outcome == [False]


def test_pongsPushTheDeadlineBack():
    """
    A slow server that confirms lines now and then is not given up.
    """
    session, view, conn, clock = connectedSession("bot", interactive=False)
    for n in range(5):
        session.send(f"line {n}")
        clock.advance(Session.CONFIRM_TIMEOUT - 1)
        conn.answerPings(session)
    assert not conn.closed
    assert clock.getDelayedCalls() == []


def test_terminalLossLeavesLinesUnconfirmed():
    """
    On a terminal, a line unconfirmed when the connection drops is not shown
    as said, and the user is told it may not have been.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("hello")
    session.disconnected("connection lost")
    assert view.own == []
    assert view.notes == [
        "connection to example:55555 lost (connection lost)",
        "not confirmed before the connection was lost, so maybe not said: hello"]
    assert view.outcome == []


def test_tooFastLinesAreSentAgain():
    """
    A server that refuses lines as too fast (rather than delaying them): the
    session holds back, asks with a ping where things stand, and sends the
    refused line again, once; from then on one line at a time.
    """
    session, view, conn, clock = connectedSession("dave")
    session.send("one")
    session.send("two")
    conn.answerPings(session)
    # "one" and its ping taken, "two" and its ping refused.
    session.lineReceived(TOO_FAST)
    session.lineReceived(TOO_FAST)
    session.send("three")
    assert conn.said() == ["one", "two"]
    clock.advance(Session.RESYNC_DELAY)
    resync = conn.unanswered()[-1]
    session.lineReceived(f"=== pong {resync}")
    assert conn.said() == ["one", "two", "two"]
    conn.answerPings(session)
    assert conn.said() == ["one", "two", "two", "three"]
    conn.answerPings(session)
    assert view.own == [_own("dave", "one"), _own("dave", "two"), _own("dave", "three")]
    assert view.notes == []


def test_tooFastPingAloneIsNotTheLines():
    """
    When only the ping after a line was refused as too fast, the line was
    taken: it is said, not sent again.
    """
    session, view, conn, clock = connectedSession("dave")
    session.send("one")
    session.lineReceived(TOO_FAST)
    clock.advance(Session.RESYNC_DELAY)
    ping, resync = conn.unanswered()
    session.lineReceived(f"=== pong {resync}")
    assert conn.said() == ["one"]
    assert view.own == [_own("dave", "one")]


def test_pipeTooFastBatchUnattributable():
    """
    In pipe mode, a batch of which some lines were refused as too fast
    cannot say which: they count as not delivered, and the script, told how
    many, ends with status 1.
    """
    session, view, conn, clock = connectedSession("bot", interactive=False)
    with session.batch():
        session.send("a")
        session.send("b")
    session.lineReceived(TOO_FAST)
    conn.answerPings(session)
    session.quit()
    session.lineReceived("=== bye")
    session.disconnected("closed by the server")
    assert view.notes == ["1 line not delivered: refused by the server as too fast"]
    assert view.outcome == [False]


def test_pipeTooFastWholeBatchSentAgain():
    """
    In pipe mode, a batch refused whole as too fast (its ping too) is sent
    again, in order, and the script ends well.
    """
    session, view, conn, clock = connectedSession("bot", interactive=False)
    with session.batch():
        session.send("a")
        session.send("b")
    for _ in range(3):
        session.lineReceived(TOO_FAST)
    clock.advance(Session.RESYNC_DELAY)
    session.lineReceived(f"=== pong {conn.unanswered()[-1]}")
    conn.answerPings(session)
    assert conn.said() == ["a", "b", "a", "b"]
    session.quit()
    conn.answerPings(session)
    assert conn.said()[-1] == "/quit"
    session.lineReceived("=== bye")
    session.disconnected("closed by the server")
    assert view.outcome == [True]


def test_holdingBackDoublesUpToItsMost():
    """
    Each refusal as too fast holds the session back twice as long as the
    one before, up to RESYNC_DELAY_MAX.
    """
    session, view, conn, clock = connectedSession("dave")
    waits = []
    for _ in range(6):
        session.send("x")
        session.lineReceived(TOO_FAST)
        waits.append(min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds())
        clock.advance(waits[-1])
        conn.answerPings(session)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_endOfInputBeforeConnecting():
    """
    In pipe mode, input that ends (</dev/null) before the server is reached
    does not end the session well: it waits for the connection, and an
    unreachable server is a failure.
    """
    view = FakeView()
    session = Session(view, "bot", Clock(), "example:55555", False)
    session.quit()
    assert view.outcome == []
    session.connectFailed("Connection refused")
    assert view.outcome == [False]

    view = FakeView()
    session = Session(view, "bot", Clock(), "example:55555", False)
    session.quit()
    conn = FakeConnection()
    session.connected(conn)
    for line in WELCOME:
        session.lineReceived(line)
    loggedIn(session, "bot")
    conn.answerPings(session)
    assert conn.said() == ["bot", "/quit"]


def test_pipeReconnectsOnlySoOften():
    """
    In pipe mode, after a loss with every line confirmed, the session tries
    to reconnect PIPE_RETRIES times in a row, then gives up with status 1.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    session.disconnected("connection lost")
    for _ in range(Session.PIPE_RETRIES):
        session.connectFailed("Connection refused")
        session.retrying(1.0)
    assert view.outcome == []
    session.connectFailed("Connection refused")
    session.retrying(1.0)
    assert view.notes[-1] == ("giving up: example:55555 could not be reached again "
                              f"in {Session.PIPE_RETRIES} attempts")
    assert view.outcome == [False]


def test_untrustedCertificateEndsTheSession():
    """
    A certificate that fails verification is said once and ends the
    session unsuccessfully, on a terminal too: retrying cannot mend it.
    """
    for interactive in (True, False):
        view = FakeView()
        session = Session(view, "bot", Clock(), "example:6697", interactive)
        session.untrusted("it is self-signed")
        session.retrying(1.0)
        session.connectFailed("later")
        assert view.notes == ["the server's certificate is not trusted: it is self-signed"]
        assert view.outcome == [False]


def test_passwordCommandsWaitForTheirAnswer():
    """
    A command the server answers only once a password is checked (after a
    ping sent behind it may have been answered) is sent alone, without a
    ping, and nothing follows it until its answer is in: its error is not
    taken for a refusal of the next line.
    """
    session, view, conn, _ = connectedSession("dave")
    session.send("/identify secret")
    session.send("hello")
    assert conn.sent == ["/identify secret"]
    session.lineReceived("!!! wrong password")
    assert conn.said() == ["/identify secret", "hello"]
    conn.answerPings(session)
    assert view.own == [_own("dave", "hello")]
    assert view.notes == []


def test_pipePasswordCommandAfterABatch():
    """
    In pipe mode the lines before such a command are confirmed first; the
    command goes once they are, and the lines after it once it is answered.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    with session.batch():
        session.send("one")
        session.send("/register secret")
        session.send("two")
    assert conn.said() == ["one"]
    conn.answerPings(session)
    assert conn.said() == ["one", "/register secret"]
    session.lineReceived("=== bot is registered to you and you are identified; "
                         "next time, /identify PASSWORD")
    assert conn.said() == ["one", "/register secret", "two"]
    session.quit()
    session.disconnected("connection lost")
    assert view.notes == ["connection to example:55555 lost (connection lost) "
                          "before the server confirmed 1 line"]


def test_passwordCommandLostWithTheConnection():
    """
    A script whose password command was never answered before the
    connection was lost ends with status 1.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False)
    session.send("/identify secret")
    session.quit()
    session.disconnected("connection lost")
    assert view.outcome == [False]


def test_passwordCommandWaitsForTheLoginsAnswers():
    """
    Such a command typed before the login is done waits until the login's
    own answers are all in (its ping's pong), so that "=== joined #lobby" is
    not taken for its answer.
    """
    session, view, conn, _ = connectedSession("dave", interactive=False, login=False)
    session.send("/identify secret")
    session.lineReceived("=== you are now dave")
    session.lineReceived("=== joined #lobby")
    session.lineReceived("=== #lobby members (1): dave")
    assert conn.said() == []
    conn.answerPings(session)
    assert conn.said() == ["/identify secret"]
    session.lineReceived("=== you are identified as dave")
    session.quit()
    assert conn.said() == ["/identify secret", "/quit"]


def test_privateMessageShownOnce():
    """
    The server confirms a /msg to its sender ("=== to bob: psst"): a
    terminal shows it once, as its echo "-> *bob* psst"; a script sees the
    server's line as it came.
    """
    session, view, conn, _ = connectedSession("dave")
    view.shown.clear()
    session.send("/msg Bob psst")
    conn.answerPings(session, "=== to bob: psst")
    assert view.shown == []
    assert view.own == [wire.ServerLine(wire.PRIVATE, "psst", nick="Bob")]

    session, view, conn, _ = connectedSession("bot", interactive=False)
    view.shown.clear()
    session.send("/msg bob psst")
    conn.answerPings(session, "=== to bob: psst")
    assert view.shown == ["=== to bob: psst"]

"""
The client's session: logging in, nickname fallbacks, following the user from
room to room, reconnecting, echoing and quitting; with a fake view and
connection.
"""

import pytest
from twisted.internet.task import Clock

from chatd.line import wire
from chatd.client import session as S
from chatd.client.session import Session, alternateNick, commandName
from clientfakes import OWN_PING, WELCOME, FakeConnection, FakeView, connectedSession, loggedIn


def test_answersThePromptWithTheNick():
    """
    The server's nickname prompt is answered with the nickname, and the
    session is online once the server says "you are now".
    """
    session, view, conn, _ = connectedSession("alice", login=False)
    assert conn.sent == []  # cleared after the prompt was answered
    assert session.state == S.LOGIN
    loggedIn(session, "alice")
    assert session.state == S.ONLINE
    assert (session.nick, session.rooms, session.current) == ("alice", ["#lobby"], "#lobby")


def test_firstPromptAnswer():
    """
    The very first thing sent is the nickname, in answer to the prompt; a
    person is not shown the prompt the client answers for them, a script is
    shown every line.
    """
    for interactive, shown in [(True, WELCOME[:1]), (False, WELCOME)]:
        view, conn = FakeView(), FakeConnection()
        session = Session(view, "alice", Clock(), "x", interactive)
        session.connected(conn)
        session.lineReceived(WELCOME[0])
        assert conn.sent == []
        session.lineReceived(WELCOME[1])
        assert conn.sent == ["alice"]
        assert view.shown == shown


def test_takenNickTriesAlternatives():
    """
    When the nickname is refused, the session tries alice_, then alice2, and
    tells the user each time.
    """
    session, view, conn, _ = connectedSession("alice", login=False)
    session.lineReceived("!!! the nickname alice is taken")
    session.lineReceived("??? Choose another nickname:")
    session.lineReceived("!!! the nickname alice_ is taken")
    session.lineReceived("??? Choose another nickname:")
    assert conn.sent == ["alice_", "alice2"]
    assert view.notes == ["the nickname alice is taken; trying alice_",
                          "the nickname alice_ is taken; trying alice2"]
    loggedIn(session, "alice2")
    assert session.nick == "alice2"


def test_registeredNickWithoutPasswordSaysSo():
    """
    A registered nickname asked for with no password given: the user is
    told why another is tried, and how to give the password.
    """
    session, view, conn, _ = connectedSession("alice", login=False)
    session.lineReceived("??? alice is registered: password (or another nickname):")
    assert conn.sent == ["alice_"]
    assert view.notes == ["alice is registered and no password was given "
                          "(--password-file or CHATD_PASSWORD); trying alice_"]


def _refuseAll(session):
    for _ in range(Session.NICK_TRIES + 1):
        session.lineReceived("!!! taken")
        session.lineReceived("??? Choose another nickname:")


def test_bannedNicknameIsNotWorkedAround():
    """
    A nickname the server refuses because it is banned is not swapped for
    another by the client: a script gives up, a person is asked.
    """
    for interactive, note, outcome in [
            (False, "nickname frank is banned; giving up", [False]),
            (True, "nickname frank is banned; type the one you want", [])]:
        session, view, conn, _ = connectedSession("frank", interactive, login=False)
        session.lineReceived("!!! you are banned from this server for 600 more seconds")
        session.lineReceived("??? Choose another nickname:")
        assert conn.sent == [] and view.notes == [note] and view.outcome == outcome


@pytest.mark.parametrize("refusal", [
    "wrong password for frank",
    "a nickname is 1 to 16 letters, digits or -_[]\\`^{|}, not starting with a digit or -",
    # No suffix unreserves a service's name (Global_ is reserved too).
    "frank is reserved",
])
def test_refusalsAnotherNicknameCannotMendAreNotWorkedAround(refusal):
    """
    Nor is a nickname whose password (from --password-file) was wrong, which
    the user asked for, or one the rules refuse, which a suffix does not
    mend: a script gives up saying why, a person is asked.
    """
    for interactive, end, outcome in [(False, "giving up", [False]),
                                      (True, "type the one you want", [])]:
        session, view, conn, _ = connectedSession("frank", interactive, login=False)
        session.lineReceived(f"!!! {refusal}")
        session.lineReceived("??? Choose another nickname:")
        assert conn.sent == [] and view.outcome == outcome
        assert view.notes == [f"nickname frank refused ({refusal}); {end}"]


def test_pipeGivesUpOnNicknames():
    """
    In pipe mode, after NICK_TRIES refusals the session ends, unsuccessfully,
    and closes the connection.
    """
    session, view, conn, _ = connectedSession("bot", interactive=False, login=False)
    _refuseAll(session)
    assert conn.sent == ["bot_"] + [f"bot{n}" for n in range(2, Session.NICK_TRIES + 1)]
    assert view.outcome == [False]
    assert conn.closed


def test_terminalUserChoosesNickname():
    """
    In terminal mode, after NICK_TRIES refusals the user is asked, and the
    next line typed goes to the server as it is, not echoed or queued.
    """
    session, view, conn, _ = connectedSession("bob", login=False)
    _refuseAll(session)
    conn.sent.clear()
    assert view.notes[-1] == "no nickname could be had; type the one you want"
    session.send("robert")
    assert conn.sent == ["robert"]
    assert view.own == []
    loggedIn(session, "robert")
    assert session.state == S.ONLINE


def test_followsRooms():
    """
    The current room and the rooms joined follow the server's replies to
    /join and /part, whatever the user typed.
    """
    session, view, _, _ = connectedSession()
    changes = view.changes
    session.lineReceived("=== joined #ops")
    assert (session.rooms, session.current) == (["#lobby", "#ops"], "#ops")
    session.lineReceived("=== now talking in #lobby")
    assert session.current == "#lobby"
    session.lineReceived("=== left #lobby")
    assert (session.rooms, session.current) == (["#ops"], None)
    session.lineReceived("=== now talking in #ops")
    assert session.current == "#ops"
    session.lineReceived("=== you are now al")
    assert session.nick == "al"
    assert view.changes == changes + 5


def test_linesBeforeLoginWait():
    """
    Lines typed before the login completes are sent, in order, right after
    it (and after a ping of the session's own, which keeps errors answering
    the login apart from the lines' own).
    """
    session, view, conn, _ = connectedSession(interactive=False, login=False)
    session.send("/join #ops")
    session.send("hello")
    assert conn.sent == []
    loggedIn(session, "alice")
    assert conn.sent[0].startswith(OWN_PING)
    assert conn.sent[1:3] == ["/join #ops", "hello"]
    assert conn.said() == ["/join #ops", "hello"]


def test_reconnectReclaimsNickAndRooms():
    """
    After the connection drops, the next connection claims the nickname held
    last, joins the rooms again in order and returns to the current room;
    lines typed meanwhile follow.
    """
    session, view, conn, _ = connectedSession("alice")
    session.lineReceived("=== you are now alicia")
    session.lineReceived("=== joined #ops")
    session.lineReceived("=== joined #dev")
    session.lineReceived("=== now talking in #ops")
    session.disconnected("connection lost")
    assert session.state == S.OFFLINE
    assert view.notes == ["connection to example:55555 lost (connection lost)"]
    assert session.rooms == ["#lobby", "#ops", "#dev"]  # until the server says otherwise
    session.send("still there?")
    # A connection lost while logging in does not forget the rooms.
    session.connected(FakeConnection())
    session.disconnected("connection lost")
    conn2 = FakeConnection()
    session.connected(conn2)
    for line in WELCOME:
        session.lineReceived(line)
    loggedIn(session, "alicia")
    conn2.confirmAll(session)
    assert conn2.said() == ["alicia", "/join #lobby", "/join #ops", "/join #dev",
                            "/join #ops", "still there?"]
    assert view.outcome == []


def test_closedForIdlenessWaitsForTheNextLine():
    """
    A connection the server closed for idleness (--idle-timeout) is not
    opened again at once (which only started the wait over and showed every
    room a quit and a join each time): the next line typed connects again,
    and is said once back.  Any other loss reconnects at once.
    """
    session, view, conn, _ = connectedSession("alice")
    calls = []
    session.reconnectsWith(lambda: calls.append("stop"), lambda: calls.append("start"))
    session.lineReceived("-!- Closing your connection: idle for 30 seconds")
    session.disconnected("closed by the server")
    assert calls == ["stop"]
    assert view.notes == ["connection to example:55555 lost (closed by the server)",
                          "closed for being idle: the next line you type connects again"]
    session.send("back again")
    assert calls == ["stop", "start"]
    conn2 = _connectAgain(session)
    conn2.confirmAll(session)
    assert conn2.said()[-1] == "back again"
    conn2.sent.clear()
    session.disconnected("connection lost")
    session.send("and again")
    assert calls == ["stop", "start"]


@pytest.mark.parametrize("interactive", [True, False])
def test_ghostedDoesNotConnectAgain(interactive):
    """
    A connection whose registered nickname its owner took back from
    another connection is not opened again: it would take the nickname back
    in turn, and two clients with one password would take it from each
    other for ever.  The session ends, failed.
    """
    session, view, conn, _ = connectedSession("alice", interactive=interactive)
    calls = []
    session.reconnectsWith(lambda: calls.append("stop"), lambda: calls.append("start"))
    session.lineReceived("-!- the owner of alice took the nickname back; goodbye")
    session.disconnected("closed by the server")
    assert view.notes[-2:] == [
        "connection to example:55555 lost (closed by the server)",
        "not connecting again: the nickname's owner is connected elsewhere"]
    assert view.outcome == [False]


def test_someoneSayingGhostWordsIsNoGhosting():
    """
    Only the server's notice counts: a user's line of the same words, or
    a notice that only begins with them, leaves reconnecting as it was.
    """
    session, view, conn, _ = connectedSession("alice")
    session.lineReceived("#lobby <mallory> -!- the owner of alice took the nickname back; goodbye")
    session.lineReceived("-!- the owner of alice took the nickname back; goodbye, or not")
    session.disconnected("connection lost")
    assert view.outcome == []


def _reconnect(session, nick="alice"):
    session.disconnected("connection lost")
    return _connectAgain(session, nick)


def _connectAgain(session, nick="alice"):
    conn = FakeConnection()
    session.connected(conn)
    for line in WELCOME:
        session.lineReceived(line)
    loggedIn(session, nick)
    return conn


def test_replayAfterReconnectSkipsLinesShown():
    """
    Joining again after a reconnect, the room's replay repeats the lines
    shown before the connection dropped: those are not shown again; what was
    said meanwhile is, and so is everything after it.
    """
    session, view, conn, _ = connectedSession("alice")
    before = ["~ 2026-11-25T10:00:00Z #lobby <bob> old",
              "#lobby <bob> hello",
              "* #lobby carol waves",
              "-- #lobby bob set the topic: cake",
              "#lobby <bob> ok"]
    for line in before:
        session.lineReceived(line)
    _reconnect(session)
    view.shown.clear()
    replay = ["~ 2026-11-25T10:00:01Z #lobby <bob> hello",
              "~ 2026-11-25T10:00:02Z * #lobby carol waves",
              "~ 2026-11-25T10:00:03Z -- #lobby bob set the topic: cake",
              "~ 2026-11-25T10:00:04Z #lobby <bob> ok",
              "~ 2026-11-25T10:00:09Z #lobby <bob> ok",
              "~ 2026-11-25T10:00:10Z #lobby <bob> hello"]
    for line in replay:
        session.lineReceived(line)
    session.lineReceived("#lobby <bob> live")
    assert view.shown == replay[4:] + ["#lobby <bob> live"]


def test_historyAskedAfterAReconnectIsShownWhole():
    """
    After a reconnect, /history shows every line it brings, those shown
    before the connection dropped too: only the join's replay skips them
    (the skipping once lasted until the room's next live line).
    """
    session, view, conn, _ = connectedSession("alice")
    session.lineReceived("#lobby <bob> before one")
    session.lineReceived("#lobby <bob> before two")
    _reconnect(session)
    view.shown.clear()
    asked = ["~ 2026-11-25T10:00:01Z #lobby <bob> before one",
             "~ 2026-11-25T10:00:02Z #lobby <bob> before two"]
    session.lineReceived("=== #lobby: the last 2 lines")
    for line in asked:
        session.lineReceived(line)
    assert view.shown == ["=== #lobby: the last 2 lines"] + asked


def test_replayOnFirstJoinAndHistoryCommandShowEverything():
    """
    The replay of a room never joined before is shown whole, and so is what
    /history asks for, even lines shown already.
    """
    session, view, conn, _ = connectedSession("alice")
    replay = ["~ 2026-11-25T10:00:01Z #dev <bob> one",
              "~ 2026-11-25T10:00:02Z #dev <bob> two"]
    session.lineReceived("=== joined #dev")
    for line in replay:
        session.lineReceived(line)
    session.lineReceived("=== last 2 lines of #dev")
    for line in replay:
        session.lineReceived(line)
    assert view.shown[-5:] == replay + ["=== last 2 lines of #dev"] + replay


def test_replaySkipsTheUsersOwnLinesAndGoesOnPastNewOnes():
    """
    The user's own lines and actions, shown as they were typed, are skipped
    in the replay too; a replayed line never shown (a topic the user set) is
    shown, and the lines shown before that follow it are still skipped; a
    repeat said meanwhile, after the last line shown, is new.
    """
    session, view, conn, _ = connectedSession("alice")
    session.lineReceived("#lobby <bob> same")
    session.send("mine")
    session.send("/me nods")
    session.send("/topic cake")
    conn.confirmAll(session)
    session.lineReceived("#lobby <bob> after")
    _reconnect(session)
    view.shown.clear()
    replay = ["~ 2026-11-25T10:00:01Z #lobby <bob> same",
              "~ 2026-11-25T10:00:02Z #lobby <alice> mine",
              "~ 2026-11-25T10:00:03Z * #lobby alice nods",
              "~ 2026-11-25T10:00:04Z -- #lobby alice set the topic: cake",
              "~ 2026-11-25T10:00:05Z #lobby <bob> after",
              "~ 2026-11-25T10:00:06Z #lobby <bob> same"]
    for line in replay:
        session.lineReceived(line)
    assert view.shown == [replay[3], replay[5]]


def test_echoesWhatOthersWillSee():
    """
    In terminal mode the user's lines are shown as the others will see them,
    once the server confirmed them: text (and //text) as a room message, /me
    as an action, /msg as a private message to its recipient; other commands
    are not echoed.  Each line is followed by a ping of its own.
    """
    session, view, conn, _ = connectedSession("alice")
    lines = ["hi all", "//slash", "/me waves", "/msg bob  psst  ", "/who", "/me",
             "/msg bob /me bows", "/msg ALICE note to self"]
    for line in lines:
        session.send(line)
    assert view.own == []
    conn.confirmAll(session)
    assert conn.sent[0::2] == lines
    assert all(p.startswith(OWN_PING) for p in conn.sent[1::2])
    assert view.own == [
        wire.ServerLine(wire.ROOM_MESSAGE, "hi all", "#lobby", "alice"),
        wire.ServerLine(wire.ROOM_MESSAGE, "/slash", "#lobby", "alice"),
        wire.ServerLine(wire.ACTION, "waves", "#lobby", "alice"),
        wire.ServerLine(wire.PRIVATE, "psst", nick="bob"),
        # A private action as the server words it; a message to oneself
        # has no echo: the server delivers it.
        wire.ServerLine(wire.PRIVATE, "* alice bows", nick="bob"),
    ]


def test_refusedPasswordLineIsNotShownAgain():
    """
    A refused line that may hold a password is named by its command alone
    in the note that says it was not said.
    """
    session, view, conn, _ = connectedSession("alice")
    session.send("/msg NickServ IDENTIFY hunter2hunter2")
    conn.answerPings(session, "!!! no")
    assert view.notes[-1] == "refused by the server, not said: /msg …"
    # Spaces before a command leave it a command (the server trims lines):
    # not echoed as something said, password and all.
    session.send("  /identify hunter2hunter2")
    conn.confirmAll(session)
    assert conn.said()[-1] == "/identify hunter2hunter2"
    assert view.own == []


def test_pipeDoesNotEcho():
    """
    In pipe mode the user's lines are sent but not shown: the script has them.
    """
    session, view, conn, _ = connectedSession(interactive=False)
    session.send("hello")
    conn.answerPings(session)
    assert (conn.said(), view.own) == (["hello"], [])


def test_offlineLinesWaitWithANote():
    """
    A line typed while offline is kept for later, and the user is told.
    """
    session, view, conn, _ = connectedSession()
    session.disconnected("lost")
    view.notes.clear()
    session.send("hello")
    assert view.notes == ["not connected: it will be sent once back"]
    assert conn.sent == []


def test_pipeQuitConfirmed():
    """
    In pipe mode, quitting sends /quit; the session ends well only when the
    server said bye before it closed.
    """
    session, view, conn, _ = connectedSession(interactive=False)
    session.quit()
    assert conn.sent == ["/quit"]
    assert view.outcome == []
    session.lineReceived("=== bye")
    assert conn.closed
    session.disconnected("closed by the server")
    assert view.outcome == [True]


def test_pipeQuitUnconfirmed():
    """
    In pipe mode, /quit waits for every line to be confirmed; a connection
    lost before that ends the session unsuccessfully, saying how many lines
    may not have been delivered.
    """
    session, view, conn, _ = connectedSession(interactive=False)
    session.send("one")
    session.send("two")
    session.quit()
    assert conn.said() == ["one", "two"]
    session.disconnected("connection lost")
    assert view.notes == ["connection to example:55555 lost (connection lost) "
                          "before the server confirmed 2 lines"]
    assert view.outcome == [False]


def test_pipeQuitAfterConfirmation():
    """
    In pipe mode, once every line is confirmed the session ends well after
    /quit, whether the server's bye comes or the connection is lost first.
    """
    session, view, conn, _ = connectedSession(interactive=False)
    session.send("one")
    session.quit()
    conn.answerPings(session)
    assert conn.said() == ["one", "/quit"]
    session.disconnected("connection lost")
    assert view.outcome == [True]


def test_pipeQuitWaitsForPendingLines():
    """
    At the end of a script's input while offline, /quit is queued after the
    script's lines instead of giving them up.
    """
    session, view, conn, _ = connectedSession(interactive=False, login=False)
    session.send("hello")
    session.send("/QUIT done")
    assert view.outcome == []
    loggedIn(session, "alice")
    assert conn.said() == ["hello"]
    conn.answerPings(session)
    assert conn.said() == ["hello", "/quit done"]


def test_quitWithNothingToSend():
    """
    Quitting while offline with nothing waiting ends the session at once.
    """
    session, view, conn, _ = connectedSession()
    session.disconnected("lost")
    session.send("dropped")
    session.quit()
    assert view.outcome == [True]


def test_terminalQuitGivesUpWaiting():
    """
    In terminal mode, a server that does not close within QUIT_GRACE after
    /quit is left anyway; a second quit leaves at once.
    """
    session, view, conn, clock = connectedSession()
    session.send("/quit see you")
    assert conn.sent == ["/quit see you"]
    clock.advance(Session.QUIT_GRACE)
    assert conn.closed and view.outcome == [True]

    session, view, conn, clock = connectedSession()
    session.quit()
    session.quit()
    assert view.outcome == [True]
    assert clock.getDelayedCalls() == []


def test_unreachableAtFirst():
    """
    A server that cannot be reached is named with the reason; a script then
    gives up, a terminal user sees the retries.
    """
    view = FakeView()
    session = Session(view, "bot", Clock(), "example:55555", False)
    session.connectFailed("Connection refused")
    assert view.notes == ["cannot reach example:55555: Connection refused"]
    assert view.outcome == [False]

    view = FakeView()
    session = Session(view, "bot", Clock(), "example:55555", True)
    session.connectFailed("Connection refused")
    session.retrying(1.4)
    assert view.notes == ["cannot reach example:55555: Connection refused",
                          "trying again in 1 s (Ctrl-C to give up)"]
    assert view.outcome == []


def test_showsEveryLine():
    """
    Every server line is shown, known or not.
    """
    session, view, _, _ = connectedSession()
    view.shown.clear()
    session.lineReceived("#lobby <bob> hi")
    session.lineReceived("something new")
    assert view.shown == ["#lobby <bob> hi", "something new"]


def test_helpers():
    """
    Alternative nicknames are nick_, nick2, nick3; commandName lowercases the
    command and treats // as text.
    """
    assert [alternateNick("a", n) for n in (1, 2, 3)] == ["a_", "a2", "a3"]
    assert commandName("/JOIN #x") == "/join"
    assert commandName("//x") == ""
    assert commandName("hi") == ""


def test_pipeGivesUpIfNeverIn():
    """
    In pipe mode, a connection lost before the login completed (a server
    that closes at once) ends the session unsuccessfully instead of retrying
    forever; once logged in, a later loss is retried.
    """
    session, view, conn, _ = connectedSession(interactive=False, login=False)
    session.disconnected("closed by the server")
    assert view.notes[-1] == "connection to example:55555 lost (closed by the server)"
    assert view.outcome == [False]

    session, view, conn, _ = connectedSession(interactive=False)
    session.disconnected("connection lost")
    session.connectFailed("Connection refused")
    assert view.outcome == []


def test_passwordGivenWhenAskedAfterEveryConnect():
    """
    With a password, the client answers the server's password prompt for its
    own nickname with it, once per connection, and again after a reconnect;
    a wrong one is not sent again, nor swapped for another nickname (the
    user asked for this one: a script gives up, saying why); without one, it
    falls back to another nickname as for a taken one.
    """
    view = FakeView()
    session = Session(view, "alice", Clock(), "x", False, password="s3cret-pass")
    for attempt in range(2):
        conn = FakeConnection()
        session.connected(conn)
        session.lineReceived(WELCOME[0])
        session.lineReceived(WELCOME[1])
        session.lineReceived("??? alice is registered: password (or another nickname)")
        assert conn.sent == ["alice", "s3cret-pass"]
        if attempt == 0:
            loggedIn(session, "alice")
            session.disconnected("gone")
    session.lineReceived("!!! wrong password for alice")
    session.lineReceived("??? alice is registered: password again (or another nickname)")
    assert conn.sent == ["alice", "s3cret-pass"]
    assert view.notes[-1] == "nickname alice refused (wrong password for alice); giving up"
    assert view.outcome == [False]
    plain = Session(FakeView(), "alice", Clock(), "x", False)
    conn = FakeConnection()
    plain.connected(conn)
    plain.lineReceived(WELCOME[1])
    plain.lineReceived("??? alice is registered: password (or another nickname)")
    assert conn.sent == ["alice", "alice_"]

"""
Fakes for the client's tests: a view and a connection that record what the
session does with them.
"""

from twisted.internet.task import Clock

from chatd.client.session import Session


class FakeView:
    def __init__(self):
        self.shown = []
        self.own = []
        self.notes = []
        self.outcome = []
        self.changes = 0

    def show(self, raw, line):
        self.shown.append(raw)

    def showOwn(self, line):
        self.own.append(line)

    def note(self, text):
        self.notes.append(text)

    def changed(self):
        self.changes += 1

    def finished(self, ok):
        self.outcome.append(ok)


# How the session's own pings begin.
OWN_PING = "/ping chat-client-"


class FakeConnection:
    def __init__(self):
        self.sent = []
        self.closed = False
        self._answered = set()

    def sendText(self, text):
        self.sent.append(text)

    def close(self):
        self.closed = True

    def said(self):
        """
        What was sent, the session's own pings left out.
        """
        return [text for text in self.sent if not text.startswith(OWN_PING)]

    def unanswered(self):
        """
        The tokens of the session's own pings sent and not yet answered by
        L{answerPings}.
        """
        return [text[len("/ping "):] for text in self.sent
                if text.startswith(OWN_PING) and text[len("/ping "):] not in self._answered]

    def answerPings(self, session, *errors):
        """
        Be the server: answer every ping sent so far, in order, after
        C{errors} (the answers to the last lines), as the server would once
        it has handled the lines before them.
        """
        for error in errors:
            session.lineReceived(error)
        tokens = self.unanswered()
        self._answered.update(tokens)
        for token in tokens:
            session.lineReceived(f"=== pong {token}")
        return tokens

    def confirmAll(self, session):
        """
        Answer pings until none is left: the lines each pong lets the
        session send are confirmed in turn.
        """
        while self.answerPings(session):
            pass


WELCOME = [
    "-!- Welcome to chatd 0.1.0.",
    "??? Choose a nickname (rules):",
]


def loggedIn(session, nick, lobby="#lobby"):
    """
    Feed C{session} the server's replies to a successful login as C{nick}.
    """
    for line in [f"=== you are now {nick}", f"=== joined {lobby}",
                 f"=== {lobby} members (1): {nick}"]:
        session.lineReceived(line)


def connectedSession(nick="alice", interactive=True, login=True):
    """
    A session with a fake view and connection, connected and (by default)
    logged in; the connection's record starts empty.
    """
    view = FakeView()
    clock = Clock()
    session = Session(view, nick, clock, "example:55555", interactive)
    connection = FakeConnection()
    session.connected(connection)
    for line in WELCOME:
        session.lineReceived(line)
    if login:
        loggedIn(session, nick)
        connection.answerPings(session)
    connection.sent.clear()
    view.notes.clear()
    return session, view, connection, clock

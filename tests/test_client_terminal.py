"""
Terminal mode's line editor, driven through the real insults
L{ServerProtocol} on a L{StringTransport}, its output played on an emulated
screen (insults' L{TerminalBuffer}, as twisted.conch's own recvline tests do).
"""

from twisted.conch.insults import helper, insults
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatd.client.session import Session
from chatd.client.terminal import ChatTerminal, charWidth, textWidth
from clientfakes import WELCOME, FakeConnection, loggedIn


class Screen:
    """
    A logged-in session shown by a L{ChatTerminal} on an emulated screen.
    """

    def __init__(self, width=80, height=10, colour=False):
        self.outcome = []
        self.terminal = ChatTerminal(colour, self.outcome.append)
        self.session = Session(self.terminal, "alice", Clock(), "example", True)
        self.terminal.session = self.session
        self.transport = StringTransport()
        self.server = insults.ServerProtocol(lambda: self.terminal)
        self.server.makeConnection(self.transport)
        self.terminal.terminalSize(width, height)
        self.buffer = helper.TerminalBuffer()
        self.buffer.width, self.buffer.height = width, height
        self.player = insults.ClientProtocol(lambda: self.buffer)
        self.player.makeConnection(StringTransport())
        self.connection = FakeConnection()
        self.session.connected(self.connection)
        for line in WELCOME:
            self.session.lineReceived(line)
        loggedIn(self.session, "alice")
        self.connection.answerPings(self.session)
        self.connection.sent.clear()

    def type(self, data: bytes):
        self.server.dataReceived(data)

    def rows(self):
        """
        The screen's rows, trailing blank ones left off.
        """
        self.player.dataReceived(self.transport.value())
        self.transport.clear()
        rows = bytes(self.buffer).decode("ascii").split("\n")
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def cursor(self):
        self.rows()
        return self.buffer.x, self.buffer.y


def test_typedLineSurvivesIncomingLines():
    """
    Lines that arrive while the user types appear above the input line; the
    half-typed line stays whole below them with the cursor where it was, and
    typing goes on from there.
    """
    screen = Screen()
    screen.type(b"hello wor\x1b[D\x1b[D\x1b[D")
    before = screen.rows()
    for line in ["#lobby <bob> one", "-- #lobby carol has joined", "*carol* two"]:
        screen.session.lineReceived(line)
    rows = screen.rows()
    assert rows[:len(before) - 1] == before[:-1]
    assert rows[len(before) - 1:] == [
        "#lobby <bob> one",
        "-- #lobby carol has joined",
        "*carol* two",
        "[alice #lobby] hello wor",
    ]
    assert screen.cursor() == (len("[alice #lobby] hello "), len(rows) - 1)
    screen.type(b"X\r")
    assert screen.connection.said() == ["hello Xwor"]
    # Shown as said once the server confirmed it, not before.
    assert screen.rows()[-2:] == ["*carol* two", "[alice #lobby] "]
    screen.connection.answerPings(screen.session)
    assert screen.rows()[-2:] == ["#lobby <alice> hello Xwor", "[alice #lobby] "]


def test_refusedLineShownAsRefused():
    """
    A line the server refuses is shown as refused, in the client's own
    colour, after the server's error, and never as said.
    """
    screen = Screen()
    screen.type(b"/msg nobody psst\r")
    screen.connection.answerPings(screen.session, "!!! no such user: nobody")
    rows = screen.rows()
    assert rows[-3:] == ["!!! no such user: nobody",
                         "[chat-client] refused by the server, not said: /msg nobody psst",
                         "[alice #lobby] "]
    assert not [row for row in rows if "-> *nobody*" in row]


def test_utf8Reassembled():
    """
    Non-ASCII keystrokes arrive as separate bytes; they are put back together
    into characters, however the bytes are split, and sent intact.
    """
    screen = Screen()
    text = "é ü € 漢字"
    for byte in text.encode("utf-8"):
        screen.type(bytes([byte]))
    assert screen.terminal.buffer == list(text)
    screen.type(b"\x7f")  # backspace takes the whole last character
    screen.type("字!".encode("utf-8") + b"\r")
    assert screen.connection.said() == ["é ü € 漢字!"]


def test_wideCharactersMoveTheCursorByTheirWidth():
    """
    The cursor moves back over the columns a wide character takes: two for
    CJK, one for é.
    """
    screen = Screen()
    screen.type("漢字é".encode("utf-8"))
    screen.transport.clear()
    screen.type(b"\x1b[D\x1b[D")
    assert screen.transport.value().endswith(b"\x1b[3D")
    assert (charWidth("漢"), charWidth("é"), charWidth("\u0301")) == (2, 1, 0)


def test_longLineScrollsSideways():
    """
    A typed line longer than the row is shown scrolled so that the cursor
    stays in view, on one row; moving home shows its start again.
    """
    screen = Screen(width=30)
    screen.type(b"abcdefghijklmnopqrstuvwxyz0123456789")
    rows = screen.rows()
    assert rows[-1] == "[alice #lobby] wxyz0123456789"
    assert screen.cursor()[0] == 29
    screen.type(b"\x01")  # Ctrl-A
    assert screen.rows()[-1] == "[alice #lobby] abcdefghijklmn"
    assert screen.cursor()[0] == len("[alice #lobby] ")


def test_history():
    """
    Up and Down walk through the lines sent before, and back to the line
    being typed.
    """
    screen = Screen()
    screen.type(b"one\rtwo\rdra")
    screen.type(b"\x1b[A")
    assert screen.rows()[-1] == "[alice #lobby] two"
    screen.type(b"\x1b[A\x1b[A")
    assert screen.rows()[-1] == "[alice #lobby] one"
    screen.type(b"\x1b[B")
    assert screen.rows()[-1] == "[alice #lobby] two"
    screen.type(b"\x1b[B")
    assert screen.rows()[-1] == "[alice #lobby] dra"


def test_historyKeepsNoPassword():
    """
    A line that may hold a password is not kept for Up to show again: the
    password commands, /nick NAME PASSWORD, and whatever is typed while
    logging in (a nickname, or the password the server asked for).
    """
    screen = Screen()
    for line in [b"kept", b"/identify hunter2hunter2", b"/register hunter2hunter2",
                 b"/ghost alice hunter2hunter2", b"/password old1old1 new2new2",
                 b"/nick alice hunter2hunter2", b"/NICK alice hunter2hunter2",
                 b" /identify hunter2hunter2", b"/msg NickServ IDENTIFY hunter2hunter2"]:
        screen.type(line + b"\r")
    screen.session.disconnected("lost")
    screen.session.connected(FakeConnection())
    screen.type(b"hunter2hunter2\r")
    screen.type(b"\x1b[A\x1b[A")
    assert screen.terminal.history == ["kept"]
    assert screen.rows()[-1].endswith("kept")


def test_editingKeys():
    """
    Ctrl-W erases a word, Ctrl-U to the start, Ctrl-K to the end, Delete the
    character under the cursor.
    """
    screen = Screen()
    screen.type(b"say hello there\x17")
    assert "".join(screen.terminal.buffer) == "say hello "
    screen.type(b"\x01\x1b[3~")
    assert "".join(screen.terminal.buffer) == "ay hello "
    screen.type(b"\x1b[C\x1b[C\x0b")
    assert "".join(screen.terminal.buffer) == "ay"
    screen.type(b"\x01\x15")
    assert "".join(screen.terminal.buffer) == "ay"  # nothing before the cursor
    screen.type(b"\x05\x15")
    assert screen.terminal.buffer == []


def test_promptFollowsTheSession():
    """
    The prompt names the nickname and the current room, and says when the
    client is offline.
    """
    screen = Screen()
    screen.session.lineReceived("=== joined #ops")
    assert screen.rows()[-1] == "[alice #ops] "
    screen.session.disconnected("connection lost")
    assert screen.rows()[-2:] == ["[chat-client] connection to example lost (connection lost)",
                                  "[offline] "]


def test_ctrlCAndCtrlDQuit():
    """
    Ctrl-C quits; so does Ctrl-D on an empty line (on a typed one it deletes).
    """
    screen = Screen()
    screen.type(b"\x03")
    assert screen.connection.sent == ["/quit"]

    screen = Screen()
    screen.type(b"ab\x01\x04")
    assert screen.terminal.buffer == ["b"]
    screen.type(b"\x15\x05\x15\x04")
    assert screen.connection.sent == ["/quit"]


def test_colour():
    """
    With colour on, the prompt is bold and nicknames coloured; with it off,
    no escape sequence other than cursor control is written.
    """
    screen = Screen(colour=True)
    screen.transport.clear()
    screen.session.lineReceived("#lobby <bob> hi")
    assert b"<\x1b[93mbob\x1b[0m> hi\r\n" in screen.transport.value()
    assert b"\x1b[1m[alice #lobby] \x1b[0m" in screen.transport.value()

    screen = Screen(colour=False)
    screen.transport.clear()
    screen.session.lineReceived("#lobby <bob> hi")
    assert screen.transport.value() == b"\r\x1b[K#lobby <bob> hi\r\n\r[alice #lobby] \x1b[K"


def test_textWidth():
    """
    The width of a text counts wide characters twice.
    """
    assert textWidth("a漢字") == 5

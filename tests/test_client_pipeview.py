"""
Pipe mode's view and input, with fakes.
"""

import contextlib
import io

from chatd.client.pipe import PipeInput, PipeView


class ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError()


def test_plainLinesAndNotes():
    """
    Server lines go to stdout as they came (control characters dropped),
    the client's notes to stderr, the user's own lines nowhere.
    """
    out, err, outcome = io.StringIO(), io.StringIO(), []
    view = PipeView(out, err, outcome.append)
    view.show("#lobby <bob> hi\x1b[2J", None)
    view.showOwn(object())
    view.note("connected to x")
    view.finished(True)
    assert out.getvalue() == "#lobby <bob> hi[2J\n"
    assert err.getvalue() == "chat-client: connected to x\n"
    assert outcome == [True]


def test_readerGone():
    """
    When whoever reads stdout has gone (| head -1), the session is over,
    unsuccessfully.
    """
    outcome = []
    PipeView(ClosedPipe(), io.StringIO(), outcome.append).show("x", None)
    assert outcome == [False]


class Recorder:
    quitting = False

    def __init__(self):
        self.calls = []

    @contextlib.contextmanager
    def batch(self):
        self.calls.append("<batch>")
        yield
        self.calls.append("</batch>")

    def send(self, text):
        self.calls.append(text)

    def quit(self):
        self.calls.append("<quit>")


def test_inputLinesThenQuit():
    """
    Each input line is sent (LF or CRLF, UTF-8), the lines of one read in one
    batch; a last line without its newline too; the end of input is a quit.
    """
    session = Recorder()
    reader = PipeInput(session)
    reader.dataReceived("one\r\ntwo é\nthr".encode("utf-8"))
    reader.dataReceived(b"ee")
    reader.connectionLost(None)
    assert session.calls == ["<batch>", "one", "two é", "</batch>", "<batch>", "</batch>",
                             "<batch>", "three", "</batch>", "<quit>"]


def test_linesReadWhilePausedStillCount():
    """
    Lines left in the buffer while the session paused the input are sent
    when the input ends, each as its own line.
    """
    session = Recorder()
    reader = PipeInput(session)
    reader.makeConnection(FakeStdin())
    reader.pauseProducing()
    reader.dataReceived(b"one\ntwo\nthree")
    assert session.calls == ["<batch>", "</batch>"]
    reader.connectionLost(None)
    assert session.calls[2:] == ["<batch>", "one", "two", "three", "</batch>", "<quit>"]


class FakeStdin:
    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

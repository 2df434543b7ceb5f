"""
Pipe mode, for scripts: every line read from stdin is sent, every line
received is printed to stdout as it came, and the client's own remarks go to
stderr.

At the end of its input the client says /quit and waits for the server to
close the connection: the server acts on lines in order, so by then every
line before was delivered.  The exit status says whether that was confirmed.
"""

from twisted.protocols.basic import LineReceiver

from chatd.client import render


class PipeInput(LineReceiver):
    """
    Lines from stdin for the session; the end of stdin is a quit.
    """

    delimiter = b"\n"
    # The server refuses long lines itself, and says so.
    MAX_LENGTH = 1024 * 1024

    def __init__(self, session):
        self.session = session

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        self.session.send(line.decode("utf-8", "replace"))

    def connectionLost(self, reason):
        # A last line without its newline still counts.
        rest = self.clearLineBuffer()
        if rest:
            self.lineReceived(rest)
        self.session.quit()


class PipeView:
    """
    The session's view in pipe mode: plain lines on two text streams.
    """

    def __init__(self, out, err, onFinished):
        self._out = out
        self._err = err
        self._onFinished = onFinished

    def show(self, raw, line):
        try:
            self._out.write(render.safe(raw) + "\n")
            self._out.flush()
        except BrokenPipeError:
            # Whoever read our output is gone (| head -1): nothing more to do.
            self._onFinished(False)

    def showOwn(self, line):
        pass

    def note(self, text):
        self._err.write(f"chat-client: {text}\n")
        self._err.flush()

    def changed(self):
        pass

    def finished(self, ok):
        self._onFinished(ok)

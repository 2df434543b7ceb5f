"""
Pipe mode, for scripts: every line read from stdin is sent, every line
received is printed to stdout as it came, and the client's own remarks go to
stderr.

Each line is confirmed by the server (see L{chatd.client.session}); while a
window's worth of lines waits for the server, stdin is not read, so a server
that slows a fast sender down slows the script down and loses nothing.  At
the end of its input, once every line is confirmed, the client says /quit.
The exit status says whether every line was confirmed.
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

    def dataReceived(self, data):
        # The lines of one read share their confirmation.
        with self.session.batch():
            super().dataReceived(data)

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        self.session.send(line.decode("utf-8", "replace"))

    def connectionLost(self, reason):
        # Lines still buffered (read while paused), and a last line without
        # its newline, still count.
        rest = self.clearLineBuffer()
        with self.session.batch():
            for line in rest.split(b"\n"):
                if line:
                    self.lineReceived(line)
        if not self.session.quitting:
            # (A /quit line asked already, with its words: asking again
            # would be a person's second Ctrl-C, which stops waiting.)
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

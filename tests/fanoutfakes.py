"""
Recipients for testing L{chatd.core.fanout.Fanout} alone: a wire format that
counts what it encodes, an outbox that keeps what it is sent, and a member
with both.
"""


class Wire:
    """
    Encodes an event (C{bytes}) as C{prefix + event + CRLF}; the actor's own
    confirmation is C{own}.
    """

    def __init__(self, prefix, own=None):
        self.prefix, self.own = prefix, own
        self.encoded = 0

    def encode(self, event):
        self.encoded += 1
        return self.prefix + event + b"\r\n"

    def encodeOwn(self, event):
        return self.own


class Box:
    def __init__(self):
        self.got = []

    def send(self, data):
        self.got.append(data)


class Member:
    def __init__(self, wire):
        self.wire, self.outbox = wire, Box()

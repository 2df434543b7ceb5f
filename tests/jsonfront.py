"""
A tiny second front end, for the tests only: JSON objects, one per line.

It exists to prove the seam: it acts only through the session API, keeps its
connection in a L{chatd.edge.connection.Connection} and renders events and
refusals its own way, and imports nothing of the line protocol.

    > {"do": "claim", "nick": "jo"}
    < {"event": "NowKnownAs", "old": null, "new": "jo"}
    > {"do": "say", "room": "#lobby", "text": "hi"}
    > {"do": "kick", "room": "#lobby", "nick": "bob"}
    < {"refused": "NotModerator", "room": "#lobby"}
"""

import dataclasses
import json

from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from chatd.core.refusals import Refusal
from chatd.edge.connection import Connection


def _encode(kind, value, **extra):
    fields = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else {}
    return json.dumps({kind: type(value).__name__, **fields, **extra}).encode() + b"\n"


class JSONWire:
    @staticmethod
    def encode(event):
        return _encode("event", event)

    @staticmethod
    def encodeOwn(event):
        return _encode("event", event, own=True)

    @staticmethod
    def encodeHistory(event):
        return _encode("event", event, past=True)


# What a JSON request may ask, and the session call that does it.
_ACTIONS = {
    "claim": lambda s, r: s.claim(r["nick"]),
    "join": lambda s, r: s.join(r["room"]),
    "part": lambda s, r: s.part(r["room"]),
    "say": lambda s, r: s.say(r["room"], r["text"]),
    "tell": lambda s, r: s.tell(r["nick"], r["text"]),
    "topic": lambda s, r: s.setTopic(r["room"], r["topic"]),
    "kick": lambda s, r: s.kick(r["room"], r["nick"]),
    "mute": lambda s, r: s.mute(r["room"], r["nick"]),
}


class JSONProtocol(LineReceiver):
    delimiter = b"\n"
    conn = None

    def connectionMade(self):
        self.conn = Connection(self.transport, self.factory.gate, JSONWire, self)
        if self.conn.live:
            self.session = self.conn.open(self.factory.core)

    def dataReceived(self, data):
        with self.conn.gate.coalescer:
            super().dataReceived(data)

    def lineReceived(self, line):
        if not self.conn.accepting:
            return
        try:
            request = json.loads(line)
            _ACTIONS[request["do"]](self.session, request)
        except Refusal as refusal:
            self.conn.send(_encode("refused", refusal))
        except (ValueError, KeyError, TypeError):
            self.conn.send(b'{"error": "bad request"}\n')
        finally:
            self.conn.lineHandled()

    def unread(self):
        return len(self._buffer)

    def connectionLost(self, reason):
        # (A refused connection is lost while its Connection is being made.)
        if self.conn is not None:
            self.conn.lost(reason)

    def connectionEnded(self):
        # Nothing is kept per connection here.
        pass


class JSONFactory(Factory):
    protocol = JSONProtocol

    def __init__(self, core, gate):
        self.core = core
        self.gate = gate

"""
chatd: a real-time, multi-user chat daemon on Twisted.

The package is laid out along the path a line takes:

- L{chatd.sanitize}: bytes from the network become clean, safe text.
- L{chatd.commands}: a line of text becomes a call on the core.
- L{chatd.core}: users, nicknames, rooms and topics; decides what happened.
- L{chatd.events}: what happened, as plain values.
- L{chatd.fanout}: one event becomes bytes once and reaches each recipient.
- L{chatd.outbox}: each connection's bounded send queue.
- L{chatd.wire}: the line format shared by the server and the client.
- L{chatd.protocol}: the per-connection C{LineReceiver} tying these together.
- L{chatd.tap}: command-line options and service wiring for twistd.

Beside that path:

- L{chatd.storage}: room history behind L{chatd.storage.IHistoryStore}, kept
  in SQLite by threads of its own so that the reactor never waits on it.
- L{chatd.export}: the C{chatd-export} command, a room's history as JSON
  lines or text.
- L{chatd.client}: C{chat-client}, the companion terminal client, which
  shares only L{chatd.wire} with the server.
"""

__version__ = "0.1.0"

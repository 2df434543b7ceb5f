"""
chatd: a real-time, multi-user chat daemon on Twisted.

The package is laid out along the path a line takes:

- L{chatd.edge.sanitize}: bytes from the network become clean, safe text.
- L{chatd.line.commands}: a line of text becomes a call on the core.
- L{chatd.core.chat}: users, nicknames, rooms and topics; decides what happened,
  with the rules of L{chatd.core.identity} (registered nicknames) and
  L{chatd.core.moderation} (operators, owners, kicks, bans, mutes) mixed in.
- L{chatd.core.bans}: bans as plain data.
- L{chatd.core.events}: what happened, as plain values.
- L{chatd.core.fanout}: one event becomes bytes once and reaches each recipient.
- L{chatd.edge.outbox}: each connection's bounded send queue.
- L{chatd.line.wire}: the line format shared by the server and the client.
- L{chatd.line.protocol}: the per-connection C{LineReceiver} tying these together.
- L{chatd.tap}: command-line options and service wiring for twistd.

Beside that path:

- L{chatd.storage}: room history behind L{chatd.storage.IHistoryStore}, and
  accounts and bans behind L{chatd.storage.IAccountStore}, kept in SQLite by
  threads of their own so that the reactor never waits on them.
- L{chatd.export}: the C{chatd-export} command, a room's history as JSON
  lines or text.
- L{chatd.client}: C{chat-client}, the companion terminal client, which
  shares only L{chatd.line.wire} with the server.
"""

__version__ = "0.1.0"

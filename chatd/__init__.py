"""
chatd: a real-time, multi-user chat daemon on Twisted.

The package is laid out along the seams a line crosses:

- L{chatd.core}: the chat itself, with no sockets and no wire format.
  L{chatd.core.session} is the one way a front end acts (every call names its
  room; refusals are typed, L{chatd.core.refusals}); L{chatd.core.chat} holds
  users, nicknames, rooms and topics and consults the composed rules of
  L{chatd.core.identity} (registered nicknames) and L{chatd.core.moderation}
  (operators, owners, kicks, bans, mutes); L{chatd.core.events} is what
  happened, as plain values; L{chatd.core.fanout} turns one event into bytes
  once per wire format and hands them to each recipient.
- L{chatd.edge}: what every front end's connections share.
  L{chatd.edge.sanitize} turns bytes into clean text; L{chatd.edge.connection}
  is one connection's machinery (outbox, pacing, timers, history placed in
  order, closing with a reason); L{chatd.edge.gate} counts connections over
  every listener and shuts them all down; L{chatd.edge.outbox} is each
  connection's bounded send queue; L{chatd.edge.limits} the limits.
- L{chatd.line}: the line protocol front end (nc, telnet, chat-client): its
  protocol, commands, refusal texts and wire format.
- L{chatd.storage}: history and accounts behind interfaces, off the reactor
  thread, in SQLite or in a PostgreSQL database several daemons share.
- L{chatd.tap}: command-line options and service wiring for twistd.

Beside that path:

- L{chatd.export}: the C{chatd-export} command, a room's history as JSON
  lines or text.
- L{chatd.client}: C{chat-client}, the companion terminal client, which
  shares only L{chatd.line.wire} with the server.
"""

__version__ = "0.1.0"

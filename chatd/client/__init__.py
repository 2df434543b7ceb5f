"""
chat-client: chatd's companion terminal client, its own small house.

It shares only the line format (L{chatd.line.wire}) with the server:

- L{chatd.client.session}: what the client knows of its place on the server
  (nickname, rooms, current room) and the rules for logging in and getting
  back there after a reconnect.  No sockets, no terminal.
- L{chatd.client.connection}: the client protocol, endpoints, and the
  reconnecting service with backoff.
- L{chatd.client.render}: a server line as the user sees it, with or without
  colour.
- L{chatd.client.terminal}: terminal mode, an input line that incoming lines
  never tear.
- L{chatd.client.pipe}: pipe mode, stdin lines out and received lines to
  stdout, for scripts.
- L{chatd.client.tap}: options and the service they build, shared by
  C{chat-client}, C{python -m chatd.client} and C{twistd chat-client}.
- L{chatd.client.script}: the C{chat-client} command.
"""

"""
The twistd dropins for C{twistd chat} and C{twistd chat-client}; they import
nothing heavy.
"""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "chatd", "chatd.tap", "A multi-user chat server for nc, telnet and chat-client", "chat"
)
chatClient = ServiceMaker(
    "chat-client", "chatd.client.tap",
    "The terminal client of chatd (run it with -n --pidfile=)", "chat-client"
)

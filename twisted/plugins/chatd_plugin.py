"""
The twistd dropin for C{twistd chat}; it imports nothing heavy.
"""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "chatd", "chatd.tap", "A multi-user chat server for nc, telnet and chat-client", "chat"
)

"""
The connection to the server: a line protocol that hands every line to the
L{chatd.client.session.Session}, and a L{ClientService} that keeps it
connected, retrying with backoff.
"""

import os

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import error
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

# Retries start after about a second and back off to half a minute; the
# jitter keeps many clients of a restarted server from coming back at once.
INITIAL_DELAY = 1.0
MAX_DELAY = 30.0


class ChatClientProtocol(LineReceiver):
    """
    One connection to chatd.  Server lines end in CRLF; lines sent end in LF,
    which the server accepts.
    """

    delimiter = b"\n"
    # Far above what the server sends; a longer line means the peer is not
    # chatd, and LineReceiver then drops the connection.
    MAX_LENGTH = 256 * 1024

    _log = Logger()

    def connectionMade(self):
        self.factory.session.connected(self)

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        self.factory.session.lineReceived(line.decode("utf-8", "replace"))

    def connectionLost(self, reason):
        self._log.info("connection lost: {reason}", reason=reason.getErrorMessage())
        self.factory.session.disconnected(_lossReason(reason))

    # What the session calls

    def sendText(self, text):
        self.sendLine(text.encode("utf-8"))

    def close(self):
        self.transport.loseConnection()


class ChatClientFactory(Factory):
    protocol = ChatClientProtocol
    noisy = False

    def __init__(self, session):
        self.session = session


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """
    An endpoint that tells the session why an attempt failed: the
    L{ClientService} only logs it, and the user should see it.
    """

    def __init__(self, endpoint, session):
        self._endpoint = endpoint
        self._session = session

    def connect(self, factory):
        def failed(reason):
            self._session.connectFailed(_failureText(reason))
            return reason

        return self._endpoint.connect(factory).addErrback(failed)


def connectingService(endpoint, session, clock):
    """
    A service that connects C{session} through C{endpoint} and reconnects it,
    with backoff, whenever the connection fails or drops.
    """
    backoff = backoffPolicy(initialDelay=INITIAL_DELAY, maxDelay=MAX_DELAY)

    def policy(attempt):
        delay = backoff(attempt)
        session.retrying(delay)
        return delay

    return ClientService(_ReportingEndpoint(endpoint, session),
                         ChatClientFactory(session), retryPolicy=policy, clock=clock)


def _failureText(reason):
    """
    Why a connection attempt failed, briefly: "Connection refused" rather
    than "Connection was refused by other side: 111: Connection refused.".
    """
    value = reason.value
    if isinstance(value, error.ConnectError) and isinstance(value.osError, int):
        return os.strerror(value.osError)
    return reason.getErrorMessage()


def _lossReason(reason):
    if reason.check(error.ConnectionDone):
        return "closed by the server"
    return reason.getErrorMessage()

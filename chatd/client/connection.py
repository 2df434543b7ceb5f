"""
The connection to the server: a line protocol that hands every line to the
L{chatd.client.session.Session}, and a L{ClientService} that keeps it
connected, retrying with backoff.
"""

import os

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import error
from twisted.internet.interfaces import IHandshakeListener, ISSLTransport, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

# Retries start after about a second and back off to half a minute; the
# jitter keeps many clients of a restarted server from coming back at once.
INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
# chatd greets at once; a port silent this long after connecting is perhaps
# a TLS port spoken to without TLS, which waits for a hello (chatd's for
# --login-timeout and more, a minute by default) before it drops the client.
SILENCE_HINT = 5.0


@implementer(IHandshakeListener)
class ChatClientProtocol(LineReceiver):
    """
    One connection to chatd.  Server lines end in CRLF; lines sent end in LF,
    which the server accepts.

    Over TLS the session hears of the connection only once the handshake is
    done: a certificate refused is then a failure to connect, not a
    connection lost.
    """

    delimiter = b"\n"
    # Far above what the server sends; a longer line means the peer is not
    # chatd, and LineReceiver then drops the connection.
    MAX_LENGTH = 256 * 1024

    _log = Logger()
    _reported = False
    _heard = False
    _silence = None

    def connectionMade(self):
        if not ISSLTransport.providedBy(self.transport):
            self._report()
            self._silence = self.factory.clock.callLater(SILENCE_HINT, self._silent)

    def _silent(self):
        self._silence = None
        self.factory.session.silent(f"nothing heard in {SILENCE_HINT:g} s: if that port "
                                    "speaks TLS, give --tls")

    def _stopSilence(self):
        if self._silence is not None:
            self._silence.cancel()
            self._silence = None

    def handshakeCompleted(self):
        self._report()

    def _report(self):
        self._reported = True
        self.factory.session.connected(self)

    def lineReceived(self, line):
        self._heard = True
        self._stopSilence()
        if line.endswith(b"\r"):
            line = line[:-1]
        self.factory.session.lineReceived(line.decode("utf-8", "replace"))

    def connectionLost(self, reason):
        self._log.info("connection lost: {reason}", reason=reason.getErrorMessage())
        session = self.factory.session
        self._stopSilence()
        untrusted = _untrustedReason(reason)
        if untrusted is not None:
            session.untrusted(untrusted)
        elif not self._reported:
            session.connectFailed(_failureText(reason))
        elif not self._heard and not ISSLTransport.providedBy(self.transport):
            # A TLS listener drops a client that does not start TLS at once.
            session.disconnected(f"{_lossReason(reason)}, before it said a word: if that "
                                 "port speaks TLS, give --tls")
        else:
            session.disconnected(_lossReason(reason))

    # What the session calls

    def sendText(self, text):
        self.sendLine(text.encode("utf-8"))

    def close(self):
        self.transport.loseConnection()


class ChatClientFactory(Factory):
    protocol = ChatClientProtocol
    noisy = False

    def __init__(self, session, clock):
        self.session = session
        self.clock = clock


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
            untrusted = _untrustedReason(reason)
            if untrusted is not None:
                self._session.untrusted(untrusted)
            else:
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
                         ChatClientFactory(session, clock), retryPolicy=policy, clock=clock)


def _failureText(reason):
    """
    Why a connection attempt failed, briefly: "Connection refused" rather
    than "Connection was refused by other side: 111: Connection refused.".
    """
    value = reason.value
    if isinstance(value, error.ConnectError) and isinstance(value.osError, int):
        return os.strerror(value.osError)
    if reason.check(error.ConnectionDone, error.ConnectionLost):
        # Connected, but lost before the TLS handshake was done.
        return "the connection was closed during the TLS handshake"
    if "wrong version number" in str(value):
        # OpenSSL's words when the answer to its hello is no TLS at all.
        return "the server does not speak TLS on that port (leave out --tls)"
    return reason.getErrorMessage()


def _lossReason(reason):
    if reason.check(error.ConnectionDone):
        return "closed by the server"
    # (Twisted's messages end in a full stop; this goes inside a sentence.)
    return reason.getErrorMessage().rstrip(".")


def _untrustedReason(reason):
    """
    If C{reason} is a TLS certificate that failed verification, why and what
    to do, in a few words; otherwise L{None}.
    """
    value = reason.value
    try:
        from OpenSSL import SSL
        from service_identity.exceptions import VerificationError
    except ImportError:
        return None
    if isinstance(value, VerificationError):
        # A certificate signed by a CA trusted, but for another name.
        names = []
        for mismatch in getattr(value, "errors", []):
            wanted = getattr(mismatch, "mismatched_id", None)
            name = getattr(wanted, "hostname", None) or getattr(wanted, "ip", None)
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            if name is not None:
                names.append(str(name))
        return (f"it was issued for another name than {' or '.join(names) or 'this server'}; "
                "connect by the name it was issued for")
    if isinstance(value, SSL.Error):
        entries = value.args[0] if value.args and isinstance(value.args[0], list) else []
        if any("certificate verify failed" in str(entry) for entry in entries):
            return ("no certificate authority this client trusts signed it "
                    "(certificate verify failed); connect with --tls HOST PORT --ca FILE "
                    "to trust the server's certificate or the CA that signed it")
    return None

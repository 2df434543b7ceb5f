"""
The client's connection: lines in and out of the protocol, and the
reconnecting service telling the session about failures and retries.
"""

import errno
import os

from OpenSSL import SSL
from service_identity import VerificationError
from service_identity.hazmat import DNS_ID, DNSMismatch
from twisted.internet import defer, error
from twisted.internet.interfaces import ISSLTransport
from twisted.python.failure import Failure
from zope.interface import directlyProvides
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.plugin import getPlugins
from twisted.application.service import IServiceMaker

from chatd.client.connection import (INITIAL_DELAY, MAX_DELAY, SILENCE_HINT,
                                    ChatClientFactory, connectingService)
from chatd.client.session import Session
from clientfakes import FakeView


class RecordingSession:
    def __init__(self):
        self.events = []

    def connected(self, connection):
        self.events.append(("connected",))
        self.connection = connection

    def lineReceived(self, raw):
        self.events.append(("line", raw))

    def disconnected(self, reason):
        self.events.append(("lost", reason))

    def connectFailed(self, reason):
        self.events.append(("failed", reason))

    def untrusted(self, reason):
        self.events.append(("untrusted", reason))

    def silent(self, hint):
        self.events.append(("silent", hint))

    def retrying(self, delay):
        # The delay has a random jitter of up to a second.
        assert INITIAL_DELAY <= delay <= MAX_DELAY + 1
        self.events.append(("retrying",))


def _connect(session, clock=None):
    proto = ChatClientFactory(session, clock or Clock()).buildProtocol(None)
    transport = StringTransportWithDisconnection()
    transport.protocol = proto
    proto.makeConnection(transport)
    return proto, transport


def test_linesBothWays():
    """
    CRLF lines from the server reach the session decoded, split however they
    arrive; the session's lines go out as UTF-8 ending in LF.
    """
    session = RecordingSession()
    proto, transport = _connect(session)
    proto.dataReceived("#lobby <bob> héllo\r\n-!- x".encode("utf-8"))
    proto.dataReceived(b"\r\n")
    session.connection.sendText("€ ok")
    assert session.events == [("connected",), ("line", "#lobby <bob> héllo"), ("line", "-!- x")]
    assert transport.value() == "€ ok\n".encode("utf-8")


def test_closeAndLoss():
    """
    Closing the connection tells the session it was closed, in words; one
    closed before the server said anything is perhaps a TLS port spoken to
    without TLS (which waits for a TLS hello, then drops it), and says so.
    """
    session = RecordingSession()
    proto, transport = _connect(session)
    proto.dataReceived(b"-!- Welcome to chatd\r\n")
    session.connection.close()
    assert session.events[-1] == ("lost", "closed by the server")
    session = RecordingSession()
    proto, transport = _connect(session)
    session.connection.close()
    assert session.events[-1] == ("lost", "closed by the server, before it said a word: if "
                                          "that port speaks TLS, give --tls")


def test_silentServerHint():
    """
    A server that says nothing for SILENCE_HINT seconds after the connection
    is made (a TLS port, spoken to without TLS, waits for a hello for a
    minute) gets a hint, once; one that greets, or is lost, gets none.
    """
    clock = Clock()
    session = RecordingSession()
    proto, transport = _connect(session, clock)
    clock.advance(SILENCE_HINT - 0.1)
    assert session.events == [("connected",)]
    clock.advance(1)
    clock.advance(60)
    assert session.events == [("connected",), ("silent", "nothing heard in 5 s: if that port "
                                                         "speaks TLS, give --tls")]
    proto.connectionLost(Failure(error.ConnectionLost()))
    assert session.events[-1] == ("lost", "Connection to the other side was lost in a "
                                          "non-clean fashion, before it said a word: if that "
                                          "port speaks TLS, give --tls")
    for end in [lambda p: p.dataReceived(b"-!- Welcome\r\n"),
                lambda p: p.connectionLost(Failure(error.ConnectionDone()))]:
        session = RecordingSession()
        proto, transport = _connect(session, clock)
        end(proto)
        clock.advance(60)
        assert ("silent" not in [event[0] for event in session.events])
    assert clock.getDelayedCalls() == []


def test_tlsConnectedOnceHandshaken():
    """
    Over TLS the session hears of the connection only once the handshake is
    done; a connection lost before that is a failure to connect.
    """
    session = RecordingSession()
    proto = ChatClientFactory(session, Clock()).buildProtocol(None)
    transport = StringTransportWithDisconnection()
    directlyProvides(transport, ISSLTransport)
    transport.protocol = proto
    proto.makeConnection(transport)
    assert session.events == []
    proto.handshakeCompleted()
    assert session.events == [("connected",)]

    session = RecordingSession()
    proto = ChatClientFactory(session, Clock()).buildProtocol(None)
    transport = StringTransportWithDisconnection()
    directlyProvides(transport, ISSLTransport)
    proto.makeConnection(transport)
    proto.connectionLost(Failure(error.ConnectionDone()))
    assert session.events == [("failed", "the connection was closed during the TLS handshake")]


def test_untrustedCertificate():
    """
    A certificate that fails verification, or is for another name, is told
    to the session as such, in words, not as OpenSSL's list of tuples.
    """
    session = RecordingSession()
    proto, transport = _connect(session)
    proto.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
    assert session.events[-1] == (
        "untrusted", "no certificate authority this client trusts signed it "
        "(certificate verify failed); connect with --tls HOST PORT --ca FILE to "
        "trust the server's certificate or the CA that signed it")

    session = RecordingSession()
    proto, transport = _connect(session)
    mismatch = DNSMismatch(mismatched_id=DNS_ID("chat.example"))
    proto.connectionLost(Failure(VerificationError(errors=[mismatch])))
    assert session.events[-1] == (
        "untrusted", "it was issued for another name than chat.example; "
        "connect by the name it was issued for")

    session = RecordingSession()
    proto, transport = _connect(session)
    proto.dataReceived(b"-!- Welcome to chatd\r\n")
    proto.connectionLost(Failure(SSL.Error([("SSL routines", "", "unexpected eof")])))
    assert session.events[-1] == ("lost", "[('SSL routines', '', 'unexpected eof')]")


class FlakyEndpoint:
    """
    Fails the first connection attempts, then connects in memory.
    """

    def __init__(self, failures):
        self.failures = failures
        self.transports = []

    def connect(self, factory):
        if self.failures:
            self.failures -= 1
            return defer.fail(error.ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        proto = factory.buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = proto
        proto.makeConnection(transport)
        self.transports.append(transport)
        return defer.succeed(proto)


def test_reconnectsWithBackoff():
    """
    Failed attempts are reported with their reason and retried after a
    delay; once connected the session is told; after a drop it reconnects.
    """
    clock = Clock()
    session = RecordingSession()
    endpoint = FlakyEndpoint(failures=2)
    service = connectingService(endpoint, session, clock)
    service.startService()
    assert session.events == [
        ("failed", os.strerror(errno.ECONNREFUSED)),
        ("retrying",)]
    clock.advance(MAX_DELAY + 1)
    assert session.events[-2:] == [("failed", os.strerror(errno.ECONNREFUSED)),
                                   ("retrying",)]
    clock.advance(MAX_DELAY + 1)
    assert session.events[-1] == ("connected",)
    assert session.events.count(("connected",)) == 1
    endpoint.transports[0].protocol.dataReceived(b"-!- Welcome to chatd\r\n")
    endpoint.transports[0].loseConnection()
    assert session.events[-2:] == [("lost", "closed by the server"), ("retrying",)]
    clock.advance(MAX_DELAY + 1)
    assert session.events[-1] == ("connected",)
    service.stopService()


def test_realSessionLogsInAgain():
    """
    With the real session: after a drop the new connection answers the
    nickname prompt with the nickname held before.
    """
    clock = Clock()
    view = FakeView()
    session = Session(view, "alice", clock, "x", True)
    endpoint = FlakyEndpoint(failures=0)
    service = connectingService(endpoint, session, clock)
    service.startService()
    endpoint.transports[0].protocol.dataReceived(b"??? nick?\r\n=== you are now alice\r\n")
    endpoint.transports[0].loseConnection()
    clock.advance(MAX_DELAY + 1)
    endpoint.transports[1].protocol.dataReceived(b"??? nick?\r\n")
    assert endpoint.transports[1].value() == b"alice\n"
    service.stopService()


def test_pluginFound():
    """
    twistd finds chat-client among its plugins, next to chat.
    """
    names = {maker.tapname for maker in getPlugins(IServiceMaker)}
    assert {"chat", "chat-client"} <= names

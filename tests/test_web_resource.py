"""
The web front end's HTTP side, on in-memory transports: the page and its
assets with their security headers, the Origin check on the WebSocket
upgrade, the bound on request bodies; and the page's source, checked for
what the Content-Security-Policy relies on.
"""

import json
import re

import pytest

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python import usage

from chatd.edge.limits import Limits
from chatd.tap import Options, StartFailure
from chatd.web.resource import (
    ASSETS,
    CONTENT_SECURITY_POLICY,
    MAX_BODY_BYTES,
    OriginCheck,
    WebSite,
    asset,
    normalOrigin,
)
from websupport import WebMemoryServer, masked, readFrames

UPGRADE = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


def exchange(site, raw, secure=False):
    """
    Send C{raw} to C{site} on a new connection; return what it answered.
    """
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    if secure:
        from zope.interface import alsoProvides
        from twisted.internet.interfaces import ISSLTransport
        alsoProvides(transport, ISSLTransport)
        transport.setTcpNoDelay = lambda enabled: None
    proto.makeConnection(transport)
    proto.dataReceived(raw)
    return transport.value()


def status(response):
    return int(response.split(b" ", 2)[1])


def headers(response):
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v for k, v in (line.split(": ", 1) for line in head)}


@pytest.fixture
def site():
    return WebSite(WebMemoryServer().web)


def test_page_with_security_headers(site):
    """
    The page is served at / with a Content-Security-Policy allowing only its
    own script and style, and the other protective headers.
    """
    response = exchange(site, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
    assert status(response) == 200
    got = headers(response)
    assert got["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert got["x-content-type-options"] == "nosniff"
    assert got["x-frame-options"] == "DENY"
    assert got["referrer-policy"] == "no-referrer"
    assert got["content-type"] == "text/html; charset=utf-8"
    assert response.endswith(asset("index.html"))


@pytest.mark.parametrize("path", [p for p in ASSETS if p])
def test_assets(site, path):
    """
    Each asset is served from the package with its type and the headers.
    """
    response = exchange(site, b"GET /" + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status(response) == 200
    assert headers(response)["content-type"] == ASSETS[path][1]
    assert "content-security-policy" in headers(response)
    assert response.endswith(asset(ASSETS[path][0]))


@pytest.mark.parametrize("path", [b"/nope", b"/static/", b"/../setup.py", b"/%2e%2e/setup.py",
                                  b"/app.js/x", b"/ws/x"])
def test_nothing_else_served(site, path):
    """
    Only the listed assets exist: other paths, traversals included, are not
    found, and still carry the headers.
    """
    response = exchange(site, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status(response) == 404
    assert "content-security-policy" in headers(response)


def test_body_bounded(site):
    """
    A request body larger than the page could ever send is refused at once.
    """
    response = exchange(site, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                        % (MAX_BODY_BYTES + 1))
    assert status(response) == 413
    chunked = exchange(site, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"1000\r\n" + b"x" * 0x1000 + b"\r\n" + b"1000\r\n" + b"x" * 0x1000)
    assert status(chunked) == 413


class _UnreadPeerTransport(StringTransport):
    """
    A transport whose peer reads nothing until L{drain}: past L{BOUND}
    bytes written it tells its producer to pause, as Twisted's own do.
    """

    BOUND = 65536
    _told = False

    def write(self, data):
        super().write(data)
        if len(self.value()) > self.BOUND and not self._told:
            self._told = True
            self.producer.pauseProducing()

    def drain(self):
        written = self.value()
        self.clear()
        self._told = False
        self.producer.resumeProducing()
        return written


def test_pipelined_requests_wait_for_a_peer_that_reads(site):
    """
    Pipelined requests are answered only as fast as the peer reads the
    answers: the connection is not read, nor another request answered,
    while they wait (Twisted answered every request already read, so a peer
    that never reads grew the daemon's memory without end); all are
    answered, in order, once it reads.
    """
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = _UnreadPeerTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                     hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    proto.makeConnection(transport)
    asked = [b"/app.js", b"/style.css"] * 50
    proto.dataReceived(b"".join(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path
                                for path in asked))
    # (app.js, style.css, app.js: 75 KB, past the bound.)
    assert transport.value().count(b"HTTP/1.1 200 OK") == 3
    assert transport.producerState == "paused"
    answers = transport.drain()
    for _ in range(len(asked)):
        if transport.producerState != "paused":
            break
        answers += transport.drain()
    answers += transport.value()
    assert answers.count(b"HTTP/1.1 200 OK") == len(asked)
    types = re.findall(rb"Content-Type: ([a-z/]+)", answers)
    assert types == [b"text/javascript", b"text/css"] * 50
    assert transport.producerState == "producing"


def test_http_connections_last_at_most_the_login_timeout():
    """
    An HTTP connection that has not become a WebSocket within the login
    timeout is cut off, however it trickles in its request (each header
    restarted the idle timeout: five of them held loopback's places past
    the login timeout, as no login may).
    """
    server = WebMemoryServer(limits=Limits(loginTimeout=5))
    site = WebSite(server.web)
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    proto.makeConnection(transport)
    proto.dataReceived(b"GET / HTTP/1.1\r\n")
    for header in range(4):
        server.clock.advance(1)
        proto.dataReceived(b"X-Slow-%d: 1\r\n" % header)
    assert not transport.disconnecting
    server.clock.advance(1)
    assert transport.disconnecting


@pytest.mark.parametrize("origin, secure, allowed, accepted", [
    (None, False, (), True),
    (b"http://127.0.0.1:8080", False, (), True),
    (b"HTTP://127.0.0.1:8080", False, (), True),
    (b"https://127.0.0.1:8080", True, (), True),
    (b"https://127.0.0.1:8080", False, (), False),
    (b"http://127.0.0.1:8080", True, (), False),
    (b"http://127.0.0.1:8081", False, (), False),
    (b"http://evil.example", False, (), False),
    (b"null", False, (), False),
    (b"http://evil.example", False, ("http://evil.example:80",), True),
    (b"http://evil.example", False, ("*",), True),
    (b"http://other.example", False, ("http://evil.example",), False),
])
def test_origin_checked_on_upgrade(origin, secure, allowed, accepted):
    """
    The WebSocket upgrade is accepted from the page's own origin (scheme,
    host and port), from origins allowed by --web-origin, and from clients
    that are not browsers (no Origin); a page of any other site is refused.
    """
    site = WebSite(WebMemoryServer().web, OriginCheck(allowed))
    raw = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + UPGRADE
    if origin is not None:
        raw += b"Origin: " + origin + b"\r\n"
    response = exchange(site, raw + b"\r\n", secure=secure)
    if accepted:
        assert status(response) == 101, response
        body = response.split(b"\r\n\r\n", 1)[1]
        [(opcode, payload)] = readFrames(body)
        assert b'"type":"hello"' in payload
    else:
        assert status(response) == 403, response
        assert b"other sites" in response


@pytest.mark.parametrize("host, allowed, accepted", [
    (b"127.0.0.1:8080", (), True),
    (b"[::1]:8080", (), True),
    (b"localhost:8080", (), True),
    (b"LocalHost:8080", (), True),
    (b"evil.example:8080", (), False),
    (b"localhost.evil.example:8080", (), False),
    (b"chat.example:8080", ("http://chat.example:8080",), True),
    (b"chat.example:8080", ("https://chat.example",), True),
    (b"chat.example:8080", ("*",), True),
])
def test_own_origin_needs_a_host_the_server_answers_to(host, allowed, accepted):
    """
    A page whose origin is the request's own is accepted only when the Host
    is one the server answers to by itself (an IP address, localhost) or one
    named by --web-origin: else another site could point its own name at
    this server (DNS rebinding; found by a trial) and open a chat session as
    a page of "its own origin".  The refusal names the option to use.
    """
    site = WebSite(WebMemoryServer().web, OriginCheck(allowed))
    origin = b"http://" + host
    raw = b"GET /ws HTTP/1.1\r\nHost: " + host + b"\r\n" + UPGRADE
    response = exchange(site, raw + b"Origin: " + origin + b"\r\n\r\n")
    page = exchange(site, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    if accepted:
        assert status(response) == 101, response
        assert status(page) == 200, page
    else:
        assert status(response) == 403, response
        assert status(page) == 403, page
        advice = b"--web-origin " + origin.lower()
        assert advice in response and advice in page
        assert headers(page)["content-type"] == "text/plain; charset=utf-8"


def test_programs_are_let_in_by_any_name(site):
    """
    A program that is not a browser (no Origin) may use any name for the
    server, as it could connect with nc anyway.
    """
    raw = b"GET /ws HTTP/1.1\r\nHost: chat.lan:8080\r\n" + UPGRADE + b"\r\n"
    assert status(exchange(site, raw)) == 101


@pytest.mark.parametrize("head", [
    b"GET /ws HTTP/1.1\r\n",
    b"GET /ws HTTP/1.0\r\n",
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nHost: localhost:8080\r\n",
], ids=["none", "none-http1.0", "two"])
def test_upgrade_needs_one_host(site, head):
    """
    An upgrade without a Host header, or with two, is a bad request (RFC
    9112, section 3.2), answered 400 in a few words, and logged as no
    more than that (found by a trial: the WebSocket library raised on it,
    so that anyone could write a critical traceback to the log, and got 500).
    """
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        response = exchange(site, head + UPGRADE + b"\r\n")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert status(response) == 400, response
    assert response.split(b"\r\n\r\n", 1)[1] == b"A WebSocket upgrade needs one Host header.\n"
    assert headers(response)["content-type"] == "text/plain; charset=utf-8"
    assert [e for e in logged if e.get("log_level", LogLevel.info) > LogLevel.info] == []


@pytest.mark.parametrize("upgrade, origin", [
    (UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
     b"http://127.0.0.1:8080"),
    (UPGRADE.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
     b"http://127.0.0.1:8080"),
    (UPGRADE, b"http://evil.example"),
])
def test_refused_upgrades_close_the_connection(site, upgrade, origin):
    """
    A refused upgrade (not a WebSocket one as wsproto reads it, or from
    another site's page) is answered, in words, and its connection closed,
    the requests behind it unanswered: a peer pipelining them on one
    connection had each logged as an error, 4,000 lines in 5 s (a trial).
    Not a WebSocket upgrade is logged as nothing.
    """
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    proto.makeConnection(transport)
    request = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nOrigin: " + origin + b"\r\n"
               + upgrade + b"\r\n")
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        proto.dataReceived(request * 50)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    response = transport.value()
    assert response.count(b"HTTP/1.1 ") == 1
    assert status(response) in (400, 403)
    assert headers(response)["connection"] == "close"
    assert transport.disconnecting
    assert [e for e in logged if e.get("log_level", LogLevel.info) > LogLevel.info] == []
    assert len(logged) <= 1


def test_frames_in_the_upgrades_write(site):
    """
    Frames sent in the same write as the upgrade request are read as if
    sent after it: a message, and a ping the WebSocket library answers.
    """
    raw = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + UPGRADE + b"\r\n"
    raw += masked(b'{"type":"ping","data":"early"}') + masked(b"hi", opcode=0x9)
    response = exchange(site, raw)
    assert status(response) == 101, response
    frames = readFrames(response.split(b"\r\n\r\n", 1)[1])
    assert b'"type":"hello"' in frames[0][1]
    assert frames[1:] == [(1, b'{"type":"pong","data":"early","re":null}'), (0xA, b"hi")]


def test_server_frames_in_order_and_none_after_the_close(site):
    """
    The WebSocket library's own frames go out in order with the server's:
    a pong behind the lines answered before its ping, and the close that
    answers the peer's behind the lines before that, as the last frame.
    """
    raw = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + UPGRADE + b"\r\n"
    raw += masked(b'{"type":"nick","nick":"amy"}')
    for text in (b"one", b"two"):
        raw += masked(b'{"type":"say","room":"#lobby","text":"%s"}' % text)
        raw += masked(text, opcode=0x9)
    raw += masked((1000).to_bytes(2, "big"), opcode=0x8)
    response = exchange(site, raw)
    frames = readFrames(response.split(b"\r\n\r\n", 1)[1])
    shown = [json.loads(payload).get("text") if opcode == 1 else (opcode, payload)
             for opcode, payload in frames]
    said = [entry for entry in shown if entry in ("one", "two") or type(entry) is tuple]
    assert said == ["one", (0xA, b"one"), "two", (0xA, b"two"),
                    (0x8, (1000).to_bytes(2, "big"))], shown
    assert shown[-1] == (0x8, (1000).to_bytes(2, "big")), shown


def test_normal_origin():
    """
    Origins compare in one spelling, with the scheme's default port made
    explicit; anything not an http(s) origin is none.
    """
    assert normalOrigin("https://Chat.Example") == "https://chat.example:443"
    assert normalOrigin("http://[::1]:8080") == "http://[::1]:8080"
    assert normalOrigin("ftp://x") is None
    assert normalOrigin("http://x/path") is None
    assert normalOrigin("http://x:99999") is None
    assert normalOrigin("null") is None


def test_page_source_needs_nothing_inline():
    """
    The page has no inline script, style or event handler (the CSP would
    block them), and the script never parses HTML.
    """
    html = asset("index.html").decode("utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    # New messages are announced to screen readers; every control is named.
    assert re.search(r'<ol id="log"[^>]*role="log"[^>]*aria-live="polite"', html)
    for control in re.findall(r"<input[^>]*>", html):
        ident = re.search(r'id="([^"]+)"', control).group(1)
        assert f'<label for="{ident}"' in html, control
    script = asset("app.js").decode("utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                 "eval(", "new Function", "setAttribute(\"on", "javascript:"):
        assert sink not in script, sink


def test_web_options():
    """
    --web takes endpoint descriptions (repeatable, checked at parse time) and
    --web-origin origins or *.
    """
    options = Options()
    options.parseOptions(["--db", "none", "--web", "tcp:8080", "--web", "tcp:8081",
                          "--web-origin", "https://chat.example", "--web-origin", "*"])
    assert options["web"] == ["tcp:8080", "tcp:8081"]
    assert options["web-origins"] == ["https://chat.example", "*"]
    with pytest.raises(StartFailure, match="--web nonsense:9"):
        Options().parseOptions(["--db", "none", "--web", "nonsense:9"])
    with pytest.raises(usage.UsageError, match="--web-origin"):
        Options().parseOptions(["--db", "none", "--web-origin", "chat.example"])
    assert Options().parseOptions(["--db", "none"]) is None

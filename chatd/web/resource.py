"""
The web front end's HTTP side: the page, its assets, and the WebSocket the
page talks through, with the headers that keep them safe.

Only the files listed in L{ASSETS} are served, from memory, read once from
the package: no directory listings, no paths from the request ever reach the
file system.  Every response carries a Content-Security-Policy that lets the
page run only its own script and style, so even a bug that put a user's text
into HTML could not run it.  The WebSocket upgrade is refused unless the
page asking for it was served from this very origin (or one allowed with
C{--web-origin}): another site cannot open a chat session in its visitor's
browser.  "This very origin" counts only by a name the server answers to
(L{OriginCheck.knowsHost}): another site could point its own name at this
server's address (DNS rebinding) and be its own origin.
"""

import io
import ipaddress
from importlib import resources
from urllib.parse import urlsplit

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web import http, pages, server
from twisted.web.resource import Resource
from twisted.web.websocket import WebSocketResource
from wsproto import ConnectionType
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    b"Content-Security-Policy": CONTENT_SECURITY_POLICY.encode("ascii"),
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"X-Frame-Options": b"DENY",
    b"Cross-Origin-Opener-Policy": b"same-origin",
    b"Cache-Control": b"no-cache",
}

ASSETS = {
    # URL path: (file in chatd/web/static, content type)
    b"": ("index.html", "text/html; charset=utf-8"),
    b"app.js": ("app.js", "text/javascript; charset=utf-8"),
    b"style.css": ("style.css", "text/css; charset=utf-8"),
    b"favicon.svg": ("favicon.svg", "image/svg+xml"),
}

MAX_BODY_BYTES = 4096
"""The page never sends a request body; this is room enough for any that a
browser attaches by itself."""

HTTP_IDLE_TIMEOUT = 60
"""Seconds an HTTP connection may stay open without a request (a WebSocket
is then no longer HTTP: its own limits apply)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def asset(name: str) -> bytes:
    """
    The bytes of a file shipped in C{chatd/web/static}.
    """
    return resources.files("chatd.web").joinpath("static").joinpath(name).read_bytes()


def normalOrigin(origin: str) -> str | None:
    """
    C{origin} (C{scheme://host[:port]}) in one spelling: lower case, with its
    port even when it is the scheme's default; L{None} when it is not an
    http(s) origin.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def pageOrigin(request) -> str | None:
    """
    The origin the page that made C{request} would have been served from:
    this server, as the browser addressed it.
    """
    host = request.getHeader(b"host")
    if not host:
        return None
    scheme = "https" if request.isSecure() else "http"
    try:
        return normalOrigin(f"{scheme}://{host.decode('ascii')}")
    except UnicodeDecodeError:
        return None


def hostName(request) -> str | None:
    """
    The name (or address) C{request} calls this server by, in lower case,
    without its port; L{None} without a usable Host header.
    """
    host = request.getHeader(b"host")
    try:
        return urlsplit(f"//{host.decode('ascii')}").hostname if host else None
    except (UnicodeDecodeError, ValueError):
        return None


def _isAddress(name):
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class OriginCheck:
    """
    Decides whether a WebSocket upgrade may come from the page that asks,
    and whether a browser may use the name it calls the server by.

    @ivar allowed: the other origins allowed, normalised; C{"*"} among them
        allows any.
    @ivar names: the host names of the allowed origins: names the server
        answers to.
    """

    def __init__(self, allowed=()):
        self.anyOrigin = "*" in allowed
        self.allowed = frozenset(normalOrigin(o) for o in allowed if o != "*")
        self.names = frozenset(urlsplit(o).hostname for o in self.allowed)

    def knowsHost(self, request) -> bool:
        """
        Whether C{request} calls the server by a name it answers to: an IP
        address, C{localhost} (neither of which another site can make its
        own), a name of an origin given with C{--web-origin}, or any with
        C{--web-origin '*'}.  Any other name may be another site's, pointed
        at this server's address (DNS rebinding), which would then be the
        page's "own" origin.
        """
        name = hostName(request)
        return (self.anyOrigin or name == "localhost" or name in self.names
                or (name is not None and _isAddress(name)))

    def admits(self, request) -> bool:
        origin = request.getHeader(b"origin")
        if origin is None:
            # Not a browser: a browser always says where the page came from,
            # and anything else can say whatever it likes anyway.
            return True
        if self.anyOrigin:
            return True
        try:
            origin = normalOrigin(origin.decode("ascii"))
        except UnicodeDecodeError:
            return False
        if origin is None:
            return False
        return origin in self.allowed or (origin == pageOrigin(request)
                                          and self.knowsHost(request))


def unknownHost(request) -> str:
    """
    What to tell a browser whose C{request} calls the server by a name it
    does not answer to (see L{OriginCheck.knowsHost}): which option makes
    it one.
    """
    origin = pageOrigin(request) or "http://NAME:PORT"
    return (f"This chat server answers browsers only by its IP address or localhost, "
            f"so that another site cannot take its place by pointing a name of its "
            f"own at it. To use it by this name, start it with --web-origin {origin}\n")


def upgradeProblem(request) -> str | None:
    """
    Why C{request} is not a WebSocket upgrade the library would take, as
    wsproto (the library's own) reads it, or L{None}.
    """
    headers = [(name, value) for name, values in request.requestHeaders.getAllRawHeaders()
               for value in values]
    try:
        H11Handshake(ConnectionType.SERVER).initiate_upgrade_connection(headers, request.path)
    except RemoteProtocolError as e:
        return str(e)
    return None


def refused(request, code, text: str) -> bytes:
    """
    Answer C{request} with C{code} and C{text}, and close its connection
    after: a refused request is no page's doing, and a peer pipelining
    refused upgrades on one connection would have each logged, without end.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"connection", b"close")
    request.channel.persistent = False
    return text.encode("utf-8")


class ChatWebSocket(WebSocketResource):
    """
    The WebSocket endpoint, behind the L{OriginCheck}.
    """

    _log = Logger()

    def __init__(self, factory, originCheck):
        super().__init__(factory)
        self._originCheck = originCheck

    def getChild(self, path, request):
        return pages.notFound()

    def render_GET(self, request):
        hosts = request.requestHeaders.getRawHeaders(b"host", [])
        if len(hosts) != 1:
            # Not a request HTTP allows (RFC 9112, section 3.2), nor one the
            # WebSocket library can answer: it would raise.
            return refused(request, http.BAD_REQUEST,
                           "A WebSocket upgrade needs one Host header.\n")
        problem = upgradeProblem(request)
        if problem is not None:
            # (The library would log each as an error.)
            return refused(request, http.BAD_REQUEST, f"Not a WebSocket upgrade: {problem}\n")
        if not self._originCheck.admits(request):
            origin = request.getHeader(b"origin")
            self._log.info("refused a WebSocket from {origin} (the page is at {page})",
                           origin=origin, page=pageOrigin(request))
            if not self._originCheck.knowsHost(request):
                return refused(request, http.FORBIDDEN, unknownHost(request))
            return refused(request, http.FORBIDDEN,
                           "This chat server does not accept WebSocket connections from "
                           "pages of other sites.\n")
        return super().render_GET(request)


class _Asset(Resource):
    """
    One file of the page, from memory, for a browser that calls the server
    by a name it answers to (a page served by another name would be shown
    working, then refused its WebSocket).
    """

    def __init__(self, data, contentType, originCheck):
        super().__init__()
        self._data = data
        self._type = contentType.encode("ascii")
        self._originCheck = originCheck

    def render_GET(self, request):
        if not self._originCheck.knowsHost(request):
            return refused(request, http.FORBIDDEN, unknownHost(request))
        request.setHeader(b"content-type", self._type)
        return self._data

    def getChild(self, path, request):
        return pages.notFound()


class _Root(Resource):
    """
    The assets and the WebSocket by name; nothing else exists.
    """

    def getChild(self, path, request):
        return pages.notFound()


class _Request(server.Request):
    """
    A request whose body, which no page of ours sends, is bounded and kept
    in memory.
    """

    _bodySize = 0

    def gotLength(self, length):
        if length is not None and length > MAX_BODY_BYTES:
            self._refuseBody()
        self.content = io.BytesIO()

    def handleContentChunk(self, data):
        self._bodySize += len(data)
        if self._bodySize > MAX_BODY_BYTES:
            self._refuseBody()
            return
        super().handleContentChunk(data)

    def _refuseBody(self):
        transport = self.channel.transport
        if transport is not None and not transport.disconnecting:
            transport.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n")
            transport.loseConnection()


class _Channel(http.HTTPChannel):
    """
    One HTTP connection, counted against the server's connection limits (in
    all and per address) from its start, as every other connection is,
    until it becomes a WebSocket, whose L{chatd.edge.connection.Connection}
    then counts it instead (L{uncount}).  (Uncounted, one address could
    hold open every descriptor the daemon has with requests it never ends.)
    """

    # The gate and address it is counted under, while it is, and when it
    # is cut off if it has not become a WebSocket by then.
    _countedBy = None
    _address = None
    _deadline = None

    def counted(self, gate, address):
        self._countedBy, self._address = gate, address
        timeout = gate.limits.loginTimeout
        if timeout:
            # A page loads in far less; one request trickled in (a header a
            # minute, each restarting the idle timeout) would hold a place
            # under the limits for ever, as no login may.
            self._deadline = gate.clock.callLater(timeout, self._outlived)

    def _outlived(self):
        self._deadline = None
        self.transport.abortConnection()

    def uncount(self):
        """
        Stop counting this connection (safe to call more than once).
        """
        gate, self._countedBy = self._countedBy, None
        if gate is not None:
            gate.releaseAddress(self._address)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def pauseProducing(self):
        """
        The peer reads our answers slower than it asks: read and answer
        nothing more until they are sent.  (Twisted, told this while it
        answers a request, goes on reading, and then answers every
        pipelined request already read: a peer that never reads grows the
        daemon's memory without end.)
        """
        super().pauseProducing()
        # LineReceiver's: parse no further request from what was read.
        self.paused = True
        self._networkProducer.pauseProducing()

    def resumeProducing(self):
        self.paused = False
        super().resumeProducing()
        if not self._handlingRequest and not self.paused:
            # The requests read before the pause, if any.
            self.dataReceived(b"")

    def connectionLost(self, reason):
        # (Once the channel is a WebSocket, its protocol's connectionLost
        # takes this one's place: see WebChatProtocol.)
        self.uncount()
        super().connectionLost(reason)


class _Refused(Protocol):
    """
    An HTTP connection over the limits: told why in a 503, and closed.
    """

    def __init__(self, why):
        self._why = why

    def connectionMade(self):
        body = f"Connection refused: {self._why}\n".encode("utf-8")
        self.transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            + body)
        self.transport.loseConnection()


class WebSite(server.Site):
    """
    The site of one C{--web} listener: the page and its assets at C{/}, the
    WebSocket at C{/ws}; every response with L{SECURITY_HEADERS}.
    """

    noisy = False
    requestFactory = _Request
    protocol = _Channel

    def __init__(self, wsFactory, originCheck=None, timeout=HTTP_IDLE_TIMEOUT):
        root = _Root()
        originCheck = originCheck or OriginCheck()
        for path, (name, contentType) in ASSETS.items():
            root.putChild(path, _Asset(asset(name), contentType, originCheck))
        root.putChild(b"ws", ChatWebSocket(wsFactory, originCheck))
        super().__init__(root, timeout=timeout)
        self._gate = wsFactory.gate
        # twistd's log already has a line per connection; not one per asset.
        self.logPath = None

    def log(self, request):
        pass

    def buildProtocol(self, addr):
        address = getattr(addr, "host", None)
        refusal = self._gate.admitAddress(address)
        if refusal is not None:
            return _Refused(refusal)
        channel = super().buildProtocol(addr)
        channel.counted(self._gate, address)
        return channel

    def getResourceFor(self, request):
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        return super().getResourceFor(request)

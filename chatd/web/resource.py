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
browser.
"""

import io
from importlib import resources
from urllib.parse import urlsplit

from twisted.logger import Logger
from twisted.web import http, pages, server
from twisted.web.resource import Resource
from twisted.web.websocket import WebSocketResource

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


class OriginCheck:
    """
    Decides whether a WebSocket upgrade may come from the page that asks.

    @ivar allowed: the other origins allowed, normalised; C{"*"} among them
        allows any.
    """

    def __init__(self, allowed=()):
        self.anyOrigin = "*" in allowed
        self.allowed = frozenset(normalOrigin(o) for o in allowed if o != "*")

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
        return origin == pageOrigin(request) or origin in self.allowed


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
        if not self._originCheck.admits(request):
            origin = request.getHeader(b"origin")
            self._log.info("refused a WebSocket from {origin} (the page is at {page})",
                           origin=origin, page=pageOrigin(request))
            request.setResponseCode(http.FORBIDDEN)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (b"This chat server does not accept WebSocket connections from "
                    b"pages of other sites.\n")
        return super().render_GET(request)


class _Asset(Resource):
    """
    One file of the page, from memory.
    """

    def __init__(self, data, contentType):
        super().__init__()
        self._data = data
        self._type = contentType.encode("ascii")

    def render_GET(self, request):
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


class WebSite(server.Site):
    """
    The site of one C{--web} listener: the page and its assets at C{/}, the
    WebSocket at C{/ws}; every response with L{SECURITY_HEADERS}.
    """

    noisy = False
    requestFactory = _Request

    def __init__(self, wsFactory, originCheck=None, timeout=HTTP_IDLE_TIMEOUT):
        root = _Root()
        for path, (name, contentType) in ASSETS.items():
            root.putChild(path, _Asset(asset(name), contentType))
        root.putChild(b"ws", ChatWebSocket(wsFactory, originCheck or OriginCheck()))
        super().__init__(root, timeout=timeout)
        # twistd's log already has a line per connection; not one per asset.
        self.logPath = None

    def log(self, request):
        pass

    def getResourceFor(self, request):
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        return super().getResourceFor(request)

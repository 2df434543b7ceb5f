"""
The web front end of a real daemon, over real sockets, with a plain
WebSocket client (wsproto): the Origin check, hostile frames, and the
daemon's shutdown, as Twisted's HTTP and WebSocket code really deliver them.
"""

import json
import re
import socket

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from chatd.web.protocol import UNFINISHED_LIMIT
from support import Daemon

TIMEOUT = 10


class WebSocketClient:
    """
    A blocking WebSocket client; every read has a deadline.
    """

    def __init__(self, port, origin=None, host="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending = []
        self.text = ""
        headers = [(b"origin", origin.encode())] if origin else []
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target="/ws",
                                               extra_headers=headers)))
        self.handshake = self.next()

    def next(self):
        """
        The next event (messages whole), waiting for it.
        """
        while True:
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, TextMessage):
                    self.text += event.data
                    if not event.message_finished:
                        continue
                    event, self.text = self.text, ""
                return event
            data = self.sock.recv(65536)
            if not data:
                return None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())

    def message(self):
        event = self.next()
        assert isinstance(event, str), event
        return json.loads(event)

    def send(self, **message):
        self.sendText(json.dumps(message))

    def sendText(self, text, finished=True):
        self.sock.sendall(self.ws.send(TextMessage(text, message_finished=finished)))

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def daemon():
    server = Daemon("--db", "none", "--web", "tcp:0:interface=127.0.0.1", listeners=2).start()
    yield server
    server.stop()


def webPort(daemon):
    return int(re.search(r"web client: http://[^:]+:(\d+)/", daemon.logText()).group(1))


def test_origin_of_another_site_refused(daemon):
    """
    A WebSocket opened by another site's page is refused with 403; one from
    the page's own origin is accepted and greeted.
    """
    port = webPort(daemon)
    evil = WebSocketClient(port, origin="http://evil.example")
    assert isinstance(evil.handshake, RejectConnection)
    assert evil.handshake.status_code == 403
    evil.close()
    own = WebSocketClient(port, origin=f"http://127.0.0.1:{port}")
    assert isinstance(own.handshake, AcceptConnection)
    assert own.message()["type"] == "hello"
    own.close()
    local = WebSocketClient(port, origin=f"http://localhost:{port}", host="localhost")
    assert isinstance(local.handshake, AcceptConnection)
    local.close()
    # DNS rebinding: another site's name, pointed at this server, is the
    # page's own origin but no name the server answers to.
    rebound = WebSocketClient(port, origin=f"http://evil.example:{port}", host="evil.example")
    assert isinstance(rebound.handshake, RejectConnection)
    assert rebound.handshake.status_code == 403
    rebound.close()


def test_hostile_frames_never_crash_anything(daemon):
    """
    Bad JSON, an oversized frame and a binary frame get errors and the
    connection goes on; a message that never ends closes that connection
    with 1009; the daemon serves the next browser and logs no traceback.
    """
    port = webPort(daemon)
    client = WebSocketClient(port)
    assert client.message()["type"] == "hello"
    client.sendText("{not json")
    assert client.message()["code"] == "bad-json"
    client.sendText(json.dumps({"type": "say", "room": "#lobby", "text": "x" * 20000}))
    assert client.message()["code"] == "too-large"
    client.sock.sendall(client.ws.send(BytesMessage(b"\x00\xff")))
    assert client.message()["code"] == "bad-message"
    client.send(type="nick", nick="hostile")
    assert client.message() == {"type": "you", "nick": "hostile", "old": None}
    assert client.message()["type"] == "room"
    client.sendText("[" * 7000 + "]" * 7000)
    assert client.message()["code"] == "bad-json"
    # A message that never ends, in pieces of 8,192 bytes (8,200 with the
    # frame's header and mask): just enough that the last one crosses the
    # bound, so that the daemon has read everything sent when it closes
    # (sending more after the close would reset the connection, and lose
    # the answer in transit).
    for _ in range(UNFINISHED_LIMIT // 8200 + 1):
        client.sendText("x" * 8192, finished=False)
    error = client.message()
    assert error["code"] == "too-large"
    close = client.next()
    assert isinstance(close, CloseConnection) and close.code == 1009
    client.close()

    again = WebSocketClient(port)
    assert again.message()["type"] == "hello"
    again.send(type="nick", nick="hostile")
    assert again.message()["type"] == "you"
    again.close()
    assert "Traceback" not in daemon.logText()
    assert "Unhandled" not in daemon.logText()


def test_shutdown_tells_browsers(daemon):
    """
    On SIGTERM a browser is told the server is going down and gets a close
    frame with 1001 (going away).
    """
    server = Daemon("--db", "none", "--web", "tcp:0:interface=127.0.0.1", listeners=2).start()
    client = WebSocketClient(webPort(server))
    assert client.message()["type"] == "hello"
    client.send(type="nick", nick="leaving")
    assert client.message()["type"] == "you"
    assert client.message()["type"] == "room"
    server.stop()
    assert client.message() == {"type": "notice", "text": "The server is going down. Goodbye."}
    close = client.next()
    assert isinstance(close, CloseConnection) and close.code == 1001
    client.close()

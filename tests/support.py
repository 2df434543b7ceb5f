"""
Test helpers: an in-memory chat server built from the real factory, and a
blocking line client for tests against a real daemon.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from chatd.core import ChatCore
from chatd.fanout import Fanout
from chatd.protocol import ChatFactory


class MemoryServer:
    """
    The real factory, core and fan-out, with each client on its own
    C{StringTransport}.
    """

    def __init__(self, **factoryArgs):
        self.clock = Clock()
        self.core = ChatCore(Fanout(), self.clock)
        self.factory = ChatFactory(self.core, self.clock, **factoryArgs)
        self._port = 40000

    def connect(self, nick=None):
        """
        Open a connection, optionally claim C{nick}, and return it with its
        output cleared.
        """
        self._port += 1
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", self._port))
        transport = StringTransportWithDisconnection(
            peerAddress=IPv4Address("TCP", "127.0.0.1", self._port))
        transport.protocol = proto
        proto.makeConnection(transport)
        client = MemoryClient(proto, transport)
        if nick is not None:
            client.send(nick)
            client.transport.clear()
        return client


class MemoryClient:
    def __init__(self, proto, transport):
        self.proto = proto
        self.transport = transport

    def send(self, line):
        self.proto.dataReceived(line.encode("utf-8") + b"\r\n")

    def sendBytes(self, data):
        self.proto.dataReceived(data)

    def lines(self):
        """
        The lines received since the last call, decoded.
        """
        data = self.transport.value()
        self.transport.clear()
        return [line.decode("utf-8") for line in data.split(b"\r\n")[:-1]]


class LineClient:
    """
    A blocking client for a real daemon; every read has a timeout so a broken
    server fails the test instead of hanging it.
    """

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def sendBytes(self, data):
        self.sock.sendall(data)

    def send(self, line):
        self.sendBytes(line.encode("utf-8") + b"\n")

    def readLine(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8")

    def readUntil(self, predicate):
        """
        Read lines until one satisfies C{predicate}; return all read, that
        one included.
        """
        lines = []
        while True:
            lines.append(self.readLine())
            if predicate(lines[-1]):
                return lines

    def login(self, nick):
        self.readUntil(lambda l: l.startswith("??? "))
        self.send(nick)
        return self.readUntil(lambda l: l.startswith("=== #lobby members"))

    def sync(self):
        """
        Everything the server has queued for this client before now, up to a
        barrier: the reply to a command sent after it.  No sleeping needed.
        """
        self.send("/rooms")
        lines = self.readUntil(lambda l: l.startswith("=== ") and l.endswith(" rooms"))
        count = int(lines[-1].split()[1])
        for _ in range(count):
            self.readLine()
        return lines[:-1]

    def close(self):
        self.sock.close()


class Daemon:
    """
    C{twistd -n chat} in a subprocess, started the way a user starts it.

    Its log is collected by a thread so the pipe never fills; C{port} is read
    from the "chatd listening on" line.
    """

    def __init__(self, *args, cwd=None, listen="tcp:0:interface=127.0.0.1"):
        command = [twistdPath(), "-n", "--pidfile=", "chat"]
        if listen:
            command += ["--listen", listen]
        self.command = command + list(args)
        self.cwd = cwd
        self.log = []
        self.port = None

    def start(self, timeout=20):
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self._listening = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()
        if not self._listening.wait(timeout):
            self.stop()
            raise AssertionError("daemon did not start:\n" + "".join(self.log))
        return self

    def _collect(self):
        for line in self.process.stdout:
            self.log.append(line)
            match = re.search(r"chatd listening on [^ ]+:(\d+)", line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._listening.set()

    def client(self):
        return LineClient(self.port)

    def logText(self):
        return "".join(self.log)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """
        Signal the daemon and wait for it to exit; return its exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def twistdPath():
    """
    The twistd beside the running Python: the one this checkout is installed
    into.
    """
    return str(Path(sys.executable).with_name("twistd"))


def requireTool(name):
    """
    Skip the test when C{name} is not installed, unless CI demands every tool.
    """
    if shutil.which(name) is None:
        if os.environ.get("CHATD_REQUIRE_TOOLS"):
            pytest.fail(f"{name} is required but not installed")
        pytest.skip(f"{name} is not installed")


def settle(*clients):
    """
    Everything delivered to each client once all their lines so far are
    processed: a first barrier per client makes sure the server has acted on
    every line they sent, a second collects all that this caused.
    """
    got = [client.sync() for client in clients]
    return [lines + client.sync() for lines, client in zip(got, clients)]

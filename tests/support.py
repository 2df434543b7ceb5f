"""
Test helpers: an in-memory chat server built from the real factory, a
blocking line client and a daemon subprocess for tests against a real daemon,
and ways to wait for the history store's threads without a reactor.
"""

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface import implementer

from chatd.core import events
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.core.names import nickKey, roomKey
from chatd.edge.gate import Gate
from chatd.edge.limits import Limits
from chatd.line.protocol import ChatFactory
from chatd.storage import AccountError, IAccountStore, IHistoryStore


class MemoryServer:
    """
    The real factory, core and fan-out, with each client on its own
    C{StringTransport}.
    """

    def __init__(self, history=None, accounts=None, operators=(), limits=Limits(),
                 coalesceTurns=False, announceTogether=False, **factoryArgs):
        """
        @param announceTogether: whether arrivals are announced together, as
            a daemon announces them (L{chatd.core.arrivals}), rather than
            each as it happens.
        """
        self.clock = Clock()
        fanout = Fanout(self.clock) if announceTogether else Fanout()
        self.core = ChatCore(fanout, self.clock, history=history, accounts=accounts,
                             operators=operators)
        self.gate = Gate(self.clock, limits, coalesceTurns=coalesceTurns)
        self.factory = ChatFactory(self.core, self.gate, **factoryArgs)
        self._port = 40000

    def connect(self, nick=None, host="127.0.0.1", factory=None):
        """
        Open a connection from C{host} (to the line protocol, unless another
        front end's C{factory} is given), optionally claim C{nick}, and return
        it (with its output cleared when a nickname was claimed).
        """
        self._port += 1
        address = IPv4Address("TCP", host, self._port)
        proto = (factory or self.factory).buildProtocol(address)
        transport = StringTransportWithDisconnection(peerAddress=address)
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

    def __init__(self, port, host="127.0.0.1", timeout=10, errors="strict", tls=None):
        """
        @param errors: how to decode what the server sends; strict by default,
            so that a server sending invalid UTF-8 fails the test.
        @param tls: an L{ssl.SSLContext} to speak TLS with, checking the
            server's certificate for C{host}; plain TCP by default.
        """
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.buffer = b""
        self.errors = errors

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
        return line.decode("utf-8", self.errors)

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
        barrier: the reply to a /ping sent after it.  No sleeping needed.
        """
        self.send("/ping sync")
        return self.readUntil(lambda l: l == "=== pong sync")[:-1]

    def close(self):
        self.sock.close()


class Daemon:
    """
    C{twistd -n chat} in a subprocess, started the way a user starts it.

    Its log is collected by a thread so the pipe never fills; C{port} is read
    from the "chatd listening on" line.
    """

    def __init__(self, *args, cwd=None, listen="tcp:0:interface=127.0.0.1", runner=None,
                 dataHome=None, listeners=1):
        """
        @param listeners: how many "listening on" lines to wait for; their
            ports, in the order logged, are in C{ports}.
        @param runner: the command before the chat options; by default
            C{twistd -n --pidfile= chat}.
        @param dataHome: the daemon's C{XDG_DATA_HOME}, where its history is
            kept unless C{--db} says otherwise; by default a fresh folder, so
            that no daemon replays another one's history.
        """
        self.dataHome = dataHome or tempfile.mkdtemp(prefix="chatd-daemon-")
        command = runner or [twistdPath(), "-n", "--pidfile=", "chat"]
        if listen:
            command += ["--listen", listen]
        self.command = command + list(args)
        self.cwd = cwd
        self.log = []
        self.port = None
        self.ports = []
        self._listeners = listeners

    def start(self, timeout=20):
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=dict(os.environ, XDG_DATA_HOME=self.dataHome),
            preexec_fn=_asFromATerminal)
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
            if match:
                self.ports.append(int(match.group(1)))
                self.port = self.ports[0]
                if len(self.ports) == self._listeners:
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
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"daemon still running {timeout} s after {sig!r}; "
                                 "its log:\n" + "".join(self.log[-40:])) from None


def _asFromATerminal():
    """
    Give the daemon the SIGINT a user's shell gives it, whatever this test
    run inherited: started in the background by a non-interactive shell
    (``.ci/run &``), the tests and so the daemon inherit SIGINT ignored, and
    twistd, rightly, leaves an ignored SIGINT ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def makeCertificate(folder, host="127.0.0.1"):
    """
    Write a new self-signed certificate for C{host} and its private key into
    C{folder}, as PEM files.

    @return: the paths of the key and of the certificate.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    keyPath, certPath = Path(folder, "server.key"), Path(folder, "server.crt")
    keyPath.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(keyPath), str(certPath)


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


@implementer(IHistoryStore)
class MemoryHistory:
    """
    A history store in a list, whose reads answer only when the test says so
    (L{answer}), as a real store's threads would answer later.

    @ivar lines: every event appended, in order.
    @ivar searched: the rooms each search was asked to look in.
    @ivar seen: the ids made by other daemons it was told of (L{observed}).
    """

    shared = False

    def __init__(self):
        self.lines = []
        self.searched = []
        self.seen = []
        self._lastId = 0
        self._waiting = []

    def nextId(self):
        self._lastId += 1
        return self._lastId

    def observed(self, id):
        self.seen.append(id)

    def append(self, event):
        self.lines.append(event)

    def mayHold(self, room):
        # Read every time, as a store that cannot tell: the tests of a
        # replay's place among live lines read empty rooms too.
        return True

    def recent(self, room, count):
        found = [e for e in self.lines if roomKey(e.room) == roomKey(room)]
        return self._later(found[-count:])

    def page(self, room, count, before=None, after=None, oldest=False):
        def value(event, bound):
            return event.id if bound[0] == "id" else event.time

        found = [e for e in self.lines if roomKey(e.room) == roomKey(room)
                 and (before is None or value(e, before) < before[1])
                 and (after is None or value(e, after) > after[1])]
        return self._later(found[:count] if oldest else found[-count:])

    def lastTopic(self, room):
        topics = [e for e in self.lines if isinstance(e, events.TopicChanged)
                  and roomKey(e.room) == roomKey(room)]
        if not topics or not topics[-1].topic:
            return succeed(None)
        return succeed((topics[-1].topic, topics[-1].nick, topics[-1].time))

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def search(self, rooms, words, limit):
        self.searched.append(sorted(rooms))
        keys = {roomKey(r) for r in rooms}
        found = [e for e in reversed(self.lines) if roomKey(e.room) in keys
                 and all(w in getattr(e, "text", "") for w in words)]
        return self._later(found[:limit])

    def prune(self, before):
        kept = [e for e in self.lines if e.time >= before]
        count, self.lines = len(self.lines) - len(kept), kept
        return succeed(count)

    def flush(self):
        return succeed(None)

    def close(self):
        return succeed(None)

    def answer(self):
        """
        Answer every read asked so far, in order.
        """
        waiting, self._waiting = self._waiting, []
        for deferred, result in waiting:
            deferred.callback(result)

    def _later(self, result):
        deferred = Deferred()
        self._waiting.append((deferred, result))
        return deferred


class ThreadCalls:
    """
    Stands in for the reactor's C{callFromThread}: calls from other threads
    queue up and run on the test's thread while it waits for a result.
    """

    def __init__(self):
        self._calls = queue.SimpleQueue()

    def callFromThread(self, f, *args, **kwargs):
        self._calls.put((f, args, kwargs))

    def wait(self, deferred, timeout=10):
        """
        Run the queued calls until C{deferred} fires; return its result or
        raise its failure.
        """
        outcome = []
        deferred.addBoth(outcome.append)
        while not outcome:
            f, args, kwargs = self._calls.get(timeout=timeout)
            f(*args, **kwargs)
        if hasattr(outcome[0], "raiseException"):
            outcome[0].raiseException()
        return outcome[0]

    def until(self, predicate, timeout=10):
        """
        Run the queued calls until C{predicate()} is true; fail after
        C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not true within {timeout} s: {predicate}")
            try:
                f, args, kwargs = self._calls.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            f(*args, **kwargs)


def startFailure(*args, cwd=None, timeout=30):
    """
    Run a chatd that is expected not to start; return its exit status and
    its output.
    """
    done = subprocess.run(
        [twistdPath(), "-n", "--pidfile=", "chat", "--listen",
         "tcp:0:interface=127.0.0.1", *args], cwd=cwd, capture_output=True,
        text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def guessedWrongFromLoopback(core, nick, times=20):
    """
    C{times} wrong passwords for C{nick} tried from the loopback addresses:
    the next check from there waits its longest (a minute).
    """
    for _ in range(times):
        core.identity.triedElsewhere(nick, "loopback", False)


@implementer(IAccountStore)
class MemoryAccounts:
    """
    An account store in a dict that answers at once and keeps passwords in
    the clear, for tests of the core's rules; C{verified} counts the
    password checks it was asked for.
    """

    def __init__(self, bans=()):
        self.passwords = {}
        self.stored = {ban.key: ban for ban in bans}
        self.kept = {}
        self.verified = 0

    def isRegistered(self, nick):
        return nickKey(nick) in self.passwords

    def register(self, nick, password):
        if self.isRegistered(nick):
            return fail(AccountError(f"{nick} is already registered"))
        self.passwords[nickKey(nick)] = password
        return succeed(None)

    def verify(self, nick, password):
        self.verified += 1
        return succeed(self.passwords.get(nickKey(nick)) == password)

    def changePassword(self, nick, password):
        self.passwords[nickKey(nick)] = password
        return succeed(None)

    def bans(self):
        return list(self.stored.values())

    def addBan(self, ban):
        # As the stores do: a kept room's bans are its owner's to store.
        kept = self.kept.get(roomKey(ban.room)) if ban.room else None
        if kept is None or kept[1] == nickKey(ban.by):
            self.stored[ban.key] = ban
        return succeed(None)

    def removeBan(self, ban):
        self.stored.pop(ban.key, None)
        return succeed(None)

    def rooms(self):
        return list(self.kept.values())

    def keepRoom(self, name, owner, topic, firstId):
        # As the stores do: the first to keep a room owns it.
        old = self.kept.get(roomKey(name))
        if old is None:
            old = self.kept[roomKey(name)] = (name, owner, topic, firstId)
        elif old[1] == owner:
            old = self.kept[roomKey(name)] = old[:2] + (topic, old[3])
        return succeed(old)

    def close(self):
        return succeed(None)


class EventWire:
    """
    A wire format that hands over the event itself, so that core tests see
    exactly which events reach whom.
    """

    @staticmethod
    def encode(event):
        return event

    @staticmethod
    def encodeOwn(event):
        # Core tests look at what the others receive; the actor's own
        # confirmations are checked with OwnEventWire.
        return None


class OwnEventWire(EventWire):
    """
    An L{EventWire} that also hands over the actor's confirmations, marked.
    """

    @staticmethod
    def encodeOwn(event):
        return ("own", event)


class Inbox:
    """
    An outbox that records what it is sent.
    """

    def __init__(self):
        self.events = []
        self.hungUp = False

    def send(self, event):
        self.events.append(event)

    def take(self):
        taken, self.events = self.events, []
        return taken

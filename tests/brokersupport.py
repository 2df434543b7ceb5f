"""
Test helpers for several daemons sharing rooms: an in-memory fake of the
Redis commands chatd uses, a link that runs chatd's own writer and reader
(their commands and their reading of the replies) against it only when the
test says so, and a cluster of in-memory servers
(the real factory, core and brokered fan-out) on one fake Redis; and a
throw-away redis-server for the end-to-end tests.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from collections import deque

from twisted.internet.defer import Deferred, succeed

from chatd.broker.fanout import BrokeredFanout
from chatd.broker.link import RELEASE, Reader, Writer
from chatd.core.chat import ChatCore
from chatd.core.names import roomKey
from chatd.edge.gate import Gate
from chatd.edge.limits import Limits
from chatd.line.protocol import ChatFactory
from support import MemoryHistory, MemoryServer, requireTool


class RedisDown(ConnectionError):
    pass


def _bytes(value):
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else str(value)).encode()


def _flat(fields):
    return [x for pair in fields.items() for x in pair]


class FakeRedis:
    """
    The commands L{chatd.broker.link} sends, in memory, with the meanings and
    the replies (as hiredis reads them) Redis gives them.  C{restart()}
    forgets everything, as a Redis without persistence does; C{down} makes
    every command fail.
    """

    def __init__(self, clock):
        self.clock = clock
        self.down = False
        self._ids = 0
        self.restart()

    def restart(self):
        self.values = {}
        self.expires = {}
        self.streams = {}

    def run(self, commands):
        """
        Run C{commands} (as L{chatd.broker.resp.RedisProtocol.pipeline}
        takes them) and return their replies.
        """
        return [self.command(*[_bytes(arg) for arg in command]) for command in commands]

    def command(self, name, *args):
        self._check()
        return getattr(self, "_" + name.decode().lower())(*args)

    def _check(self):
        if self.down:
            raise RedisDown("redis is down")

    def _alive(self, name):
        until = self.expires.get(name)
        if until is not None and until <= self.clock.seconds():
            self.values.pop(name, None)
            del self.expires[name]
        return name in self.values

    # What the tests look at and change

    def set(self, name, value, nx=False, px=None):
        self._check()
        if nx and self._alive(name):
            return None
        self.values[name] = value
        if px is None:
            self.expires.pop(name, None)
        else:
            self.expires[name] = self.clock.seconds() + px / 1000
        return True

    def get(self, name):
        self._check()
        return self.values.get(name) if self._alive(name) else None

    def delete(self, name):
        self._check()
        self.expires.pop(name, None)
        return int(self.values.pop(name, None) is not None)

    def entries(self, name=b"chatd:events"):
        return list(self.streams.get(name, []))

    # The commands

    def _set(self, name, value, *options):
        px = int(options[options.index(b"PX") + 1]) if b"PX" in options else None
        return b"OK" if self.set(name, value, nx=b"NX" in options, px=px) else None

    def _get(self, name):
        return self.get(name)

    def _pexpire(self, name, ms):
        if not self._alive(name):
            return 0
        self.expires[name] = self.clock.seconds() + int(ms) / 1000
        return 1

    def _eval(self, script, keys, name, value):
        # The one script chatd runs.
        assert script == RELEASE and keys == b"1"
        return self.delete(name) if self.get(name) == value else 0

    def _xadd(self, name, *args):
        # (MAXLEN ~ N: trimming is not modelled.)
        at = args.index(b"*")
        self._ids += 1
        entryId = f"{self._ids}-0".encode()
        fields = dict(zip(args[at + 1::2], args[at + 2::2]))
        self.streams.setdefault(name, []).append((entryId, fields))
        return entryId

    def _xrevrange(self, name, end, start, countWord, count):
        last = list(reversed(self.streams.get(name, [])))[:int(count)]
        return [[i, _flat(f)] for i, f in last]

    def _xread(self, *args):
        count = int(args[args.index(b"COUNT") + 1])
        names = args[args.index(b"STREAMS") + 1:]
        half = len(names) // 2
        found = []
        for name, cursor in zip(names[:half], names[half:]):
            after = int(cursor.split(b"-")[0])
            entries = [[i, _flat(f)] for i, f in self.streams.get(name, [])
                       if int(i.split(b"-")[0]) > after][:count]
            if entries:
                found.append([name, entries])
        return found or None

    def _xdel(self, name, *ids):
        kept = [(i, f) for i, f in self.streams.get(name, []) if i not in ids]
        deleted = len(self.streams.get(name, [])) - len(kept)
        self.streams[name] = kept
        return deleted


class MemoryLink:
    """
    A daemon's link to a L{FakeRedis}: chatd's own L{Writer} and L{Reader},
    run when the test calls L{write} and L{read}, as L{RedisLink} runs them
    when Redis answers.
    """

    def __init__(self, redis, node, lease):
        self.redis = redis
        self.node = node
        self.lease = lease
        self.target = None
        self.confirmed = 0
        self.queue = deque()
        self.writer = Writer(self, node, lease)
        self.reader = Reader(node)
        self.readerUp = False
        # This daemon alone cannot reach Redis (its network is cut).
        self.cut = False

    # What BrokeredFanout calls

    def start(self, target):
        self.target = target

    def backlog(self):
        return len(self.queue)

    def publish(self, seq, data, needs=None):
        self.queue.append(("publish", seq, data, needs))

    def send(self, node, data):
        self.queue.append(("send", node, data))

    def claim(self, key, old=None, force=False):
        self.queue.append(("claim", key, old, 0, force))

    def release(self, key):
        self.queue.append(("release", key))

    def resend(self):
        self.queue.append(("resend",))

    def beat(self, keys, data):
        self.queue.append(("beat", tuple(keys), data))

    def stop(self):
        self.write()
        return succeed(None)

    # What the tests call, as Redis's answers would

    def write(self):
        """
        Run the queued writes, as far as Redis lets.

        @return: whether anything was written.
        """
        did = False
        while self.queue or self.writer.first:
            batch = self.writer.take(self.queue)
            commands, finish = self.writer.plan(batch)
            try:
                replies = self._run(commands)
            except RedisDown:
                # As the link does, but at once: claims are given up,
                # heartbeats dropped, the rest written once Redis is back.
                kept, calls = self.writer.failed(batch, float("inf"))
                self.queue.extendleft(reversed(kept))
                self._call(calls)
                return did
            self._call(finish(replies))
            did = True
        return did

    def read(self):
        """
        Read what waits in the stream and inbox, and hand it over.

        @return: whether anything was read.
        """
        connected = False
        try:
            if not self.readerUp:
                calls = self.reader.connected(self.target,
                                              self._run(self.reader.connecting()))
                self.readerUp = connected = True
                self._call(calls)
            found = self.reader.got(self._run(self.reader.read()))
        except RedisDown as e:
            if self.readerUp:
                self.readerUp = False
                self.target.linkDown(str(e))
            return False
        if found:
            self.target.received(found)
        return bool(found) or connected

    def _run(self, commands):
        if self.cut:
            raise RedisDown("this daemon's network is cut")
        return self.redis.run(commands)

    def _call(self, calls):
        for f, *args in calls:
            f(*args)


class Node(MemoryServer):
    """
    One daemon of a cluster, in memory: L{MemoryServer} with a brokered
    fan-out on the cluster's fake Redis.
    """

    def __init__(self, cluster, name, limits=Limits(), accounts=None, operators=(),
                 history=None, **factoryArgs):
        self.clock = cluster.clock
        self.link = MemoryLink(cluster.redis, name, BrokeredFanout.LEASE)
        self.fanout = BrokeredFanout(self.clock, self.link, node=name)
        self.core = ChatCore(self.fanout, self.clock, accounts=accounts, operators=operators,
                             history=history)
        self.gate = Gate(self.clock, limits)
        self.fanout.attach(self.core, self.gate.coalescer)
        self.factory = ChatFactory(self.core, self.gate, **factoryArgs)
        self._port = 40000 + 1000 * len(cluster.nodes)
        self.fanout.start()


class Cluster:
    """
    Several L{Node}s on one L{FakeRedis} and one clock.
    """

    def __init__(self, *names):
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.redis = FakeRedis(self.clock)
        self.nodes = []
        for name in names:
            self.add(name)

    def add(self, name, **kwargs):
        node = Node(self, name, **kwargs)
        self.nodes.append(node)
        self.settle()
        return node

    def settle(self, rounds=100):
        """
        Write and read on every node until nothing moves (a bounded number
        of rounds, so that a loop fails the test instead of hanging it).
        """
        for _ in range(rounds):
            moved = False
            for node in self.nodes:
                moved |= node.link.write()
            for node in self.nodes:
                moved |= node.link.read()
            self.clock.advance(0)
            if not moved:
                return
        raise AssertionError("the cluster did not settle")


def freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """
    A throw-away redis-server on a free loopback port, in a folder of its
    own, keeping nothing on disk.
    """

    def __init__(self, port=None):
        requireTool("redis-server")
        self.port = port or freePort()
        self.folder = tempfile.mkdtemp(prefix="chatd-redis-")
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout=10):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.process.poll() is not None:
                raise AssertionError("redis-server exited at start")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"redis-server did not answer within {timeout} s")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def waitFor(predicate, timeout=10, interval=0.05):
    """
    Wait until C{predicate()} is true; fail after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


class SharedHistory:
    """
    One history store shared by the daemons of a L{Cluster}, as PostgreSQL
    is: each daemon's lines are stored by its own writer, later
    (L{commit}), and reads answer when the test says (L{answer}) with what
    was committed then, up to the ids handed out when they were asked.

    @ivar committed: the lines stored, in the order they were committed.
    """

    def __init__(self):
        self.committed = []
        self.lastId = 0
        self.views = []

    def view(self):
        """
        @return: a new daemon's L{IHistoryStore} on this store.
        """
        view = _DaemonHistory(self)
        self.views.append(view)
        return view

    def commit(self):
        """
        Every daemon's writer commits what it was given.
        """
        for view in self.views:
            self.committed.extend(view.pending)
            view.pending = []

    def answer(self):
        """
        Answer every read asked so far, in order.
        """
        for view in self.views:
            view.answer()


class _DaemonHistory(MemoryHistory):
    """
    One daemon's side of a L{SharedHistory}: ids from the one counter (in
    the order lines were said, as PostgreSQL's are), lines stored only once
    committed.
    """

    shared = True

    def __init__(self, store):
        super().__init__()
        self.store = store
        self.pending = []

    def nextId(self):
        self.store.lastId += 1
        return self.store.lastId

    def append(self, event):
        self.pending.append(event)

    def mayHold(self, room):
        return True

    def recent(self, room, count):
        bound = self.store.lastId
        deferred = Deferred()

        def read(ignored):
            found = sorted((e for e in self.store.committed
                            if roomKey(e.room) == roomKey(room) and e.id <= bound),
                           key=lambda e: e.id)
            return found[-count:]

        self._waiting.append((deferred, None))
        return deferred.addCallback(read)

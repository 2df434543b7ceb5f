"""
The Redis operations a daemon of a cluster uses, and L{RedisLink}, which runs
them off the reactor thread.

Keys (all under C{chatd:}):

- C{chatd:events}: the one stream of the cluster.  Its entry IDs give every
  room line, join, part and rename one order, the same on every daemon.
  Trimmed to about L{STREAM_LENGTH} entries.
- C{chatd:inbox:NODE}: what is for one daemon's users alone (private
  messages).  The daemon deletes each entry as soon as it has read it, and
  the key expires two leases after the last message sent to it, so that no
  private message stays in Redis (a dead daemon's inbox goes too).
- C{chatd:nick:KEY}: who holds a nickname: the daemon's id, with a lease of
  C{lease} seconds that the holder renews every heartbeat.  Claimed with
  C{SET NX}: of two daemons claiming one nickname at once, exactly one wins.
- C{chatd:node:NODE}: the daemon is alive (the same lease).
- C{chatd:epoch}: a random value set once; a Redis that restarted without its
  data has none or another, which tells a daemon that what it had published
  but not yet read back may be lost.

redis-py (not txredisapi) on two threads: the client is maintained, speaks
streams natively, and a blocking C{XREAD} on a thread of its own is the
simplest correct reader; a second thread runs every write in order, so
entries reach the stream in the order the core emitted them.
"""

import os
import queue
import threading
import time

from twisted.logger import Logger

from chatd.broker import codec

STREAM = b"chatd:events"
STREAM_LENGTH = 100_000
INBOX = "chatd:inbox:{}"
NICK = "chatd:nick:{}"
NODE = "chatd:node:{}"
EPOCH = b"chatd:epoch"


class Ops:
    """
    The Redis commands chatd uses, on one redis-py-like C{client}: the
    threads of L{RedisLink} and the tests' in-memory fake share them.
    """

    def __init__(self, client, node, lease):
        self.client = client
        self.node = node
        self.nodeBytes = node.encode()
        self.leaseMs = int(lease * 1000)
        self.inboxKey = INBOX.format(node).encode()

    def epoch(self):
        """
        The current epoch, made now if Redis has none.
        """
        self.client.set(EPOCH, os.urandom(8).hex(), nx=True)
        return self.client.get(EPOCH)

    def tail(self):
        """
        The ID of the stream's last entry, or C{0-0}.
        """
        last = self.client.xrevrange(STREAM, count=1)
        return last[0][0] if last else b"0-0"

    def publish(self, data):
        return self.client.xadd(STREAM, {b"d": data}, maxlen=STREAM_LENGTH,
                                approximate=True)

    def publishMany(self, datas):
        pipe = self.client.pipeline(transaction=False)
        for data in datas:
            pipe.xadd(STREAM, {b"d": data}, maxlen=STREAM_LENGTH, approximate=True)
        pipe.execute()

    def send(self, node, data):
        name = INBOX.format(node).encode()
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(name, {b"d": data}, maxlen=10_000, approximate=True)
        # A daemon that died leaves no private message behind for long.
        pipe.pexpire(name, self.leaseMs * 2)
        pipe.execute()

    def claim(self, key, force=False):
        """
        Whether the nickname C{key} is this daemon's now: taken with SET NX,
        or already held (the heartbeat took it back after Redis lost it);
        C{force} takes it whoever holds it (a ghost).
        """
        name = NICK.format(key).encode()
        if self.client.set(name, self.nodeBytes, nx=not force, px=self.leaseMs):
            return True
        return self.client.get(name) == self.nodeBytes

    def release(self, key):
        name = NICK.format(key).encode()
        if self.client.get(name) == self.nodeBytes:
            self.client.delete(name)

    def beat(self, keys, data):
        """
        Renew this daemon's lease and its nicknames', and say it lives.

        @return: the keys this daemon no longer holds (lost while Redis was
            away, or never won).
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.set(NODE.format(self.node).encode(), b"1", px=self.leaseMs)
        for key in keys:
            # SET NX takes a key that vanished (Redis lost it); GET says
            # whose it is now.
            pipe.set(NICK.format(key).encode(), self.nodeBytes, nx=True, px=self.leaseMs)
            pipe.get(NICK.format(key).encode())
        pipe.xadd(STREAM, {b"d": data}, maxlen=STREAM_LENGTH, approximate=True)
        results = pipe.execute()
        lost = []
        pipe = self.client.pipeline(transaction=False)
        for i, key in enumerate(keys):
            if results[2 + 2 * i] == self.nodeBytes:
                # Renewed only where it is ours.
                pipe.pexpire(NICK.format(key).encode(), self.leaseMs)
            else:
                lost.append(key)
        pipe.execute()
        return lost

    def read(self, cursor, inboxCursor, block):
        """
        What the stream and this daemon's inbox hold after the cursors,
        waiting up to C{block} ms for something.

        @return: the new cursors, and a list of C{(fromInbox, data)}.
        """
        got = self.client.xread({STREAM: cursor, self.inboxKey: inboxCursor},
                                count=1000, block=block) or []
        found = []
        inboxIds = []
        for name, entries in got:
            name = name if isinstance(name, bytes) else name.encode()
            fromInbox = name == self.inboxKey
            for entryId, fields in entries:
                found.append((fromInbox, fields[b"d"]))
                if fromInbox:
                    inboxCursor = entryId
                    inboxIds.append(entryId)
                else:
                    cursor = entryId
        if inboxIds:
            # Read: a private message stays nowhere.
            self.client.xdel(self.inboxKey, *inboxIds)
        return cursor, inboxCursor, found


def _backoff(attempt):
    return min(0.1 * 2 ** attempt, 2.0)


class RedisLink:
    """
    The daemon's connection to Redis: a reader thread that follows the
    stream and the inbox, and a writer thread that runs every write in the
    order asked.  Neither ever blocks the reactor: results come back with
    C{callFromThread}.

    Reconnects with backoff (0.1 s doubling to 2 s) for as long as it takes.
    """

    _log = Logger()

    # How long a nickname claim may wait for Redis before it is refused.
    CLAIM_PATIENCE = 3.0

    def __init__(self, url, reactor, node, lease):
        self.url = url
        self.reactor = reactor
        self.node = node
        self.lease = lease
        self.target = None
        self._ops = queue.Queue()
        self._stopping = False
        self.confirmed = 0
        self._threads = []

    def _client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2,
                                    health_check_interval=0)

    # From the reactor

    def start(self, target):
        """
        Start following Redis on behalf of C{target} (a L{BrokeredFanout}).
        """
        self.target = target
        for run in (self._reader, self._writer):
            thread = threading.Thread(target=run, name=f"chatd-broker-{run.__name__[1:]}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def backlog(self):
        return self._ops.qsize()

    def publish(self, seq, data, needs=None):
        self._ops.put(("publish", seq, data, needs))

    def send(self, node, data):
        self._ops.put(("send", node, data))

    def claim(self, key, old=None, force=False):
        self._ops.put(("claim", key, old, time.monotonic(), force))

    def release(self, key):
        self._ops.put(("release", key))

    def resend(self):
        self._ops.put(("resend",))

    def beat(self, keys, data):
        self._ops.put(("beat", tuple(keys), data))

    def stop(self, timeout=2.0):
        """
        Write what is queued (for at most C{timeout} seconds), then stop.

        @return: a L{Deferred} that fires once stopped.
        """
        self._ops.put(("stop",))
        self._stopping = True
        from twisted.internet import threads

        def join():
            deadline = time.monotonic() + timeout
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))

        return threads.deferToThread(join)

    # The threads

    def _call(self, f, *args):
        self.reactor.callFromThread(f, *args)

    def _reader(self):
        client = cursor = epoch = None
        inboxCursor = b"0-0"
        attempt = 0
        down = False
        while not self._stopping:
            try:
                if client is None:
                    client = self._client()
                    ops = Ops(client, self.node, self.lease)
                    if cursor is None:
                        # A daemon starts at the stream's end: what it needs
                        # of the past, the others' snapshots tell it.
                        cursor = ops.tail()
                    now = ops.epoch()
                    down = False
                    self._call(self.target.linkUp)
                    if epoch is not None and now != epoch:
                        # Redis restarted without its data.
                        self._call(self.target.linkReset)
                    epoch = now
                    attempt = 0
                cursor, inboxCursor, found = ops.read(cursor, inboxCursor, 1000)
                if found:
                    self._call(self.target.received, decode(found))
            except Exception as e:
                if self._stopping:
                    break
                if not down:
                    # (Also when Redis cannot be reached at start: local
                    # users are served meanwhile.)
                    self._call(self.target.linkDown, str(e))
                    down = True
                client = None
                time.sleep(_backoff(attempt))
                attempt += 1

    def _writer(self):
        writer = Writer(self)
        client = None
        attempt = 0
        batch = []
        stop = False
        while True:
            if not batch:
                if stop:
                    return
                # Everything queued goes in one round trip: a thread waits
                # for the GIL while the reactor works, so one entry per wake
                # would cap the stream at a few hundred entries a second.
                batch.append(self._ops.get())
                while len(batch) < 1000:
                    try:
                        batch.append(self._ops.get_nowait())
                    except queue.Empty:
                        break
                if batch[-1][0] == "stop":
                    stop = True
                    batch.pop()
                    continue
            try:
                if client is None:
                    client = self._client()
                    for call in writer.connect(Ops(client, self.node, self.lease)):
                        self._call(*call)
                    attempt = 0
                calls, batch = writer.doMany(batch), []
                for call in calls:
                    self._call(*call)
            except Exception as e:
                client = None
                kept = []
                for op in batch:
                    if op[0] == "claim" and (time.monotonic() - op[3] > self.CLAIM_PATIENCE
                                             or self._stopping):
                        for call in writer.giveUp(op):
                            self._call(*call)
                    elif op[0] != "beat":
                        # (The next heartbeat will do.)
                        kept.append(op)
                batch = kept
                if self._stopping:
                    return
                if attempt == 0:
                    self._log.info("broker writes wait for Redis: {e}", e=e)
                time.sleep(_backoff(attempt))
                attempt += 1


class Writer:
    """
    What a daemon writes to Redis, one operation at a time, in order; what
    the reactor is to be told comes back as C{(method, *args)} calls on the
    link's target.  Shared by L{RedisLink}'s thread and the tests' link.
    """

    def __init__(self, link):
        self.link = link
        self.ops = None
        self.epoch = None
        self.sent = []  # (seq, data) published, maybe not yet read back
        self.failedClaims = set()

    def connect(self, ops):
        self.ops = ops
        return []

    def doMany(self, batch):
        """
        Run C{batch}, publishing each run of entries in one pipeline.  Run
        again whole when it fails: the readers skip entries they saw.
        """
        calls = []
        pending = []

        def flush():
            if pending:
                self.ops.publishMany([data for _, data in pending])
                self.sent.extend(pending)
                del pending[:]

        for op in batch:
            if op[0] == "publish":
                _, seq, data, needs = op
                if needs is not None and needs in self.failedClaims:
                    calls.append((self.link.target.skipped, seq))
                else:
                    pending.append((seq, data))
                continue
            flush()
            calls.extend(self.do(op))
        flush()
        if len(self.sent) > 10_000:
            confirmed = self.link.confirmed
            self.sent = [(s, d) for s, d in self.sent if s > confirmed]
        return calls

    def do(self, op):
        ops, target = self.ops, self.link.target
        kind = op[0]
        if kind == "publish":
            _, seq, data, needs = op
            if needs is not None and needs in self.failedClaims:
                return [(target.skipped, seq)]
            ops.publish(data)
            self.sent.append((seq, data))
            if len(self.sent) > 10_000:
                confirmed = self.link.confirmed
                self.sent = [(s, d) for s, d in self.sent if s > confirmed]
        elif kind == "resend":
            # Redis lost its data: publish again what may not have reached
            # the stream; the others skip what they saw already.
            confirmed = self.link.confirmed
            self.sent = [(s, d) for s, d in self.sent if s > confirmed]
            for s, d in self.sent:
                ops.publish(d)
        elif kind == "send":
            ops.send(op[1], op[2])
        elif kind == "claim":
            key, old = op[1], op[2]
            won = ops.claim(key, force=len(op) > 4 and op[4])
            if won:
                self.failedClaims.discard(key)
                if old is not None:
                    ops.release(old)
            else:
                self.failedClaims.add(key)
            return [(target.claimed, key, won)]
        elif kind == "release":
            ops.release(op[1])
        elif kind == "beat":
            lost = ops.beat(op[1], op[2])
            if lost:
                return [(target.nicksLost, lost)]
        return []

    def giveUp(self, op):
        """
        A claim that Redis could not answer in time is lost.
        """
        self.failedClaims.add(op[1])
        return [(self.link.target.claimed, op[1], None)]


def decode(found):
    """
    Entries as read (C{(fromInbox, bytes)}) decoded, skipping any that this
    daemon cannot read.
    """
    out = []
    for fromInbox, data in found:
        try:
            out.append((fromInbox, codec.loads(data)))
        except (ValueError, TypeError) as e:
            Logger().warn("broker: skipped an entry this chatd cannot read: {e}", e=e)
    return out

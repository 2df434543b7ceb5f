"""
The Redis operations a daemon of a cluster uses, and L{RedisLink}, which runs
them on the reactor.

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

L{Writer} and L{Reader} turn what the daemon asks into Redis commands and
read their replies; they know nothing of connections, so that the tests run
them on an in-memory Redis.  L{RedisLink} runs them on two connections of
the reactor's own (L{chatd.broker.resp}), no thread: one writes, in the
order asked, so that entries reach the stream in the order the core emitted
them (an operation at once when Redis has answered everything, else what a
turn of the reactor queued in one pipeline, sent without waiting for the
answers to earlier ones); the other only reads, with a blocking C{XREAD},
which costs the reactor nothing while it waits.
"""

import os
from collections import deque
from functools import partial

from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger

from chatd.broker import codec
from chatd.broker.resp import connection

STREAM = b"chatd:events"
STREAM_LENGTH = 100_000
INBOX = "chatd:inbox:{}"
INBOX_LENGTH = 10_000
NICK = "chatd:nick:{}"
NODE = "chatd:node:{}"
EPOCH = b"chatd:epoch"
# Operations written, or entries read, in one round trip at most.
BATCH = 1000

# Deletes a nickname only while this daemon holds it, in one step: between a
# GET and a DEL, another daemon could take it (its lease ran out).
RELEASE = (b"if redis.call('get', KEYS[1]) == ARGV[1] then "
           b"return redis.call('del', KEYS[1]) end return 0")


def _nick(key):
    return NICK.format(key).encode()


def _xadd(name, data, length):
    return (b"XADD", name, b"MAXLEN", b"~", length, b"*", b"d", data)


class Writer:
    """
    What a daemon writes to Redis, as commands, in the order asked; what the
    link's target is to be told comes back as C{(method, *args)} calls.

    The link queues operations as tuples: C{("publish", seq, data, needs)},
    C{("send", node, data)}, C{("claim", key, old, asked, force)},
    C{("release", key)}, C{("resend",)}, C{("beat", keys, data)}.

    @ivar first: operations that go before anything queued: the release of
        a renamed user's old nickname once the new one is won, the renewal
        of the nicknames a heartbeat found held.
    """

    def __init__(self, link, node, lease):
        self.link = link
        self.node = node.encode()
        self.nodeKey = NODE.format(node).encode()
        self.leaseMs = int(lease * 1000)
        self.sent = []  # (seq, data) published, maybe not yet read back
        self.failedClaims = set()
        self.first = deque()

    def take(self, queue):
        """
        The next batch to write: what L{first} holds, then operations from
        C{queue} (a deque), up to L{BATCH}, ending with the first claim: what
        follows a claim depends on its answer.
        """
        batch = list(self.first)
        self.first.clear()
        while queue and len(batch) < BATCH:
            op = queue.popleft()
            batch.append(op)
            if op[0] == "claim":
                break
        return batch

    def plan(self, batch):
        """
        The commands that write C{batch}, in one pipeline.  Written again
        whole when it fails: the readers skip entries they saw.

        @return: the commands, and a function of their replies that returns
            the calls for the link's target.
        """
        commands = []
        steps = []  # (how many replies, what reads them or None)
        published = []

        def flush():
            if published:
                steps.append((len(published), partial(self._published, list(published))))
                del published[:]

        for op in batch:
            kind = op[0]
            if kind == "publish":
                _, seq, data, needs = op
                if needs is not None and needs in self.failedClaims:
                    flush()
                    steps.append((0, partial(self._skipped, seq)))
                else:
                    commands.append(_xadd(STREAM, data, STREAM_LENGTH))
                    published.append((seq, data))
                continue
            flush()
            count, then = self._plan(op, commands)
            steps.append((count, then))
        flush()

        def finish(replies):
            calls = []
            at = 0
            for count, then in steps:
                if then is not None:
                    calls.extend(then(replies[at:at + count]))
                at += count
            return calls

        return commands, finish

    def _plan(self, op, commands):
        kind = op[0]
        node, ms = self.node, self.leaseMs
        if kind == "resend":
            # Redis lost its data: publish again what may not have reached
            # the stream; the others skip what they saw already.
            confirmed = self.link.confirmed
            self.sent = [(s, d) for s, d in self.sent if s > confirmed]
            commands.extend(_xadd(STREAM, d, STREAM_LENGTH) for _, d in self.sent)
            return len(self.sent), None
        if kind == "send":
            name = INBOX.format(op[1]).encode()
            # A daemon that died leaves no private message behind for long.
            commands += [_xadd(name, op[2], INBOX_LENGTH), (b"PEXPIRE", name, ms * 2)]
            return 2, None
        if kind == "claim":
            _, key, old, _, force = op
            name = _nick(key)
            # SET NX takes it if free; GET says whether it is ours (also
            # when held already: the heartbeat took it back after Redis
            # lost it).  C{force} takes it whoever holds it (a ghost).
            claim = (b"SET", name, node, b"PX", ms) if force else (
                b"SET", name, node, b"NX", b"PX", ms)
            commands += [claim, (b"GET", name)]
            return 2, partial(self._claimed, key, old)
        if kind == "release":
            commands.append((b"EVAL", RELEASE, 1, _nick(op[1]), node))
            return 1, None
        if kind == "renew":
            commands.extend((b"PEXPIRE", _nick(key), ms) for key in op[1])
            return len(op[1]), None
        if kind == "beat":
            keys = op[1]
            commands.append((b"SET", self.nodeKey, b"1", b"PX", ms))
            for key in keys:
                # SET NX takes a key that vanished (Redis lost it); GET says
                # whose it is now.
                commands += [(b"SET", _nick(key), node, b"NX", b"PX", ms),
                             (b"GET", _nick(key))]
            commands.append(_xadd(STREAM, op[2], STREAM_LENGTH))
            return 2 + 2 * len(keys), partial(self._beaten, keys)
        raise ValueError(f"no such broker operation: {kind}")

    def _published(self, entries, replies):
        self.sent.extend(entries)
        if len(self.sent) > 10_000:
            confirmed = self.link.confirmed
            self.sent = [(s, d) for s, d in self.sent if s > confirmed]
        return ()

    def _skipped(self, seq, replies):
        return [(self.link.target.skipped, seq)]

    def _claimed(self, key, old, replies):
        won = replies[1] == self.node
        if won:
            self.failedClaims.discard(key)
            if old is not None:
                self.first.append(("release", old))
        else:
            self.failedClaims.add(key)
        return [(self.link.target.claimed, key, won)]

    def _beaten(self, keys, replies):
        ours, lost = [], []
        for i, key in enumerate(keys):
            (ours if replies[2 + 2 * i] == self.node else lost).append(key)
        if ours:
            # Renewed only where it is ours.
            self.first.append(("renew", ours))
        return [(self.link.target.nicksLost, lost)] if lost else ()

    def failed(self, batch, giveUpBefore):
        """
        C{batch} could not be written.

        @param giveUpBefore: claims asked before this time are given up.
        @return: what of it is to be written once Redis is back (neither
            heartbeats, which the next will do, nor claims given up), and
            the calls for the claims given up.
        """
        kept, calls = [], []
        for op in batch:
            if op[0] == "claim" and op[3] < giveUpBefore:
                calls += self.giveUp(op)
            elif op[0] not in ("beat", "renew"):
                kept.append(op)
        return kept, calls

    def giveUp(self, op):
        """
        A claim that Redis could not answer in time is lost.
        """
        self.failedClaims.add(op[1])
        return [(self.link.target.claimed, op[1], None)]


class Reader:
    """
    How a daemon follows the stream and its inbox, as commands and replies.
    """

    def __init__(self, node):
        self.inboxKey = INBOX.format(node).encode()
        self.cursor = None
        self.inboxCursor = b"0-0"
        self.epoch = None
        self._delete = []  # inbox entries read, deleted with the next read

    def connecting(self):
        """
        The commands that begin a connection: the epoch (made now if Redis
        has none) and, the first time, the stream's last entry.
        """
        commands = [(b"SET", EPOCH, os.urandom(8).hex(), b"NX"), (b"GET", EPOCH)]
        if self.cursor is None:
            commands.append((b"XREVRANGE", STREAM, b"+", b"-", b"COUNT", 1))
        return commands

    def connected(self, target, replies):
        """
        The replies to L{connecting}.

        @return: the calls for C{target}.
        """
        if self.cursor is None:
            # A daemon starts at the stream's end: what it needs of the
            # past, the others' snapshots tell it.
            last = replies[2]
            self.cursor = last[0][0] if last else b"0-0"
        epoch, self.epoch = self.epoch, replies[1]
        calls = [(target.linkUp,)]
        if epoch is not None and epoch != self.epoch:
            # Redis restarted without its data.
            calls.append((target.linkReset,))
        return calls

    def read(self, block=None):
        """
        The commands that read what the stream and the inbox hold after the
        cursors, waiting up to C{block} ms for something.
        """
        commands = []
        if self._delete:
            # Read: a private message stays nowhere.
            commands.append((b"XDEL", self.inboxKey, *self._delete))
            self._delete = []
        xread = (b"XREAD", b"COUNT", BATCH)
        if block is not None:
            xread += (b"BLOCK", block)
        commands.append(xread + (b"STREAMS", STREAM, self.inboxKey, self.cursor,
                                 self.inboxCursor))
        return commands

    def got(self, replies):
        """
        The replies to L{read}: the entries, decoded, as C{(fromInbox,
        entry)}, the cursors moved past them.
        """
        found = []
        for name, entries in replies[-1] or ():
            fromInbox = name == self.inboxKey
            for entryId, fields in entries:
                found.append((fromInbox, fields[fields.index(b"d") + 1]))
            if fromInbox:
                self.inboxCursor = entryId
                self._delete.extend(entryId for entryId, _ in entries)
            else:
                self.cursor = entryId
        return decode(found)


def _tell(calls):
    for f, *args in calls:
        f(*args)


class RedisLink:
    """
    The daemon's link to Redis, on the reactor: a connection that follows
    the stream and the inbox, and one that writes every operation in the
    order asked.  Neither ever blocks the reactor.

    Reconnects with backoff (0.1 s doubling to 2 s) for as long as it takes.
    """

    _log = Logger()

    # How long a nickname claim may wait for Redis before it is refused.
    CLAIM_PATIENCE = 3.0
    # How long one read waits for entries, in ms.
    BLOCK = 1000

    def __init__(self, url, reactor, node, lease, connect=connection):
        """
        @param connect: makes each of the two connections to C{url} (a
            L{twisted.application.internet.ClientService}); the tests give
            fakes.
        """
        self.url = url
        self.reactor = reactor
        self.node = node
        self.lease = lease
        self.target = None
        self.confirmed = 0
        self._queue = deque()
        self._writer = Writer(self, node, lease)
        self._reader = Reader(node)
        self._writes = connect(url, reactor)
        self._reads = connect(url, reactor)
        self._protocol = None  # the connection that writes, once connected
        self._connecting = False
        self._inFlight = deque()  # (batch, finish) sent, not yet answered
        self._claiming = False  # a claim is in flight: the rest waits
        self._soon = None  # the call that writes what this turn queued
        self._writing = False  # in _write (what is queued meanwhile is taken)
        self._waited = False  # the writes wait for Redis (logged once)
        self._down = False
        self._stopped = None  # fires once stop() is done
        self._stopTimer = None

    # From the reactor

    def start(self, target):
        """
        Start following Redis on behalf of C{target} (a L{BrokeredFanout}).
        """
        self.target = target
        self._writes.startService()
        self._reads.startService()
        self._follow()

    def backlog(self):
        return len(self._queue)

    def publish(self, seq, data, needs=None):
        self._put(("publish", seq, data, needs))

    def send(self, node, data):
        self._put(("send", node, data))

    def claim(self, key, old=None, force=False):
        self._put(("claim", key, old, self.reactor.seconds(), force))
        self.reactor.callLater(self.CLAIM_PATIENCE, self._impatient)

    def release(self, key):
        self._put(("release", key))

    def resend(self):
        self._put(("resend",))

    def beat(self, keys, data):
        self._put(("beat", tuple(keys), data))

    def stop(self, timeout=2.0):
        """
        Write what is queued (for at most C{timeout} seconds), then stop.

        @return: a L{Deferred} that fires once stopped.
        """
        self._stopped = Deferred()
        self._stopTimer = self.reactor.callLater(timeout, self._stop)
        if not (self._inFlight or self._queue or self._writer.first):
            self._stop()
        return self._stopped

    def _stop(self):
        if self._stopTimer is None:
            return
        if self._stopTimer.active():
            self._stopTimer.cancel()
        self._stopTimer = None
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        done = gatherResults([self._writes.stopService(), self._reads.stopService()])
        done.addBoth(lambda _: None).chainDeferred(self._stopped)

    # Writing

    def _put(self, op):
        self._queue.append(op)
        if self._writing:
            # (Called back while writing: the write takes it.)
            return
        if self._inFlight or self._protocol is None or self._soon is not None:
            self._wake()
        else:
            # Redis has answered everything: this goes at once, not after
            # the rest of this turn's work (a line's fan-out here, others'
            # lines); what comes while it is out waits for the turn's end.
            self._write()

    def _wake(self):
        if self._soon is None:
            # Everything queued in this turn of the reactor goes in one
            # write (the transport sends it in the next one).
            self._soon = self.reactor.callLater(0, self._write)

    def _write(self):
        """
        Send what is queued, without waiting for the answers to what was
        sent before: Redis runs one connection's commands in order.  Only
        a claim is waited for, since what follows it depends on its answer.
        """
        self._soon = None
        if self._protocol is None:
            if not self._connecting:
                self._connecting = True
                # (Fails only when stopped.)
                self._writes.whenConnected().addCallbacks(self._writeOn, lambda f: None)
            return
        protocol = self._protocol
        self._writing = True
        try:
            while ((self._queue or self._writer.first) and not self._claiming
                   and self._protocol is protocol):
                batch = self._writer.take(self._queue)
                self._claiming = batch[-1][0] == "claim"
                commands, finish = self._writer.plan(batch)
                sent = (batch, finish)
                self._inFlight.append(sent)
                # (Answered at once when it has no commands; failed at once
                # when the connection was gone already.)
                protocol.pipeline(commands).addCallbacks(
                    self._written, self._notWritten, callbackArgs=(sent,),
                    errbackArgs=(sent, protocol)).addErrback(self._failed)
        finally:
            self._writing = False

    def _writeOn(self, protocol):
        self._connecting = False
        self._protocol = protocol
        self._write()

    def _written(self, replies, sent):
        # (The oldest, but for a batch of nothing to write, answered at once.)
        self._inFlight.remove(sent)
        self._waited = False
        if sent[0][-1][0] == "claim":
            self._claiming = False
        _tell(sent[1](replies))
        if self._queue or self._writer.first:
            if not self._writing:
                self._wake()
        elif self._stopped is not None and not self._inFlight:
            self._stop()

    def _notWritten(self, failure, sent, protocol):
        if sent not in self._inFlight:
            # (Taken back already with the first of its connection's.)
            return
        protocol.close()
        self._protocol = None
        self._claiming = False
        # Everything sent and not answered is written again, in order.
        batch = [op for batch, _ in self._inFlight for op in batch]
        self._inFlight.clear()
        stopping = self._stopped is not None
        giveUpBefore = (float("inf") if stopping
                        else self.reactor.seconds() - self.CLAIM_PATIENCE)
        kept, calls = self._writer.failed(batch, giveUpBefore)
        self._queue.extendleft(reversed(kept))
        _tell(calls)
        if stopping:
            self._stop()
            return
        if not self._waited:
            self._waited = True
            self._log.info("broker writes wait for Redis: {e}", e=failure.value)
        # Once the connection is back (its own backoff).
        self._wake()

    def _impatient(self):
        # A claim still queued this long waits for a Redis that does not
        # answer.  (This runs CLAIM_PATIENCE after a claim was asked: that
        # one counts, whatever the rounding of the clock.)
        giveUpBefore = self.reactor.seconds() - self.CLAIM_PATIENCE + 0.001
        if self._stopped is not None or not any(
                op[0] == "claim" and op[3] < giveUpBefore for op in self._queue):
            return
        kept, calls = deque(), []
        for op in self._queue:
            if op[0] == "claim" and op[3] < giveUpBefore:
                calls += self._writer.giveUp(op)
            else:
                kept.append(op)
        self._queue = kept
        # Told once the queue is settled: a refused rename publishes again
        # what its user said meanwhile, onto the queue.
        _tell(calls)

    # Reading

    def _follow(self):
        if self._stopped is not None:
            return
        # (Fails after one failed attempt: linkDown tells the target.)
        self._reads.whenConnected(failAfterFailures=1).addCallbacks(
            self._readFrom, self._unreachable)

    def _readFrom(self, protocol):
        protocol.pipeline(self._reader.connecting()).addCallbacks(
            self._connected, self._unreachable, callbackArgs=(protocol,),
            errbackArgs=(protocol,)).addErrback(self._failed)

    def _connected(self, replies, protocol):
        self._down = False
        calls = self._reader.connected(self.target, replies)
        self._read(protocol)
        _tell(calls)

    def _read(self, protocol):
        protocol.pipeline(self._reader.read(self.BLOCK), patience=self.BLOCK / 1000).addCallbacks(
            self._got, self._unreachable, callbackArgs=(protocol,),
            errbackArgs=(protocol,)).addErrback(self._failed)

    def _got(self, replies, protocol):
        found = self._reader.got(replies)
        # The next read goes first: Redis gathers what comes next while
        # these are delivered.
        self._read(protocol)
        if found:
            self.target.received(found)

    def _failed(self, failure):
        self._log.failure("broker link", failure)

    def _unreachable(self, failure, protocol=None):
        if self._stopped is not None:
            return
        if protocol is not None:
            protocol.close()
        if not self._down:
            # (Also when Redis cannot be reached at start: local users are
            # served meanwhile.)
            self._down = True
            self.target.linkDown(str(failure.value))
        self.reactor.callLater(0, self._follow)


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

"""
L{chatd.broker.link.RedisLink} on fake connections and a fake clock: the
order of writes, what is written again after a lost connection, claims, and
stopping.  (tests/test_broker_daemons.py runs it on a real redis-server.)
"""

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatd.broker.link import RedisLink


class FakeProtocol:
    """
    A connection whose replies the test gives.
    """

    def __init__(self):
        self.closed = False
        self.sent = []  # [commands, deferred]

    def pipeline(self, commands, patience=0.0):
        if not commands:
            return succeed([])
        done = Deferred()
        self.sent.append([commands, done])
        return done

    def answer(self, *replies):
        """
        Answer the oldest pipeline not answered yet.
        """
        commands, done = self.sent.pop(0)
        assert len(replies) == len(commands), commands
        done.callback(list(replies))

    def close(self):
        if not self.closed:
            self.closed = True
            sent, self.sent = self.sent, []
            for _, done in sent:
                done.errback(Failure(ConnectionLost()))


class FakeService:
    """
    A L{twisted.application.internet.ClientService} that connects when the
    test says.
    """

    def __init__(self):
        self.waiting = []
        self.stopped = False

    def startService(self):
        pass

    def stopService(self):
        self.stopped = True
        return succeed(None)

    def whenConnected(self, failAfterFailures=None):
        self.waiting.append(Deferred())
        return self.waiting[-1]

    def connect(self):
        protocol = FakeProtocol()
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(protocol)
        return protocol


class Target:
    """
    What the link tells its fan-out, recorded.
    """

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def started():
    clock = Clock()
    link = RedisLink("redis://127.0.0.1:1", clock, "A", 5.0,
                     connect=lambda url, reactor: FakeService())
    target = Target()
    link.start(target)
    return link, clock, target


def xadds(commands):
    return [c[-1] for c in commands if c[0] == b"XADD"]


def test_writesInOrderWithoutWaitingAndAgainInOrderAfterALoss():
    """
    Entries go out as they come, without waiting for earlier answers; a
    lost connection writes again, in order, everything not answered
    (heartbeats aside: the next one will do).
    """
    link, clock, _ = started()
    link.publish(1, b"one")
    link.publish(2, b"two")
    clock.advance(0)
    first = link._writes.connect()
    assert [xadds(c) for c, _ in first.sent] == [[b"one", b"two"]]
    link.publish(3, b"three")
    link.beat([], b"hb")
    clock.advance(0)
    assert [xadds(c) for c, _ in first.sent] == [[b"one", b"two"], [b"three", b"hb"]]
    first.answer(b"1-0", b"2-0")
    first.close()
    link.publish(4, b"four")
    clock.advance(0)
    second = link._writes.connect()
    assert [xadds(c) for c, _ in second.sent] == [[b"three", b"four"]]
    second.answer(b"3-0", b"4-0")
    assert [d for _, d in link._writer.sent] == [b"one", b"two", b"three", b"four"]


def test_aClaimHoldsBackWhatFollowsIt():
    """
    What follows a claim waits for its answer: an entry of a user whose
    nickname was not won is never published; a rename's old nickname is
    released first once the new one is won.
    """
    link, clock, target = started()
    link.claim("bob")
    clock.advance(0)
    protocol = link._writes.connect()
    link.publish(1, b"bob arrives", needs="bob")
    clock.advance(0)
    assert len(protocol.sent) == 1
    protocol.answer(None, b"B")
    assert target.calls == [("claimed", "bob", False)]
    clock.advance(0)
    assert protocol.sent == []
    assert ("skipped", 1) in target.calls
    link.claim("alicia", old="alice")
    link.publish(2, b"alice is alicia", needs="alicia")
    protocol.answer(b"OK", b"A")
    clock.advance(0)
    [(commands, _)] = protocol.sent
    assert commands[0][0] == b"EVAL" and commands[0][3] == b"chatd:nick:alice"
    assert xadds(commands) == [b"alice is alicia"]


def test_aClaimWaitingForRedisIsGivenUp():
    """
    A claim Redis cannot be asked within CLAIM_PATIENCE is refused; what
    else waits is written once Redis is back.
    """
    link, clock, target = started()
    link.claim("bob")
    link.publish(1, b"later")
    clock.advance(RedisLink.CLAIM_PATIENCE)
    assert target.calls == [("claimed", "bob", None)]
    protocol = link._writes.connect()
    assert [xadds(c) for c, _ in protocol.sent] == [[b"later"]]


def test_claimsGivenUpMayPublishWhenTold():
    """
    Two claims given up together: the fan-out, told of the first, publishes
    at once (a refused rename sends on what its user said meanwhile), which
    neither breaks the giving up of the second nor loses the entry (found
    by a re-check trial: "deque mutated during iteration").
    """
    link, clock, target = started()
    link.claim("gz1", old="ga")
    link.claim("gz2", old="gb")

    def claimed(nick, won):
        target.calls.append(("claimed", nick, won))
        link.publish(len(target.calls), f"after {nick}".encode())

    target.claimed = claimed
    clock.advance(RedisLink.CLAIM_PATIENCE)
    assert target.calls == [("claimed", "gz1", None), ("claimed", "gz2", None)]
    protocol = link._writes.connect()
    assert [xadds(c) for c, _ in protocol.sent] == [[b"after gz1", b"after gz2"]]


def test_stopWritesWhatIsQueuedThenStops():
    """
    stop() writes what is queued and fires once it is answered; without
    Redis, it fires after its timeout.
    """
    link, clock, _ = started()
    link.publish(1, b"bye")
    clock.advance(0)
    protocol = link._writes.connect()
    stopped = []
    link.stop().addCallback(stopped.append)
    assert stopped == [] and not link._writes.stopped
    protocol.answer(b"1-0")
    assert stopped == [None] and link._writes.stopped and link._reads.stopped

    link, clock, _ = started()
    link.publish(1, b"bye")
    stopped = []
    link.stop(timeout=2).addCallback(stopped.append)
    clock.advance(1.9)
    assert stopped == []
    clock.advance(0.2)
    assert stopped == [None]


def test_readerTellsUpDownAndReset():
    """
    The reader tells the fan-out when Redis is reachable, when it is not,
    and when it came back without its data (another epoch); it delivers
    what it reads, and deletes inbox entries with its next read.
    """
    link, clock, target = started()
    reads = link._reads.connect()
    [(commands, _)] = reads.sent
    assert [c[0] for c in commands] == [b"SET", b"GET", b"XREVRANGE"]
    reads.answer(b"OK", b"e1", [[b"5-0", [b"d", b"{}"]]])
    assert target.calls == [("linkUp",)]
    [(commands, _)] = reads.sent
    assert commands[0][:3] == (b"XREAD", b"COUNT", 1000) and commands[0][-2:] == (b"5-0", b"0-0")
    reads.answer([[b"chatd:inbox:A", [[b"7-0", [b"d", b'{"k":"to"}']]]]])
    assert target.calls[-1] == ("received", [(True, {"k": "to"})])
    [(commands, _)] = reads.sent
    assert commands[0] == (b"XDEL", b"chatd:inbox:A", b"7-0")
    reads.close()
    assert target.calls[-1][0] == "linkDown"
    clock.advance(0)
    again = link._reads.connect()
    [(commands, _)] = again.sent
    assert [c[0] for c in commands] == [b"SET", b"GET"]
    again.answer(None, b"e2")
    assert target.calls[-2:] == [("linkUp",), ("linkReset",)]

"""
What logins cost chatd's own Python, in process, this checkout against other
git revisions: idle-10000's storm (10,000 clients into rooms of 100, each
sending its nickname, "/join #rK" and "/part #lobby" in one read, as
bench/loadgen.c does) through the real factory, gate, core and fan-out, on
transports that count what they are sent and drop it, with a simulated clock.

On this shared machine the socket benchmark's login CPU moves by 20% between
runs of the same code: a storm's length (and so how many arrival windows it
spans) varies, and so do the neighbours.  Here every run does the same work,
the kernel's share (the sends themselves) and the reactor's left out, and
the least of several interleaved runs is taken, which a neighbour can only
raise.  How many sends the storm costs is printed beside it: each is a
system call (5-10 us) in a daemon.

    .venv/bin/python bench/loginprobe.py [--runs 7] [REV ...]

Each simulated reactor turn accepts ACCEPTS new connections (each greeted)
and handles the reads of those accepted the turn before; the clock then
moves on by TURN seconds: a storm of about 2 s, as idle-10000 measures with
every login in flight.  Timers are kept as the reactor keeps them (see
L{_ReactorTimers}), and each connection has the daemon's login timeout.
"""

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

N, ROOMS, ACCEPTS, TURN = 10000, 100, 100, 0.02


class _History:
    """
    A store in which no room has anything: it answers at once.
    """

    shared = False
    _lastId = 0

    def nextId(self):
        self._lastId += 1
        return self._lastId

    def mayHold(self, room):
        # (As chatd's SQLite store answers for a room with nothing stored.)
        return False

    def recent(self, room, count):
        from twisted.internet.defer import succeed
        return succeed([])


class _ReactorTimers:
    """
    Simulated time whose timers are kept as Twisted's reactor keeps them: a
    heap ordered by L{DelayedCall}'s own comparison, a cancelled call left
    in it until more than 50 are, and more than half of it
    (C{ReactorBase._cancelCallLater}).  (C{task.Clock} sorts its whole list
    of calls at every C{callLater} and after every call it runs: with a
    login timer per connection, a storm would measure the sorting.)
    """

    def __init__(self):
        self.now = 0.0
        self._heap = []
        self._cancellations = 0

    def seconds(self):
        return self.now

    def callLater(self, delay, f, *args, **kw):
        from twisted.internet.base import DelayedCall
        call = DelayedCall(self.now + delay, f, args, kw, self._cancel, self._reset,
                           self.seconds)
        heapq.heappush(self._heap, call)
        return call

    def _cancel(self, call):
        self._cancellations += 1
        if self._cancellations > 50 and self._cancellations > len(self._heap) >> 1:
            self._cancellations = 0
            self._heap = [c for c in self._heap if c.cancelled == 0 and c is not call]
            heapq.heapify(self._heap)

    def _reset(self, call):
        heapq.heapify(self._heap)

    def getDelayedCalls(self):
        return [call for call in self._heap if not call.cancelled]

    def advance(self, amount):
        self.now += amount
        heap = self._heap
        while heap and heap[0].time <= self.now:
            call = heapq.heappop(heap)
            if call.cancelled:
                self._cancellations -= 1
            else:
                call.called = 1
                call.func(*call.args, **call.kw)


class _Transport:
    """
    Takes everything, counting the writes.
    """

    disconnecting = False
    # Writes to every transport of the storm.
    writes = 0

    def __init__(self, address):
        self._address = address

    def getPeer(self):
        return self._address

    def write(self, data):
        _Transport.writes += 1

    def writeSequence(self, data):
        _Transport.writes += 1

    def registerProducer(self, producer, streaming):
        pass

    def unregisterProducer(self):
        pass

    def loseConnection(self):
        self.disconnecting = True


def probe(n=N):
    """
    One storm of C{n} logins, in this process, with whichever chatd is first
    on the path.

    @return: the CPU seconds it took, how many joined, and how many writes
        the transports were given.
    """
    from twisted.internet.address import IPv4Address

    from chatd.core.chat import ChatCore
    from chatd.core.fanout import Fanout
    from chatd.edge.gate import Gate
    from chatd.edge.limits import Limits
    from chatd.line.protocol import ChatFactory

    clock = _ReactorTimers()
    core = ChatCore(Fanout(clock), clock, history=_History())
    limits = Limits(floodRate=1e9, floodBurst=10 ** 9, maxConnections=n + 10,
                    maxPerAddress=n + 10)
    factory = ChatFactory(core, Gate(clock, limits, coalesceTurns=True))
    protocols, reads, accepted = [], [], 0
    _Transport.writes = 0
    start = time.process_time()
    while accepted < n or reads:
        arriving, reads = reads, []
        for i in range(accepted, min(n, accepted + ACCEPTS)):
            address = IPv4Address("TCP", "127.0.0.1", 20000 + i)
            proto = factory.buildProtocol(address)
            proto.makeConnection(_Transport(address))
            protocols.append(proto)
            reads.append((proto, f"u{i}\n/join #r{i % ROOMS}\n/part #lobby\n".encode()))
        accepted = min(n, accepted + ACCEPTS)
        for proto, data in arriving:
            proto.dataReceived(data)
        clock.advance(0)
        clock.advance(TURN)
    # The last windows close.
    for _ in range(int(5 / TURN)):
        clock.advance(TURN)
    cpu = time.process_time() - start
    joined = sum(1 for p in protocols if p.session.nick and len(p.session.rooms) == 1)
    return {"cpu_s": cpu, "joined": joined, "writes": _Transport.writes}


def export(rev, work):
    source = Path(work, rev.replace("/", "_"))
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", rev],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source


def runOnce(source):
    env = dict(os.environ, PYTHONPATH=str(source))
    done = subprocess.run([sys.executable, __file__, "--probe"], capture_output=True,
                          text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="*", metavar="REV")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.probe:
        from twisted.logger import globalLogBeginner, textFileLogObserver

        # The log line of each login is written, as twistd writes it.
        globalLogBeginner.beginLoggingTo([textFileLogObserver(open(os.devnull, "w"))],
                                         redirectStandardIO=False)
        try:
            from chatd.ops.logtext import leanTwistdLog
        except ImportError:
            pass  # a revision from before chatd formatted twistd's log text
        else:
            # As the daemon does once twistd has begun logging.
            leanTwistdLog()
        print(json.dumps(probe()))
        return
    with tempfile.TemporaryDirectory() as work:
        sources = {"this checkout": HERE.parent}
        sources.update((rev, export(rev, work)) for rev in options.revs)
        results = {name: [] for name in sources}
        for turn in range(options.runs):
            order = list(sources.items())
            for name, source in (order if turn % 2 == 0 else order[::-1]):
                results[name].append(runOnce(source))
    for name, runs in results.items():
        cpu = sorted(r["cpu_s"] for r in runs)
        print(f"{name:>16}: least {cpu[0] * 1e6 / N:6.1f} us per login, median "
              f"{cpu[len(cpu) // 2] * 1e6 / N:6.1f}; {runs[0]['writes']} writes; "
              f"{runs[0]['joined']} of {N} joined")


if __name__ == "__main__":
    main()

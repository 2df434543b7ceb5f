"""
A bounded soak against C{twistd -n chat} started as a user starts it: about
a thousand concurrent clients with churn exchange messages; every delivery
is counted, and afterwards the daemon's memory is back near idle and it
still serves a new client.
"""

import random
import re
import time
from collections import Counter

import pytest

from crowd import Crowd, allowOpenFiles
from support import Daemon, LineClient, settle

CLIENTS = 1000
ROOMS = 50
ROUNDS = 15
WAVE = 100

MESSAGE = re.compile(r"#r\d+ <[^>]+> k(\d+)-(\d+)\Z")


def rss(pid):
    """
    The resident memory of process C{pid}, in bytes.
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Person:
    """
    One soak client: its connection, its room, and the messages it got.
    """

    def __init__(self, crowd, ident):
        self.ident = ident
        self.nick = f"s{ident}"
        self.room = f"#r{ident % ROOMS}"
        self.got = Counter()
        self.replies = []
        self.member = crowd.connect(self.onLine)

    def onLine(self, line):
        match = MESSAGE.match(line)
        if match:
            self.got[int(match.group(1)), int(match.group(2))] += 1
        elif line.startswith("=== "):
            self.replies.append(line)

    def replied(self, prefix):
        return any(r.startswith(prefix) for r in self.replies)


@pytest.mark.soak
def test_soakThousandClientsWithChurn():
    """
    About a thousand clients in fifty rooms, with churn every round (some
    leave and are replaced, some rename, some move room), each say something
    every round: every message reaches every other member of its room exactly
    once and nobody else; once all have left, the daemon's memory is back
    near its idle size and a new pair of users can talk.
    """
    assert allowOpenFiles(CLIENTS * 2 + 200), "cannot open enough files for the soak"
    daemon = Daemon("--max-connections", str(CLIENTS * 2),
                    "--max-per-address", str(CLIENTS * 2)).start()
    crowd = Crowd(daemon.port)
    rng = random.Random(5)
    nextIdent = iter(range(10 ** 6))
    people, gone = [], []

    def arrive(count):
        # In waves the size of a listen backlog.
        for start in range(0, count, WAVE):
            wave = [Person(crowd, next(nextIdent)) for _ in range(min(WAVE, count - start))]
            for p in wave:
                crowd.send(p.member, p.nick)
                crowd.send(p.member, f"/join {p.room}")
                crowd.send(p.member, "/part #lobby")
            crowd.pump(lambda: all(p.replied("=== left #lobby") for p in wave), timeout=60)
            people.extend(wave)

    try:
        idle = rss(daemon.process.pid)
        arrive(CLIENTS)
        peak = rss(daemon.process.pid)
        expected = {}
        for round in range(ROUNDS):
            # Churn: some leave and are replaced, some rename, some move.
            rng.shuffle(people)
            leaving, renaming, moving = people[:30], people[30:60], people[60:90]
            for p in leaving:
                crowd.close(p.member)
                people.remove(p)
                gone.append(p)
            for p in renaming:
                p.replies.clear()
                p.nick = f"n{round}x{p.ident}"
                crowd.send(p.member, f"/nick {p.nick}")
            for p in moving:
                p.replies.clear()
                old, p.room = p.room, f"#r{rng.randrange(ROOMS)}"
                if p.room != old:
                    crowd.send(p.member, f"/join {p.room}")
                    crowd.send(p.member, f"/part {old}")
                else:
                    crowd.send(p.member, "/who")
            arrive(len(leaving))
            crowd.pump(lambda: all(p.replied("=== you are now") for p in renaming)
                       and all(p.replied("=== left") or p.replied("=== #r") for p in moving),
                       timeout=60)
            # Those who left may still be leaving on the server's side; only
            # the living are counted.
            members = {}
            for p in people:
                members.setdefault(p.room, []).append(p)
            for p in people:
                crowd.send(p.member, f"k{p.ident}-{round}")
                for other in members[p.room]:
                    if other is not p:
                        expected.setdefault(other.ident, Counter())[p.ident, round] += 1
            crowd.pump(lambda: all(sum(p.got.values()) >= sum(expected.get(p.ident, {}).values())
                                   for p in people), timeout=60)
            peak = max(peak, rss(daemon.process.pid))
        # A final barrier: anything extra would have arrived by the replies.
        for p in people:
            p.replies.clear()
            crowd.send(p.member, "/who")
        crowd.pump(lambda: all(p.replied("=== #r") for p in people), timeout=60)
        for p in people:
            assert p.got == expected.get(p.ident, Counter()), p.nick
        assert sum(sum(c.values()) for c in expected.values()) > CLIENTS * ROUNDS * 10
        for p in people:
            crowd.close(p.member)
        # Once every connection is gone only the newcomer's lobby is left.
        probe = LineClient(daemon.port)
        probe.login("probe")
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "rooms of the departed are still listed"
            probe.send("/rooms")
            lines = probe.readUntil(lambda l: re.fullmatch(r"=== \d+ rooms?", l))
            count = int(lines[-1].split()[1])
            rooms = [probe.readLine() for _ in range(count)]
            if rooms == ["=== #lobby (1)"]:
                break
        after = rss(daemon.process.pid)
        print(f"soak RSS: idle {idle >> 20} MiB, peak {peak >> 20} MiB, "
              f"after {after >> 20} MiB")
        # Python keeps some freed memory in its arenas, so "near": within a
        # quarter of the peak's growth over idle, and a few MiB.
        assert after - idle < max((peak - idle) // 4, 4 << 20) + (8 << 20)
        alice = LineClient(daemon.port)
        alice.login("after_alice")
        probe.send("still here")
        assert settle(probe, alice)[1] == ["#lobby <probe> still here"]
        alice.close(), probe.close()
    finally:
        crowd.closeAll()
        daemon.stop()

"""
How fast history is persisted, and what keeping it costs live delivery.

Not a test: it prints numbers for bench/README-history.md.  Two parts:

- store: the SQLite store alone (and the PostgreSQL one, with --postgres
  URL: an empty database of its own, which it fills), fed from this thread
  as the reactor would feed it, by many talkers in many rooms; lines
  persisted per second, both flat out and at a steady offered rate (does
  the writer keep up?).
- daemon: a real chatd (twistd subprocess) with many talkers, each alone in
  its room, flat out (persisted per second, end to end), then at a steady
  rate while a probe pair measures live delivery latency, with history on
  and with --db none.

    .venv/bin/python bench/history_bench.py [--seconds 5] [--talkers 200]
        [--postgres postgresql://USER@HOST:PORT/NAME]
"""

import argparse
import os
import queue
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from chatd.core import events  # noqa: E402
from chatd.storage.sqlite import SQLiteHistory  # noqa: E402
from support import Daemon, LineClient, ThreadCalls  # noqa: E402

# Many talkers from one address, each saying thousands of lines at once:
# the limits (flood control, connections per address) have their own bench.
OPEN_LIMITS = ("--flood-burst", "1000000", "--flood-rate", "1000000",
               "--max-per-address", "1000", "--max-connections", "2000")

WORDS = ("the quick brown fox jumps over a lazy dog while chat lines go by "
         "with some cake tea coffee build deploy release bug fix review").split()


def text(i):
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(8)) + f" {i}"


def openStore(folder, name, calls, postgres):
    """
    An open history store: in the SQLite file C{name} in C{folder}, or in
    the PostgreSQL database C{postgres} when given.
    """
    if postgres:
        from chatd.storage.postgres import PostgresHistory

        store = PostgresHistory(postgres, calls)
    else:
        store = SQLiteHistory(os.path.join(folder, name), calls)
    store.open()
    return store


def storeFlatOut(folder, count, talkers, rooms, postgres=None):
    calls = ThreadCalls()
    store = openStore(folder, "flat.sqlite3", calls, postgres)
    start = time.perf_counter()
    for i in range(count):
        store.append(events.Said(f"#room{i % rooms}", f"talker{i % talkers}", text(i),
                                 time.time(), store.nextId()))
    queued = time.perf_counter() - start
    calls.wait(store.flush(), timeout=600)
    total = time.perf_counter() - start
    # A search first indexes whatever is stored but not indexed yet.
    calls.wait(store.search(["#room0"], ["cake"], 1), timeout=600)
    searchable = time.perf_counter() - start
    calls.wait(store.close())
    print(f"store ({'PostgreSQL' if postgres else 'SQLite'}), flat out: {count:,} lines from {talkers} talkers in {rooms} rooms: "
          f"queued in {queued:.2f}s ({count / queued:,.0f}/s on the calling thread), "
          f"persisted in {total:.2f}s: {count / total:,.0f} lines/s; all searchable "
          f"after {searchable:.2f}s: {count / searchable:,.0f} lines/s")


def storeSteady(folder, rate, seconds, talkers, rooms, postgres=None):
    calls = ThreadCalls()
    store = openStore(folder, "steady.sqlite3", calls, postgres)
    tick = 0.01
    perTick = int(rate * tick)
    lags = []
    i = 0
    start = time.perf_counter()
    for n in range(int(seconds / tick)):
        for _ in range(perTick):
            store.append(events.Said(f"#room{i % rooms}", f"talker{i % talkers}", text(i),
                                     time.time(), store.nextId()))
            i += 1
        if n % 10 == 0:
            # How far behind the writer is: the time a flush takes to come back.
            asked = time.perf_counter()
            calls.wait(store.flush(), timeout=600)
            lags.append(time.perf_counter() - asked)
        delay = start + (n + 1) * tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    calls.wait(store.flush(), timeout=600)
    total = time.perf_counter() - start
    asked = time.perf_counter()
    calls.wait(store.search(["#room0"], ["cake"], 1), timeout=600)
    catchUp = time.perf_counter() - asked
    calls.wait(store.close())
    print(f"store ({'PostgreSQL' if postgres else 'SQLite'}), steady {rate:,}/s offered for {seconds}s: {i / total:,.0f} lines/s "
          f"persisted; flush round trip median {statistics.median(lags) * 1000:.1f} ms, "
          f"max {max(lags) * 1000:.1f} ms; a search at the end waited "
          f"{catchUp * 1000:.0f} ms for the index to catch up")


class Talkers:
    """
    Many clients, each alone in its own room (so the server stores their
    lines but sends nobody anything).
    """

    def __init__(self, daemon, count):
        self.clients = []
        for n in range(count):
            client = LineClient(daemon.port, timeout=300)
            client.login(f"t{n}")
            client.send(f"/join #t{n}")
            client.send("/part #lobby")
            client.sync()
            self.clients.append(client)
        self.sent = 0

    def send(self, perClient, base, extra=0):
        """
        Each talker sends C{perClient} lines, the first C{extra} one more.
        """
        for n, client in enumerate(self.clients):
            count = perClient + (n < extra)
            if count:
                client.sendBytes("".join(text(base + k) + "\n" for k in range(count))
                                 .encode())
                self.sent += count

    def barrier(self):
        # A read waits behind every line its sender said: once each talker's
        # /history answers, all their lines are committed.
        for client in self.clients:
            client.send("/history 1")
        for client in self.clients:
            client.readUntil(lambda l: l.startswith("~ ") or "no history" in l)

    def close(self):
        for client in self.clients:
            client.close()


def daemonFlatOut(folder, talkers, count, history="on"):
    db = f"sqlite:{folder}/flat-daemon.sqlite3" if history == "on" else "none"
    daemon = Daemon("--db", db, *OPEN_LIMITS, cwd=folder).start()
    crowd = Talkers(daemon, talkers)
    start = time.perf_counter()
    for base in range(0, count // talkers, 100):
        crowd.send(100, base)
    crowd.barrier()
    total = time.perf_counter() - start
    crowd.close()
    daemon.stop()
    if history == "off":
        print(f"daemon, flat out, --db none: {talkers} talkers sent {crowd.sent:,} "
              f"lines, handled in {total:.2f}s: {crowd.sent / total:,.0f} lines/s")
        return
    stored = sqlite3.connect(f"{folder}/flat-daemon.sqlite3").execute(
        "SELECT count(*) FROM messages").fetchone()[0]
    print(f"daemon, flat out: {talkers} talkers sent {crowd.sent:,} lines; "
          f"{stored:,} stored in {total:.2f}s: {stored / total:,.0f} lines/s end to end")


def latency(folder, history, talkers, rate, seconds):
    db = f"sqlite:{folder}/latency-{history}.sqlite3" if history == "on" else "none"
    daemon = Daemon("--db", db, *OPEN_LIMITS, cwd=folder).start()
    crowd = Talkers(daemon, talkers)
    sender, receiver = daemon.client(), daemon.client()
    sender.login("probeA")
    receiver.login("probeB")
    sender.send("/join #probe")
    receiver.send("/join #probe")
    sender.sync()
    receiver.sync()
    delays = queue.SimpleQueue()

    def receive():
        while True:
            line = receiver.readLine()
            if " probe " in line:
                stamp = float(line.rsplit(" ", 1)[1])
                if stamp < 0:
                    return
                delays.put(time.perf_counter() - stamp)

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    tick = 0.01
    perClient, extra = divmod(int(rate * tick), talkers)
    start = time.perf_counter()
    base = 0
    for n in range(int(seconds / tick)):
        crowd.send(perClient, base, extra)
        base += perClient + 1
        sender.send(f"probe {time.perf_counter()!r}")
        delay = start + (n + 1) * tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    crowd.barrier()
    elapsed = time.perf_counter() - start
    sender.send("probe -1")
    reader.join(30)
    found = []
    while not delays.empty():
        found.append(delays.get() * 1000)
    found.sort()
    crowd.close()
    sender.close()
    receiver.close()
    daemon.stop()
    print(f"latency, history {history}: {crowd.sent / elapsed:,.0f} lines/s from "
          f"{talkers} talkers; probe delivery over {len(found)} probes: median "
          f"{found[len(found) // 2]:.2f} ms, p99 {found[int(len(found) * .99)]:.2f} ms, "
          f"max {found[-1]:.2f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--talkers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=20000,
                        help="lines/s the talkers offer while latency is measured")
    parser.add_argument("--lines", type=int, default=200_000,
                        help="lines the talkers send flat out")
    parser.add_argument("--part", choices=["all", "store", "daemon", "latency"],
                        default="all")
    parser.add_argument("--postgres", metavar="URL",
                        help="also measure the PostgreSQL store, in this empty database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.part in ("all", "store"):
            for postgres in [None] + ([args.postgres] if args.postgres else []):
                storeFlatOut(folder, 300_000, args.talkers, 50, postgres)
                storeSteady(folder, 50_000, args.seconds, args.talkers, 50, postgres)
        if args.part in ("all", "daemon"):
            for history in ("off", "on"):
                daemonFlatOut(folder, args.talkers, args.lines, history)
        if args.part in ("all", "daemon", "latency"):
            for history in ("off", "on", "off", "on"):
                latency(folder, history, args.talkers, args.rate, args.seconds)


if __name__ == "__main__":
    main()

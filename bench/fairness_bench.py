"""
Can a few users shut the others out of shared, slow work?  Two attacks an
attacker trial ran against chatd, replayed against a real daemon.

Not a test: it prints numbers for bench/README-history.md.

- history: a room of C{--lines} stored lines that all hold "alpha" and
  "beta" (so a search for C{beta-alpha} reads them all through the word
  index, and the phrase check keeps none: about 0.3 s of database time on
  600,000 lines); C{--searchers} connections send C{/search beta-alpha} 50
  at a time, twice a second; a victim asks C{/history 5} every half
  second.  Printed: how many of the victim's were answered and refused
  (busy), and how long they took.
- passwords: C{--loggers} threads log in to one registered account with
  its right password, over and over; olga logs in to hers once a second.
  Printed: what each of olga's logins got, and how long it took.

    .venv/bin/python bench/fairness_bench.py [--part all] [--seconds 12]
        [--lines 600000] [--searchers 20] [--loggers 44]
"""

import argparse
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from chatd.core import events  # noqa: E402
from chatd.storage.sqlite import SQLiteHistory  # noqa: E402
from support import Daemon, ThreadCalls  # noqa: E402

# Many connections from one address (loopback), at any pace: only the
# bounds under test hold anyone back.
OPEN_LIMITS = ("--flood-burst", "1000000", "--flood-rate", "1000000",
               "--max-per-address", "1000", "--max-connections", "2000")


def fill(path, lines):
    """
    Store C{lines} lines in #lobby of a new history at C{path}, each
    holding "alpha" and "beta" apart.
    """
    calls = ThreadCalls()
    store = SQLiteHistory(path, calls)
    store.open()
    now = time.time()
    for i in range(lines):
        store.append(events.Said("#lobby", f"u{i % 50}", f"alpha gamma beta delta line {i}",
                                 now, store.nextId()))
        if i % 20000 == 0:
            calls.wait(store.flush(), timeout=120)
    calls.wait(store.close(), timeout=120)


class Peer:
    """
    One line-protocol connection to the daemon on C{port}.
    """

    def __init__(self, port, timeout=60):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.lines = self.socket.makefile("rb")

    def send(self, text):
        self.socket.sendall(text.encode())

    def until(self, *endings):
        """
        Read lines until one holds any of C{endings}; return it (b"" once
        the connection is closed).
        """
        for line in self.lines:
            if any(ending in line for ending in endings):
                return line
        return b""

    def close(self):
        self.socket.close()


def login(port, nick):
    peer = Peer(port)
    peer.send(f"{nick}\n")
    peer.until(b"you are now")
    return peer


def history(port, seconds, searchers):
    stop = time.monotonic() + seconds
    flooding = [login(port, f"searcher{i}") for i in range(searchers)]

    def flood(peer):
        while time.monotonic() < stop:
            peer.send("/search beta-alpha\n" * 50)
            time.sleep(0.5)

    def drain(peer):
        try:
            for line in peer.lines:
                pass
        except OSError:
            pass

    for peer in flooding:
        threading.Thread(target=flood, args=(peer,), daemon=True).start()
        threading.Thread(target=drain, args=(peer,), daemon=True).start()
    time.sleep(1)
    victim = login(port, "victim")
    took, answered, busy = [], 0, 0
    while time.monotonic() < stop:
        started = time.monotonic()
        victim.send("/history 5\n")
        line = victim.until(b"history is busy", b"the last", b"has no history")
        took.append(time.monotonic() - started)
        if b"history is busy" in line:
            busy += 1
        else:
            answered += 1
        time.sleep(0.5)
    for peer in flooding + [victim]:
        peer.close()
    took.sort()
    return {"answered": answered, "busy": busy, "median": took[len(took) // 2],
            "max": took[-1]}


def attempt(port, nick, password):
    """
    Log in as C{nick} with C{password}: what the daemon answered.
    """
    peer = Peer(port)
    try:
        peer.send(f"/nick {nick} {password}\n")
        line = peer.until(b"you are now", b"!!! ")
    except OSError:
        line = b""
    finally:
        peer.close()
    return "ok" if b"you are now" in line else line.decode().strip() or "closed"


def passwords(port, seconds, loggers):
    for nick in ("mallory", "olga"):
        peer = login(port, nick)
        peer.send(f"/register {nick}-password\n")
        peer.until(b"registered", b"!!! ")
        peer.close()
    stop = time.monotonic() + seconds
    theirs = {}

    def flood():
        while time.monotonic() < stop:
            got = attempt(port, "mallory", "mallory-password")
            theirs[got] = theirs.get(got, 0) + 1

    threads = [threading.Thread(target=flood, daemon=True) for i in range(loggers)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    olgas = []
    while time.monotonic() < stop - 3:
        started = time.monotonic()
        got = attempt(port, "olga", "olga-password")
        olgas.append((got, time.monotonic() - started))
        time.sleep(1)
    for thread in threads:
        thread.join(60)
    return {"olga": olgas, "theirs": theirs}


def run(folder, part="all", seconds=12, lines=600_000, searchers=20, loggers=44):
    """
    Run C{part} ("all", "history" or "passwords") with a daemon and its
    history in C{folder}: what each part found, by part.
    """
    db = os.path.join(folder, "history.sqlite3")
    found = {}
    if part in ("all", "history"):
        fill(db, lines)
    daemon = Daemon("--db", f"sqlite:{db}", *OPEN_LIMITS, cwd=folder).start()
    try:
        if part in ("all", "history"):
            found["history"] = history(daemon.port, seconds, searchers)
        if part in ("all", "passwords"):
            found["passwords"] = passwords(daemon.port, seconds, loggers)
    finally:
        daemon.stop()
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["all", "history", "passwords"], default="all")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--lines", type=int, default=600_000)
    parser.add_argument("--searchers", type=int, default=20)
    parser.add_argument("--loggers", type=int, default=44)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatd-fairness-") as folder:
        found = run(folder, options.part, options.seconds, options.lines,
                    options.searchers, options.loggers)
    if "history" in found:
        h = found["history"]
        print(f"history: {options.searchers} connections flooding /search beta-alpha; the "
              f"victim's /history 5: {h['answered']} answered, {h['busy']} busy; median "
              f"{h['median'] * 1000:.0f} ms, max {h['max'] * 1000:.0f} ms")
    if "passwords" in found:
        p = found["passwords"]
        print(f"passwords: {options.loggers} threads logging in to their account; olga's "
              "logins: " + ", ".join(f"{got} ({took:.2f} s)" for got, took in p["olga"]))
        print(f"           theirs: {p['theirs']}")


if __name__ == "__main__":
    main()

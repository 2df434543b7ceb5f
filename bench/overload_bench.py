"""
Sustained overload with history on: does the daemon's memory stay flat, is
everything delivered also stored, and what does a kill -9 lose?

Not a test: it prints numbers for bench/README-history.md.

A real chatd (twistd subprocess) with the flood limits raised; C{--talkers}
clients, each alone in its own room, write 900-byte lines as fast as the
daemon reads them, for C{--seconds}; one listener, in all those rooms,
counts the lines delivered.  The daemon's RSS is sampled every 50 ms and
compared with its RSS once everyone is connected and idle.

- clean: the talkers stop, the last lines are delivered, the daemon is
  stopped with SIGTERM; then lines delivered and lines stored are compared
  (they must be equal).
- kill: the daemon is killed with SIGKILL half-way; lines delivered but not
  stored are the loss (each talker's lines are stored and delivered in the
  order read, so per room it is delivered - stored when positive).
- none: the clean run with --db none, for comparison.
- writer: no daemon; the store alone, fed flat out with such lines from this
  thread, timed until all are committed and then indexed: what a second of
  the writer's work is, in lines and bytes, to set its bound by.

    .venv/bin/python bench/overload_bench.py [--seconds 10] [--talkers 8] [--mode all]
        [--line-bytes 900] [--runs 1]
"""

import argparse
import collections
import os
import random
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from chatd.core import events  # noqa: E402
from chatd.storage.sqlite import SQLiteHistory  # noqa: E402
from support import Daemon, LineClient, ThreadCalls  # noqa: E402

OPEN_LIMITS = ("--flood-burst", "1000000", "--flood-rate", "1000000",
               "--max-per-address", "1000",
               "--max-connections", "2000", "--max-rooms", "1000", "--replay", "0")
LINE_BYTES = 900
CHUNK_LINES = 64
# Words as varied as talk, so that indexing them costs what talk costs.
_letters = random.Random(1)
VOCABULARY = ["".join(_letters.choice("abcdefghijklmnopqrstuvwxyz")
                      for _ in range(_letters.randint(2, 9))) for _ in range(5000)]


def rss(pid):
    """The resident set of process C{pid}, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class Talker(threading.Thread):
    """
    Writes 900-byte lines to its own room as fast as the socket takes them.
    """

    def __init__(self, client, n, size):
        super().__init__(daemon=True)
        self.client = client
        pick = random.Random(n)
        lines = []
        for _ in range(CHUNK_LINES):
            words = f"talker {n} says"
            while len(words) < size:
                words += " " + pick.choice(VOCABULARY)
            lines.append(words[:size].encode() + b"\n")
        self.chunk = b"".join(lines)
        self.sent = 0
        self.stopping = threading.Event()

    def run(self):
        sock = self.client.sock
        sock.settimeout(None)
        try:
            while not self.stopping.is_set():
                sock.sendall(self.chunk)
                self.sent += CHUNK_LINES
        except OSError:
            pass


class Listener(threading.Thread):
    """
    Counts the room lines it receives, per room, until the connection ends.
    """

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.counts = collections.Counter()
        self.last = time.monotonic()
        self.closedBy = None

    def run(self):
        sock = self.client.sock
        sock.settimeout(None)
        buffer = self.client.buffer
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    break
                self.last = time.monotonic()
                lines = (buffer + data).split(b"\r\n")
                buffer = lines.pop()
                for line in lines:
                    if line.startswith(b"#t"):
                        self.counts[line.split(b" ", 1)[0].decode()] += 1
                    elif line.startswith(b"-!- "):
                        self.closedBy = line.decode()
        except OSError as e:
            self.closedBy = str(e)

    def total(self):
        return sum(self.counts.values())


def storedPerRoom(path):
    connection = sqlite3.connect(path)
    try:
        return dict(connection.execute(
            "SELECT room, count(*) FROM messages GROUP BY room").fetchall())
    finally:
        connection.close()


def run(folder, mode, talkers, seconds, size=LINE_BYTES, db=None):
    folder = tempfile.mkdtemp(prefix=f"{mode}-", dir=folder)
    path = os.path.join(folder, "overload.sqlite3")
    if db is None:
        db = "none" if mode == "none" else f"sqlite:{path}"
    daemon = Daemon("--db", db, *OPEN_LIMITS, cwd=folder).start()
    pid = daemon.process.pid
    clients = []
    for n in range(talkers):
        client = LineClient(daemon.port, timeout=60)
        client.login(f"t{n}")
        client.send(f"/join #t{n}")
        client.send("/part #lobby")
        client.sync()
        clients.append(client)
    listening = LineClient(daemon.port, timeout=60)
    listening.login("listener")
    for n in range(talkers):
        listening.send(f"/join #t{n}")
    listening.sync()
    time.sleep(1.0)
    idle = rss(pid)
    listener = Listener(listening)
    listener.start()
    threads = [Talker(client, n, size) for n, client in enumerate(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    peak = idle
    killed = False
    while time.monotonic() - start < seconds:
        peak = max(peak, rss(pid))
        if mode == "kill" and time.monotonic() - start >= seconds / 2:
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait()
            killed = True
            break
        time.sleep(0.05)
    talking = time.monotonic() - start
    for thread in threads:
        thread.stopping.set()
    if not killed:
        # The daemon reads what is still in the sockets: wait until the
        # listener has heard nothing for a second, then stop it cleanly.
        while time.monotonic() - listener.last < 1.0:
            peak = max(peak, rss(pid))
            time.sleep(0.05)
        peak = max(peak, rss(pid))
        daemon.stop()
    listener.join(30)
    for client in clients:
        client.close()
    sent = sum(thread.sent for thread in threads)
    delivered = listener.total()
    out = {"mode": mode, "talkers": talkers, "line_bytes": size,
           "seconds": round(talking, 1),
           "sent_to_sockets": sent, "delivered": delivered,
           "delivered_per_s": round(delivered / talking),
           "rss_idle_mb": round(idle / 1024, 1), "rss_peak_mb": round(peak / 1024, 1),
           "rss_growth_mb": round((peak - idle) / 1024, 1)}
    for line in daemon.log:
        if "history writer fell behind" in line:
            out["store_log"] = repr(line.split("] ", 1)[-1].strip())
    if listener.closedBy:
        out["listener_closed_by"] = listener.closedBy
    if mode != "none":
        stored = storedPerRoom(path)
        out["stored"] = sum(stored.values())
        out["delivered_not_stored"] = sum(
            max(0, count - stored.get(room, 0)) for room, count in listener.counts.items())
        out["stored_not_delivered"] = sum(
            max(0, count - listener.counts.get(room, 0)) for room, count in stored.items())
    print(" ".join(f"{key}={value}" for key, value in out.items()), flush=True)
    return out


def writerRate(folder, size, count):
    """
    The store alone: C{count} lines of C{size} bytes in 8 rooms, queued flat
    out (no producer, so nothing pauses), timed until committed and then
    until indexed.
    """
    calls = ThreadCalls()
    store = SQLiteHistory(os.path.join(folder, f"writer-{size}.sqlite3"), calls)
    store.open()
    pick = random.Random(size)
    texts = []
    for _ in range(256):
        words = "talker says"
        while len(words) < size:
            words += " " + pick.choice(VOCABULARY)
        texts.append(words[:size])
    start = time.perf_counter()
    for i in range(count):
        store.append(events.Said(f"#t{i % 8}", f"t{i % 8}", texts[i % 256], time.time(),
                                 store.nextId()))
    calls.wait(store.flush(), timeout=600)
    committed = time.perf_counter() - start
    calls.wait(store.search(["#t0"], ["talker"], 1), timeout=600)
    indexed = time.perf_counter() - start
    calls.wait(store.close(), timeout=600)
    out = {"mode": "writer", "line_bytes": size, "lines": count,
           "committed_per_s": round(count / committed),
           "committed_mb_per_s": round(count * size / committed / 1e6, 1),
           "committed_and_indexed_per_s": round(count / indexed),
           "committed_and_indexed_mb_per_s": round(count * size / indexed / 1e6, 1)}
    print(" ".join(f"{key}={value}" for key, value in out.items()), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--talkers", type=int, default=8)
    parser.add_argument("--mode", choices=["all", "clean", "kill", "none", "writer"],
                        default="all")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--line-bytes", type=int, default=LINE_BYTES)
    args = parser.parse_args()
    modes = ["none", "clean", "kill"] if args.mode == "all" else [args.mode]
    with tempfile.TemporaryDirectory() as folder:
        if args.mode == "writer":
            for turn in range(args.runs):
                writerRate(folder, args.line_bytes, 200_000)
            return
        for turn in range(args.runs):
            for mode in modes:
                run(folder, mode, args.talkers, args.seconds, args.line_bytes)


if __name__ == "__main__":
    main()

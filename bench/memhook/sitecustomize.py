"""
What a daemon's memory is made of while a benchmark runs: a C{sitecustomize}
that samples chatd from inside, every 10 ms, into arrays (no object per sample:
a hook that keeps a record per line read or per flush grows the very RSS it
measures, by megabytes at slow-reader's 20,000 lines/s).

    CHATD_HOOK_OUT=/tmp/mem PYTHONPATH=bench/memhook \\
        .venv/bin/python bench/bench.py --only slow-reader --chatd-only
    .venv/bin/python bench/memhook/sitecustomize.py /tmp/mem.*.json

bench.py passes its environment to this checkout's chatd only (a revision
given with --compare gets its own PYTHONPATH, so it is not sampled).  Each
sample: RSS, Python's small-object blocks in use, glibc's heap (all arenas:
from the system, in use), the history lines appended and not yet committed,
how often reading was paused for the writer, and the largest backlog of an
outbox that was ever paused; every tenth sample, RSS by mapping
(/proc/self/smaps).  Commits of more than 20 ms are listed.  Written when the
reactor stops.  Run as a program, it prints each file's phase (while history
lines were waiting) against the sample before it.  (It installs Twisted's
default reactor as Python starts: not for a twistd given --reactor.)
"""

import os
import sys

FIELDS = ("time_ns", "rss", "pyblocks", "heap", "heapInUse", "mmapped", "behindLines",
          "readingPaused", "largestBacklog")


def _smaps():
    out, name = {}, None
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if first.endswith(":"):
                if first == "Rss:":
                    out[name] = out.get(name, 0) + int(line.split()[1])
            else:
                parts = line.split()
                name = parts[5] if len(parts) > 5 else "anon"
                if ".so" in name:
                    name = "libraries"
    return out


def _install(out):
    import array
    import ctypes
    import json
    import threading
    import time

    from twisted.internet import reactor

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallInfo2
    page = os.sysconf("SC_PAGE_SIZE")
    samples, byMapping, slowCommits = array.array("q"), [], []
    seen = {"history": None, "paused": []}

    def sample():
        count = 0
        while True:
            time.sleep(0.01)
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page
            heap = mallinfo2()
            history = seen["history"]
            behind, pauses = (history.behind[0], history.pauses) if history else (0, 0)
            backlog = max([outbox.pending for outbox in seen["paused"]] or [0])
            samples.extend((time.monotonic_ns(), rss, sys.getallocatedblocks(), heap.arena,
                            heap.uordblks, heap.hblkhd, behind, pauses, backlog))
            count += 1
            if count % 10 == 0:
                byMapping.append((time.monotonic_ns(), _smaps()))

    def wrap():
        from chatd.edge.outbox import Outbox
        from chatd.storage.threaded import ThreadedHistory
        append, commit, pause = (ThreadedHistory.append, ThreadedHistory._commit,
                                 Outbox.pauseProducing)

        def firstAppend(self, event):
            seen["history"] = self
            ThreadedHistory.append = append
            return append(self, event)

        def timedCommit(self, connection, rows):
            began = time.monotonic_ns()
            try:
                return commit(self, connection, rows)
            finally:
                took = time.monotonic_ns() - began
                if took > 20_000_000:
                    slowCommits.append((began, took, len(rows)))

        def notedPause(self):
            if self not in seen["paused"]:
                seen["paused"].append(self)
            return pause(self)

        ThreadedHistory.append, ThreadedHistory._commit = firstAppend, timedCommit
        Outbox.pauseProducing = notedPause
        threading.Thread(target=sample, daemon=True).start()

    def dump():
        with open(f"{out}.{os.getpid()}.json", "w") as f:
            json.dump({"fields": FIELDS, "samples": samples.tolist(), "smaps": byMapping,
                       "slowCommits": slowCommits}, f)

    reactor.callWhenRunning(wrap)
    # twistd ends a SIGTERM by killing itself with it: no atexit.
    reactor.addSystemEventTrigger("after", "shutdown", dump)


def report(path):
    import json
    with open(path) as f:
        data = json.load(f)
    width = len(data["fields"])
    rows = [data["samples"][i:i + width] for i in range(0, len(data["samples"]), width)]
    active = [i for i, row in enumerate(rows) if row[6]]
    if not active:
        print(f"{path}: no history line waited")
        return
    first, last = active[0], active[-1]
    base = rows[max(0, first - 1)]
    peak = max(rows[first:last + 50], key=lambda row: row[1])
    print(f"{path}: phase {(rows[last][0] - rows[first][0]) / 1e6:.0f} ms, "
          f"RSS peak at +{(peak[0] - base[0]) / 1e6:.0f} ms")
    for k, name in enumerate(data["fields"][1:6], 1):
        print(f"  {name:16s} {base[k]:>13,} {peak[k]:>13,} {peak[k] - base[k]:>+12,}")
    during = rows[first:last + 1]
    print(f"  most lines waiting for the writer {max(r[6] for r in during):,}; "
          f"reading paused {rows[last][7] - base[7]} times; "
          f"largest backlog {max(r[8] for r in rows):,} B")
    before = [m for t, m in data["smaps"] if t <= base[0]] or [data["smaps"][0][1]]
    atPeak = min(data["smaps"], key=lambda s: abs(s[0] - peak[0]))[1]
    grown = {k: atPeak.get(k, 0) - before[-1].get(k, 0) for k in set(atPeak) | set(before[-1])}
    print("  RSS grown by mapping, KB:", {k: v for k, v in grown.items() if v})
    slow = [(round((t - base[0]) / 1e6), round(took / 1e6, 1), n)
            for t, took, n in data["slowCommits"] if t >= base[0]]
    print(f"  commits over 20 ms (at ms, took ms, rows): {slow}")


if os.environ.get("CHATD_HOOK_OUT") and __name__ != "__main__":
    _install(os.environ["CHATD_HOOK_OUT"])

if __name__ == "__main__":
    for name in sys.argv[1:]:
        report(name)

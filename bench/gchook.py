"""
How long each chatd daemon of a benchmark spends in the garbage collector:
every collection timed from inside (C{gc.callbacks}), the full ones listed
with how many objects were tracked and the young ones' totals so far.

Unlike bench/memhook (a C{sitecustomize} on this checkout's PYTHONPATH),
this reaches every daemon of a C{--compare} run, each revision's too: it is
loaded by a C{.pth} file in the venv, which every twistd started from it
reads, and acts only where C{GCSTATS_OUT} is set.

    echo "import gchook" > .venv/lib/python3.11/site-packages/zz_gchook.pth
    ln -s "$PWD/bench/gchook.py" .venv/lib/python3.11/site-packages/gchook.py
    GCSTATS_OUT=/tmp/gc .venv/bin/python bench/bench.py --only idle-10000 --compare main ...
    .venv/bin/python bench/gchook.py /tmp/gc          # one summary per daemon
    rm .venv/lib/python3.11/site-packages/zz_gchook.pth .venv/lib/python3.11/site-packages/gchook.py

A file per daemon (C{GCSTATS_OUT.<pid>.json}), rewritten at every full
collection (the daemons of a benchmark were seen not to run Python's exit
handlers): the young collections after the last full one are not counted.
"""

import gc
import glob
import json
import os
import sys
import time


def _install(out):
    began = [0.0]
    totals = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
    full = []

    def write():
        with open(f"{out}.{os.getpid()}.json", "w") as f:
            json.dump({"pythonpath": os.environ.get("PYTHONPATH"),
                       "frozen": gc.get_freeze_count(), "totals": totals, "full": full}, f)

    def timed(phase, info):
        if phase == "start":
            began[0] = time.perf_counter()
            return
        took = time.perf_counter() - began[0]
        generation = info["generation"]
        totals[generation][0] += 1
        totals[generation][1] += took
        if generation == 2:
            # (Counting the tracked objects is itself a walk: only here.)
            full.append((time.monotonic(), took, len(gc.get_objects()),
                         [list(v) for v in totals.values()]))
            write()

    gc.callbacks.append(timed)


def summarize(prefix):
    files = glob.glob(prefix + ".*.json")
    for path in sorted(files, key=lambda p: int(p.split(".")[-2])):
        with open(path) as f:
            stats = json.load(f)
        who = stats["pythonpath"] or "this checkout"
        print(f"{path}: {who}, {stats['frozen']} objects frozen")
        first = stats["full"][0][0] if stats["full"] else 0
        for when, took, tracked, totals in stats["full"]:
            print(f"    full collection at +{when - first:5.2f} s: {took * 1000:5.1f} ms, "
                  f"{tracked} objects tracked; young so far: {totals[0][0]} in "
                  f"{totals[0][1]:.3f} s, {totals[1][0]} in {totals[1][1]:.3f} s")


if __name__ == "__main__":
    summarize(sys.argv[1])
elif os.environ.get("GCSTATS_OUT") and sys.argv[:1] and sys.argv[0].endswith("twistd") \
        and "--help" not in sys.argv:
    _install(os.environ["GCSTATS_OUT"])

"""
Several daemons (issue 16): one room of 1,000 split across two chatd daemons
on one Redis, beside one chatd alone, in the same run.

    .venv/bin/python bench/broker_bench.py [--rounds N] [--members N]
        [--duration SECONDS] [--compare REV] [--profile DIR] [--out FILE]

For each round and each setup ("one daemon", "two daemons + Redis", and with
--compare "two daemons + Redis @REV": chatd as it was at git revision REV) it
starts the servers afresh, in an order that alternates from round to round,
and drives them with bench/loadgen.c (with --port2, every other client,
senders too, on the second daemon):

- fanout: 10 senders each keeping 64 messages in flight for 3 s (or
  --duration): deliveries/s;
- rate: 100 messages/s in all from 10 senders for 3 s (or --duration):
  delivery latency p50/p99, where (for two daemons) half the deliveries
  cross daemons.

and prints a line a run; "lost" must be 0.  CPU is each process's own (Redis,
then the daemons), read from /proc, and the load generator's own (getrusage):
on a machine of few cores, what the load generator and Redis use is not there
for the daemons.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (bench/bench.py: the daemons and the load generator)


class Redis(bench.Daemon):
    def __init__(self, folder):
        self.port = bench._freePort()
        self.log = open(folder / "redis.log", "w+")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder)],
            stdout=self.log, stderr=subprocess.STDOUT)
        bench._waitForPort(self.port, self.process, self.log)


def start(setup, folder, extra, sources):
    """
    The processes of C{setup}, and the ports of its chat daemons.

    @param sources: a revision's exported source by setup, for C{... @REV}.
    """
    source = sources.get(setup)
    if setup == "one daemon":
        daemon = bench.Chatd(folder, extra)
        return [daemon], [daemon.port]
    redis = Redis(folder)
    daemons = []
    for name in ("a", "b"):
        sub = folder / name
        sub.mkdir()
        daemons.append(bench.Chatd(sub, extra + ["--broker",
                                                 f"redis://127.0.0.1:{redis.port}"],
                                   source))
    for daemon in daemons:
        deadline = time.monotonic() + 10
        while True:
            daemon.log.seek(0)
            if "broker: node" in daemon.log.read():
                break
            if time.monotonic() > deadline:
                raise RuntimeError("a daemon did not reach Redis")
            time.sleep(0.05)
    return [redis] + daemons, [d.port for d in daemons]


def drive(loadgen, processes, ports, args):
    command = [str(loadgen), "--proto", "chat", "--port", str(ports[0]),
               "--concurrency", "8"]
    if len(ports) > 1:
        command += ["--port2", str(ports[1])]
    for key, value in args.items():
        command += [f"--{key}", str(value)]
    gen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, bufsize=1)
    try:
        ready = bench._expect(gen, "READY")
        for process in processes:
            bench._settle(process)
        cpu0 = [p.cpu() for p in processes]
        wall0 = time.monotonic()
        gen.stdin.write("go\n")
        gen.stdin.flush()
        result = bench._expect(gen, "RESULT")
        wall = time.monotonic() - wall0
        cpu = [p.cpu() - c for p, c in zip(processes, cpu0)]
    finally:
        gen.stdin.close()
        gen.wait(timeout=30)
    return {**ready, **result, "cpu_s": [round(c, 2) for c in cpu], "wall_s": round(wall, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=3,
                        help="seconds of load in each run (the test suite's toy run "
                             "needs only a fraction of one)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", metavar="REV",
                        help="also run two daemons as chatd was at git revision REV "
                             "(its broker may need what this checkout no longer installs)")
    parser.add_argument("--profile", type=Path,
                        help="py-spy record every chatd of every run into this folder")
    options = parser.parse_args(argv)
    bench._raiseFileLimit()
    work = Path(tempfile.mkdtemp(prefix="chatd-broker-bench-"))
    setups = ["one daemon", "two daemons + Redis"]
    sources = {}
    if options.compare:
        setup = f"two daemons + Redis @{options.compare}"
        sources[setup] = bench.export(options.compare, work)
        setups.append(setup)
    loadgen = work / "loadgen"
    subprocess.run(["gcc", "-O2", "-o", str(loadgen), str(bench.HERE / "loadgen.c")],
                   check=True)
    help = bench._chatdHelp()
    extra = ["--db", "none"]
    for option, value in bench.CHATD_UNLIMITED:
        if option + "=" in help:
            extra += [option, value]
    scenarios = {
        "fanout": dict(mode="fanout", members=options.members, senders=10, window=64,
                       duration=options.duration),
        "rate": dict(mode="rate", members=options.members, senders=10, rate=100,
                     duration=options.duration),
    }
    results = []
    for turn in range(options.rounds):
        # Each setup first as often as last: a neighbour's load on this
        # shared machine falls on all alike.
        order = setups[turn % len(setups):] + setups[:turn % len(setups)]
        if turn % 2:
            order.reverse()
        for scenario, args in scenarios.items():
            for setup in order:
                label = f"{scenario}-{turn}-{setup.replace(' ', '_').replace('@', '')}"
                folder = work / label
                folder.mkdir()
                processes, ports = start(setup, folder, extra, sources)
                if options.profile:
                    for i, process in enumerate(processes):
                        if isinstance(process, bench.Chatd):
                            process.profile(options.profile / f"{label}-{i}.txt")
                try:
                    out = drive(loadgen, processes, ports, args)
                finally:
                    for process in reversed(processes):
                        process.stop()
                out.update(scenario=scenario, setup=setup, round=turn + 1)
                # CPU per delivery, each process's and the load generator's.
                out["cpu_us_per_delivery"] = [
                    round(c * 1e6 / max(out["delivered"], 1), 3)
                    for c in out["cpu_s"] + [out["loadgen_cpu_s"]]]
                results.append(out)
                print(json.dumps({k: out.get(k) for k in (
                    "scenario", "setup", "round", "delivered", "lost", "misordered",
                    "deliveries_per_s", "p50_ms", "p99_ms", "cpu_s", "loadgen_cpu_s",
                    "wall_s", "cpu_us_per_delivery")}), flush=True)
    if options.out:
        options.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

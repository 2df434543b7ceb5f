"""
chatd's benchmark: chatd beside ngircd, InspIRCd and a C ceiling, same work.

Run it with C{bench/run} (see bench/README.md).  For each scenario it starts
each server afresh, drives it with the C load generator (bench/loadgen.c),
reads the server's CPU time and memory from /proc around the measured phase,
and writes the results, with chatd's ratio to each peer and the issue's
targets, to bench/results/latest.json and latest.md.

The servers take turns inside each scenario, and the turns alternate order
from round to round, so that a neighbour's load on this shared machine falls
on all of them alike.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
INSPIRCD = shutil.which("inspircd") or "/usr/sbin/inspircd"
TICKS = os.sysconf("SC_CLK_TCK")

# name, load generator arguments, servers, what it measures
SCENARIOS = {
    "fanout-100": dict(
        args=dict(mode="fanout", members=100, senders=10, window=64, duration=2),
        servers=("chatd", "chatd-irc", "ngircd", "inspircd", "ceiling"),
        about="one room of 100, 10 senders each keeping 64 messages in flight"),
    "fanout-1000": dict(
        args=dict(mode="fanout", members=1000, senders=10, window=64, duration=3),
        servers=("chatd", "chatd-irc", "ngircd", "inspircd", "ceiling"),
        about="one room of 1,000, 10 senders each keeping 64 messages in flight"),
    "latency-1000": dict(
        args=dict(mode="rate", members=1000, senders=10, rate=100, duration=3),
        servers=("chatd", "chatd-irc", "ngircd", "inspircd", "ceiling"),
        about="one room of 1,000, 100 messages/s in total from 10 senders"),
    "idle-10000": dict(
        args=dict(mode="idle", members=10000, rooms=100),
        servers=("chatd", "ngircd", "inspircd", "ceiling", "twisted", "twisted-aggregated",
                 "twisted-silent"),
        rounds=1,  # memory hardly varies; ngircd takes half a minute to join
        about="10,000 connections joined to 100 rooms of 100, then idle"),
    "idle-10000-at-once": dict(
        args=dict(mode="idle", members=10000, rooms=100),
        servers=("chatd", "inspircd", "ceiling", "twisted-aggregated", "twisted-silent"),
        # The same work as idle-10000, with every server given every login
        # at once, as InspIRCd always is: login-and-join CPU compared at the
        # same concurrency.  (ngircd's listen backlog of 10 cannot take it.)
        logins=20000,
        rounds=3,
        about="idle-10000 with every server given every login at once, as InspIRCd always "
              "is"),
    "lobby-5000": dict(
        args=dict(mode="idle", members=5000, rooms=1),
        servers=("chatd", "ngircd", "inspircd", "ceiling", "twisted", "twisted-aggregated"),
        # chatd's clients stay in the lobby they arrive in; the others (with
        # no lobby) join their one room, #r0.
        chatdLobby=True,
        rounds=1,
        about="5,000 connections logged in to one room (chatd: its lobby), then idle"),
    "slow-reader": dict(
        args=dict(mode="rate", members=5, senders=4, rate=20000, duration=3, slow=1),
        servers=("chatd", "ngircd", "inspircd"),
        rounds=1,
        about="one room of 5 plus one member that never reads; 20,000 messages/s "
              "(5 MB for the member that does not read, more than the kernel buffers)"),
    "fanout-1000-web": dict(
        args=dict(mode="fanout", members=1000, senders=10, window=64, duration=3),
        servers=("chatd", "chatd+web"),
        about="fanout-1000 with every member on the line protocol (chatd), and with every "
              "other member (senders too) a WebSocket client of the web front end (chatd+web)"),
    "history": dict(
        args=dict(mode="fanout", members=1000, senders=10, window=64, duration=3),
        servers=("chatd", "chatd+history"),
        about="fanout-1000 on chatd with persistent history off and on"),
    "flood": dict(
        args=dict(mode="rate", members=100, senders=25, rate=100, duration=4),
        servers=("chatd", "chatd+flooder"),
        floodLimits="default",
        about="one room of 100 at 100 messages/s (4/s per sender), on chatd's default "
              "flood limits, without and with one more member flooding as fast as it can"),
}

# chatd's options that lift its limits for the benchmark, when it has them.
CHATD_UNLIMITED = [
    ("--flood-rate", "1000000000"),
    ("--flood-burst", "1000000000"),
    ("--max-connections", "15000"),
    ("--max-per-address", "15000"),
    ("--login-timeout", "0"),
]

# The same scenarios, a few clients and a fraction of a second each: the
# test suite's smoke run.  A tenth of a second of fan-out is still thousands
# of deliveries to check; slow-reader keeps its 0.3 s, which the memory hook's
# test needs to see history lines waiting.
SMOKE = {
    "fanout-100": dict(members=5, senders=2, duration=0.1),
    "fanout-1000": dict(members=8, senders=2, duration=0.1),
    "latency-1000": dict(members=5, senders=2, rate=100, duration=0.1),
    "idle-10000": dict(members=20, rooms=4),
    "idle-10000-at-once": dict(members=20, rooms=4),
    "lobby-5000": dict(members=20),
    "slow-reader": dict(members=5, senders=2, rate=100, duration=0.3),
    "fanout-1000-web": dict(members=8, senders=2, duration=0.1),
    "history": dict(members=5, senders=2, duration=0.1),
    "flood": dict(members=5, senders=2, rate=4, duration=0.5),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns of each server per scenario; the median is reported")
    parser.add_argument("--all-rounds", action="store_true",
                        help="give every scenario --rounds rounds, also those that run "
                             "once by default (idle-10000, lobby-5000, slow-reader)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few clients for a fraction of a second each (the test "
                             "suite's run; about half a minute in all)")
    parser.add_argument("--no-ngircd", action="store_true", help="leave ngircd out")
    parser.add_argument("--no-inspircd", action="store_true", help="leave InspIRCd out")
    parser.add_argument("--chatd-only", action="store_true",
                        help="leave every peer out (ngircd, InspIRCd, the ceiling, the "
                             "Twisted floor): chatd and its --compare revisions alone")
    parser.add_argument("--chatd-arg", action="append", default=[],
                        help="an extra argument for every chatd (repeatable; "
                             "write --chatd-arg=--option=value)")
    parser.add_argument("--history-arg", action="append", default=None,
                        help="the chatd arguments that turn history on (repeatable; "
                             "default: --db sqlite:FILE in the run's temporary folder, "
                             "when chatd has --db)")
    parser.add_argument("--set", action="append", default=[], metavar="SCENARIO.KEY=VALUE",
                        help="change a scenario's load, e.g. idle-10000.rooms=1000")
    parser.add_argument("--out", type=Path,
                        help="where latest.json and latest.md go (default: bench/results, "
                             "the published results, for a full run; a new temporary folder "
                             "with --smoke or --only)")
    parser.add_argument("--compare", action="append", default=[], metavar="REV",
                        help="also run chatd as it was at git revision REV (repeatable), "
                             "as the server chatd@REV beside this checkout's chatd, in "
                             "every scenario chatd runs in: a before/after in one run")
    parser.add_argument("--metrics", action="store_true",
                        help="also run this checkout's chatd with --metrics on, scraped "
                             "every second, as the server chatd+metrics")
    parser.add_argument("--logins", type=int, metavar="N",
                        help="logins in flight at once for chatd, the ceiling and the "
                             "Twisted floor (default 8, as ngircd's listen backlog of 10 "
                             "needs; InspIRCd is always given every login at once)")
    parser.add_argument("--profile", type=Path,
                        help="py-spy record chatd during each of its runs, into this folder")
    parser.add_argument("--profile-rate", type=int, default=200, metavar="HZ",
                        help="py-spy's samples per second with --profile (default 200)")
    parser.add_argument("--pin", type=lambda v: tuple(int(c) for c in v.split(",")),
                        metavar="SERVER,LOADGEN",
                        help="run the server on CPU SERVER and the load generator on CPU "
                             "LOADGEN (e.g. 1,0), during each run's measured load")
    options = parser.parse_args(argv)

    _raiseFileLimit()
    work = Path(tempfile.mkdtemp(prefix="chatd-bench-"))
    try:
        bench = Bench(options, work)
        results = bench.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if options.out is None:
        # Only a full run replaces the results the READMEs cite.
        options.out = (Path(tempfile.mkdtemp(prefix="chatd-bench-"))
                       if options.smoke or options.only else HERE / "results")
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (options.out / "latest.md").write_text(markdown(results))
    print(markdown(results))
    print(f"results written to {options.out}/latest.json and latest.md")
    failed = [r for r in results["runs"] if r.get("error")]
    return 1 if failed else 0


def _raiseFileLimit():
    # 10,000 clients and 10,000 server sockets; the daemons inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Bench:
    def __init__(self, options, work):
        self.options = options
        self.work = work
        # The quiet spell that ends _settle: a smoke run's numbers mean
        # nothing, so it need not wait the full one twice per run.
        self.quiet = 0.05 if options.smoke else 0.2
        self.loadgen = self._compile("loadgen")
        self.ceiling = self._compile("ceiling")
        self.sendcost = self._compile("sendcost")
        self.haveNgircd = not options.no_ngircd and os.access(NGIRCD, os.X_OK)
        self.haveInspircd = not options.no_inspircd and os.access(INSPIRCD, os.X_OK)
        # Persistent history (issue 3) arrives as --db sqlite:PATH | none,
        # on by default.  Where chatd has it, every chatd keeps its history in
        # its own temporary folder (never the user's), and the history
        # scenario compares --db none with that.
        help = _chatdHelp()
        self.hasDb = "--db=" in help
        # Like ngircd's configuration: no flood limits and no connection
        # limits, for the options this chatd has (issue 6 added them).
        self.unlimited = []
        for option, value in CHATD_UNLIMITED:
            if option + "=" in help:
                self.unlimited += [option, value]
        self.historyArgs = options.history_arg
        if self.historyArgs is None and self.hasDb:
            self.historyArgs = []
        # Each revision to compare, exported from git into the work folder.
        self.sources = {f"chatd@{rev}": self._export(rev) for rev in options.compare}

    def _export(self, rev):
        return export(rev, self.work)

    def _compile(self, name):
        binary = self.work / name
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / f"{name}.c")], check=True)
        return binary

    def floor(self):
        """
        What one loopback send of a line costs on this machine, with a
        process reading (bench/sendcost.c): the floor under any server's
        fan-out when lines come one at a time.
        """
        connections = 20 if self.options.smoke else 1000
        done = subprocess.run([str(self.sendcost), str(connections)], check=True,
                              capture_output=True, text=True)
        floor = json.loads(done.stdout)
        floor["fanout_999_ms"] = round(floor["send_us"] * 999 / 1000, 2)
        return floor

    def run(self):
        runs = []
        names = self.options.only or list(SCENARIOS)
        floor = self.floor()
        for name in names:
            scenario = SCENARIOS[name]
            args = dict(scenario["args"])
            if self.options.smoke:
                args.update(SMOKE[name])
            for setting in self.options.set:
                key, _, value = setting.partition("=")
                where, _, key = key.partition(".")
                if where == name:
                    args[key] = value
            servers = [s for s in scenario["servers"] if self._available(s)]
            if "chatd" in servers:
                at = servers.index("chatd") + 1
                servers[at:at] = list(self.sources)
                # A variant of chatd (chatd+web) beside its twin at each
                # revision (chatd+web@REV), for the variant's before/after.
                for variant in [s for s in servers if s.startswith("chatd+")]:
                    at = servers.index(variant) + 1
                    servers[at:at] = [variant + source[len("chatd"):]
                                      for source in self.sources]
                if self.options.metrics:
                    servers.insert(at, "chatd+metrics")
            rounds = self.options.rounds
            if not self.options.all_rounds:
                rounds = min(rounds, scenario.get("rounds", rounds))
            for turn in range(rounds):
                order = servers if turn % 2 == 0 else servers[::-1]
                for server in order:
                    print(f"{name}: {server} (round {turn + 1})", file=sys.stderr, flush=True)
                    result = self.runOne(name, server, args, turn)
                    print(f"  {_brief(result)}", file=sys.stderr, flush=True)
                    runs.append(result)
        return {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "floor": floor,
            "smoke": self.options.smoke,
            "rounds": self.options.rounds,
            "scenarios": {n: {"about": SCENARIOS[n]["about"],
                              "args": {**SCENARIOS[n]["args"],
                                       **(SMOKE[n] if self.options.smoke else {})}}
                          for n in names},
            "skipped": self._skipped(names),
            "runs": runs,
            "summary": summarise(runs),
        }

    def _available(self, server):
        server = server.partition("@")[0]
        if self.options.chatd_only and server in PEERS:
            return False
        if server == "ngircd":
            return self.haveNgircd
        if server == "inspircd":
            return self.haveInspircd
        if server == "chatd+history":
            return self.historyArgs is not None
        if server == "chatd+flooder":
            return True
        return True

    def _skipped(self, names):
        skipped = {}
        if not self.haveNgircd:
            skipped["ngircd"] = "not installed (apt-get install ngircd) or --no-ngircd"
        if not self.haveInspircd:
            skipped["inspircd"] = "not installed (apt-get install inspircd) or --no-inspircd"
        if self.options.chatd_only:
            skipped["peers"] = "--chatd-only"
        if "history" in names and self.historyArgs is None:
            skipped["chatd+history"] = ("chatd has no --db option yet (persistent history, "
                                        "issue 3); pass --history-arg to measure it")
        return skipped

    def runOne(self, scenario, server, args, turn):
        result = {"scenario": scenario, "server": server, "round": turn + 1}
        daemon = self.startServer(server, scenario, turn)
        try:
            if server.startswith("chatd") and SCENARIOS[scenario].get("chatdLobby"):
                args = {**args, "lobby": 1}
            result.update(self.drive(daemon, args,
                                     flooder=server.partition("@")[0] == "chatd+flooder"))
        except Exception as e:
            result["error"] = f"{type(e).__name__}: {e}"
        finally:
            daemon.stop()
        return result

    def startServer(self, server, scenario, turn):
        label = f"{scenario}-{turn}"
        folder = self.work / f"{server}-{label}"
        folder.mkdir()
        name = server
        if server.startswith("chatd"):
            # chatd+web@REV: the variant chatd+web of chatd@REV.
            variant, at, rev = server.partition("@")
            source = self.sources.get(f"chatd{at}{rev}")
            server = variant
            # The limits lifted, as the peers', but for the flood limits in
            # the scenario about them.
            limits = self.unlimited
            if SCENARIOS[scenario].get("floodLimits") == "default":
                limits = [word for pair in zip(limits[::2], limits[1::2])
                          if not pair[0].startswith("--flood") for word in pair]
            extra = limits + list(self.options.chatd_arg)
            if server == "chatd+history" and self.options.history_arg:
                extra += self.options.history_arg
            elif self.hasDb:
                off = scenario == "history" and server == "chatd"
                extra += ["--db", "none" if off else f"sqlite:{folder / 'chatd.sqlite3'}"]
            if server == "chatd+metrics":
                extra += ["--metrics", "tcp:0:interface=127.0.0.1"]
            daemon = Chatd(folder, extra, source,
                           irc=server == "chatd-irc", web=server == "chatd+web")
            if server == "chatd+metrics":
                daemon.scrape()
        elif server == "ngircd":
            daemon = Ngircd(folder)
        elif server == "inspircd":
            daemon = Inspircd(folder)
        elif server.startswith("twisted"):
            daemon = TwistedFloor(folder, server.partition("-")[2])
        else:
            daemon = Ceiling(folder, self.ceiling)
        if server != "ngircd" and server != "inspircd" and self.options.logins:
            daemon.logins = self.options.logins
        if server != "ngircd" and SCENARIOS[scenario].get("logins"):
            daemon.logins = SCENARIOS[scenario]["logins"]
        if self.options.profile and server.startswith("chatd"):
            daemon.profile(self.options.profile / f"{label}-{name}.txt",
                           self.options.profile_rate)
        return daemon

    def drive(self, daemon, args, flooder=False):
        command = [str(self.loadgen), "--proto", daemon.proto, "--port", str(daemon.port),
                   "--concurrency", str(daemon.logins)]
        if daemon.webPort:
            # Every other member a WebSocket client of the web front end.
            command += ["--web-port", str(daemon.webPort)]
        for key, value in args.items():
            command += [f"--{key}", str(value)]
        rssIdle, cpuStart = daemon.rss(), daemon.cpu()
        userStart, systemStart = daemon.cpuSplit()
        gen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, bufsize=1)
        if self.options.pin:
            # The server's main thread and the load generator each on a core of
            # their own: the scheduler then cannot run one on the other's core
            # when a write wakes it (see README.md, "Departures").
            serverCore, genCore = self.options.pin
            os.sched_setaffinity(daemon.process.pid, {serverCore})
            os.sched_setaffinity(gen.pid, {genCore})
        switches0 = _switches(daemon)
        try:
            ready = _expect(gen, "READY")
            if flooder:
                flood = subprocess.Popen(
                    [sys.executable, str(HERE / "flooder.py"), str(daemon.port), "flooder",
                     "#r0"], stdout=subprocess.PIPE, text=True)
                daemon.helpers.append(flood)
                if flood.stdout.readline().strip() != "flooding":
                    raise RuntimeError("the flooder did not get in")
            settle = _settle(daemon, self.quiet)
            if daemon.announcesLate and not self.options.smoke:
                # The last arrivals wait for their room's window to end, with
                # no CPU used meanwhile: announced then, they are the
                # logins' work, not the next phase's (latency-1000's first
                # lines waited behind 1,000 arrivals' announcements).
                settle += _settle(daemon, quiet=daemon.announcesLate + 0.3)
            rssReady = daemon.rss()
            cpu0, wall0 = daemon.cpu(), time.monotonic()
            joinCpu = cpu0 - cpuStart
            switches1 = _switches(daemon)
            user, system = daemon.cpuSplit()
            sampler = PeakSampler(daemon)
            gen.stdin.write("go\n")
            gen.stdin.flush()
            result = _expect(gen, "RESULT")
            sampler.stop()
            cpu, wall = daemon.cpu() - cpu0, time.monotonic() - wall0
            quitUser, quitSystem = daemon.cpuSplit()
        finally:
            gen.stdin.close()
            gen.wait(timeout=30)
        # The generator's exit closes every client at once, as a network
        # blip or a proxy restart does: what their departures cost.
        _settle(daemon, self.quiet)
        out = {**ready, **result}
        userEnd, systemEnd = daemon.cpuSplit()
        out["server_quit_cpu_s"] = round(userEnd - quitUser + systemEnd - quitSystem, 3)
        out["server_quit_user_s"] = round(userEnd - quitUser, 3)
        out["server_cpu_s"] = round(cpu, 3)
        out["settle_s"] = round(settle, 3)
        out["server_join_cpu_s"] = round(joinCpu, 3)
        out["server_join_voluntary_switches"] = switches1[0] - switches0[0]
        out["server_join_preempted"] = switches1[1] - switches0[1]
        # The kernel's share (system time): the sockets' work, which any
        # server does; the rest is the server's own.
        out["server_join_user_s"] = round(user - userStart, 3)
        out["server_join_system_s"] = round(system - systemStart, 3)
        # (--set SCENARIO.concurrency=N, after it on the command line, wins.)
        logins = int(args.get("concurrency", daemon.logins))
        out["logins_in_flight"] = min(logins, int(args["members"]))
        # CPU per delivery: unlike deliveries/s, barely moved by other work
        # on a shared machine.
        if result["delivered"]:
            out["server_cpu_us_per_delivery"] = round(cpu * 1e6 / result["delivered"], 3)
            # Split as the join's is: the kernel's (system) share grows with
            # the bytes sent, which differ by wire format (a web frame is
            # ~1.8x a line), the rest is chatd's Python.
            out["server_user_us_per_delivery"] = round(
                (quitUser - user) * 1e6 / result["delivered"], 3)
            out["server_system_us_per_delivery"] = round(
                (quitSystem - system) * 1e6 / result["delivered"], 3)
        out["server_cpu_share"] = round(cpu / wall, 3) if wall else None
        out["loadgen_cpu_share"] = round(result["loadgen_cpu_s"] / wall, 3) if wall else None
        out["server_rss_idle_kb"] = rssIdle
        out["server_rss_ready_kb"] = rssReady
        out["server_rss_peak_kb"] = sampler.peak
        out["server_rss_growth_kb"] = sampler.peak - rssReady
        out["loadgen_args"] = {k: str(v) for k, v in args.items()}
        if args["mode"] == "idle":
            joined = ready["joined"] or 1
            out["bytes_per_connection"] = round((rssReady - rssIdle) * 1024 / joined)
        return out


def export(rev, work):
    """
    chatd's source as it was at git revision C{rev}, exported into a new
    folder under C{work}.
    """
    source = work / f"source-{rev}"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", rev],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source


def _switches(daemon):
    """
    The server's voluntary and involuntary (preempted) context switches so
    far, from /proc.
    """
    fields = dict(line.split(":\t") for line in
                  Path(f"/proc/{daemon.process.pid}/status").read_text().splitlines()
                  if "ctxt_switches" in line)
    return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])


def _settle(daemon, quiet=0.2, limit=10):
    """
    Wait until the server has used no CPU for C{quiet} seconds (at most
    C{limit}), and return how long that took.  When every client is ready,
    the join notices of the last arrivals may still be queued for the
    others: a server that logs everyone in at once (InspIRCd) was still busy
    writing them for a tenth of a second at 1,000 members, which then went
    out during the measured phase and counted against its latency.
    """
    start = last = time.monotonic()
    used = daemon.cpu()
    while time.monotonic() - start < limit:
        time.sleep(min(0.05, quiet / 4))
        now, cpu = time.monotonic(), daemon.cpu()
        if cpu != used:
            used, last = cpu, now
        elif now - last >= quiet:
            break
    return time.monotonic() - start


def _expect(gen, tag):
    for line in gen.stdout:
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    raise RuntimeError(f"load generator ended before {tag} (exit {gen.wait()})")


class Daemon:
    port = None
    webPort = None
    proto = "chat"
    # Logins in flight at once: ngircd's listen backlog is 10.
    logins = 8
    # The longest an arrival may wait to be announced (chatd's arrival
    # windows, chatd.core.arrivals.LONG_WINDOW): a server that announces
    # joins at once has nothing left to announce once quiet.
    announcesLate = 0.0
    process = None
    _profiler = None

    @property
    def helpers(self):
        """
        Other processes of this run (a flooder), stopped with the server.
        """
        return self.__dict__.setdefault("_helpers", [])

    def rss(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu(self):
        return sum(self.cpuSplit())

    def cpuSplit(self):
        """
        The server's CPU time so far, user and system, in seconds.
        """
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / TICKS, int(fields[12]) / TICKS

    def profile(self, out, rate=200):
        out.parent.mkdir(parents=True, exist_ok=True)
        pyspy = Path(sys.executable).parent / "py-spy"
        self._profiler = subprocess.Popen(
            [str(pyspy), "record", "--nonblocking", "-r", str(rate), "-f", "raw", "-o", str(out),
             "--pid", str(self.process.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        for helper in self.helpers:
            helper.kill()
            helper.wait(timeout=30)
        if self._profiler is not None:
            self._profiler.send_signal(signal.SIGINT)
            self._profiler.wait(timeout=30)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Chatd(Daemon):
    """
    chatd as a user starts it: twistd in the foreground from this venv, with
    this checkout's chatd or, given C{source}, the one exported there (its
    package and plugin come first on the path).
    """

    metricsPort = None
    announcesLate = 2.0

    def __init__(self, folder, extra, source=None, irc=False, web=False):
        """
        @param irc: whether the load speaks IRC, to chatd's IRC front end
            (C{--irc}), rather than the line protocol.
        @param web: whether the web front end listens too (C{--web}), for
            the load's WebSocket clients.
        """
        twistd = Path(sys.executable).parent / "twistd"
        self.log = open(folder / "chatd.log", "w+")
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        wanted = "chatd listening on 127.0.0.1:"
        if irc:
            extra = ["--irc", "tcp:0:interface=127.0.0.1", *extra]
            wanted = "chatd listening for IRC on 127.0.0.1:"
            self.proto = "irc"
        if web:
            extra = ["--web", "tcp:0:interface=127.0.0.1", *extra]
        self.process = subprocess.Popen(
            [str(twistd), "-n", "--pidfile=", "chat",
             "--listen", "tcp:0:interface=127.0.0.1", *extra],
            cwd=folder, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while self.port is None or (web and self.webPort is None):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"chatd did not start: {self.log.read()[-2000:]}")
            time.sleep(0.05)
            self.log.seek(0)
            for line in self.log:
                if wanted in line and "(web client:" in line:
                    self.webPort = int(line.split(wanted, 1)[1].split()[0])
                elif wanted in line:
                    self.port = int(line.rsplit(":", 1)[1])
                if "chatd metrics on 127.0.0.1:" in line:
                    self.metricsPort = int(line.rsplit(":", 1)[1])

    def scrape(self, every=1.0):
        """
        Scrape /metrics every C{every} seconds while the run lasts (Prometheus
        itself scrapes every 15 s by default), from a helper process.
        """
        self.helpers.append(subprocess.Popen(
            [sys.executable, "-c", "import sys, time, urllib.request\n"
             "while True:\n"
             f"    urllib.request.urlopen('http://127.0.0.1:{self.metricsPort}/metrics')"
             ".read()\n"
             f"    time.sleep({every})\n"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


class Ngircd(Daemon):
    """
    ngircd in the foreground with a generated configuration: loopback only,
    no DNS/ident/PAM look-ups, no flood penalties, no per-address or channel
    limits.
    """

    proto = "irc"

    def __init__(self, folder):
        self.port = _freePort()
        config = folder / "ngircd.conf"
        config.write_text(f"""\
[Global]
Name = bench.invalid
Info = chatd benchmark peer
AdminInfo1 = bench
AdminInfo2 = bench
AdminEMail = bench@bench.invalid
Listen = 127.0.0.1
Ports = {self.port}
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
""")
        self.log = open(folder / "ngircd.log", "w+")
        self.process = subprocess.Popen([NGIRCD, "-n", "-f", str(config)],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        _waitForPort(self.port, self.process, self.log)


class Inspircd(Daemon):
    """
    InspIRCd in the foreground with a generated configuration, the same
    choices as ngircd's: loopback only, no DNS or ident look-ups (no modules
    loaded beyond its core), no flood penalties, no per-address, class or
    channel limits, and buffers that hold a 1,000-member room's backlog.
    """

    proto = "irc"
    # InspIRCd completes a registration only in its once-a-second sweep of
    # the users (UserManager::DoBackgroundUserStuff; only a build with
    # INSPIRCD_UNLIMITED_MAINLOOP does it at once), whatever the
    # configuration: with 8 logins in flight it logs in 8 clients a second.
    # All at once, they complete at the next tick.
    logins = 20000

    def __init__(self, folder):
        self.port = _freePort()
        config = folder / "inspircd.conf"
        # threshold x 1000 must fit an unsigned int; commandrate (in
        # thousandths of a command per second) takes the penalty back off
        # faster than any sender can add it.  softsendq: past it, InspIRCd
        # stops reading a client's commands until its own output drains
        # (a sender in a busy room is also a reader).  recvq: what a sender
        # may have unread.  hardsendq: a reader's backlog before it is
        # dropped; 1,000 members x 10 senders x 64 in flight is 70 KB.
        config.write_text(f"""\
<server name="bench.invalid" description="chatd benchmark peer" network="bench">
<admin name="bench" nick="bench" email="bench@bench.invalid">
<bind address="127.0.0.1" port="{self.port}" type="clients">
<connect name="bench" allow="127.0.0.1" timeout="60" pingfreq="3600"
         resolvehostnames="no" useident="no"
         threshold="4000000" commandrate="1000000000" fakelag="no"
         hardsendq="1M" softsendq="1M" recvq="1M"
         localmax="100000" globalmax="100000" limit="100000" maxconnwarn="no">
<dns server="127.0.0.1" timeout="1">
<performance netbuffersize="65536" somaxconn="4096" softlimit="15000"
             clonesonconnect="no">
<limits maxnick="30">
""")
        self.log = open(folder / "inspircd.log", "w+")
        command = [INSPIRCD, "--config", str(config), "--nofork", "--nopid"]
        if os.geteuid() == 0:
            command.append("--runasroot")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        _waitForPort(self.port, self.process, self.log)


class Ceiling(Daemon):
    def __init__(self, folder, binary):
        self.log = open(folder / "ceiling.log", "w+")
        self.process = subprocess.Popen([str(binary), "0"], stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        self.port = int(self.process.stdout.readline().split()[-1])


class TwistedFloor(Daemon):
    """
    bench/twisted_floor.py: the ceiling's work done the least a Twisted
    server can do it, on chatd's Python and Twisted; with C{mode} "silent"
    announcing no join, with "aggregated" doing the least issue 18 asks of a
    chat server per login (see the script).
    """

    def __init__(self, folder, mode=""):
        self.announcesLate = Chatd.announcesLate if mode == "aggregated" else 0.0
        self.log = open(folder / "twisted.log", "w+")
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "twisted_floor.py"), "0"] + [f"--{mode}"] * bool(mode),
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.port = int(self.process.stdout.readline().split()[-1])


def _freePort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _waitForPort(port, process, log):
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"server did not start: {log.read()[-2000:]}")
            time.sleep(0.05)


class PeakSampler:
    """
    The server's largest resident size while the phase runs, sampled every
    20 ms.
    """

    def __init__(self, daemon):
        self.peak = daemon.rss()
        self._daemon = daemon
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._daemon.rss())

    def stop(self):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._daemon.rss())


def _chatdHelp():
    twistd = Path(sys.executable).parent / "twistd"
    done = subprocess.run([str(twistd), "chat", "--help"], capture_output=True, text=True)
    return done.stdout


def machine():
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import twisted
    ngircd = inspircd = ""
    if os.access(NGIRCD, os.X_OK):
        ngircd = subprocess.run([NGIRCD, "--version"], capture_output=True,
                                text=True).stdout.split("-", 1)[0].strip()
    if os.access(INSPIRCD, os.X_OK):
        # "InspIRCd-3.15.0-debian"
        inspircd = " ".join(subprocess.run(
            [INSPIRCD, "--version"], capture_output=True,
            text=True).stdout.strip().split("-")[:2])
    return {"cpus": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "twisted": twisted.__version__,
            "ngircd": ngircd, "inspircd": inspircd}


# What each scenario reports, and which way is better.
# The servers chatd is measured beside, in the order their columns appear.
PEERS = ("ngircd", "inspircd", "ceiling", "twisted", "twisted-aggregated", "twisted-silent")

METRICS = {
    "fanout-100": ["deliveries_per_s", "lost", "misordered", "p50_ms", "p99_ms",
                   "server_cpu_us_per_delivery", "server_cpu_share", "loadgen_cpu_share"],
    "fanout-1000": ["deliveries_per_s", "lost", "misordered", "p50_ms", "p99_ms",
                   "server_cpu_us_per_delivery", "server_user_us_per_delivery",
                   "server_system_us_per_delivery", "server_cpu_share", "loadgen_cpu_share"],
    "latency-1000": ["p50_ms", "p99_ms", "lost", "misordered", "server_cpu_share"],
    "idle-10000": ["joined", "logins_in_flight", "join_s", "server_join_cpu_s",
                   "server_join_user_s", "server_join_system_s",
                   "server_join_voluntary_switches", "server_join_preempted",
                   "bytes_per_connection", "server_rss_ready_kb", "server_quit_cpu_s",
                   "server_quit_user_s"],
    "idle-10000-at-once": ["joined", "logins_in_flight", "join_s", "server_join_cpu_s",
                           "server_join_user_s", "server_join_system_s",
                           "server_join_voluntary_switches", "server_join_preempted",
                           "bytes_per_connection", "server_quit_cpu_s"],
    "lobby-5000": ["joined", "logins_in_flight", "join_s", "server_join_cpu_s",
                   "server_join_user_s", "server_join_system_s",
                   "bytes_per_connection", "server_rss_ready_kb", "server_quit_cpu_s",
                   "server_quit_user_s"],
    "slow-reader": ["p50_ms", "p99_ms", "lost", "misordered", "server_rss_growth_kb", "slow_dropped",
                    "slow_received"],
    "fanout-1000-web": ["deliveries_per_s", "lost", "misordered", "p50_ms", "p99_ms",
                        "server_cpu_us_per_delivery", "server_user_us_per_delivery",
                        "server_system_us_per_delivery", "server_cpu_share",
                        "loadgen_cpu_share"],
    "history": ["deliveries_per_s", "lost", "p50_ms", "p99_ms", "server_cpu_us_per_delivery",
                "server_cpu_share"],
    "flood": ["p50_ms", "p99_ms", "lost", "misordered", "server_cpu_share"],
}


def summarise(runs):
    """
    Per scenario and server, the median of each metric over the rounds (the
    worst for lost and misordered), and chatd's ratio to each peer.
    """
    summary = {}
    for run in runs:
        if run.get("error"):
            continue
        summary.setdefault(run["scenario"], {}).setdefault(run["server"], []).append(run)
    out = {}
    for scenario, servers in summary.items():
        table = {}
        for server, rs in servers.items():
            row = {}
            for metric in METRICS[scenario]:
                values = [r.get(metric) for r in rs if r.get(metric) is not None]
                if not values:
                    continue
                if metric in ("lost", "misordered") or isinstance(values[0], bool):
                    row[metric] = max(values)
                else:
                    row[metric] = statistics.median(values)
            table[server] = row
        ratios = {}
        base = table.get("chatd", {})
        for peer in table:
            if peer == "chatd":
                continue
            ratios[peer] = {m: round(base[m] / v, 3) for m, v in table[peer].items()
                            if m in base and isinstance(v, (int, float))
                            and not isinstance(v, bool) and v}
        out[scenario] = {"servers": table, "chatd_over": ratios}
    out["targets"] = targets(out)
    return out


def targets(summary):
    """
    The issue's targets, met or not, as far as this run measured them.
    """
    found = []

    def get(scenario, server, metric):
        return summary.get(scenario, {}).get("servers", {}).get(server, {}).get(metric)

    def target(what, value, met, scenario=None, metric=None, show=None):
        # Where the others were measured on the same work, what they did,
        # so that a target no server meets here can be told from one that
        # chatd alone misses.
        others = {}
        for peer in PEERS:
            theirs = get(scenario, peer, metric) if scenario else None
            if theirs is not None:
                others[peer] = show(theirs)
        found.append({"target": what, "value": value, "met": met, "others": others})

    for server, what in (("chatd", ""), ("chatd-irc", "IRC ")):
        mine = get("fanout-1000", server, "deliveries_per_s")
        for peer, name in (("ngircd", "ngircd"), ("inspircd", "InspIRCd")):
            theirs = get("fanout-1000", peer, "deliveries_per_s")
            if mine and theirs:
                target(f"{what}fan-out at 1,000: deliveries/s >= {name}'s",
                       f"{mine / theirs:.2f}x", mine >= theirs)
    for scenario, server in (("fanout-100", "chatd"), ("fanout-1000", "chatd"),
                             ("latency-1000", "chatd"), ("slow-reader", "chatd"),
                             ("fanout-1000", "chatd-irc"), ("latency-1000", "chatd-irc"),
                             ("fanout-1000-web", "chatd+web")):
        lost = get(scenario, server, "lost")
        order = get(scenario, server, "misordered")
        if lost is not None:
            where = scenario + (" over IRC" if server == "chatd-irc" else "")
            where += " (half WebSocket)" if server == "chatd+web" else ""
            target(f"{where}: nothing lost, order kept", f"lost {lost}, misordered {order}",
                   lost == 0 and order == 0)
    # This checkout's, then each compared revision's (chatd@REV beside
    # chatd+web@REV).
    web = summary.get("fanout-1000-web", {}).get("servers", {})
    for at in [""] + [s[len("chatd"):] for s in web if s.startswith("chatd@")]:
        line = get("fanout-1000-web", "chatd" + at, "server_cpu_us_per_delivery")
        mixed = get("fanout-1000-web", "chatd+web" + at, "server_cpu_us_per_delivery")
        if line and mixed:
            target(f"fan-out at 1,000, half WebSocket: CPU per delivery <= 1.5x all-line"
                   + (f" (chatd{at})" if at else ""),
                   f"{mixed / line:.2f}x ({mixed:.2f} vs {line:.2f} µs)", mixed <= 1.5 * line)
    calm, flooded = get("flood", "chatd", "p99_ms"), get("flood", "chatd+flooder", "p99_ms")
    if calm is not None and flooded is not None:
        target("flood: the others' p99 unmoved by a flooder (within 20% or 1 ms)",
               f"{calm:.2f} -> {flooded:.2f} ms", flooded <= max(calm * 1.2, calm + 1))
    p99 = get("latency-1000", "chatd", "p99_ms")
    if p99 is not None:
        target("p99 <= 5 ms at 100 msg/s with 1,000 members", f"{p99:.1f} ms", p99 <= 5,
               "latency-1000", "p99_ms", lambda v: f"{v:.1f} ms")
    per = get("idle-10000", "chatd", "bytes_per_connection")
    if per is not None:
        target("<= 2.0 KB per idle joined connection", f"{per / 1024:.2f} KB", per <= 2048,
               "idle-10000", "bytes_per_connection", lambda v: f"{v / 1024:.2f} KB")
    joinS = get("idle-10000", "chatd", "join_s")
    joined = get("idle-10000", "chatd", "joined")
    if joinS is not None:
        target(f"{joined:,} joined in under 2 s", f"{joinS:.2f} s", joinS < 2,
               "idle-10000", "join_s", lambda v: f"{v:.2f} s")
    cpu = get("lobby-5000", "chatd", "server_join_cpu_s")
    if cpu is not None:
        target("5,000 into one lobby: <= 2 s of chatd CPU", f"{cpu:.2f} s", cpu <= 2,
               "lobby-5000", "server_join_cpu_s", lambda v: f"{v:.2f} s")
    for scenario, how in (("idle-10000", "chatd 8 logins in flight, InspIRCd every one at once"),
                          ("idle-10000-at-once", "every login at once for both")):
        mine = get(scenario, "chatd", "server_join_cpu_s")
        theirs = get(scenario, "inspircd", "server_join_cpu_s")
        if mine is not None and theirs:
            target(f"10,000 into rooms of 100 ({how}): login-and-join CPU <= InspIRCd's",
                   f"{mine / theirs:.2f}x ({mine:.2f} vs {theirs:.2f} s)", mine <= theirs)
    # Issue 18's targets for the scenarios that are not about arrivals.
    best = min((v for v in (get("latency-1000", peer, "p99_ms") for peer in ("ngircd", "inspircd"))
                if v is not None), default=None)
    if p99 is not None and best:
        target("latency-1000: p99 <= 0.8x the best peer's", f"{p99 / best:.2f}x "
               f"({p99:.1f} vs {best:.1f} ms)", p99 <= 0.8 * best)
    perDelivery = get("fanout-1000", "chatd", "server_cpu_us_per_delivery")
    if perDelivery is not None:
        target("fanout-1000: CPU per delivery <= 0.2 µs", f"{perDelivery:.3f} µs",
               perDelivery <= 0.2, "fanout-1000", "server_cpu_us_per_delivery",
               lambda v: f"{v:.3f} µs")
    mine, theirs = get("fanout-100", "chatd", "deliveries_per_s"), \
        get("fanout-100", "ngircd", "deliveries_per_s")
    if mine and theirs:
        target("fanout-100: deliveries/s >= 1.5x ngircd's", f"{mine / theirs:.2f}x",
               mine >= 1.5 * theirs)
    growth = get("slow-reader", "chatd", "server_rss_growth_kb")
    if growth is not None:
        target("slow-reader: memory growth <= 2 MB", f"{growth / 1024:.2f} MB",
               growth <= 2048, "slow-reader", "server_rss_growth_kb",
               lambda v: f"{v / 1024:.2f} MB")
    off, on = get("history", "chatd", "deliveries_per_s"), \
        get("history", "chatd+history", "deliveries_per_s")
    if off and on:
        target("history on costs <= 15% of fan-out", f"{1 - on / off:.0%}", on >= 0.85 * off)
    return found


def _fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown(results):
    lines = [f"# chatd benchmark, {results['date']}", ""]
    m = results["machine"]
    lines += [f"Machine: {m['cpus']} cores ({m['cpu']}), Linux {m['kernel']}, "
              f"Python {m['python']}, Twisted {m['twisted']}, {m['ngircd'] or 'no ngircd'}, "
              f"{m.get('inspircd') or 'no InspIRCd'}. "
              f"Median of {results['rounds']} round(s)"
              + (" (smoke run: tiny sizes, numbers mean nothing)." if results["smoke"] else "."),
              ""]
    floor = results.get("floor")
    if floor:
        lines += [f"Floor: one loopback send of a line costs {floor['send_us']} µs here with a "
                  f"process reading ({floor['connections']:,} connections, bench/sendcost.c), "
                  f"so a line sent to 999 members one `send` each reaches the last "
                  f"{floor['fanout_999_ms']} ms after it is sent, whatever the server.", ""]
    for scenario, data in results["summary"].items():
        if scenario == "targets":
            continue
        about = results["scenarios"][scenario]["about"]
        servers = list(data["servers"])
        peers = list(data["chatd_over"])
        lines += [f"## {scenario}: {about}", ""]
        lines.append("| metric | " + " | ".join(servers) + "".join(
            f" | chatd/{p}" for p in peers) + " |")
        lines.append("|---" * (1 + len(servers) + len(peers)) + "|")
        for metric in METRICS[scenario]:
            cells = [_fmt(data["servers"][s].get(metric)) for s in servers]
            cells += [_fmt(data["chatd_over"][p].get(metric)) for p in peers]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    if results["skipped"]:
        lines += ["## Not measured", ""]
        lines += [f"- {what}: {why}" for what, why in results["skipped"].items()]
        lines.append("")
    errors = [r for r in results["runs"] if r.get("error")]
    if errors:
        lines += ["## Failed runs", ""]
        lines += [f"- {r['scenario']} {r['server']} round {r['round']}: {r['error']}"
                  for r in errors]
        lines.append("")
    found = results["summary"]["targets"]
    peers = [p for p in PEERS if any(p in t.get("others", {}) for t in found)]
    lines += ["## Targets", "",
              "| target | chatd | met |" + "".join(f" {p} |" for p in peers),
              "|---" * (3 + len(peers)) + "|"]
    for t in found:
        others = t.get("others", {})
        lines.append(f"| {t['target']} | {t['value']} | {'yes' if t['met'] else 'NO'} |"
                     + "".join(f" {others.get(p, '')} |" for p in peers))
    return "\n".join(lines) + "\n"


def _brief(result):
    if result.get("error"):
        return "error: " + result["error"]
    keys = ("joined", "join_s", "server_join_cpu_s", "deliveries_per_s", "server_cpu_us_per_delivery", "lost", "p50_ms", "p99_ms",
            "server_cpu_share", "loadgen_cpu_share", "bytes_per_connection")
    return ", ".join(f"{k}={result[k]}" for k in keys if k in result)


if __name__ == "__main__":
    sys.exit(main())

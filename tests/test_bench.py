"""
A smoke run of the benchmark (bench/run --smoke), so that it never rots: a few
clients for a fraction of a second per scenario.  No timing is asserted; what
is asserted is that every expected delivery arrived, in order, and that the
results file was written.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("CHATD_REQUIRE_TOOLS") == "1"


def _have(program, path=None):
    return bool(shutil.which(program) or (path and os.access(path, os.X_OK)))


def test_benchmarkSmokeRun(tmp_path):
    """
    One round of every scenario at toy sizes against chatd, the C ceiling and
    (when installed) ngircd and InspIRCd loses nothing, keeps order, and
    writes the JSON and Markdown results.
    """
    if not _have("gcc"):
        if REQUIRE:
            pytest.fail("gcc is missing (the benchmark compiles its load generator)")
        pytest.skip("gcc is missing")
    args = [sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke", "--rounds", "1",
            "--out", str(tmp_path)]
    haveNgircd = _have("ngircd", "/usr/sbin/ngircd")
    if not haveNgircd:
        if REQUIRE:
            pytest.fail("ngircd is missing (apt-get install ngircd)")
        args.append("--no-ngircd")
    haveInspircd = _have("inspircd", "/usr/sbin/inspircd")
    if not haveInspircd:
        if REQUIRE:
            pytest.fail("InspIRCd is missing (apt-get install inspircd)")
        args.append("--no-inspircd")
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# chatd benchmark")
    assert not [r for r in results["runs"] if r.get("error")]
    servers = {r["server"] for r in results["runs"]}
    assert servers >= ({"chatd", "ceiling"} | ({"ngircd"} if haveNgircd else set())
                       | ({"inspircd"} if haveInspircd else set()))
    for run in results["runs"]:
        if results["scenarios"][run["scenario"]]["args"]["mode"] == "idle":
            # Logged in and joined, then nothing sent (idle-10000, lobby-5000).
            assert run["joined"] == 20 and run["failed"] == 0, run
            continue
        assert run["sent"] > 0, run
        assert run["delivered"] == run["expected"], run
        assert run["lost"] == 0 and run["misordered"] == 0 and run["stray"] == 0, run
        if "server_cpu_us_per_delivery" in run:
            # The kernel's share told apart from chatd's Python.
            assert run["server_user_us_per_delivery"] >= 0, run
            assert run["server_system_us_per_delivery"] >= 0, run


def test_webFanoutBenchRuns():
    """
    bench/web_fanout.py delivers every line to every member of its three
    rooms (line clients, browsers, both), and reports a cost for each.
    """
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "web_fanout", Path(__file__).resolve().parent.parent / "bench" / "web_fanout.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    senders, transports = bench.build(20)
    sizes = {}
    for kind in ("line", "web", "mixed"):
        before = [t.written for t in transports[kind]]
        perDelivery, sizes[kind] = bench.measure(senders[kind], transports[kind], 5)
        assert perDelivery > 0
        # Every member got every line: the same bytes, the same size for
        # each wire format.
        got = [t.written - b for t, b in zip(transports[kind], before)]
        if kind == "mixed":
            # Line clients and browsers alternate; the room's name is
            # longer than the others', and so are its lines.
            line, web = got[0], got[1]
            assert got == [line, web] * 10
            assert line > 5 * sizes["line"] and web > 5 * sizes["web"]
        else:
            assert set(got) == {5 * sizes[kind]} and sizes[kind] > 60


def test_loginProbeRuns():
    """
    bench/loginprobe.py logs every client in and into its room, in process,
    and counts what the transports were given: at least the greeting and one
    write of the replies to each login's three lines.
    """
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "loginprobe", Path(__file__).resolve().parent.parent / "bench" / "loginprobe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.probe(2000)
    assert result["joined"] == 2000
    assert result["writes"] > 2 * 2000 and result["cpu_s"] > 0


def test_brokerBenchRuns(tmp_path):
    """
    One round of bench/broker_bench.py at a toy size, with a revision beside
    this checkout (--compare): every setup of both scenarios ran, lost
    nothing and kept order, and each run has the CPU per delivery of every
    process and of the load generator.
    """
    for program in ("gcc", "redis-server"):
        if not _have(program):
            if REQUIRE:
                pytest.fail(f"{program} is missing (the broker benchmark needs it)")
            pytest.skip(f"{program} is missing")
    out = tmp_path / "broker.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "broker_bench.py"), "--rounds", "1",
                    "--members", "20", "--duration", "0.3", "--compare", "HEAD",
                    "--out", str(out)],
                   check=True, timeout=300, capture_output=True)
    runs = json.loads(out.read_text())
    assert sorted((r["scenario"], r["setup"]) for r in runs) == sorted(
        (scenario, setup) for scenario in ("fanout", "rate")
        for setup in ("one daemon", "two daemons + Redis", "two daemons + Redis @HEAD"))
    for run in runs:
        assert run["delivered"] == run["expected"] > 0, run
        assert run["lost"] == 0 and run["misordered"] == 0, run
        assert len(run["cpu_us_per_delivery"]) == len(run["cpu_s"]) + 1, run


def test_memoryHookSamplesChatd(tmp_path):
    """
    bench/memhook, on the PYTHONPATH of a smoke run of slow-reader, samples
    this checkout's chatd from inside and writes its samples when the daemon
    stops: every sample has every field, the history's lines were seen
    waiting, and the report reads the file.
    """
    if not _have("gcc"):
        if REQUIRE:
            pytest.fail("gcc is missing (the benchmark compiles its load generator)")
        pytest.skip("gcc is missing")
    env = dict(os.environ, CHATD_HOOK_OUT=str(tmp_path / "mem"),
               PYTHONPATH=str(ROOT / "bench" / "memhook"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke",
                           "--only", "slow-reader", "--chatd-only", "--out", str(tmp_path),
                               # The scenario's own rate (the smoke run's 100 lines/s
                               # left the writer nothing waiting at most samples: CI
                               # once saw none at any).
                               "--set", "slow-reader.rate=20000"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    [dumped] = tmp_path.glob("mem.*.json")
    data = json.loads(dumped.read_text())
    width = len(data["fields"])
    assert data["samples"] and len(data["samples"]) % width == 0
    assert any(data["samples"][i + 6] for i in range(0, len(data["samples"]), width))
    report = subprocess.run([sys.executable, str(ROOT / "bench" / "memhook" / "sitecustomize.py"),
                             str(dumped)], capture_output=True, text=True, timeout=30)
    assert report.returncode == 0 and "phase" in report.stdout, report.stdout + report.stderr


def test_gcHookTimesCollections(tmp_path):
    """
    bench/gchook.py, installed in a process, writes every full collection
    (its time, the objects tracked, the young collections so far) as it
    happens; the summary reads it back.
    """
    out = tmp_path / "gc"
    program = ("import gc, sys; sys.path.insert(0, sys.argv[1]); import gchook; "
               "gchook._install(sys.argv[2]); gc.collect(0); gc.collect(); gc.collect()")
    subprocess.run([sys.executable, "-c", program, str(ROOT / "bench"), str(out)],
                   check=True, timeout=60)
    [dumped] = tmp_path.glob("gc.*.json")
    data = json.loads(dumped.read_text())
    # (Python may collect in full on its own as well.)
    assert len(data["full"]) == data["totals"]["2"][0] >= 2
    assert data["totals"]["0"][0] >= 1
    for when, took, tracked, totals in data["full"]:
        assert took > 0 and tracked > 0
    report = subprocess.run([sys.executable, str(ROOT / "bench" / "gchook.py"), str(out)],
                            capture_output=True, text=True, timeout=30)
    assert report.returncode == 0, report.stderr
    assert report.stdout.count("full collection at") == len(data["full"]), report.stdout

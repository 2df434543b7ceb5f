"""
Where an idle joined connection's memory goes, in chatd's own process.

Starts chatd's service in this process under C{tracemalloc}, has a child
process (nothing of it traced) log N clients in and join each to a room of
ROOM, waits until all are joined and idle, then prints the traced bytes per
connection by line of code, and the live objects per connection by type::

    .venv/bin/python bench/memprobe.py [N [ROOM [CHATD-OPTION...]]]

(bench.py starts chatd with C{--login-timeout 0}: pass it to see what the
bench measures.)
"""

import collections
import gc
import socket
import subprocess
import sys
import tracemalloc

from twisted.internet import reactor

from chatd.tap import Options, makeService

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROOM = int(sys.argv[2]) if len(sys.argv) > 2 else 100

# The clients: a child process, so that none of their memory is traced here.
CLIENTS = r"""
import resource, selectors, socket, sys
n, room, port = map(int, sys.argv[1:])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
sel = selectors.DefaultSelector()
waiting = {}
def connect(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"user{i:06d}\n/join #r{i // room}\n/part #lobby\n".encode())
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, i)
    waiting[i] = b""
started = 0
while waiting or started < n:
    while started < n and len(waiting) < 8:
        connect(started); started += 1
    for key, _ in sel.select(5):
        data = key.fileobj.recv(65536)
        i = key.data
        if i in waiting:
            waiting[i] += data
            if b"now talking in #r" in waiting[i]:
                del waiting[i]
print("joined", flush=True)
sys.stdin.read()
"""


def freePort():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def census():
    gc.collect()
    counts, sizes = collections.Counter(), collections.Counter()
    for ob in gc.get_objects():
        name = type(ob).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(ob)
    return counts, sizes


def main():
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (3 * N + 100, 3 * N + 100))
    port = freePort()
    options = Options()
    options.parseOptions(["--listen", f"tcp:{port}:interface=127.0.0.1", "--db", "none",
                          "--max-connections", str(N + 10), "--max-per-address", str(N + 10)]
                         + sys.argv[3:])
    service = makeService(options, reactor)
    tracemalloc.start()
    service.startService()
    state = {}

    def go():
        state["before"] = census()
        state["snap0"] = tracemalloc.take_snapshot()
        state["child"] = subprocess.Popen(
            [sys.executable, "-c", CLIENTS, str(N), str(ROOM), str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        reactor.callInThread(waitJoined)

    def waitJoined():
        state["child"].stdout.readline()
        reactor.callFromThread(reactor.callLater, 1.5, report)

    def report():
        (c0, s0), (c1, s1) = state["before"], census()
        snap = tracemalloc.take_snapshot()
        rows = sorted(((s1[t] - s0[t], c1[t] - c0[t], t) for t in s1), reverse=True)[:25]
        print(f"gc-visible bytes per connection: {(sum(s1.values()) - sum(s0.values())) / N:.0f}")
        for size, count, name in rows:
            print(f"{size / N:8.1f} B/conn {count / N:6.2f} obj/conn  {name}")
        diff = snap.compare_to(state["snap0"], "traceback")
        print(f"traced bytes per connection: {sum(d.size_diff for d in diff) / N:.0f}")
        for d in diff[:40]:
            print(f"{d.size_diff / N:8.1f} B/conn {d.count_diff / N:6.2f}  "
                  + " <- ".join(str(f) for f in d.traceback))
        state["child"].stdin.close()
        state["child"].wait()
        reactor.stop()

    reactor.callWhenRunning(go)
    reactor.run()


if __name__ == "__main__":
    main()

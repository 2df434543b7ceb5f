"""
The CPU one message costs chatd's outboxes to write to a room's members over
real loopback sockets, for two versions of chatd/edge/outbox.py side by side.

Not a test: it prints numbers for bench/README.md (issue 18).  latency-1000
sends each line alone in its reactor turn, so each delivery is one trip from
the coalescer's flush to C{socket.send}; this times that trip and nothing
else (no reading, no history, no load generator), with a child process
draining the sockets through epoll as the load generator does.  Each
version's outboxes write to the same sockets through real Twisted
transports (L{chatd.edge.leantcp.LeanServer}), block by block in turn, and
a message written with no outbox at all (C{socket.send} for each member)
gives the floor: what is left above it is Python.

    .venv/bin/python bench/sendpath.py [--base REV] [--members 1000] [--blocks 30]

Run it under the benchmark lock (flock /work/bench.lock ...).
"""

import argparse
import gc
import importlib.util
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import reactor

from chatd.edge.leantcp import LeanServer

HERE = Path(__file__).resolve().parent.parent
LINE = b"#r0 <u3> BMK 3 12345 1234567890123 " + b"x" * 50 + b"\r\n"


def loadOutbox(source, name):
    """
    The module in the file C{source}, imported as C{name}.
    """
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drain(port, members, ready):
    """
    In a child process: connect C{members} clients to C{port} and read
    whatever comes until the server closes them.
    """
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(members)]
    os.write(ready, b"r")
    poll = select.epoll()
    byFd = {}
    for client in clients:
        client.setblocking(False)
        poll.register(client.fileno(), select.EPOLLIN)
        byFd[client.fileno()] = client
    while byFd:
        for fd, _ in poll.poll():
            try:
                if not byFd[fd].recv(65536):
                    poll.unregister(fd)
                    del byFd[fd]
            except BlockingIOError:
                pass
    os._exit(0)


class _Protocol:
    def makeConnection(self, transport):
        pass


class _Port:
    _realPortNumber = 0


class _User:
    __slots__ = ("outbox",)


def loopbackTransports(members):
    """
    C{members} accepted loopback TCP connections as chatd's transports
    (L{LeanServer}), each read by a forked process (L{drain}) as the
    load generator would, and that process's id.
    """
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(4096)
    readyRead, readyWrite = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(readyRead)
        drain(listening.getsockname()[1], members, readyWrite)
    os.close(readyWrite)
    sockets = []
    for number in range(members):
        accepted, address = listening.accept()
        accepted.setblocking(False)
        accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append((accepted, address))
    os.read(readyRead, 1)
    return [LeanServer(s, _Protocol(), address, _Port(), number, reactor)
            for number, (s, address) in enumerate(sockets)], child


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main",
                        help="the git revision whose outbox.py to compare with this checkout's")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--per-block", type=int, default=30,
                        help="messages per block (one every 10 ms)")
    options = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))

    folder = Path(tempfile.mkdtemp())
    base = folder / "outbox_base.py"
    base.write_bytes(subprocess.run(["git", "show", f"{options.base}:chatd/edge/outbox.py"],
                                    cwd=HERE, check=True, capture_output=True).stdout)
    versions = {options.base: loadOutbox(base, "outbox_base"),
                "this checkout": loadOutbox(HERE / "chatd" / "edge" / "outbox.py",
                                            "outbox_here")}

    transports, child = loopbackTransports(options.members)

    def fanOut(module):
        # A fresh outbox per transport (registered as its producer), as
        # chatd makes one per connection; the same sockets for each version.
        coalescer = module.Coalescer()
        users = []
        for transport in transports:
            transport.producer = None
            user = _User()
            user.outbox = module.Outbox(transport, 256 * 1024, coalescer=coalescer)
            users.append(user)
        users = tuple(users)

        def send():
            with coalescer:
                for user in users:
                    user.outbox.send(LINE)
        return send

    def floor():
        for t in transports:
            t.socket.send(LINE)

    def timed(write):
        spent = 0.0
        for _ in range(options.per_block):
            started = time.thread_time()
            write()
            spent += time.thread_time() - started
            time.sleep(0.01)
        return spent / options.per_block * 1e3

    results = {name: [] for name in [*versions, "socket.send alone"]}
    gc.disable()
    for block in range(options.blocks):
        order = list(results) if block % 2 == 0 else list(results)[::-1]
        for name in order:
            write = floor if name == "socket.send alone" else fanOut(versions[name])
            results[name].append(timed(write))
    gc.enable()
    held = sum(1 for t in transports if t._tempDataLen or t.dataBuffer)
    print(f"CPU per message to {options.members} members, ms (median of {options.blocks} "
          f"blocks of {options.per_block}; min, max):")
    for name, spent in results.items():
        print(f"  {name:20s} {statistics.median(spent):7.3f}  ({min(spent):.3f}, {max(spent):.3f})")
    differences = [here - base for base, here in zip(results[options.base],
                                                     results["this checkout"])]
    print(f"  this checkout - {options.base}, paired by block: median "
          f"{statistics.median(differences):+.3f} ms, lower in "
          f"{sum(d < 0 for d in differences)} of {len(differences)} blocks")
    if held:
        print(f"  ({held} transports were left holding bytes: the reader fell behind)")
    for t in transports:
        t.socket.close()
    os.waitpid(child, 0)


if __name__ == "__main__":
    sys.exit(main())

"""
Many line clients in one thread: non-blocking sockets and a selector, for
tests that need hundreds or thousands of connections to a real daemon.
"""

import resource
import selectors
import socket
import time


def allowOpenFiles(count):
    """
    Raise this process's soft limit on open files to at least C{count} (a
    daemon started afterwards inherits it); skip-worthy if impossible.

    @return: whether the limit now allows C{count}.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            return False
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))
    return True


class Member:
    """
    One connection of a L{Crowd}.

    @ivar lines: lines received and not yet taken, unless C{onLine} is set.
    @ivar onLine: if set, called with each received line instead.
    @ivar closed: whether the server closed the connection.
    @ivar tail: bytes after the last complete line when the server closed.
    """

    def __init__(self, sock, onLine=None):
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.lines = []
        self.onLine = onLine
        self.closed = False
        self.tail = b""

    def take(self):
        taken, self.lines = self.lines, []
        return taken


class Crowd:
    """
    Connections to one port, read and written by L{pump}.
    """

    def __init__(self, port):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.members = []

    def connect(self, onLine=None):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        member = Member(sock, onLine)
        self.selector.register(sock, selectors.EVENT_READ, member)
        self.members.append(member)
        return member

    def send(self, member, line):
        if member.closed:
            return
        wasEmpty = not member.outbuf
        member.outbuf += line.encode("utf-8") + b"\n"
        if wasEmpty:
            self.selector.modify(member.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                 member)

    def close(self, member):
        """
        Close C{member}'s connection from this side.
        """
        if not member.closed:
            member.closed = True
            self.selector.unregister(member.sock)
        member.sock.close()

    def pump(self, until, timeout=30):
        """
        Read and write until C{until()} is true.

        @raise TimeoutError: if it is not true within C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the crowd waited too long")
            for key, events in self.selector.select(min(left, 1.0)):
                member = key.data
                if events & selectors.EVENT_WRITE:
                    self._write(member)
                if events & selectors.EVENT_READ and not member.closed:
                    self._read(member)

    def _write(self, member):
        try:
            sent = member.sock.send(member.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._lost(member)
        del member.outbuf[:sent]
        if not member.outbuf:
            self.selector.modify(member.sock, selectors.EVENT_READ, member)

    def _read(self, member):
        try:
            data = member.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            return self._lost(member)
        data = member.inbuf + data
        *complete, member.inbuf = data.split(b"\r\n")
        for raw in complete:
            line = raw.decode("utf-8")
            if member.onLine is None:
                member.lines.append(line)
            else:
                member.onLine(line)

    def _lost(self, member):
        member.tail = member.inbuf
        member.closed = True
        self.selector.unregister(member.sock)
        member.sock.close()

    def closeAll(self):
        for member in self.members:
            if not member.closed:
                self.close(member)
        self.selector.close()

"""
Twisted's TCP server transport, keeping less for each connection.

C{twisted.internet.tcp.Server} stores, for every connection, two strings made
for logging and C{repr} (about 150 bytes), its socket's bound C{fileno}
(72 bytes) and an empty list for the writes it will gather (56 bytes): with
thousands of idle connections that is a seventh of what each one costs.
L{LeanServer} makes them when asked instead (the list while writes wait);
L{useLeanServer} has a listening port build it.

Every chatd connection turns Nagle's algorithm off (its lines are small and
wanted at once).  On Linux an accepted socket inherits C{TCP_NODELAY} from
its listening socket, so L{useLeanServer} sets it there once, and each
connection is spared the system call.

The listening socket accepts through L{ListeningSocket}: C{socket.accept}
reads the listening socket's family and type through properties that make
enum members of them, for every connection (2% of a storm of logins'
instructions, measured with callgrind on the daemon).
"""

import socket
import sys

from twisted.internet import tcp

NODELAY_INHERITED = sys.platform.startswith("linux")
"""Whether an accepted socket has its listening socket's C{TCP_NODELAY}."""


def _keepNothing(self, value=None):
    # Server.__init__ assigns these (and connectionLost deletes fileno):
    # they are made when asked instead.
    pass


def _noFileno():
    return -1


class LeanServer(tcp.Server):
    """
    A L{tcp.Server} whose log prefix, C{repr} and C{fileno} are made when
    asked, not kept.  (Read with C{getattr}, not C{self.__dict__}: asking
    for an instance's C{__dict__} makes it a dict object of its own.)
    """

    def _logstr(self):
        # Made for every event the reactor dispatches (Twisted logs each
        # under its transport's prefix): the protocol's own logPrefix is
        # asked directly, as _getLogPrefix would after a slower check.
        protocol = getattr(self, "protocol", None)
        logPrefix = getattr(protocol, "logPrefix", None)
        prefix = logPrefix() if logPrefix is not None else type(protocol).__name__
        return f"{prefix},{self.sessionno},{self.hostname}"

    def _repstr(self):
        protocol = getattr(self, "protocol", None)
        name = type(protocol).__name__ if protocol is not None else "-"
        return f"<{name} #{self.sessionno} on {self.server._realPortNumber}>"

    def _fileno(self):
        socket = getattr(self, "socket", None)
        return socket.fileno if socket is not None else _noFileno

    def _tempData(self):
        try:
            return self._waitingWrites
        except AttributeError:
            self._waitingWrites = []
            return self._waitingWrites

    def _setTempData(self, value):
        # FileDescriptor empties it by assigning a new list (as it starts,
        # for every connection: asked first, not tried and caught, since a
        # raised exception costs more than the rest of this).
        if value:
            self._waitingWrites = value
        elif getattr(self, "_waitingWrites", None) is not None:
            del self._waitingWrites

    logstr = property(_logstr, _keepNothing)
    repstr = property(_repstr, _keepNothing)
    fileno = property(_fileno, _keepNothing, _keepNothing)
    _tempDataBuffer = property(_tempData, _setTempData)


class NoDelayServer(LeanServer):
    """
    A L{LeanServer} accepted by a listening socket with C{TCP_NODELAY} set,
    which it inherited (see L{NODELAY_INHERITED}).
    """

    def setTcpNoDelay(self, enabled):
        if not enabled:
            super().setTcpNoDelay(enabled)


class ListeningSocket(socket.socket):
    """
    A C{socket.socket} whose C{accept} gives the accepted socket its
    family and type as the plain numbers the system knows them by, rather
    than converting each to an enum member first (the accepted socket's own
    C{family} and C{type} are still enum members when asked).
    """

    __slots__ = ()

    def accept(self):
        fd, address = self._accept()
        # (The base class's members: socket.socket's properties convert.)
        plain = super(socket.socket, self)
        accepted = socket.socket(plain.family, plain.type, self.proto, fileno=fd)
        # As socket.socket.accept does (issue #7995): a listening socket with
        # a timeout does not hand its non-blocking mode down.
        if socket.getdefaulttimeout() is None and self.gettimeout():
            accepted.setblocking(True)
        return accepted, address


def useLeanServer(port):
    """
    Have C{port}, if it is Twisted's plain TCP port, build a L{LeanServer}
    for each connection it accepts (a L{NoDelayServer} where its
    connections inherit C{TCP_NODELAY}, which is then set on C{port}), and
    accept through L{ListeningSocket}.
    """
    if isinstance(port, tcp.Port) and port.transport is tcp.Server:
        port.transport = LeanServer
        listening = getattr(port, "socket", None)
        if type(listening) is socket.socket:
            # The same object, accepting through ListeningSocket (the same
            # layout: a subclass with no slots of its own).
            listening.__class__ = ListeningSocket
        if NODELAY_INHERITED and listening is not None:
            listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            port.transport = NoDelayServer

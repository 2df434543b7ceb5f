"""
Twisted's TCP server transport, keeping less for each connection.

C{twisted.internet.tcp.Server} stores, for every connection, two strings made
for logging and C{repr} (about 150 bytes), its socket's bound C{fileno}
(72 bytes) and an empty list for the writes it will gather (56 bytes): with
thousands of idle connections that is a seventh of what each one costs.
L{LeanServer} makes them when asked instead (the list while writes wait);
L{useLeanServer} has a listening port build it.
"""

from twisted.internet import tcp


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
        # FileDescriptor empties it by assigning a new list.
        if value:
            self._waitingWrites = value
        else:
            try:
                del self._waitingWrites
            except AttributeError:
                pass

    logstr = property(_logstr, _keepNothing)
    repstr = property(_repstr, _keepNothing)
    fileno = property(_fileno, _keepNothing, _keepNothing)
    _tempDataBuffer = property(_tempData, _setTempData)


def useLeanServer(port):
    """
    Have C{port}, if it is Twisted's plain TCP port, build a L{LeanServer}
    for each connection it accepts.
    """
    if isinstance(port, tcp.Port) and port.transport is tcp.Server:
        port.transport = LeanServer

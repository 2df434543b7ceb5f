"""
The limits that keep one connection from hurting the others: how fast a
connection's lines are handled, how much may wait, and how many connections
there may be.

Each rule is a small object that only counts and answers; the connection acts
on the answer (delays reading, closes) and says why.  Time comes from an
injected L{IReactorTime}, so tests move it with a C{Clock}.
"""

from dataclasses import dataclass

from chatd.core.bans import addressGroup

SEND_QUEUE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """
    Every limit of one server, with its default.

    @ivar sendQueueBytes: bytes that may wait for a client that does not read
        before it is disconnected.
    @ivar sendQueueGrace: seconds a client may stay over C{sendQueueBytes}
        (a burst it is still reading) before it is disconnected; more than
        twice C{sendQueueBytes} waiting disconnects at once.
    @ivar floodRate: lines per second a connection's lines are handled at,
        sustained; faster lines wait (the server stops reading meanwhile).
    @ivar floodBurst: lines a connection may send at once (a paste) before
        C{floodRate} applies.
    @ivar recvQueueBytes: unread input (lines waiting in the server and in
        the kernel's receive buffer) a connection may keep...
    @ivar recvQueueTime: ...for at most this many seconds before it is
        closed for flooding ("Excess Flood").
    @ivar maxConnections: open connections allowed in all.
    @ivar maxPerAddress: open connections allowed from one IP address.
    @ivar maxRooms: rooms one user may be in at once.
    @ivar loginTimeout: seconds a connection may take to choose a nickname.
    @ivar idleTimeout: seconds a connection may stay silent; 0 means forever.
    @ivar closeTimeout: seconds a closing connection may take to go (a peer
        that never reads its last lines, a TLS handshake that never
        completes) before it is cut off.
    """

    sendQueueBytes: int = SEND_QUEUE_BYTES
    sendQueueGrace: float = 5.0
    floodRate: float = 5.0
    floodBurst: int = 20
    recvQueueBytes: int = 64 * 1024
    recvQueueTime: float = 30.0
    maxConnections: int = 1000
    maxPerAddress: int = 50
    maxRooms: int = 20
    loginTimeout: float = 60.0
    idleTimeout: float = 0.0
    closeTimeout: float = 10.0


class FloodGate:
    """
    A token bucket that paces one connection's lines.

    The bucket holds up to C{burst} tokens and refills at C{rate} per second;
    each line handled takes one.  Nothing is refused: when the bucket runs
    low, the answer is how long to wait before handling the next line.  A
    flood lasts until the sender has slowed down enough to have its full
    burst back.

    @ivar floods: how many floods there have been: times the connection was
        first delayed since its bucket was last full.
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_stamp", "_flooding", "floods")

    def __init__(self, clock, rate, burst):
        self._clock = clock
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()
        self._flooding = False
        self.floods = 0

    def retune(self, rate, burst):
        """
        A new C{rate} and C{burst} (a reload), from the next line on; the
        tokens already in the bucket stay, up to the new burst.
        """
        self._rate = rate
        self._burst = burst
        self._tokens = min(self._tokens, float(burst))

    def take(self, cost=1):
        """
        Account for one line handled now (or for C{cost} lines' worth of
        input: telnet negotiation, say).

        @return: seconds to wait before handling the next line; 0 when it may
            be handled at once.
        """
        now = self._clock.seconds()
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens >= self._burst:
            self._flooding = False
        tokens -= cost
        self._tokens = tokens
        if tokens >= 1:
            return 0.0
        if not self._flooding:
            self._flooding = True
            self.floods += 1
        return (1 - tokens) / self._rate


class ConnectionCounter:
    """
    Open connections, in all and per source address (its group: see
    L{addressGroup}), against their maxima.
    """

    FULL = "the server is full; try again later"

    def __init__(self, maxConnections, maxPerAddress):
        self._max = maxConnections
        self._maxPerAddress = maxPerAddress
        self._perAddress = {}
        self.total = 0

    def admit(self, address):
        """
        Count a new connection from C{address}, if the limits allow it.

        @param address: the peer's IP address, or L{None} for a transport
            without one (a UNIX socket), which only counts in all.
        @return: L{None} when admitted (call L{release} when it closes), else
            why not, for the one who connected.
        """
        if self.total >= self._max:
            return self.FULL
        if address is not None:
            group = addressGroup(address)
            count = self._perAddress.get(group, 0)
            if count >= self._maxPerAddress:
                if group == address:
                    return f"too many connections from {address}"
                # Said, or someone with a few connections of their own from
                # 127.0.0.3 cannot tell why.
                return f"too many connections from {address} (counted with all of {group})"
            self._perAddress[group] = count + 1
        self.total += 1
        return None

    def setMaxima(self, maxConnections, maxPerAddress):
        """
        New maxima (a reload): connections open beyond them stay open, and
        new ones wait until there is room.
        """
        self._max = maxConnections
        self._maxPerAddress = maxPerAddress

    def release(self, address):
        """
        Forget one admitted connection from C{address}.
        """
        self.total -= 1
        if address is None:
            return
        group = addressGroup(address)
        count = self._perAddress[group] - 1
        if count:
            self._perAddress[group] = count
        else:
            del self._perAddress[group]

    def fromAddress(self, address):
        """
        How many admitted connections from C{address} are open.
        """
        return self._perAddress.get(addressGroup(address), 0)

"""
One client connection's machinery, whatever its front end: the bounded
outbox, the pacing of its input, its timers, history placed in order among
live lines, and one way to close with a reason.

A front end's protocol builds a L{Connection} when its transport connects,
hands it every line (or frame) it is about to act on, and renders only what is
its own: its greeting, its replies, its refusals.  Everything here speaks to
the peer through the front end's wire format, in events.
"""

import fcntl
import struct
import termios

from twisted.internet import error

from chatd.core import events
from chatd.core.refusals import Refusal
from chatd.edge.limits import FloodGate
from chatd.edge.outbox import Outbox
from chatd.ops.logtext import LeanLogger


class Connection:
    """
    The machinery of one admitted connection.

    @ivar transport: the connection's transport.
    @ivar wire: the front end's wire format (see L{chatd.core.fanout}).
    @ivar peer: the peer's address as text, for the log (made when
        asked: it is asked for rarely, and kept by thousands).
    @ivar address: the peer's IP address as text, or L{None}.
    @ivar refusal: why the gate did not admit the connection, or L{None};
        a refused connection has been told and is closing, and nothing else
        here may be used.
    @ivar session: the L{chatd.core.session.Session}, once L{open}ed.
    @ivar quitReason: why the connection is ending, once known.

    A connection whose transport is lost while lines it sent wait (for
    pacing, storage or an answer) I{lingers}: those lines are still handled,
    at their pace, with nothing more written to the peer; then its user
    quits for the loss's reason, and only then is it forgotten by the gate
    (its slot counts meanwhile).  A reset is no way around pacing.
    """

    # Slots: thousands of connections are open at once, and a dict of this
    # many attributes would be most of what one costs.
    __slots__ = ("transport", "gate", "wire", "session", "quitReason", "_input", "address",
                 "live", "refusal", "outbox", "_flood", "_holds", "_reading", "_paced",
                 "_overSince",
                 "_closing", "_lostBecause", "_idling", "_loginSuspended", "_timeout")

    _log = LeanLogger()

    # How long live lines wait for history being read before it is skipped.
    HISTORY_WAIT = 3.0

    def __init__(self, transport, gate, wire, input):
        """
        @param input: what delivers the connection's input to its front end,
            with C{pauseProducing()} (stop handling and reading),
            C{resumeProducing()}, C{unread()} (bytes read but not yet
            handled) and C{connectionEnded()} (the connection is over, its
            user gone): usually the protocol itself.
        """
        self.transport = transport
        self.gate = gate
        self.wire = wire
        self.session = None
        self.quitReason = None
        self._input = input
        self.address = getattr(transport.getPeer(), "host", None)
        self.live = False
        self.refusal = gate.admit(self)
        if self.refusal:
            # Not a user: one line saying why, straight to the transport,
            # and nothing read from it.
            transport.write(self._counted(wire.encode(events.Refused(self.refusal))))
            transport.loseConnection()
            self._log.info("refused {peer}: {why}", peer=self.peer, why=self.refusal)
            return
        self.live = True
        if hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)
        limits = gate.limits
        self.outbox = _ConnectionOutbox(transport, limits.sendQueueBytes, clock=gate.clock,
                                        grace=limits.sendQueueGrace,
                                        coalescer=gate.coalescer)
        self.outbox.connection = self
        self._flood = FloodGate(gate.clock, limits.floodRate, limits.floodBurst)
        # The reasons input is held, once it has been (a set is 216 bytes,
        # and most connections never need one).
        self._holds = None
        self._reading = 0
        self._paced = None
        self._overSince = None
        self._closing = None
        # Why the transport was lost, while lingering (see the class).
        self._lostBecause = None
        # One timer: until a nickname is chosen it is the login timeout, then
        # the idle timeout (if any), pushed back by every line.
        self._idling = False
        # How many answers the login timeout waits for (see awaitServer).
        self._loginSuspended = 0
        self._timeout = None
        if limits.loginTimeout:
            self._timeout = gate.loginDeadlines.callLater(
                limits.loginTimeout, self._loginTimedOut, limits.loginTimeout)
        if gate.inputPaused:
            self.holdInput("storage")

    @property
    def peer(self):
        return _describe(self.transport.getPeer())

    def open(self, core):
        """
        Open the connection's session on C{core}.

        @raise chatd.core.refusals.Refusal: when the core will not have this
            connection (a banned address).
        """
        # (Its outbox hangs up: see _ConnectionOutbox.)
        self.session = core.open(self.outbox, self.wire, self.address)
        return self.session

    @property
    def accepting(self):
        """
        Whether input is still to be acted on: not closing, nor the server
        shutting down.
        """
        return self.live and not self.transport.disconnecting and not self.gate.stopping

    def send(self, data):
        self.gate.counts.sentBytes += len(data)
        self.outbox.send(data)

    def sendEvent(self, event):
        self.send(self.wire.encode(event))

    def _counted(self, data):
        """
        C{data}, counted among the bytes sent (see L{Gate.counts}).
        """
        if data:
            self.gate.counts.sentBytes += len(data)
        return data

    # Input

    def lineHandled(self, cost=1):
        """
        The front end has acted on one line of input (or on input worth
        C{cost} lines: telnet negotiation, the rest of an over-long line):
        count it against the flood limits (the next line may have to wait)
        and push the idle timeout back.
        """
        counts = self.gate.counts
        counts.lines += 1
        floods = self._flood.floods
        delay = self._flood.take(cost)
        if delay:
            counts.floodDelays += 1
            counts.floodDelaySeconds += delay
            if self._flood.floods != floods:
                # Once per flood, not per line.
                self.sendEvent(events.SlowedDown(self._nick()))
            self.holdInput("flood")
            self._paced = self.gate.clock.callLater(delay, self._paceOver)
        self._heard()

    def setLimits(self, limits):
        """
        Apply new L{Limits} (a reload) to this open connection: its send
        queue and its flood pacing from now on.  (The idle timeout and the
        receive queue are read from the gate as they are needed; a login
        timeout already running keeps its length.)
        """
        self.outbox.limit = limits.sendQueueBytes
        self.outbox.grace = limits.sendQueueGrace
        self._flood.retune(limits.floodRate, limits.floodBurst)

    def holdInput(self, why):
        """
        Stop handling and reading input for C{why} ("flood", "storage",
        "history"), until L{releaseInput} for every reason held.
        """
        if not self._holds:
            self._input.pauseProducing()
        if self._holds is None:
            self._holds = set()
        self._holds.add(why)

    @property
    def inputHeld(self):
        """
        Whether input waits (pacing, storage, an answer), with lines still
        to handle.
        """
        return bool(self._holds)

    def releaseInput(self, why):
        if not self._holds or why not in self._holds:
            return
        self._holds.discard(why)
        if why == "storage":
            # Input that waited for storage is not held against the peer.
            self._overSince = None
        if not self._holds and self.accepting:
            self._input.resumeProducing()
        if self._lostBecause is not None and self.live and not self._linesWait():
            self._end(self._lostBecause)

    def _linesWait(self):
        """
        Whether input read from the peer waits to be handled.
        """
        return self.inputHeld and self._input.unread() > 0

    def _paceOver(self):
        self._paced = None
        if not self._overReceiveQueue():
            self.releaseInput("flood")

    def _overReceiveQueue(self):
        """
        Whether the peer has kept more unread input than allowed for longer
        than allowed; if so, it is closed for flooding.
        """
        limits = self.gate.limits
        unread = self._input.unread() + _kernelUnread(self.transport)
        if unread <= limits.recvQueueBytes:
            self._overSince = None
            return False
        now = self.gate.clock.seconds()
        if self._overSince is None:
            self._overSince = now
        if now - self._overSince < limits.recvQueueTime:
            return False
        self.close(f"Excess Flood: more than {limits.recvQueueBytes} bytes unread "
                   f"for {limits.recvQueueTime:g} seconds")
        return True

    def awaitServer(self):
        """
        The connection waits on the server, not on its peer (a password
        being checked, perhaps after a delay): the login timeout does not
        run meanwhile, so that the wait can never outlast it.
        """
        if self._loginSuspended:
            # Another check is in flight: the timeout waits for both.
            self._loginSuspended += 1
        elif not self._idling and self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
            self._timeout = None
            self._loginSuspended = 1

    def serverAnswered(self):
        """
        The server has answered (see L{awaitServer}): if the peer still has
        no nickname, the login timeout starts over.
        """
        if not self._loginSuspended:
            return
        self._loginSuspended -= 1
        if self._loginSuspended:
            return
        limits = self.gate.limits
        if limits.loginTimeout and self.live and (
                self.session is None or self.session.nick is None):
            self._timeout = self.gate.loginDeadlines.callLater(
                limits.loginTimeout, self._loginTimedOut, limits.loginTimeout)

    def checking(self, answer):
        """
        The server is checking something for this connection (a password),
        and answers when the L{Deferred} C{answer} fires: the login timeout
        waits for the answer (L{awaitServer}, L{serverAnswered}).

        @return: C{answer}, firing with what it fires with.
        """
        if not answer.called:
            self.awaitServer()
            answer.addBoth(self._checked)
        return answer

    def _checked(self, result):
        self.serverAnswered()
        return result

    def _loginTimedOut(self, timeout):
        self.close(f"not logged in within {timeout:g} seconds")

    def _heard(self):
        """
        A line arrived: once the user has a nickname, the idle timeout starts
        over.
        """
        if self.session is None or self.session.nick is None or not self.live:
            # The login timeout runs from the connection, not the last line.
            return
        idle = self.gate.limits.idleTimeout
        if self._timeout is not None and self._timeout.active():
            if self._idling:
                self._timeout.reset(idle)
                return
            self._timeout.cancel()
        # A cancelled call kept would keep its arguments and bound methods
        # (some 400 bytes) for as long as the connection is open.
        self._timeout = None
        if idle:
            self._idling = True
            self._timeout = self.gate.clock.callLater(
                idle, self.close, f"idle for {idle:g} seconds")

    # History

    def showHistory(self, found, render, refused, replay=False):
        """
        Show what the L{Deferred} C{found} fires with (stored room lines),
        rendered to bytes by C{render}, after everything already sent to
        this connection and before anything sent meanwhile; or the
        L{chatd.core.refusals.Refusal} it fails with (the store is busy),
        rendered by C{refused}.

        Unless this is a join's C{replay}, no more of this connection's
        input is handled or read until the store answers: each connection
        has at most one read it asked for (C{/history}, C{/search},
        C{CHATHISTORY}) waiting or running, so that however fast one peer
        asks, the store's bounded queues stay shared among everyone (a peer
        asking faster than the store answers only slows itself down).  A
        join's replay holds nothing: joins are paced as lines are, and the
        lines after a join need not wait on the database.
        """
        failed = lambda failure: self._historyFailed(failure, refused)
        if found.called:
            # Answered already (a room with nothing stored): there is nothing
            # to keep a place for, nor a timer to set.  (One callback, not
            # two: every join of an empty room comes this way.)
            found.addCallbacks(lambda stored: self._sendAny(render(stored)),
                               lambda failure: self._sendAny(failed(failure)))
            return
        if not replay:
            self._reading += 1
            self.holdInput("history")
        place = self.outbox.hold()
        # Live lines wait behind the place, unbounded by the send queue (the
        # reader is not the slow one): a store that does not answer in time
        # is given up on, and its late answer dropped.
        tooLate = self.gate.clock.callLater(
            self.HISTORY_WAIT, self.outbox.fill, place,
            self._counted(self.wire.encode(events.HistoryUnavailable(True, self._nick()))))

        def arrived(data):
            if tooLate.active():
                tooLate.cancel()
            self.outbox.fill(place, self._counted(data))

        found.addCallbacks(render, failed)
        found.addCallback(arrived)
        if not replay:
            # Answered (or failed): the next line read may ask for more.
            found.addBoth(self._historyRead)

    def _sendAny(self, data):
        if data:
            self.send(data)

    def _historyRead(self, result):
        self._reading -= 1
        if not self._reading:
            self.releaseInput("history")
        return result

    def _historyFailed(self, failure, refused):
        if failure.check(Refusal):
            return refused(failure.value)
        nick = self._nick()
        self._log.failure("history for {nick} failed", failure, nick=nick)
        return self.wire.encode(events.HistoryUnavailable(False, nick))

    def _nick(self):
        """
        The user's nickname, or L{None} before they have one.
        """
        return self.session.nick if self.session is not None else None

    # Ending

    def close(self, reason):
        """
        Close the connection for C{reason}, after telling the peer.
        """
        self.quitReason = reason
        self.closeWith(self.wire.encode(events.Closing(reason)))
        nick = self.session.nick if self.session is not None else None
        self._log.info("closing {nick} ({peer}): {why}", nick=nick or "-",
                       peer=self.peer, why=reason)

    def quit(self, reason, farewell=None):
        """
        The user leaves: their rooms are told C{reason}, and the connection
        closes after C{farewell} (bytes), if any.
        """
        # For the log, which keeps no user text: whether a reason was given.
        self.quitReason = "quit (a reason was given)" if reason else "quit"
        if self.session is not None:
            self.session.quit(reason, said=True)
        self.closeWith(farewell)

    def closeWhenAnswered(self, reason):
        """
        The peer has ended its input and all of it is handled: close once
        what it asked for is written, history still being read included.
        """
        self.quitReason = reason
        self.outbox.whenFilled(lambda: self.closeWith(None))

    def closeWith(self, data):
        """
        Close the connection once C{data} (if any) and everything queued
        before it are written; cut it off if that takes too long.
        """
        if not self.live or self._closing is not None:
            return
        if self._lostBecause is not None:
            # Lingering: there is no peer to tell, nor lines to say any more.
            self._end(self.quitReason or self._lostBecause)
            return
        self.sendLast(data)
        self.transport.loseConnection()
        if self.live:
            # (Some transports are gone at once.)
            self._closing = self.gate.clock.callLater(self.gate.limits.closeTimeout,
                                                      self.transport.abortConnection)

    def sendLast(self, data):
        """
        Send C{data} (if any) as this connection's last, ahead of any history
        still being read, and nothing after it.
        """
        if data:
            self.send(data)
        self.outbox.finish()

    def lost(self, reason):
        """
        The transport is gone (C{reason}, a L{Failure}): forget the
        connection everywhere, at once unless it lingers (see the class).
        Safe to call more than once.
        """
        if not self.live or self._lostBecause is not None:
            return
        # Nothing more is written: the peer is gone.
        self.outbox.close()
        if self.quitReason is None and self.gate.stopping:
            self.quitReason = "server shutdown"
        why = self.quitReason or _lossReason(reason)
        # (Not when the server closed it, or is shutting down: those lines
        # would not be handled anyway.)
        if self.quitReason is None and self.accepting and self._linesWait():
            self._lostBecause = why
            self._log.info("{nick} ({peer}) disconnected ({why}) with {unread} bytes of "
                           "input waiting: handled at its pace first",
                           nick=self._nick() or "-", peer=self.peer, why=why,
                           unread=self._input.unread())
            return
        self._end(why)

    def letGo(self):
        """
        The server shuts down: close the connection; a lingering one's user
        quits now, the lines still waiting unsaid.
        """
        if self._lostBecause is not None:
            self._end("server shutdown")
        else:
            self.transport.loseConnection()

    def _end(self, why):
        """
        The connection is over: forget it everywhere, and its user quits for
        C{why}.
        """
        self.live = False
        for call in (self._timeout, self._paced, self._closing):
            if call is not None and call.active():
                call.cancel()
        self.gate.forget(self)
        self.outbox.close()
        nick = None
        if self.session is not None:
            nick = self.session.nick
            self.session.quit(why)
        self._input.connectionEnded()
        self._log.info("{nick} ({peer}) disconnected: {why}", nick=nick or "-",
                       peer=self.peer, why=why)

    def _hangUp(self):
        # The core lets a user go (a ban, a ghost) after telling them why:
        # that is their last line, and it must get out before the close.
        self.quitReason = self.session.goneBecause
        self.closeWith(None)

    def _sendQueueOverflowed(self, pending):
        self.quitReason = "send queue exceeded"
        self.gate.counts.sendQueueDrops += 1
        nick = self.session.nick if self.session is not None else None
        self._log.warn("dropping {nick} ({peer}): not reading; {pending} bytes "
                       "waiting to be sent (limit {limit} bytes, for at most "
                       "{grace:g} seconds)", nick=nick or "-",
                       peer=self.peer, pending=pending, limit=self.outbox.limit,
                       grace=self.outbox.grace)


class _ConnectionOutbox(Outbox):
    """
    A connection's outbox, which tells the connection itself when its reader
    is dropped, and which the core hangs up through (L{chatd.core.chat.User.hangUp}): a
    slot, where the C{onOverflow} and C{hangUp} bound methods would be 128
    more bytes kept for every connection.
    """

    __slots__ = ("connection",)

    def overflowed(self, pending):
        self.connection._sendQueueOverflowed(pending)

    def hangUp(self):
        self.connection._hangUp()


def _kernelUnread(transport):
    """
    Bytes the peer sent that wait unread in the kernel (plain TCP only).
    """
    sock = getattr(transport, "socket", None)
    if sock is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    except (OSError, ValueError):
        return 0


def _describe(address):
    host = getattr(address, "host", None)
    return f"{host}:{address.port}" if host is not None else str(address)


def _lossReason(reason):
    if reason.check(error.ConnectionDone):
        return "connection closed"
    return "connection lost"

"""
A connection to Redis on the reactor: commands written in RESP (with
hiredis's C C{pack_command}), replies read with hiredis's C parser.

Redis answers a connection's commands in the order they came, so pipelining
needs no more than a queue of what waits for answers, oldest first; each
L{RedisProtocol.pipeline} is one write and one L{Deferred} for all its
replies.
"""

from collections import deque
from urllib.parse import unquote, urlsplit

import hiredis
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionClosed
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chatd.edge.outbox import writeNow

# What the parser returns while a reply is incomplete (a reply itself may be
# None or False).
_MORE = object()


class RedisError(Exception):
    """
    Redis answered a command with an error.
    """


class RedisProtocol(Protocol):
    """
    One connection to Redis.

    @cvar TIMEOUT: how long Redis may take to answer, beyond the time a
        command asks it to wait (a blocking read's), before the connection
        is given up: a Redis that vanished without a word (a network that
        drops everything) must not keep the daemon waiting for ever.
    """

    TIMEOUT = 5.0

    _log = Logger()

    def __init__(self, clock, setup=()):
        """
        @param setup: the commands that begin each connection (C{AUTH},
            C{SELECT}): what is sent after them waits behind their answers,
            and the connection closes if Redis refuses them.
        """
        self.clock = clock
        self.setup = setup
        self.closed = False
        self._parser = hiredis.Reader(notEnoughData=_MORE)
        # [deferred, replies expected, replies so far, deadline]
        self._waiting = deque()
        self._timer = None

    def connectionMade(self):
        # A command waits for nothing: Redis answers each at once, and a
        # reply waited for is what the next command needs.
        self.transport.setTcpNoDelay(True)
        if self.setup:
            self.pipeline(self.setup).addErrback(self._refused)

    def _refused(self, failure):
        if failure.check(RedisError):
            self._log.warn("Redis refused chatd's connection: {e}", e=failure.value)
            self.close()

    def pipeline(self, commands, patience=0.0):
        """
        Send C{commands} (each a tuple of C{bytes}, C{str} or numbers) in
        one write.

        @param patience: how long Redis may take on purpose (a blocking
            read's time), in seconds.
        @return: a L{Deferred} that fires with the list of replies, in order,
            or fails with the first error Redis answered or with the
            connection's loss.
        """
        if self.closed:
            return fail(ConnectionClosed("the connection to Redis is closed"))
        if not commands:
            # (Nothing to wait for: no reply will come.)
            return succeed([])
        done = Deferred()
        # Now, not on the reactor's next turn: a blocking read reaches Redis
        # before this turn's deliveries are written, so that what comes
        # meanwhile is read on the next turn, not the one after.
        writeNow(self.transport, b"".join([hiredis.pack_command(c) for c in commands]))
        self._waiting.append([done, len(commands), [],
                              self.clock.seconds() + self.TIMEOUT + patience])
        if self._timer is None:
            self._arm()
        return done

    def close(self):
        """
        Drop the connection now; whatever waits for replies fails.
        """
        if not self.closed:
            self.closed = True
            self.transport.abortConnection()

    def _arm(self):
        # One timer, for the oldest: later commands are answered after it.
        self._timer = self.clock.callLater(
            max(0.0, self._waiting[0][3] - self.clock.seconds()), self._expired)

    def _expired(self):
        self._timer = None
        self.close()

    def dataReceived(self, data):
        parser = self._parser
        parser.feed(data)
        waiting = self._waiting
        while not self.closed:
            try:
                reply = parser.gets()
            except hiredis.ProtocolError:
                self.close()
                return
            if reply is _MORE:
                return
            if not waiting:
                # Nothing was asked: not a Redis this client can follow.
                self.close()
                return
            first = waiting[0]
            replies = first[2]
            replies.append(reply)
            if len(replies) == first[1]:
                waiting.popleft()
                self._timer.cancel()
                self._timer = None
                if waiting:
                    self._arm()
                errors = [r for r in replies if isinstance(r, hiredis.ReplyError)]
                if errors:
                    first[0].errback(RedisError(str(errors[0])))
                else:
                    first[0].callback(replies)

    def connectionLost(self, reason):
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for entry in waiting:
            entry[0].errback(reason)


def connection(url, reactor):
    """
    A L{ClientService} that keeps one connection to the Redis at C{url}
    (C{redis://[[USER]:PASSWORD@]HOST:PORT[/DB]}), connecting again after a
    loss with backoff: 0.1 s, doubling to 2 s.  Its C{whenConnected} gives a
    L{RedisProtocol} whose commands follow its login and choice of database.
    """
    parts = urlsplit(url)
    setup = []
    if parts.password is not None:
        user = (unquote(parts.username),) if parts.username else ()
        setup.append((b"AUTH", *user, unquote(parts.password)))
    if parts.path.strip("/"):
        setup.append((b"SELECT", parts.path.strip("/")))
    endpoint = HostnameEndpoint(reactor, parts.hostname, parts.port, timeout=2)
    factory = Factory.forProtocol(lambda: RedisProtocol(reactor, setup))
    factory.noisy = False
    return ClientService(endpoint, factory, clock=reactor,
                         retryPolicy=backoffPolicy(0.1, 2.0, 2.0, jitter=lambda: 0))

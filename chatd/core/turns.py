"""
Taking turns at password hashing, which everyone shares: the account store
hashes one password at a time (argon2, about 0.3 s each, slow on purpose)
and refuses more than a few waiting, so a first come, first served queue
would let one busy network shut everyone else's logins out.

Here a check waits its turn instead of being refused, and turns go round:
among address groups first (L{chatd.core.bans.addressGroup}: all of
loopback, an IPv4 address, an IPv6 /64), then, within a group, among the
registered nicknames being checked, each nickname's checks in the order
asked.  So however many connections one network opens, or however often one
account logs in, a check from another group waits for at most one turn per
group, and one for another nickname from the same group (all local users
are 127.0.0.1) at most one turn per nickname asked for there.  What waits is
bounded by the connections: each has one check at a time (see
L{chatd.core.identity.Identity}).
"""

from collections import OrderedDict, deque

from twisted.internet.defer import Deferred, maybeDeferred


class Turns:
    """
    Jobs that each take a turn at something slow, at most L{RUNNING} at a
    time, in turns fair among address groups and nicknames.
    """

    RUNNING = 2
    """Jobs handed on at once: two keep the store's thread busy (the next
    is queued while one hashes), and stay well below its own bound
    (L{chatd.storage.accounts.MAX_HASHING})."""

    def __init__(self):
        self._running = 0
        self._handing = False
        # group -> nickname key -> jobs waiting; a group, and a nickname
        # within its group, goes to the back once it has had its turn.
        self._waiting = OrderedDict()

    def take(self, group, key, job):
        """
        Run C{job} (which returns a L{Deferred}, or raises) when the turn
        of C{key} (a nickname's key) within C{group} (an address group)
        comes.

        @return: a L{Deferred} firing with what C{job}'s does.
        """
        done = Deferred()
        self._waiting.setdefault(group, OrderedDict()).setdefault(key, deque()).append(
            (job, done))
        self._next()
        return done

    def _next(self):
        if self._handing:
            # A job answered at once (its user is gone): the loop below
            # goes on, rather than a recursion as deep as the queue.
            return
        self._handing = True
        try:
            self._handOn()
        finally:
            self._handing = False

    def _handOn(self):
        while self._running < self.RUNNING and self._waiting:
            group, keys = next(iter(self._waiting.items()))
            key, jobs = next(iter(keys.items()))
            job, done = jobs.popleft()
            if jobs:
                keys.move_to_end(key)
            else:
                del keys[key]
            if keys:
                self._waiting.move_to_end(group)
            else:
                del self._waiting[group]
            self._running += 1
            maybeDeferred(job).addBoth(self._finished).chainDeferred(done)

    def _finished(self, result):
        self._running -= 1
        self._next()
        return result

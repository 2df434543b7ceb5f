"""
A core with registered nicknames and operators, and users that record the
events they receive, for tests of the trust rules with no reactor.
"""

from twisted.internet.task import Clock

from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from support import EventWire, Inbox, LineClient, MemoryAccounts


class Person:
    """
    One connection: its session's calls and properties, and C{outbox}, the
    inbox its events reach (C{outbox.hungUp} once the core lets it go).
    """

    def __init__(self, session, outbox):
        self.session = session
        self.outbox = outbox

    def __getattr__(self, name):
        return getattr(self.session, name)


class Trust:
    """
    A core whose operator is "op" (or C{operators}), with an account store in memory where
    "op" and "owner" are registered (password "op-password" and
    "owner-password"), and whose stored bans are in force.
    """

    def __init__(self, bans=(), operators=("op",), announceTogether=False):
        """
        @param announceTogether: whether arrivals and departures wait for
            the end of the turn (L{Clock.advance}), as in the daemon, rather
            than being announced at once.
        """
        self.clock = Clock()
        self.clock.advance(1000)
        self.accounts = MemoryAccounts(bans)
        self.accounts.passwords.update(op="op-password", owner="owner-password")
        fanout = Fanout(self.clock) if announceTogether else Fanout()
        self.core = ChatCore(fanout, self.clock, accounts=self.accounts,
                             operators=operators)
        self.core.moderation.restoreBans(self.accounts.bans())

    def connect(self, host="192.0.2.1", core=None):
        """
        A new connection from C{host} that has not claimed a nickname yet.
        """
        inbox = Inbox()
        session = (core or self.core).open(inbox, EventWire, host,
                                           hangUp=lambda: setattr(inbox, "hungUp", True))
        return Person(session, inbox)

    def arrive(self, nick, host="192.0.2.1", password=None):
        """
        Connect from C{host} and claim C{nick}, with C{password} when given
        (a registered nickname needs it); return the L{Person} with nothing
        in its inbox.
        """
        person = self.connect(host)
        if password is None:
            person.claim(nick)
        else:
            result(person.claim(nick, password))
        person.outbox.take()
        return person

    def holder(self, nick):
        """
        The inbox of whoever holds C{nick} now, or L{None}.
        """
        user = self.core.user(nick)
        return None if user is None else user.outbox

    def members(self, room):
        return list(self.core.rooms[room].members)


def clear(*users):
    for user in users:
        user.outbox.take()


def result(deferred):
    """
    What an already-fired L{Deferred} fired with; raise what it failed with.
    """
    outcome = []
    deferred.addBoth(outcome.append)
    assert outcome, "the deferred has not fired"
    if hasattr(outcome[0], "raiseException"):
        outcome[0].raiseException()
    return outcome[0]


def register(port, nick, password):
    """
    Register C{nick} with C{password} on a connection of its own to the
    daemon on C{port}, then leave.
    """
    client = LineClient(port)
    client.login(nick)
    client.send(f"/register {password}")
    assert client.readLine() == (f"=== {nick} is registered to you and you are identified; "
                                 "from now on it takes this password")
    client.send("/quit")
    client.readUntil(lambda l: l == "=== bye")
    client.close()

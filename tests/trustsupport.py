"""
A core with registered nicknames and operators, and users that record the
events they receive, for tests of the trust rules with no reactor.
"""

from twisted.internet.task import Clock

from chatd.core.chat import ChatCore, User
from chatd.core.fanout import Fanout
from support import EventWire, Inbox, MemoryAccounts


class Trust:
    """
    A core whose operator is "op", with an account store in memory where
    "op" and "owner" are registered (password "op-password" and
    "owner-password").
    """

    def __init__(self, bans=()):
        self.clock = Clock()
        self.clock.advance(1000)
        self.accounts = MemoryAccounts(bans)
        self.accounts.passwords.update(op="op-password", owner="owner-password")
        self.core = ChatCore(Fanout(), self.clock, accounts=self.accounts,
                             operators=["op"])
        self.core.restoreBans(self.accounts.bans())

    def arrive(self, nick, host="192.0.2.1", password=None):
        """
        Connect a user from C{host}, claim C{nick} and identify with
        C{password} when given; return the user with nothing in its inbox.
        """
        inbox = Inbox()
        user = User(inbox, EventWire, host=host,
                    hangUp=lambda: setattr(inbox, "hungUp", True))
        self.core.admit(user)
        self.core.claimNick(user, nick)
        self.core.checkIdentity(user)
        if password is not None:
            self.core.identify(user, password)
        inbox.take()
        return user


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

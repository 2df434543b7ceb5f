"""
Registered nicknames: the rules for registering, identifying, ghosting and
changing passwords, and the guest name for whoever does not identify in time.

Composed into L{chatd.core.chat.ChatCore}, which it reaches only through its
public operations.  Passwords go to the L{chatd.storage.IAccountStore} and are
checked there, off the reactor thread; the core keeps none, and logs none.
"""

import math
import random

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.names import nickKey, nickProblem
from chatd.storage import AccountError


class Identity:
    """
    Registered nicknames: who has proved which is theirs, and the timers of
    those who have not yet.
    """

    _log = Logger()

    IDENTIFY_SECONDS = 60.0
    PASSWORD_MIN = 8
    # Wrong (or not yet checked) passwords allowed per nickname and per
    # address within ATTEMPT_WINDOW seconds.
    ATTEMPTS = 5
    ATTEMPT_WINDOW = 300.0

    def __init__(self, core, accounts, identifySeconds=IDENTIFY_SECONDS, guestNames=None):
        """
        @param core: the L{chatd.core.chat.ChatCore} whose users these are.
        @param accounts: the L{chatd.storage.IAccountStore}, or L{None}.
        @param identifySeconds: how long someone using a registered nickname
            has to identify before being renamed to a guest name.
        @param guestNames: a L{random.Random} that picks guest names.
        """
        self._core = core
        self._accounts = accounts
        self.identifySeconds = identifySeconds
        self._random = guestNames or random.Random()
        self._timers = {}
        self._attempts = {}

    def isRegistered(self, nick):
        return self._accounts is not None and self._accounts.isRegistered(nick)

    def checkIdentity(self, user):
        """
        After C{user} takes a nickname: if it is registered and they have not
        proved it is theirs, tell them, and rename them to a guest name unless
        they identify within L{identifySeconds}.
        """
        self.forget(user)
        if user.identified or not self.isRegistered(user.nick):
            return
        self._core.fanout.toUser(user, events.IdentifyRequired(user.nick,
                                                               self.identifySeconds))
        self._timers[user] = self._core.clock.callLater(
            self.identifySeconds, self._identifyExpired, user, nickKey(user.nick))

    def register(self, user, password):
        """
        Register C{user}'s nickname with C{password}; they are identified
        once it is done.

        @return: a L{Deferred} firing when registered, or failing with a
            L{chatd.core.refusals.Refusal}.
        """
        accounts = self._requireAccounts()
        nick = user.nick
        if accounts.isRegistered(nick):
            raise R.AlreadyRegistered(nick)
        self._checkPassword(password)
        done = accounts.register(nick, password)

        def registered(result):
            self._log.info("{nick} registered", nick=nick)
            if user.nick == nick:
                user.account = nickKey(nick)
                self.forget(user)

        return done.addCallbacks(registered, _refused)

    def identify(self, user, password):
        """
        Prove C{user} owns the registered nickname they use.

        @return: a L{Deferred} firing when identified, or failing with
            L{chatd.core.refusals.WrongPassword}.
        """
        nick = user.nick
        if user.identified:
            raise R.AlreadyIdentified(nick)
        checked = self._checkOwner(user, nick, password)

        def identified(result):
            if user.nick == nick:
                user.account = nickKey(nick)
                self.forget(user)
                self._core.fanout.toUser(user, events.Identified(nick))
            self._log.info("{nick} identified", nick=nick)

        return checked.addCallback(identified)

    def authenticate(self, user, nick, password):
        """
        Prove, before choosing a nickname, that C{user} owns the registered
        nickname C{nick} (IRC's SASL): once they take it, they are
        identified.

        @return: a L{Deferred} firing when proved, or failing with a
            L{chatd.core.refusals.Refusal}.
        """
        checked = self._checkOwner(user, nick, password)

        def proved(result):
            user.account = nickKey(nick)
            self._log.info("{nick} authenticated", nick=nick)

        return checked.addCallback(proved)

    def ghost(self, user, nick, password):
        """
        Free the registered nickname C{nick} from whoever holds it (a stale
        connection, say) and give it to C{user}, who proves it is theirs.
        C{user} may have no nickname yet: then this is how they claim theirs
        and arrive in the lobby.

        @return: a L{Deferred} firing when C{user} is C{nick}, identified.
        """
        problem = nickProblem(nick)
        if problem:
            raise R.InvalidNickname(nick, problem)
        # A password does not lift a ban on the nickname.
        self._core.moderation.checkNotBanned(nick, user.host, "")
        checked = self._checkOwner(user, nick, password)

        def ghosted(result):
            if not user.connected:
                return
            core = self._core
            holder = core.user(nick)
            if holder is not None and holder is not user:
                core.fanout.toUser(holder, events.Ghosted(holder.nick))
                core.disconnect(holder, "ghosted")
                holder.hangUp()
                self._log.info("{by} ghosted {nick}", by=user.nick or "-", nick=nick)
            user.account = nickKey(nick)
            core.fanout.toUser(user, events.Identified(nick))
            if user.nick is None:
                core.claimNick(user, nick)
            elif user.nick != nick:
                core.changeNick(user, nick)
            self.forget(user)

        return checked.addCallback(ghosted)

    def changePassword(self, user, old, new):
        """
        Change the password of C{user}'s registered nickname, proving the old
        one first.

        @return: a L{Deferred} firing when changed.
        """
        nick = user.nick
        if not user.identified:
            raise R.IdentifyFirst(nick)
        self._checkPassword(new)
        checked = self._checkOwner(user, nick, old)
        checked.addCallback(lambda _: self._accounts.changePassword(nick, new))
        checked.addCallback(lambda _: self._log.info("{nick} changed their password",
                                                     nick=nick))
        return checked

    def forget(self, user):
        """
        Stop timing C{user}'s identification: done, or no longer needed.
        """
        timer = self._timers.pop(user, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _requireAccounts(self):
        if self._accounts is None:
            raise R.NoAccounts()
        return self._accounts

    def _checkPassword(self, password):
        if len(password) < self.PASSWORD_MIN or " " in password:
            raise R.WeakPassword(self.PASSWORD_MIN)

    def _checkOwner(self, user, nick, password):
        """
        Check C{password} is C{nick}'s, counting the attempt against both the
        nickname and C{user}'s address until it proves right.

        @return: a L{Deferred} firing when it is right, failing with a
            L{chatd.core.refusals.Refusal} when it is wrong.
        """
        accounts = self._requireAccounts()
        if not accounts.isRegistered(nick):
            raise R.NotRegistered(nick)
        keys = [("nick", nickKey(nick))] + ([("host", user.host)] if user.host else [])
        now = self._core.clock.seconds()
        for key in keys:
            recent = [t for t in self._attempts.pop(key, ()) if t > now - self.ATTEMPT_WINDOW]
            # Only keys with recent attempts stay, so the table stays small.
            if recent:
                self._attempts[key] = recent
            if len(recent) >= self.ATTEMPTS:
                wait = math.ceil(recent[0] + self.ATTEMPT_WINDOW - now)
                raise R.TooManyAttempts(nick, key[0] == "host", wait)
        # Counted before the answer, so that many attempts sent at once are
        # limited too.
        for key in keys:
            self._attempts.setdefault(key, []).append(now)
        checked = maybeDeferred(accounts.verify, nick, password)

        def answered(right):
            if not right:
                self._log.info("wrong password for {nick} from {host}", nick=nick,
                               host=user.host or "-")
                raise R.WrongPassword(nick)
            self._attempts.pop(("nick", nickKey(nick)), None)

        return checked.addCallbacks(answered, _refused)

    def _identifyExpired(self, user, key):
        del self._timers[user]
        if user.nick is None or nickKey(user.nick) != key or user.identified:
            return
        if self._core.user(user.nick) is not user:
            return
        guest = self._guestName()
        self._core.fanout.toUser(user, events.GuestRenamed(user.nick, guest))
        self._core.changeNick(user, guest)

    def _guestName(self):
        while True:
            nick = f"Guest{self._random.randrange(10000):04d}"
            if self._core.user(nick) is None and not self.isRegistered(nick):
                return nick


def _refused(failure):
    """
    An account store's refusal (L{AccountError}) becomes one for the user.
    """
    failure.trap(AccountError)
    raise R.AccountRefused(failure.getErrorMessage())

"""
Registered nicknames: the rules for registering, identifying, ghosting and
changing passwords, and the guest name for whoever does not identify in time.

Mixed into L{chatd.core.ChatCore}, whose state it uses.  Passwords go to the
L{chatd.storage.IAccountStore} and are checked there, off the reactor thread;
the core keeps none, and logs none.
"""

import math

from twisted.internet.defer import maybeDeferred

from chatd.core import events
from chatd.core.errors import ChatError
from chatd.core.names import nickKey, nickProblem
from chatd.storage import AccountError


class IdentityRules:
    """
    The registered-nickname half of L{chatd.core.ChatCore}.
    """

    IDENTIFY_SECONDS = 60.0
    PASSWORD_MIN = 8
    # Wrong (or not yet checked) passwords allowed per nickname and per
    # address within ATTEMPT_WINDOW seconds.
    ATTEMPTS = 5
    ATTEMPT_WINDOW = 300.0

    def checkIdentity(self, user):
        """
        After C{user} takes a nickname: if it is registered and they have not
        proved it is theirs, tell them, and rename them to a guest name unless
        they identify within L{identifySeconds}.
        """
        self._cancelIdentify(user)
        if self.accounts is None or user.identified:
            return
        if not self.accounts.isRegistered(user.nick):
            return
        self._fanout.toUser(user, events.IdentifyRequired(user.nick, self.identifySeconds))
        self._identifyTimers[user] = self._clock.callLater(
            self.identifySeconds, self._identifyExpired, user, nickKey(user.nick))

    def register(self, user, password):
        """
        Register C{user}'s nickname with C{password}; they are identified
        once it is done.

        @return: a L{Deferred} firing when registered, or failing with
            L{ChatError}.
        """
        accounts = self._requireAccounts()
        nick = user.nick
        if accounts.isRegistered(nick):
            raise ChatError(f"{nick} is already registered; /identify PASSWORD "
                            "if it is yours")
        self._checkPassword(password)
        done = accounts.register(nick, password)

        def registered(result):
            self._log.info("{nick} registered", nick=nick)
            if user.nick == nick:
                user.account = nickKey(nick)
                self._cancelIdentify(user)

        return done.addCallbacks(registered, _refused)

    def identify(self, user, password):
        """
        Prove C{user} owns the registered nickname they use.

        @return: a L{Deferred} firing when identified, or failing with
            L{ChatError} for a wrong password.
        """
        nick = user.nick
        if user.identified:
            raise ChatError(f"you are already identified as {nick}")
        checked = self._checkOwner(user, nick, password)

        def identified(result):
            if user.nick == nick:
                user.account = nickKey(nick)
                self._cancelIdentify(user)
            self._log.info("{nick} identified", nick=nick)

        return checked.addCallback(identified)

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
            raise ChatError(problem)
        checked = self._checkOwner(user, nick, password)

        def ghosted(result):
            if not user.connected:
                return
            holder = self.users.get(nickKey(nick))
            if holder is not None and holder is not user:
                self._fanout.toUser(holder, events.Ghosted(holder.nick))
                self.disconnect(holder, "ghosted")
                holder.hangUp()
                self._log.info("{by} ghosted {nick}", by=user.nick or "-", nick=nick)
            user.account = nickKey(nick)
            if user.nick is None:
                self.claimNick(user, nick)
            elif user.nick != nick:
                self._rename(user, nick)
            self._cancelIdentify(user)

        return checked.addCallback(ghosted)

    def changePassword(self, user, old, new):
        """
        Change the password of C{user}'s registered nickname, proving the old
        one first.

        @return: a L{Deferred} firing when changed.
        """
        nick = user.nick
        if not user.identified:
            raise ChatError(f"identify as {nick} first")
        self._checkPassword(new)
        checked = self._checkOwner(user, nick, old)
        checked.addCallback(lambda _: self.accounts.changePassword(nick, new))
        checked.addCallback(lambda _: self._log.info("{nick} changed their password",
                                                     nick=nick))
        return checked

    def _requireAccounts(self):
        if self.accounts is None:
            raise ChatError("this server keeps no accounts")
        return self.accounts

    def _checkPassword(self, password):
        if len(password) < self.PASSWORD_MIN or " " in password:
            raise ChatError(f"a password has at least {self.PASSWORD_MIN} characters "
                            "and no spaces")

    def _checkOwner(self, user, nick, password):
        """
        Check C{password} is C{nick}'s, counting the attempt against both the
        nickname and C{user}'s address until it proves right.

        @return: a L{Deferred} firing when it is right, failing with
            L{ChatError} when it is wrong.
        """
        accounts = self._requireAccounts()
        if not accounts.isRegistered(nick):
            raise ChatError(f"{nick} is not registered")
        keys = [("nick", nickKey(nick))] + ([("host", user.host)] if user.host else [])
        now = self._clock.seconds()
        for key in keys:
            recent = [t for t in self._attempts.pop(key, ()) if t > now - self.ATTEMPT_WINDOW]
            # Only keys with recent attempts stay, so the table stays small.
            if recent:
                self._attempts[key] = recent
            if len(recent) >= self.ATTEMPTS:
                wait = math.ceil(recent[0] + self.ATTEMPT_WINDOW - now)
                whose = f"for {nick}" if key[0] == "nick" else "from your address"
                raise ChatError(f"too many password attempts {whose}; "
                                f"try again in {wait} seconds")
        # Counted before the answer, so that many attempts sent at once are
        # limited too.
        for key in keys:
            self._attempts.setdefault(key, []).append(now)
        checked = maybeDeferred(accounts.verify, nick, password)

        def answered(right):
            if not right:
                self._log.info("wrong password for {nick} from {host}", nick=nick,
                               host=user.host or "-")
                raise ChatError(f"wrong password for {nick}")
            self._attempts.pop(("nick", nickKey(nick)), None)

        return checked.addCallbacks(answered, _refused)

    def _identifyExpired(self, user, key):
        del self._identifyTimers[user]
        if user.nick is None or nickKey(user.nick) != key or user.identified:
            return
        if self.users.get(key) is not user:
            return
        old = user.nick
        guest = self._guestName()
        self._rename(user, guest)
        self._fanout.toUser(user, events.GuestRenamed(old, guest))
        self._fanout.toUser(user, events.NowKnownAs(guest))

    def _guestName(self):
        while True:
            nick = f"Guest{self._random.randrange(10000):04d}"
            if nickKey(nick) not in self.users and not (
                    self.accounts and self.accounts.isRegistered(nick)):
                return nick

    def _cancelIdentify(self, user):
        timer = self._identifyTimers.pop(user, None)
        if timer is not None and timer.active():
            timer.cancel()


def _refused(failure):
    """
    An account store's refusal (L{AccountError}) becomes one for the user.
    """
    failure.trap(AccountError)
    raise ChatError(failure.getErrorMessage())

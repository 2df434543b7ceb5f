"""
Registered nicknames: the rules for registering, proving a nickname is yours
(taking it with its password, identifying, ghosting) and changing passwords,
and the limits on password attempts and registrations.

The rule everything here keeps: nobody holds a registered nickname without
having proved, on their connection, that it is theirs.  So no line, action,
topic or stored history row is ever attributed to a registered nickname by
anyone but its owner, and no timer or guest name is needed.

Composed into L{chatd.core.chat.ChatCore}, which it reaches only through its
public operations.  Passwords go to the L{chatd.storage.IAccountStore} and are
checked there, off the reactor thread; the core keeps none, and logs none.
"""

import math
import weakref

from twisted.internet.defer import succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.bans import addressGroup
from chatd.core.names import nickKey, nickProblem
from chatd.core.turns import Turns
from chatd.storage import AccountError


class Identity:
    """
    Registered nicknames: who has proved which is theirs, and how fast
    passwords may be tried.

    Wrong passwords are never answered by refusing the right one: they make
    later attempts wait.  Each (registered nickname, address) pair may get
    L{FREE_ATTEMPTS} wrong passwords checked at once; after that each attempt
    from that address for that nickname is checked only after a delay that
    doubles with every further wrong one (1 s, 2 s, 4 s ... at most
    L{DELAY_MAX}), so the owner's right password always gets through within
    L{DELAY_MAX}, whoever shares their address.  One address guessing at many
    nicknames is slowed the same way after L{ADDRESS_FREE_ATTEMPTS} wrong
    ones.  A connection has one attempt checked at a time.  Wrong attempts are
    forgotten L{ATTEMPT_WINDOW} seconds after the last one; the right password
    forgets its pair's.

    Nor is the right password refused because others' checks keep the store
    busy: every password the store hashes waits for its turn (L{Turns}),
    fairly among address groups and nicknames.
    """

    _log = Logger()

    PASSWORD_MIN = 8
    FREE_ATTEMPTS = 3
    ADDRESS_FREE_ATTEMPTS = 20
    DELAY_MAX = 60.0
    ATTEMPT_WINDOW = 900.0
    # Registrations per address: a burst, then one per REGISTER_EVERY seconds
    # (each costs a deliberately slow hash on the store's one thread).
    REGISTER_BURST = 5
    REGISTER_EVERY = 60.0
    # Entries kept in the tables above before stale ones are swept out.
    _TABLE_SWEEP = 10000

    def __init__(self, core, accounts):
        """
        @param core: the L{chatd.core.chat.ChatCore} whose users these are.
        @param accounts: the L{chatd.storage.IAccountStore}, or L{None}.
        """
        self._core = core
        self._accounts = accounts
        # (kind, ...) -> [wrong attempts, time of the last]
        self._failures = {}
        # address -> [registrations left, as of when]
        self._registrations = {}
        # Users with a password being checked (or waiting to be).
        self._checking = weakref.WeakSet()
        # Account key -> the users who proved it (their account), so that a
        # password change can void those proofs.
        self._provers = {}
        # Account key -> the user whose change of its password is under way.
        self._changing = {}
        self._turns = Turns()

    def isRegistered(self, nick):
        return self._accounts is not None and self._accounts.isRegistered(nick)

    def mayHold(self, user, nick):
        """
        Whether C{user} may use C{nick} without giving its password: it is
        not registered, or they proved it is theirs on this connection.
        """
        return self.provedOwner(user, nick) or not self.isRegistered(nick)

    def provedOwner(self, user, nick):
        """
        Whether C{user} proved on their connection that C{nick} is theirs,
        and that proof still holds: while its password is being changed,
        only the changer's does, since the change may void the others'.
        """
        # (A user who proved no nickname, as most have not, needs no key.)
        if user.account is None or user.account != nickKey(nick):
            return False
        return self._changing.get(user.account, user) is user

    def register(self, user, password):
        """
        Register C{user}'s nickname with C{password}; they are its owner (and
        identified) at once, unless the store refuses.

        @return: a L{Deferred} firing when registered, or failing with a
            L{chatd.core.refusals.Refusal}.
        """
        accounts = self._requireAccounts()
        nick = user.nick
        key = nickKey(nick)
        if user.identified:
            raise R.AlreadyIdentified(nick)
        if accounts.isRegistered(nick):
            raise R.AlreadyRegistered(nick)
        self._checkPassword(password)
        self._takeRegistration(addressGroup(user.host))
        # Straight to the store, which takes the nickname at once (a second
        # /register meanwhile is refused); registrations are few enough per
        # address (above) not to need turns.
        done = accounts.register(nick, password)
        # The nickname is registered from now on (the store says so at
        # once), and held by its owner.
        previous = user.account
        self._proved(user, key)

        def registered(result):
            self._log.info("{nick} registered", nick=nick)
            if user.nick == nick and user.account == key:
                self._core.fanout.proved(user)

        def refused(failure):
            if user.account == key:
                self._proved(user, previous)
            return _refused(failure)

        return done.addCallbacks(registered, refused)

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
                self._proved(user, nickKey(nick))
                self._core.fanout.toUser(user, events.Identified(nick))
            self._log.info("{nick} identified", nick=nick)

        return checked.addCallback(identified)

    def authenticate(self, user, nick, password):
        """
        Prove, before choosing a nickname, that C{user} owns the registered
        nickname C{nick} (IRC's SASL): they may then claim it without its
        password (see L{mayHold}).

        @return: a L{Deferred} firing when proved, or failing with a
            L{chatd.core.refusals.Refusal}.
        """
        checked = self._checkOwner(user, nick, password)

        def proved(result):
            self._proved(user, nickKey(nick))
            self._log.info("{nick} authenticated", nick=nick)

        return checked.addCallback(proved)

    def take(self, user, nick, password):
        """
        Give C{user} the nickname C{nick}, proving with C{password} that it is
        theirs when it is registered: their first nickname (they arrive in
        the lobby) or a new one.  Whoever holds it meanwhile (a stale
        connection of the owner's) is let go.

        @return: a L{Deferred} firing with the lobby's
            L{chatd.core.chat.Room} when C{user} arrives by it, else L{None};
            failing with a L{chatd.core.refusals.Refusal}.
        """
        core = self._core
        problem = nickProblem(nick)
        if problem:
            raise R.InvalidNickname(nick, problem)
        if user.nick is not None:
            # Neither a new nickname nor a password sheds a mute.
            core.moderation.checkMayRename(user)
        if not self.isRegistered(nick):
            # Nothing to prove: the password is not needed.
            if user.nick is None:
                return succeed(core.claimNick(user, nick))
            core.rename(user, nick)
            return succeed(None)
        # A password does not lift a ban on the nickname nor the address;
        # an operator's, whom no ban covers, is checked once proved.
        if nickKey(nick) not in core.moderation.operators:
            core.moderation.checkNotBannedAs(user, nick)
        checked = self._checkOwner(user, nick, password)

        def proved(result):
            if not user.connected:
                return None
            if self._changing.get(nickKey(nick), user) is not user:
                # Whichever password this was, the change may void it.
                raise R.PasswordChanging(nick)
            self._proved(user, nickKey(nick))
            self._log.info("{nick} proved their nickname", nick=nick)
            return core.takeNick(user, nick)

        return checked.addCallback(proved)

    def changePassword(self, user, old, new):
        """
        Change the password of C{user}'s registered nickname, proving the old
        one first.  Once changed, every other connection that proved the old
        one must give the new one: whoever learnt the old password is locked
        out by the change, even one who took the nickname from the changer
        while it was being made (let go once it is: see L{_voidProofs}).
        Meanwhile nobody but the changer takes the nickname on the strength
        of an earlier proof (see L{provedOwner}).

        A changer let go meanwhile has their change applied all the same
        (the store made it), and is told nothing more: they are gone.

        @return: a L{Deferred} firing when changed.
        """
        nick = user.nick
        key = nickKey(nick)
        if not user.identified:
            raise R.IdentifyFirst(nick)
        if key in self._changing:
            raise R.PasswordChanging(nick)
        self._checkPassword(new)
        checked = self._checkOwner(user, nick, old)
        self._changing[key] = user
        checked.addCallback(lambda _: self._turns.take(
            addressGroup(user.host), key,
            lambda: self._accounts.changePassword(nick, new)).addErrback(_refused))

        def changed(result):
            # Proofs checked before the change (the store checks in order)
            # are voided here; those checked after it needed the new one.
            self._voidProofs(key, user)
            self._core.fanout.passwordChanged(key)
            self._log.info("{nick} changed their password", nick=nick)

        def over(result):
            del self._changing[key]
            return result

        return checked.addCallback(changed).addBoth(over)

    def changedElsewhere(self, key):
        """
        The password of the nickname whose key is C{key} was changed through
        another daemon: proofs of the old one made here are void too.
        """
        self._voidProofs(key, None)

    def forget(self, user):
        """
        C{user} is gone: nothing of theirs is kept here.
        """
        self._checking.discard(user)
        # (Their account stays: what they did is still theirs.)
        self._unrecord(user)

    def _proved(self, user, key):
        """
        C{user} proved the nickname whose key is C{key} (L{None}: none) on
        their connection: their account, remembered by key.
        """
        if user.account != key:
            self._unrecord(user)
        user.account = key
        if key is not None:
            self._provers.setdefault(key, weakref.WeakSet()).add(user)

    def _unrecord(self, user):
        # Forget that user proved their account: a gone user, or a new one.
        provers = self._provers.get(user.account)
        if provers is not None:
            provers.discard(user)
            if not provers:
                del self._provers[user.account]

    def _voidProofs(self, key, changer):
        """
        The password of the nickname whose key is C{key} changed: whoever
        proved the old one must prove the new one, but C{changer} (who gave
        both).  One who holds that nickname now (who took it from the
        changer meanwhile) is let go as a ghost is, so that its owner can
        take it with the new password.
        """
        for user in list(self._provers.get(key, ())):
            if user is not changer:
                self._proved(user, None)
                if user.key == key:
                    self._core.letGo(user, None)

    def _requireAccounts(self):
        if self._accounts is None:
            raise R.NoAccounts()
        return self._accounts

    def _checkPassword(self, password):
        if len(password) < self.PASSWORD_MIN or " " in password:
            raise R.WeakPassword(self.PASSWORD_MIN)

    def _takeRegistration(self, host):
        """
        Count one registration from C{host}; refuse it when they come too
        fast from there.
        """
        now = self._core.clock.seconds()
        left, since = self._registrations.get(host, (self.REGISTER_BURST, now))
        left = min(self.REGISTER_BURST, left + (now - since) / self.REGISTER_EVERY)
        if left < 1:
            raise R.TooManyRegistrations(math.ceil((1 - left) * self.REGISTER_EVERY))
        if len(self._registrations) > self._TABLE_SWEEP:
            full = now - self.REGISTER_BURST * self.REGISTER_EVERY
            self._registrations = {h: v for h, v in self._registrations.items()
                                   if v[1] > full}
        self._registrations[host] = (left - 1, now)

    def _attemptKeys(self, nick, host):
        # By address group: another address of the same network (an IPv6
        # /64, any loopback address) does not start afresh.
        return self._groupKeys(nickKey(nick), addressGroup(host))

    def _groupKeys(self, key, group):
        return [(("pair", key, group), self.FREE_ATTEMPTS),
                (("address", group), self.ADDRESS_FREE_ATTEMPTS)]

    def _delay(self, nick, host):
        """
        How long an attempt for C{nick} from C{host} waits before it is
        checked (0: not at all).
        """
        now = self._core.clock.seconds()
        delay = 0.0
        for key, free in self._attemptKeys(nick, host):
            entry = self._failures.get(key)
            if entry is None:
                continue
            if now - entry[1] > self.ATTEMPT_WINDOW:
                del self._failures[key]
                continue
            if entry[0] >= free:
                # The exponent capped too: 2.0 ** 1024 overflows.
                doublings = min(entry[0] - free, math.ceil(math.log2(self.DELAY_MAX)))
                delay = max(delay, min(self.DELAY_MAX, 2.0 ** doublings))
        return delay

    def triedElsewhere(self, key, group, right):
        """
        A password for the nickname whose key is C{key} was checked on
        another daemon, from address group C{group}: counted here as if
        checked here, so that several daemons give a guesser no more
        attempts than one.
        """
        self._tried(key, group, right)

    def _tried(self, key, group, right):
        # The right password forgets its pair's wrong ones; a wrong one
        # counts for the pair and for the address.
        if right:
            self._failures.pop(self._groupKeys(key, group)[0][0], None)
            return
        now = self._core.clock.seconds()
        if len(self._failures) > self._TABLE_SWEEP:
            self._failures = {k: v for k, v in self._failures.items()
                              if now - v[1] <= self.ATTEMPT_WINDOW}
        for failureKey, free in self._groupKeys(key, group):
            entry = self._failures.setdefault(failureKey, [0, now])
            entry[0] += 1
            entry[1] = now

    def _checkOwner(self, user, nick, password):
        """
        Check C{password} is C{nick}'s, after the delay earlier wrong
        attempts for it from C{user}'s address call for.

        @return: a L{Deferred} firing when it is right, failing with a
            L{chatd.core.refusals.Refusal} when it is wrong.
        """
        accounts = self._requireAccounts()
        if not accounts.isRegistered(nick):
            raise R.NotRegistered(nick)
        if user in self._checking:
            raise R.AttemptWaiting(nick)
        host = user.host
        delay = self._delay(nick, host)

        def verify():
            if not user.connected:
                # Nobody is waiting for the answer: no hash, no count.
                raise R.WrongPassword(nick)
            return accounts.verify(nick, password)

        def wait():
            return self._turns.take(addressGroup(host), nickKey(nick), verify)

        self._checking.add(user)
        if delay:
            self._core.fanout.toUser(user, events.PasswordDelayed(nick, math.ceil(delay)))
            checked = deferLater(self._core.clock, delay, wait)
        else:
            checked = wait()

        def answered(right):
            self._checking.discard(user)
            key, group = nickKey(nick), addressGroup(host)
            self._core.fanout.passwordTried(key, group, bool(right))
            self._tried(key, group, right)
            if not right:
                self._log.info("wrong password for {nick} from {host}", nick=nick,
                               host=host or "-")
                raise R.WrongPassword(nick)

        def failed(failure):
            self._checking.discard(user)
            return _refused(failure)

        return checked.addCallbacks(answered, failed)


def _refused(failure):
    """
    An account store's refusal (L{AccountError}) becomes one for the user;
    a refusal stays one.
    """
    if failure.check(R.Refusal):
        return failure
    failure.trap(AccountError)
    raise R.AccountRefused(failure.getErrorMessage())

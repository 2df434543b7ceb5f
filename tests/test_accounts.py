"""
Registered nicknames in the core, with no reactor: registering, taking a
registered nickname only with its password, /ghost, /password, the delays
that slow password guessing without locking out the owner, and the limit on
registrations.  Users act through their
L{chatd.core.session.Session}, as front ends do.
"""

import pytest
from twisted.internet.defer import Deferred, fail

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.storage import AccountsBusy
from chatd.storage.accounts import MAX_HASHING
from trustsupport import Trust, clear, result


@pytest.fixture
def trust():
    return Trust()


def test_registerIdentifiesAndProtects(trust):
    """
    /register on the nickname in use identifies its owner at once; later,
    nobody can take that nickname (in any case) without its password, and
    the refusal tells nothing to anyone else.
    """
    alice = trust.arrive("alice")
    watcher = trust.arrive("watcher")
    result(alice.register("correct-horse"))
    assert alice.identified and trust.accounts.passwords["alice"] == "correct-horse"
    alice.quit("quit")
    clear(watcher)
    other = trust.connect(host="192.0.2.2")
    with pytest.raises(R.PasswordRequired) as e:
        other.claim("Alice")
    assert e.value == R.PasswordRequired("Alice")
    assert other.nick is None and trust.core.user("alice") is None
    assert other.outbox.take() == [] and watcher.outbox.take() == []


def test_noRenameToARegisteredNicknameUnproved(trust):
    """
    /nick to a registered nickname without its password, or with a wrong
    one, changes nothing and announces nothing; nothing is ever said under
    it; with the right password the rename is done, identified.
    """
    mallory, watcher = trust.arrive("mallory"), trust.arrive("watcher")
    clear(mallory, watcher)
    with pytest.raises(R.PasswordRequired):
        mallory.rename("OP")
    with pytest.raises(R.WrongPassword):
        result(mallory.rename("op", "not-the-password"))
    assert mallory.nick == "mallory" and watcher.outbox.take() == []
    assert trust.core.user("op") is None
    result(mallory.rename("op", "op-password"))
    assert mallory.nick == "op" and mallory.identified and mallory.isOperator
    assert watcher.outbox.take() == [events.Renamed("#lobby", "mallory", "op")]
    assert trust.clock.getDelayedCalls() == []


def test_ownerComesBackWithoutThePassword(trust):
    """
    Having proved a registered nickname on this connection, its owner may
    use another and come back to it without the password; someone else may
    not.
    """
    owner = trust.arrive("owner", password="owner-password")
    owner.rename("away")
    assert not owner.identified
    owner.rename("owner")
    assert owner.identified
    other = trust.arrive("other")
    owner.rename("away")
    with pytest.raises(R.PasswordRequired):
        other.rename("owner")


def test_claimWithTheRightPassword(trust):
    """
    Claiming a registered nickname with its password brings its owner in,
    identified, told so before the lobby.
    """
    owner = trust.connect()
    room = result(owner.claim("owner", "owner-password"))
    assert room is trust.core.rooms["#lobby"] and owner.identified
    assert owner.outbox.take() == [events.Identified("owner"),
                                   events.NowKnownAs(None, "owner"),
                                   events.Entered("#lobby", "owner", "", ("owner",))]


def test_wrongPasswordIsRefused(trust):
    """
    A wrong password is refused, naming the nickname, and gives no nickname.
    """
    user = trust.connect()
    with pytest.raises(R.WrongPassword) as e:
        result(user.claim("owner", "guess-guess"))
    assert e.value == R.WrongPassword("owner")
    assert user.nick is None and trust.core.user("owner") is None


def test_wrongPasswordsSlowButNeverLockOutTheOwner(trust):
    """
    Five wrong passwords for "owner" from the owner's own address (another
    user sharing it) do not refuse the owner's right password: after the
    three free ones each attempt waits twice as long (1 s, 2 s, 4 s), and
    the owner's is checked after its wait, told how long.
    """
    for n in range(5):
        guesser = trust.connect()
        d = guesser.claim("owner", f"guess-{n}")
        trust.clock.advance(60)
        with pytest.raises(R.WrongPassword):
            result(d)
    owner = trust.connect()
    checked = trust.accounts.verified
    done = owner.claim("owner", "owner-password")
    assert owner.outbox.take() == [events.PasswordDelayed("owner", 4)]
    trust.clock.advance(3.9)
    assert trust.accounts.verified == checked and owner.nick is None
    trust.clock.advance(0.1)
    result(done)
    assert owner.nick == "owner" and owner.identified
    # The right password forgets the wrong ones from that address.
    assert trust.core.identity._delay("owner", "192.0.2.1") == 0


def test_attemptDelayIsBounded(trust):
    """
    However many wrong passwords came (thousands: the growing delay must
    not overflow), an attempt waits at most DELAY_MAX seconds; another
    address is not slowed at all.
    """
    identity = trust.core.identity
    for n in range(3000):
        identity.triedElsewhere("owner", "192.0.2.1", False)  # its own address group
    assert identity._delay("owner", "192.0.2.1") == identity.DELAY_MAX == 60
    assert identity._delay("owner", "192.0.2.99") == 0
    trust.clock.advance(identity.ATTEMPT_WINDOW + 1)
    assert identity._delay("owner", "192.0.2.1") == 0


def test_oneAddressGuessingManyNicknamesIsSlowed(trust):
    """
    One address guessing at many registered nicknames is slowed too, once
    it has had ADDRESS_FREE_ATTEMPTS wrong ones, whichever nickname is next.
    """
    identity = trust.core.identity
    for n in range(identity.ADDRESS_FREE_ATTEMPTS):
        trust.accounts.passwords[f"a{n}"] = "right-password"
        guesser = trust.connect(host="203.0.113.5")
        with pytest.raises(R.WrongPassword):
            result(guesser.claim(f"a{n}", "wrong-password"))
    trust.accounts.passwords["fresh"] = "right-password"
    late = trust.connect(host="203.0.113.5")
    late.claim("fresh", "right-password")
    assert late.outbox.take() == [events.PasswordDelayed("fresh", 1)]


def test_oneAttemptAtATimePerConnection(trust):
    """
    A connection's second password attempt while its first is being checked
    is refused at once, unchecked: many sent at once cannot outrun the
    delays.
    """
    pending = []
    trust.accounts.verify = lambda nick, password: pending.append(password) or Deferred()
    user = trust.arrive("user")
    user.ghost("owner", "guess-0")
    with pytest.raises(R.AttemptWaiting) as e:
        user.ghost("owner", "guess-1")
    assert e.value == R.AttemptWaiting("owner")
    assert pending == ["guess-0"]


def test_passwordChecksTakeFairTurnsRatherThanBeingRefused(trust):
    """
    Password checks wait their turn, never refused for others' load, and
    turns go round address groups and, within one, nicknames: 44
    connections on loopback logging in as one account, with its right
    password, leave the store (which refuses more than MAX_HASHING waiting)
    two checks at a time, and olga's right password, also from loopback, is
    hashed after only three of theirs; every check is answered.
    """
    trust.accounts.passwords.update(mallory="mallory-password", olga="olga-password")
    hashing = []

    def verify(nick, password):
        if len(hashing) >= MAX_HASHING:
            return fail(AccountsBusy("too many password checks are waiting; "
                                     "try again in a moment"))
        hashing.append((nick, trust.accounts.passwords.get(nick) == password, Deferred()))
        return hashing[-1][2]

    def hashOne():
        nick, right, done = hashing.pop(0)
        done.callback(right)
        return nick

    trust.accounts.verify = verify
    floods = [trust.connect(host="127.0.0.1") for i in range(44)]
    proving = [flood.authenticate("mallory", "mallory-password") for flood in floods]
    olga = trust.connect(host="127.0.0.2")
    claimed = olga.claim("olga", "olga-password")
    assert not claimed.called
    assert len(hashing) == 2
    assert [hashOne() for i in range(4)] == ["mallory"] * 3 + ["olga"]
    result(claimed)
    assert olga.nick == "olga" and olga.identified
    while hashing:
        hashOne()
    assert [result(p) for p in proving] == [None] * 44


def test_registrationsPerAddressAreThrottled(trust):
    """
    An address may register REGISTER_BURST nicknames at once, then one per
    REGISTER_EVERY seconds; another address is not held back.
    """
    identity = trust.core.identity
    for n in range(identity.REGISTER_BURST):
        result(trust.arrive(f"reg{n}", host="203.0.113.9").register("long-enough"))
    late = trust.arrive("late", host="203.0.113.9")
    with pytest.raises(R.TooManyRegistrations) as e:
        late.register("long-enough")
    assert e.value == R.TooManyRegistrations(60)
    assert not trust.accounts.isRegistered("late")
    result(trust.arrive("elsewhere", host="203.0.113.10").register("long-enough"))
    trust.clock.advance(60)
    result(late.register("long-enough"))


def test_ghostFreesTheNickname(trust):
    """
    /ghost with the right password disconnects whoever holds the
    nickname (telling them why), and gives it to the caller, identified.
    """
    stale = trust.arrive("owner", password="owner-password")
    watcher = trust.arrive("watcher")
    me = trust.arrive("me")
    clear(stale, watcher)
    result(me.ghost("owner", "owner-password"))
    assert stale.outbox.take() == [events.Ghosted("owner")]
    assert stale.outbox.hungUp and not stale.connected
    assert watcher.outbox.take() == [events.Quit("#lobby", "owner", "ghosted"),
                                     events.Renamed("#lobby", "me", "owner")]
    assert me.outbox.take() == [events.Quit("#lobby", "owner", "ghosted"),
                                events.Identified("owner"),
                                events.NowKnownAs("me", "owner")]
    assert me.nick == "owner" and me.identified
    assert trust.holder("owner") is me.outbox


def test_ghostWithWrongPasswordLeavesTheHolder(trust):
    """
    /ghost with a wrong password changes nothing.
    """
    holder = trust.arrive("owner", password="owner-password")
    me = trust.arrive("me")
    with pytest.raises(R.WrongPassword) as e:
        result(me.ghost("owner", "nope-nope"))
    assert e.value == R.WrongPassword("owner")
    assert trust.holder("owner") is holder.outbox and not holder.outbox.hungUp
    assert me.nick == "me"


@pytest.mark.parametrize("held", [True, False], ids=["held", "free"])
def test_ghostOfAnUnregisteredNickname(trust, held):
    """
    /ghost of a nickname nobody registered says it is not registered,
    before and after choosing a nickname: when someone holds it (not
    "taken": the caller knew), who keeps it; when nobody does (it does not
    quietly become a /nick: the README says /ghost makes you NICK,
    identified).
    """
    holder = trust.arrive("other") if held else None
    me = trust.arrive("me")
    newcomer = trust.connect(host="192.0.2.7")
    for caller in (me, newcomer):
        with pytest.raises(R.NotRegistered) as e:
            caller.ghost("OTHER", "any-password")
        assert e.value == R.NotRegistered("OTHER")
    if held:
        assert trust.holder("other") is holder.outbox and not holder.outbox.hungUp
    else:
        assert trust.holder("other") is None
    assert me.nick == "me" and newcomer.nick is None


def test_changePassword(trust):
    """
    /password needs the old password and an identified user; afterwards
    only the new one works.
    """
    bob = trust.arrive("bob")
    with pytest.raises(R.IdentifyFirst) as e:
        bob.changePassword("owner-password", "brand-new-pw")
    assert e.value == R.IdentifyFirst("bob")
    owner = trust.arrive("owner", password="owner-password")
    with pytest.raises(R.WrongPassword) as e:
        result(owner.changePassword("wrong-old", "brand-new-pw"))
    assert e.value == R.WrongPassword("owner")
    assert trust.accounts.passwords["owner"] == "owner-password"
    result(owner.changePassword("owner-password", "brand-new-pw"))
    assert trust.accounts.passwords["owner"] == "brand-new-pw"


def test_registerRules(trust):
    """
    A nickname registers once (its identified owner is told they are
    identified already); a password has at least 8 characters and no
    spaces; a server without an account store refuses registration.
    """
    owner = trust.arrive("owner", password="owner-password")
    with pytest.raises(R.AlreadyIdentified) as e:
        owner.register("another-one")
    assert e.value == R.AlreadyIdentified("owner")
    bob = trust.arrive("bob")
    for weak in ("short", "has a space"):
        with pytest.raises(R.WeakPassword) as e:
            bob.register(weak)
        assert e.value == R.WeakPassword(8)
    assert "bob" not in trust.accounts.passwords
    bare = trust.connect(core=ChatCore(Fanout(), trust.clock))
    bare.claim("bob")
    with pytest.raises(R.NoAccounts) as e:
        bare.register("long-enough")
    assert e.value == R.NoAccounts()


def test_ghostBeforeChoosingANickname(trust):
    """
    Someone with no nickname yet can /ghost theirs: they arrive in the lobby
    as it, identified, and the stale holder is gone.
    """
    stale = trust.arrive("owner", password="owner-password")
    newcomer = trust.connect(host="192.0.2.7")
    result(newcomer.ghost("owner", "owner-password"))
    assert newcomer.nick == "owner" and newcomer.identified
    lobby = trust.core.rooms["#lobby"]
    assert list(lobby.members) == ["owner"] and newcomer.isIn(lobby)
    assert trust.holder("owner") is newcomer.outbox
    assert stale.outbox.hungUp


def test_ghostAnsweredAfterTheCallerLeft(trust):
    """
    When the caller's connection is gone before the password is checked,
    the right password changes nothing: the holder keeps the nickname.
    """
    holder = trust.arrive("owner", password="owner-password")
    caller = trust.arrive("caller")
    pending = Deferred()
    trust.accounts.verify = lambda nick, password: pending
    done = caller.ghost("owner", "owner-password")
    caller.quit("gone")
    pending.callback(True)
    result(done)
    assert trust.holder("owner") is holder.outbox and not holder.outbox.hungUp


def test_claimAfterProvingTakesTheNicknameBack(trust):
    """
    Someone who proved a registered nickname before choosing one (IRC's
    SASL or PASS) and then claims it takes it from its stale holder, who is
    told why and let go; nobody else's proof does, and a wrong password
    proves nothing.
    """
    stale = trust.arrive("owner", password="owner-password")
    watcher = trust.arrive("watcher")
    guesser = trust.connect(host="192.0.2.8")
    with pytest.raises(R.WrongPassword):
        result(guesser.authenticate("owner", "not-the-password"))
    with pytest.raises(R.PasswordRequired):
        guesser.claim("owner", lobby=False)
    assert trust.holder("owner") is stale.outbox and not stale.outbox.hungUp
    clear(stale, watcher)
    newcomer = trust.connect(host="192.0.2.7")
    result(newcomer.authenticate("owner", "owner-password"))
    assert newcomer.claim("owner", lobby=False) is None
    assert stale.outbox.take() == [events.Ghosted("owner")]
    assert stale.outbox.hungUp and not stale.connected
    assert watcher.outbox.take() == [events.Quit("#lobby", "owner", "ghosted")]
    assert newcomer.nick == "owner" and newcomer.identified
    assert trust.holder("owner") is newcomer.outbox


def test_changedPasswordVoidsOtherConnectionsProof(trust):
    """
    A connection that proved the old password (then used another nickname,
    or proved it before choosing one, as IRC's SASL does) must give the new
    one once the owner changed it: proof of an old password is worth
    nothing.  The owner who changed it stays identified.
    """
    thief = trust.connect(host="192.0.2.7")
    result(thief.claim("owner", "owner-password"))
    thief.rename("thief")
    early = trust.connect(host="192.0.2.8")
    result(early.authenticate("owner", "owner-password"))
    owner = trust.arrive("owner", password="owner-password")
    result(owner.changePassword("owner-password", "brand-new-pw"))
    assert owner.identified
    owner.quit("quit")
    with pytest.raises(R.PasswordRequired):
        thief.rename("owner")
    with pytest.raises(R.PasswordRequired):
        early.claim("owner")
    assert trust.core.user("owner") is None
    result(thief.rename("owner", "brand-new-pw"))
    assert thief.nick == "owner" and thief.identified


def test_proofOfAnAccountWhosePasswordIsChangingTakesNothing(trust):
    """
    While the owner's /password is being checked, a connection that proved
    the password earlier (and renamed away) cannot take the nickname back
    without giving one: it would otherwise let the changer go and, holding
    the nickname when the change is applied, keep it.
    """
    thief = trust.connect(host="192.0.2.7")
    result(thief.claim("owner", "owner-password"))
    thief.rename("thief")
    owner = trust.arrive("owner", password="owner-password")
    checking = Deferred()
    trust.accounts.verify = lambda nick, password: checking
    changed = owner.changePassword("owner-password", "brand-new-pw")
    with pytest.raises(R.PasswordRequired):
        thief.rename("owner")
    assert trust.holder("owner") is owner.outbox and not owner.outbox.hungUp
    checking.callback(True)
    result(changed)
    assert trust.accounts.passwords["owner"] == "brand-new-pw" and owner.identified
    owner.quit("quit")
    with pytest.raises(R.PasswordRequired):
        thief.rename("owner")


def test_passwordGivenWhileItIsChangingTakesNothing(trust):
    """
    A thief who gives the old password while the owner's change is being
    checked is told to try again later, rather than taking the nickname
    from the changer; once changed, the old password is wrong.  A second
    /password meanwhile is refused the same way.
    """
    owner = trust.arrive("owner", password="owner-password")
    thief = trust.arrive("thief", host="192.0.2.7")
    checking, verify = Deferred(), trust.accounts.verify
    trust.accounts.verify = lambda nick, password: checking
    changed = owner.changePassword("owner-password", "brand-new-pw")
    trust.accounts.verify = verify
    with pytest.raises(R.PasswordChanging) as e:
        result(thief.rename("owner", "owner-password"))
    assert e.value == R.PasswordChanging("owner")
    with pytest.raises(R.PasswordChanging):
        owner.changePassword("owner-password", "another-new-pw")
    assert trust.holder("owner") is owner.outbox and not owner.outbox.hungUp
    assert thief.nick == "thief" and not thief.outbox.hungUp
    checking.callback(True)
    result(changed)
    assert trust.accounts.passwords["owner"] == "brand-new-pw" and owner.identified
    with pytest.raises(R.WrongPassword):
        result(thief.rename("owner", "owner-password"))


def test_passwordChangedElsewhereLetsGoAHolderWhoseProofItVoids(trust):
    """
    A thief who took the nickname here with the old password while its
    owner changed it through another daemon holds it when the change is
    told here: the thief's proof is voided all the same, and the thief is
    let go as a ghost is, told why, so that the owner can take the nickname
    with the new password.
    """
    thief = trust.arrive("thief", host="192.0.2.7")
    watcher = trust.arrive("watcher")
    result(thief.rename("owner", "owner-password"))
    clear(thief, watcher)
    trust.accounts.passwords["owner"] = "brand-new-pw"
    trust.core.identity.changedElsewhere("owner")
    assert thief.outbox.take() == [events.Ghosted("owner")]
    assert thief.outbox.hungUp and not thief.connected
    assert watcher.outbox.take() == [events.Quit("#lobby", "owner", "ghosted")]
    assert trust.core.user("owner") is None
    back = trust.connect()
    result(back.claim("owner", "brand-new-pw"))
    assert back.nick == "owner" and back.identified

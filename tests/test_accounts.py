"""
Registered nicknames in the core, with no reactor: registering, identifying,
the time to identify before a guest name, /ghost, /password, and the limit
on password attempts.  Users act through their
L{chatd.core.session.Session}, as front ends do.
"""

import pytest
from twisted.internet.defer import Deferred

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from trustsupport import Trust, clear, result


@pytest.fixture
def trust():
    return Trust()


def test_registerIdentifiesAndProtects(trust):
    """
    /register on the nickname in use identifies its owner at once; a later
    connection using that nickname is not identified and is told it has
    60 seconds.
    """
    alice = trust.arrive("alice")
    result(alice.register("correct-horse"))
    assert alice.identified and trust.accounts.passwords["alice"] == "correct-horse"
    alice.quit("quit")
    other = trust.connect(host="192.0.2.2")
    other.claim("Alice")
    assert not other.identified
    assert other.outbox.take() == [events.NowKnownAs(None, "Alice"),
                                   events.Entered("#lobby", "Alice", "", ("Alice",)),
                                   events.IdentifyRequired("Alice", 60.0)]


def test_unidentifiedUserIsToldAndRenamedToAGuest(trust):
    """
    Taking a registered nickname without identifying brings a notice and,
    once the time is up, a guest name: the user and their rooms are told.
    """
    watcher = trust.arrive("watcher")
    trust.accounts.passwords["bob"] = "bobs-password"
    user = trust.connect()
    user.claim("bob")
    assert user.outbox.take()[-1] == events.IdentifyRequired("bob", 60.0)
    trust.clock.advance(59)
    assert user.nick == "bob"
    clear(watcher)
    trust.clock.advance(1)
    guest = user.nick
    assert guest.startswith("Guest") and len(guest) == 9
    assert user.outbox.take() == [events.GuestRenamed("bob", guest),
                                  events.NowKnownAs("bob", guest)]
    assert watcher.outbox.take() == [events.Renamed("#lobby", "bob", guest)]
    assert trust.core.user("bob") is None


def test_identifyingInTimeKeepsTheNickname(trust):
    """
    /identify with the right password before the time is up cancels the
    rename.
    """
    owner = trust.arrive("owner")
    assert not owner.identified
    result(owner.identify("owner-password"))
    assert owner.identified
    trust.clock.advance(120)
    assert owner.nick == "owner" and trust.clock.getDelayedCalls() == []


def test_wrongPasswordIsRefused(trust):
    """
    A wrong password is refused, naming the nickname, and identifies nobody.
    """
    owner = trust.arrive("owner")
    with pytest.raises(R.WrongPassword) as e:
        result(owner.identify("guess"))
    assert e.value == R.WrongPassword("owner")
    assert not owner.identified


def test_attemptsAreRateLimited(trust):
    """
    After five wrong passwords for a nickname within five minutes, further
    attempts are refused without being checked, even from another address
    and even with the right password; the limit passes with time.
    """
    for n in range(5):
        user = trust.arrive(f"try{n}", host=f"192.0.2.{n}")
        with pytest.raises(R.WrongPassword):
            result(user.ghost("owner", f"guess{n}"))
    checked = trust.accounts.verified
    other = trust.arrive("other", host="192.0.2.99")
    with pytest.raises(R.TooManyAttempts) as e:
        other.ghost("owner", "owner-password")
    assert e.value == R.TooManyAttempts("owner", False, 300)
    assert trust.accounts.verified == checked
    trust.clock.advance(300)
    result(other.ghost("owner", "owner-password"))
    assert other.nick == "owner" and other.identified


def test_attemptsFromOneAddressAreLimitedAcrossNicknames(trust):
    """
    One address guessing at many registered nicknames is limited too, and
    told that the limit is its address's, not the nickname's.
    """
    for nick in ["a1", "a2", "a3", "a4", "a5", "a6"]:
        trust.accounts.passwords[nick] = "right-password"
    guesser = trust.arrive("guesser", host="203.0.113.5")
    for nick in ["a1", "a2", "a3", "a4", "a5"]:
        with pytest.raises(R.WrongPassword):
            result(guesser.ghost(nick, "wrong"))
    with pytest.raises(R.TooManyAttempts) as e:
        guesser.ghost("a6", "right-password")
    assert e.value == R.TooManyAttempts("a6", True, 300)


def test_attemptsInFlightCount(trust):
    """
    Attempts count when made, not when answered, so many sent at once
    cannot outrun the limit.
    """
    pending = []
    trust.accounts.verify = lambda nick, password: pending.append(password) or Deferred()
    user = trust.arrive("user")
    for n in range(5):
        user.ghost("owner", f"guess{n}")
    with pytest.raises(R.TooManyAttempts) as e:
        user.ghost("owner", "guess5")
    assert e.value == R.TooManyAttempts("owner", False, 300)
    assert len(pending) == 5


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


def test_changePassword(trust):
    """
    /password needs the old password and an identified user; afterwards
    only the new one works.
    """
    owner = trust.arrive("owner")
    with pytest.raises(R.IdentifyFirst) as e:
        owner.changePassword("owner-password", "brand-new-pw")
    assert e.value == R.IdentifyFirst("owner")
    result(owner.identify("owner-password"))
    with pytest.raises(R.WrongPassword) as e:
        result(owner.changePassword("wrong-old", "brand-new-pw"))
    assert e.value == R.WrongPassword("owner")
    assert trust.accounts.passwords["owner"] == "owner-password"
    result(owner.changePassword("owner-password", "brand-new-pw"))
    assert trust.accounts.passwords["owner"] == "brand-new-pw"


def test_registerRules(trust):
    """
    A nickname registers once; a password has at least 8 characters and no
    spaces; a server without an account store refuses registration.
    """
    owner = trust.arrive("owner", password="owner-password")
    with pytest.raises(R.AlreadyRegistered) as e:
        owner.register("another-one")
    assert e.value == R.AlreadyRegistered("owner")
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

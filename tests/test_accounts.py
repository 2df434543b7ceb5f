"""
Registered nicknames in the core, with no reactor: registering, identifying,
the time to identify before a guest name, /ghost, /password, and the limit
on password attempts.
"""

import pytest
from twisted.internet.defer import Deferred

from chatd.core import events
from chatd.core.chat import ChatCore, ChatError
from chatd.core.chat import User
from trustsupport import EventWire, Inbox, Trust, clear, result


@pytest.fixture
def trust():
    return Trust()


def test_registerIdentifiesAndProtects(trust):
    """
    /register on the current nickname identifies its owner at once; a later
    connection using that nickname is not identified and is told it has
    60 seconds.
    """
    alice = trust.arrive("alice")
    result(trust.core.register(alice, "correct-horse"))
    assert alice.identified and trust.accounts.passwords["alice"] == "correct-horse"
    trust.core.disconnect(alice, "quit")
    other = User(Inbox(), EventWire, host="192.0.2.2")
    trust.core.claimNick(other, "Alice")
    other.outbox.take()
    trust.core.checkIdentity(other)
    assert not other.identified
    assert other.outbox.take() == [events.IdentifyRequired("Alice", 60.0)]


def test_unidentifiedUserIsToldAndRenamedToAGuest(trust):
    """
    Taking a registered nickname without identifying brings a notice and,
    once the time is up, a guest name: the user and their rooms are told.
    """
    watcher = trust.arrive("watcher")
    user = trust.arrive("bob")
    trust.accounts.passwords["bob"] = "bobs-password"
    trust.core.checkIdentity(user)
    assert user.outbox.take() == [events.IdentifyRequired("bob", 60.0)]
    trust.clock.advance(59)
    assert user.nick == "bob"
    clear(watcher)
    trust.clock.advance(1)
    guest = user.nick
    assert guest.startswith("Guest") and len(guest) == 9
    assert user.outbox.take() == [events.GuestRenamed("bob", guest), events.NowKnownAs(guest)]
    assert watcher.outbox.take() == [events.Renamed("#lobby", "bob", guest)]
    assert "bob" not in trust.core.users


def test_identifyingInTimeKeepsTheNickname(trust):
    """
    /identify with the right password before the time is up cancels the
    rename.
    """
    owner = trust.arrive("owner")
    assert not owner.identified
    result(trust.core.identify(owner, "owner-password"))
    assert owner.identified
    trust.clock.advance(120)
    assert owner.nick == "owner" and trust.clock.getDelayedCalls() == []


def test_wrongPasswordIsRefused(trust):
    """
    A wrong password is refused with a clear message and identifies nobody.
    """
    owner = trust.arrive("owner")
    with pytest.raises(ChatError) as e:
        result(trust.core.identify(owner, "guess"))
    assert str(e.value) == "wrong password for owner"
    assert not owner.identified


def test_attemptsAreRateLimited(trust):
    """
    After five wrong passwords for a nickname within five minutes, further
    attempts are refused without being checked, even from another address
    and even with the right password; the limit passes with time.
    """
    for n in range(5):
        user = trust.arrive(f"try{n}", host=f"192.0.2.{n}")
        with pytest.raises(ChatError):
            result(trust.core.ghost(user, "owner", f"guess{n}"))
    checked = trust.accounts.verified
    other = trust.arrive("other", host="192.0.2.99")
    with pytest.raises(ChatError) as e:
        trust.core.ghost(other, "owner", "owner-password")
    assert str(e.value) == "too many password attempts for owner; try again in 300 seconds"
    assert trust.accounts.verified == checked
    trust.clock.advance(300)
    result(trust.core.ghost(other, "owner", "owner-password"))
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
        with pytest.raises(ChatError):
            result(trust.core.ghost(guesser, nick, "wrong"))
    with pytest.raises(ChatError) as e:
        trust.core.ghost(guesser, "a6", "right-password")
    assert str(e.value) == ("too many password attempts from your address; "
                            "try again in 300 seconds")


def test_attemptsInFlightCount(trust):
    """
    Attempts count when made, not when answered, so many sent at once
    cannot outrun the limit.
    """
    pending = []
    trust.accounts.verify = lambda nick, password: pending.append(password) or Deferred()
    user = trust.arrive("user")
    for n in range(5):
        trust.core.ghost(user, "owner", f"guess{n}")
    with pytest.raises(ChatError):
        trust.core.ghost(user, "owner", "guess5")
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
    result(trust.core.ghost(me, "owner", "owner-password"))
    assert stale.outbox.take() == [events.Ghosted("owner")]
    assert stale.outbox.hungUp
    assert watcher.outbox.take() == [events.Quit("#lobby", "owner", "ghosted"),
                                     events.Renamed("#lobby", "me", "owner")]
    assert me.nick == "owner" and me.identified
    assert trust.core.users["owner"] is me


def test_ghostWithWrongPasswordLeavesTheHolder(trust):
    """
    /ghost with a wrong password changes nothing.
    """
    holder = trust.arrive("owner", password="owner-password")
    me = trust.arrive("me")
    with pytest.raises(ChatError):
        result(trust.core.ghost(me, "owner", "nope-nope"))
    assert trust.core.users["owner"] is holder and not holder.outbox.hungUp


def test_changePassword(trust):
    """
    /password needs the old password and an identified user; afterwards
    only the new one works.
    """
    owner = trust.arrive("owner")
    with pytest.raises(ChatError) as e:
        trust.core.changePassword(owner, "owner-password", "brand-new-pw")
    assert str(e.value) == "identify as owner first"
    result(trust.core.identify(owner, "owner-password"))
    with pytest.raises(ChatError):
        result(trust.core.changePassword(owner, "wrong-old", "brand-new-pw"))
    result(trust.core.changePassword(owner, "owner-password", "brand-new-pw"))
    assert trust.accounts.passwords["owner"] == "brand-new-pw"


def test_registerRules(trust):
    """
    A nickname registers once; a password has at least 8 characters and no
    spaces; a server without an account store refuses registration.
    """
    owner = trust.arrive("owner", password="owner-password")
    with pytest.raises(ChatError) as e:
        trust.core.register(owner, "another-one")
    assert str(e.value) == "owner is already registered; /identify PASSWORD if it is yours"
    bob = trust.arrive("bob")
    with pytest.raises(ChatError) as e:
        trust.core.register(bob, "short")
    assert str(e.value) == "a password has at least 8 characters and no spaces"
    bare = ChatCore(trust.core._fanout, trust.clock)
    with pytest.raises(ChatError) as e:
        bare.register(bob, "long-enough")
    assert str(e.value) == "this server keeps no accounts"


def test_ghostBeforeChoosingANickname(trust):
    """
    Someone with no nickname yet can /ghost theirs: they arrive in the lobby
    as it, identified, and the stale holder is gone.
    """
    stale = trust.arrive("owner", password="owner-password")
    newcomer = User(Inbox(), EventWire, host="192.0.2.7")
    result(trust.core.ghost(newcomer, "owner", "owner-password"))
    assert newcomer.nick == "owner" and newcomer.identified
    assert trust.core.rooms["#lobby"].members == {"owner": newcomer}
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
    done = trust.core.ghost(caller, "owner", "owner-password")
    trust.core.disconnect(caller, "gone")
    pending.callback(True)
    result(done)
    assert trust.core.users["owner"] is holder and not holder.outbox.hungUp

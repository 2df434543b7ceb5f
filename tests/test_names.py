"""
The nickname and room-name rules.
"""

import pytest

from chatd.core.names import (nickKey, nickProblem, normalRoomName, roomKey, roomProblem,
                              sortedNicks)


@pytest.mark.parametrize("nick", ["alice", "Bob", "x", "a" * 16, "[away]", "_x-1", "c`{|}^\\"])
def test_validNicks(nick):
    """
    Letters, digits and IRC's special characters make nicknames.
    """
    assert nickProblem(nick) is None


@pytest.mark.parametrize("nick", [
    "", "a" * 17, "1abc", "-abc", "#room", "*star", "!!!", "===", "a b", "a:b",
    "élodie", "\u202eevil", "a\u200bb", "ＡＢＣ", "chatd", "SERVER", "<a>", "NickServ", "chanserv", "OPERSERV", "Services",
    # Look-alikes of the service names, found by a trial.
    "NickServ_", "Nick-Serv", "[NickServ]", "Services2", "Global", "global`",
])
def test_invalidNicks(nick):
    """
    Empty, over-long, non-ASCII, spaced, reserved and server-line-like
    nicknames are refused with a reason.
    """
    assert nickProblem(nick)


def test_nickKeyIgnoresCase():
    """
    Uniqueness is case-insensitive.
    """
    assert nickKey("Alice") == nickKey("aLICE")


def test_roomNames():
    """
    Rooms are # plus a short ASCII name; a missing # is added.
    """
    assert normalRoomName("dev") == "#dev"
    assert roomProblem("#dev-2.x") is None
    assert roomProblem("#") is not None
    assert roomProblem("#a b") is not None
    assert roomProblem("#" + "a" * 33) is not None


def test_keysFoldASCIILettersOnly():
    """
    Only A-Z fold: a look-alike such as the Kelvin sign (U+212A), which
    str.lower would make a "k", stays itself, in nicknames and room names
    alike.
    """
    assert nickKey("ALICE") == "alice"
    assert nickKey("AL\u212aCE\u00c9") == "al\u212ace\u00c9"
    assert roomKey("#DEV") == "#dev"
    assert roomKey("#D\u212a") == "#d\u212a"


@pytest.mark.parametrize("nicks", [
    ["bob", "Alice", "carol", "[x]", "_y", "Zed", "alice2", "^z", "Bob-1"],
    ["b\u212a", "BK", "bj", "Bl", "\u00c9a", "ea"],
])
def test_sortedNicks(nicks):
    """
    Names are listed in nickKey's order (case aside), whatever characters
    they hold.
    """
    assert sortedNicks(nicks) == sorted(nicks, key=nickKey)
    assert sortedNicks(iter(nicks)) == sorted(nicks, key=nickKey)

"""
The nickname and room-name rules.
"""

import pytest

from chatd.core.names import nickKey, nickProblem, normalRoomName, roomProblem


@pytest.mark.parametrize("nick", ["alice", "Bob", "x", "a" * 16, "[away]", "_x-1", "c`{|}^\\"])
def test_validNicks(nick):
    """
    Letters, digits and IRC's special characters make nicknames.
    """
    assert nickProblem(nick) is None


@pytest.mark.parametrize("nick", [
    "", "a" * 17, "1abc", "-abc", "#room", "*star", "!!!", "===", "a b", "a:b",
    "élodie", "\u202eevil", "a\u200bb", "ＡＢＣ", "chatd", "SERVER", "<a>",
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

"""
How server lines look in the client: plain as they came, or coloured by kind
with a stable colour per nickname.
"""

from chatd.line import wire
from chatd.client import render


def test_plainIsAsItCame():
    """
    Without colour every line is shown exactly as the server sent it.
    """
    for raw in ["#lobby <bob> hi", "*bob* psst", "!!! no such user: carol", "new?",
                "#lobby -bob- notice", "-bob- psst"]:
        assert render.formatLine(raw, wire.parseLine(raw), colour=False) == raw


def test_nickColourIsStable():
    """
    A nickname's colour is the same in every process (a CRC, not the salted
    hash) and whatever its case.
    """
    assert render.nickColour("bob") == render.nickColour("BOB")
    assert render.nickColour("alice") == "96"
    assert render.nickColour("bob") == "93"


def test_colouredRoomMessage():
    """
    In a coloured room message only the nickname is coloured.
    """
    raw = "#lobby <bob> hi"
    assert render.formatLine(raw, wire.parseLine(raw), True) == \
        "#lobby <\x1b[93mbob\x1b[0m> hi"


def test_colourByKind():
    """
    Errors are red, notices cyan, replies green, prompts yellow, room events
    and history dim, private messages magenta; an IRC user's notices look
    like messages with the nickname between dashes; unknown lines stay plain.
    """
    cases = {
        "!!! no": "\x1b[31m!!! no\x1b[0m",
        "-!- hi": "\x1b[36m-!- hi\x1b[0m",
        "=== ok": "\x1b[32m=== ok\x1b[0m",
        "??? nick?": "\x1b[33m??? nick?\x1b[0m",
        "-- #a bob has joined": "\x1b[2m-- #a bob has joined\x1b[0m",
        "~ 2026-11-25T21:03:11Z #a <b> x": "\x1b[2m~ 2026-11-25T21:03:11Z #a <b> x\x1b[0m",
        "*bob* psst": "\x1b[1;35m*bob*\x1b[0m psst",
        "#a -bob- ci is green": "#a -\x1b[93mbob\x1b[0m- ci is green",
        "-bob- psst": "\x1b[1;35m-bob-\x1b[0m psst",
        "odd": "odd",
    }
    for raw, shown in cases.items():
        assert render.formatLine(raw, wire.parseLine(raw), True) == shown


def test_own():
    """
    The user's own lines look like what the others see, the nickname in bold;
    a private message shows its recipient.
    """
    say = wire.ServerLine(wire.ROOM_MESSAGE, "hi", "#a", "alice")
    act = wire.ServerLine(wire.ACTION, "waves", "#a", "alice")
    tell = wire.ServerLine(wire.PRIVATE, "psst", nick="bob")
    assert [render.formatOwn(line, False) for line in (say, act, tell)] == [
        "#a <alice> hi", "* #a alice waves", "-> *bob* psst"]
    assert render.formatOwn(say, True) == "#a <\x1b[1;96malice\x1b[0m> hi"


def test_controlsNeverReachTheScreen():
    """
    Control characters in a line (an escape sequence, a bell) are dropped.
    """
    raw = "#lobby <bob> \x1b[2Jgotcha\x07"
    assert render.formatLine(raw, wire.parseLine(raw), False) == "#lobby <bob> [2Jgotcha"
    assert render.formatLine(raw, wire.parseLine(raw), True) == \
        "#lobby <\x1b[93mbob\x1b[0m> [2Jgotcha"


def test_wantColour():
    """
    Colour is on for a terminal unless NO_COLOR is set to something.
    """
    assert render.wantColour({}, True)
    assert render.wantColour({"NO_COLOR": ""}, True)
    assert not render.wantColour({"NO_COLOR": "1"}, True)
    assert not render.wantColour({}, False)

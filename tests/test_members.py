"""
Tests for L{chatd.core.members}: a room's members grouped by wire format, and
the fan-out that walks them a group at a time.
"""

from chatd.core.chat import Room
from chatd.core.fanout import Fanout
from fanoutfakes import Member, Wire


def test_groupedAsTheyJoinAndLeave():
    """
    L{Members.byWire} holds each wire format's members, in the order they
    joined, through joins, renames (a key replaced) and parts, and forgets a
    format once its last member is gone.
    """
    line, web = Wire(b"line "), Wire(b"web ")
    a, b, c, d = Member(line), Member(web), Member(line), Member(web)
    members = Room("#r").members
    for key, member in zip("abcd", (a, b, c, d)):
        members[key] = member
    assert list(members) == ["a", "b", "c", "d"]
    assert {w: list(g.items()) for w, g in members.byWire.items()} == {
        line: [("a", a), ("c", c)], web: [("b", b), ("d", d)]}
    del members["a"]
    members["e"] = a
    members["c"] = c
    assert list(members.byWire[line].items()) == [("c", c), ("e", a)]
    del members["b"], members["d"]
    assert list(members.byWire) == [line]
    del members["c"], members["e"]
    assert members == {} and members.byWire == {}


def test_mixedRoomDeliversEachOnceAndCountsExactly():
    """
    In a room whose wire formats interleave, every member but the actor gets
    its format's bytes once, each format is encoded once, the actor gets its
    confirmation, and the deliveries and their bytes are counted exactly.
    """
    short, long = Wire(b"a "), Wire(b"longer ", own=b"ok\r\n")
    people = [Member(short), Member(long), Member(short), Member(long), Member(short)]
    room = Room("#r")
    for i, member in enumerate(people):
        room.members[f"u{i}"] = member
    fanout = Fanout()
    fanout.toRoom(room, b"x", actor=people[1])
    assert [m.outbox.got for m in people] == [
        [b"a x\r\n"], [b"ok\r\n"], [b"a x\r\n"], [b"longer x\r\n"], [b"a x\r\n"]]
    assert (short.encoded, long.encoded) == (1, 1)
    assert fanout.deliveries == 4
    assert fanout.sentBytes == 3 * 5 + 10 + 4


def test_oneFormatIsItsOwnGroup():
    """
    A room of one wire format keeps no second reference to its members: its
    single group is the members themselves, until a second format joins, and
    again once the last member of the other format is gone.
    """
    line, web = Wire(b"line "), Wire(b"web ")
    a, b, c = Member(line), Member(line), Member(web)
    members = Room("#r").members
    members["a"], members["b"] = a, b
    assert members.byWire == {line: members} and members.byWire[line] is members
    members["c"] = c
    assert members.byWire[line] is not members
    assert {w: list(g) for w, g in members.byWire.items()} == {line: ["a", "b"], web: ["c"]}
    del members["a"]
    members["a"] = a
    assert list(members.byWire[line]) == ["b", "a"]
    del members["c"]
    assert members.byWire[line] is members and list(members) == ["b", "a"]


def test_groupsFollowAnySequenceOfJoinsAndParts():
    """
    Through any sequence of joins and parts (a seeded random one of 2,000
    steps over three formats), each group is exactly the members of its
    format, in the room's order.
    """
    import random
    chance = random.Random(14)
    wires = [Wire(b"a "), Wire(b"b "), Wire(b"c ")]
    members = Room("#r").members
    for step in range(2000):
        key = f"u{chance.randrange(30)}"
        if key in members and chance.random() < 0.5:
            del members[key]
        elif key not in members:
            members[key] = Member(chance.choice(wires))
        expected = {}
        for k, user in members.items():
            expected.setdefault(user.wire, []).append(k)
        assert {w: list(g) for w, g in members.byWire.items()} == expected, step
        if len(expected) == 1:
            assert next(iter(members.byWire.values())) is members

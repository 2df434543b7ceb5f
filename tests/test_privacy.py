"""
Privacy, tried the hard way: an intruder runs every command in the table,
with every argument that could point at someone else's conversation, against
a real daemon keeping history; nothing said in a room they are not in, and no
private message to someone else, may reach them.
"""

import pytest

from chatd.line.commands import COMMANDS
from support import Daemon, settle

SECRET = "SECRETWORD"

# Every command with the arguments an intruder would try.  A command added to
# the table without a line here fails test_everyCommandIsTried, so the suite
# grows with the protocol.
ATTEMPTS = {
    "help": [""],
    "nick": ["alice", "bob", "intruder2"],
    "join": ["#secret", "secret"],
    "part": ["#secret", ""],
    "rooms": [""],
    "list": [""],
    "who": ["#secret", ""],
    "names": ["#secret", ""],
    "whois": ["alice", "bob"],
    "away": ["gone", ""],
    "topic": [""],
    "me": ["looks around"],
    "msg": ["alice hello", "bob hello", "#secret hello"],
    "history": ["", "500", "#secret"],
    "search": [SECRET, f"{SECRET} room", "private", "#secret"],
    "register": ["intruder-password"],
    "identify": ["guess-guess"],
    "ghost": ["alice guess-guess", "bob guess-guess"],
    "password": ["old-password new-password"],
    "kick": ["bob", "alice"],
    "ban": ["bob", "127.0.0.1"],
    "unban": ["intruder", "intruder2"],
    "bans": [""],
    "mute": ["bob"],
    "unmute": ["bob"],
    "ping": ["#secret", ""],
    "quit": [],
}


def test_everyCommandIsTried():
    """
    The attempts below cover the whole command table.
    """
    assert sorted(ATTEMPTS) == sorted(COMMANDS)


@pytest.fixture
def daemon(tmp_path):
    # Flood control is not what this test is about: the intruder types fast.
    d = Daemon("--db", f"sqlite:{tmp_path / 'chatd.sqlite3'}", "--flood-rate", "1000",
               "--flood-burst", "1000", cwd=tmp_path).start()
    yield d
    d.stop()


def test_noCommandLeaksOthersConversations(daemon):
    """
    alice (who owns #secret) and bob talk there and in private; the intruder
    was in #secret before, left, and is banned from it.  Then the intruder
    tries every command with every argument above, before and after taking
    bob's nickname once bob has gone: none of their lines, nor any history
    or search result, holds a word of it.  (bob and alice's own history show
    the words were there to leak.)
    """
    alice, bob, intruder = daemon.client(), daemon.client(), daemon.client()
    alice.login("alice")
    alice.send("/register alices-password")
    alice.readLine()
    bob.login("bob")
    intruder.login("intruder")
    alice.send("/join #secret")
    settle(alice)
    for c in (bob, intruder):
        c.send("/join #secret")
    settle(alice, bob, intruder)
    intruder.send("/part #secret")
    settle(intruder)
    alice.send("/ban intruder")
    settle(alice, bob, intruder)

    alice.send(f"{SECRET} in the room")
    alice.send(f"/me whispers {SECRET} 2")
    bob.send(f"/msg alice {SECRET} private to alice")
    alice.send(f"/msg bob {SECRET} private to bob")
    got = settle(alice, bob)
    assert f"#secret <alice> {SECRET} in the room" in got[1]
    assert f"*alice* {SECRET} private to bob" in got[1]
    alice.send("/history")
    assert any(SECRET in line for line in settle(alice)[0])

    seen = []

    def tryEverything():
        for name, variants in ATTEMPTS.items():
            for arg in variants:
                intruder.send(f"/{name} {arg}".rstrip())
                if name == "help":
                    # Its lines would fool the /rooms barrier: read to its end.
                    seen.extend(intruder.readUntil(lambda l: l.startswith("=== a line not")))
                seen.extend(settle(intruder)[0])

    tryEverything()
    assert "!!! you are banned from #secret" in seen
    bob.send("/quit")
    bob.readUntil(lambda l: l == "=== bye")
    intruder.send("/nick bob")
    seen.extend(settle(intruder)[0])
    tryEverything()
    said = [f"{SECRET} in the room", f"whispers {SECRET}", f"{SECRET} private"]
    leaks = [line for line in seen if any(text in line for text in said)]
    assert leaks == []
    # Not even how many lines matched: every search found nothing.
    searches = [line for line in seen if "in your rooms" in line and "===" in line
                and not line.startswith("=== /search")]
    assert searches and all(line.startswith("=== nothing in your rooms matches")
                            for line in searches)

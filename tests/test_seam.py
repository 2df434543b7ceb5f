"""
The seam between the core and its front ends is real: a second front end
(tests/jsonfront.py, JSON objects per line, which imports nothing of the line
protocol) joins, talks and is moderated through the same session API, shares
the connection limits and the shutdown, and sees the same rooms as line users.
"""

import ast
import json
from pathlib import Path

from chatd.edge.limits import Limits
from jsonfront import JSONFactory
from support import MemoryAccounts, MemoryServer


def jsonUser(server, nick):
    client = server.connect(factory=JSONFactory(server.core, server.gate))
    client.send(json.dumps({"do": "claim", "nick": nick}))
    client.transport.clear()
    return client


def received(client):
    data = client.transport.value()
    client.transport.clear()
    return [json.loads(line) for line in data.splitlines()]


def test_jsonFrontEndImportsNoLineProtocol():
    """
    The second front end is built from the core and the edge alone.
    """
    tree = ast.parse((Path(__file__).parent / "jsonfront.py").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [m for m in imported if m.startswith("chatd.line")]


def test_jsonAndLineUsersTalkInOneRoom():
    """
    A JSON user's message reaches each line user once, in the line format;
    a line user's message reaches the JSON user once, as JSON; a private
    message reaches only its target.
    """
    server = MemoryServer()
    alice, bob = server.connect("alice"), server.connect("bob")
    jo = jsonUser(server, "jo")
    assert alice.lines() == ["-- #lobby bob has joined", "-- #lobby jo has joined"]
    assert bob.lines() == ["-- #lobby jo has joined"]
    jo.send(json.dumps({"do": "say", "room": "#lobby", "text": "hi from json"}))
    assert alice.lines() == bob.lines() == ["#lobby <jo> hi from json"]
    assert received(jo) == [{"event": "Said", "room": "#lobby", "nick": "jo",
                             "text": "hi from json", "time": 0.0, "id": None, "notice": False,
                             "own": True}]
    alice.send("hello jo")
    assert received(jo) == [{"event": "Said", "room": "#lobby", "nick": "alice",
                             "text": "hello jo", "time": 0.0, "id": None, "notice": False}]
    assert bob.lines() == ["#lobby <alice> hello jo"]
    jo.send(json.dumps({"do": "tell", "nick": "bob", "text": "psst"}))
    assert bob.lines() == ["*jo* psst"]
    assert alice.lines() == []


def test_jsonUserIsModeratedByTheSameRules():
    """
    A room's owner on the line protocol mutes a JSON user: its messages are
    refused with a typed refusal and reach nobody; the JSON user cannot
    moderate, and a line user's kick puts it out of the room.
    """
    accounts = MemoryAccounts()
    accounts.passwords["owner"] = "owner-password"
    server = MemoryServer(accounts=accounts)
    owner = server.connect()
    owner.send("/nick owner owner-password")
    owner.send("/join #den")
    jo = jsonUser(server, "jo")
    jo.send(json.dumps({"do": "join", "room": "#den"}))
    owner.lines(), received(jo)
    owner.send("/mute jo")
    assert owner.lines() == ["-- #den owner muted jo"]
    jo.send(json.dumps({"do": "say", "room": "#den", "text": "spam"}))
    assert received(jo)[-1] == {"refused": "Muted", "room": "#den"}
    jo.send(json.dumps({"do": "kick", "room": "#den", "nick": "owner"}))
    assert received(jo) == [{"refused": "NotModerator", "room": "#den"}]
    assert owner.lines() == []
    owner.send("/kick jo bye")
    assert [e["event"] for e in received(jo)] == ["Kicked", "PutOut"]
    assert [m.nick for m in server.core.rooms["#den"].members.values()] == ["owner"]


def test_oneCountAndOneShutdownForEveryFrontEnd():
    """
    --max-connections counts line and JSON connections together, and one
    shutdown tells each connection in its own format.
    """
    server = MemoryServer(limits=Limits(maxConnections=2))
    alice = server.connect("alice")
    jo = jsonUser(server, "jo")
    third = server.connect(factory=JSONFactory(server.core, server.gate))
    assert received(third) == [{"event": "Refused",
                                "reason": "the server is full; try again later"}]
    alice.lines()
    server.gate.shutDown()
    assert alice.lines() == ["-!- The server is going down. Goodbye."]
    assert received(jo) == [{"event": "ShuttingDown"}]
    assert server.gate.connections == set()

"""
What happens in chat, as plain values.

The core emits these; each front end's wire format turns them into bytes.  A
room event names its room; the actor is named by nickname, as it was when the
event happened.

Room messages, actions and topic changes are the lines worth keeping: they
carry the server time they happened and, when the server keeps history, the
stable id under which they are stored (L{None} when it keeps none).
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Said:
    room: str
    nick: str
    text: str
    time: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Acted:
    room: str
    nick: str
    text: str
    time: float
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PrivatelySaid:
    sender: str
    text: str
    time: float


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    nick: str


@dataclass(frozen=True, slots=True)
class Parted:
    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quit:
    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Renamed:
    room: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class TopicChanged:
    room: str
    nick: str
    topic: str
    time: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ServerNotice:
    text: str

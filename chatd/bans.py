"""
Bans as plain data: who is banned from what, until when.

A ban names a nickname or an address (the peer's host, handed in as plain
text by the edge; the core never sees a socket), and either the whole server
(C{room} is empty) or one room.  Nicknames cannot contain "." or ":", so a
target with either is an address, and anything else is a nickname.
"""

from dataclasses import dataclass

from chatd.names import nickKey, nickProblem, roomKey

NICK = "nick"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Ban:
    """
    @ivar kind: L{NICK} or L{ADDRESS}.
    @ivar target: the nickname or address, as typed.
    @ivar room: the room's name, or C{""} for the whole server.
    @ivar until: when it ends (POSIX seconds), or L{None} for never.
    @ivar by: the nickname of the moderator who set it.
    @ivar time: when it was set.
    """

    kind: str
    target: str
    room: str
    until: float | None
    reason: str
    by: str
    time: float

    @property
    def key(self):
        """
        What makes a ban unique: one ban per target and place.
        """
        return banKey(self.kind, self.target, self.room)


def banKey(kind, target, room):
    folded = nickKey(target) if kind == NICK else target.lower()
    return (kind, folded, roomKey(room))


def targetKind(target):
    """
    Whether C{target} names a nickname (L{NICK}) or an address (L{ADDRESS}),
    or L{None} when it is neither.
    """
    if nickProblem(target) is None:
        return NICK
    if ("." in target or ":" in target) and " " not in target:
        return ADDRESS
    return None


class BanList:
    """
    The bans in force, looked up by the core on the reactor thread.
    """

    def __init__(self):
        self._bans = {}

    def add(self, ban):
        self._bans[ban.key] = ban

    def remove(self, kind, target, room):
        """
        Lift a ban; return it, or L{None} when there was none.
        """
        return self._bans.pop(banKey(kind, target, room), None)

    def get(self, key, now):
        """
        The ban with C{key} if it is still in force at C{now}, or L{None}.
        """
        ban = self._bans.get(key)
        if ban is None or (ban.until is not None and ban.until <= now):
            return None
        return ban

    def find(self, nick, host, room, now):
        """
        The ban in force at C{now} on C{nick} or C{host} in C{room} (C{""}:
        the server), or L{None}.  Bans that have ended are dropped here.

        @return: a pair of the ban found (or L{None}) and the bans that ended.
        """
        ended = []
        found = None
        for key in ((NICK, nickKey(nick), roomKey(room)) if nick else None,
                    (ADDRESS, host.lower(), roomKey(room)) if host else None):
            ban = self._bans.get(key) if key else None
            if ban is None:
                continue
            if ban.until is not None and ban.until <= now:
                del self._bans[key]
                ended.append(ban)
            elif found is None:
                found = ban
        return found, ended

    def all(self):
        return sorted(self._bans.values(), key=lambda b: (b.room.lower(), b.time))

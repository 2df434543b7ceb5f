"""
Bans as plain data: who is banned from what, until when.

A ban names a nickname, an address (the peer's host, handed in as plain
text by the edge; the core never sees a socket) or a range of addresses in
CIDR notation (C{203.0.113.0/24}, C{2001:db8::/32}), and either the whole
server (C{room} is empty) or one room.  Nicknames cannot contain "." or ":",
so a target with either is an address, and anything else is a nickname.
"""

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from chatd.core.names import nickKey, nickProblem, roomKey

NICK = "nick"
ADDRESS = "address"

# Parsing an address takes microseconds, and a login asks about its address
# several times (its count per address when accepted, the ban checks of its
# nickname and of each room it joins): the answers for this many of the
# addresses seen last are kept.  Bounded, so that connections from many
# addresses (an attacker's) cost no more than each one's own parsing.
ADDRESSES_KEPT = 1024


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
    folded = nickKey(target) if kind == NICK else _addressKey(target)
    return (kind, folded, roomKey(room))


def normalTarget(kind, target):
    """
    How a ban on C{target} of C{kind} is named: a nickname as typed, an
    address or range in its one spelling (see L{_addressKey}), so that
    C{198.51.100.7/32} is banned, shown and listed as C{198.51.100.7}.
    """
    return target if kind == NICK else _addressKey(target)


@lru_cache(maxsize=ADDRESSES_KEPT)
def _addressKey(target):
    """
    One spelling per address or range, so that C{/unban} finds a ban however
    it is typed: C{2001:DB8::0:1} is C{2001:db8::1}, C{10.1.2.3/8} is
    C{10.0.0.0/8}, and C{::ffff:127.0.0.1} (an IPv4 client of a dual-stack
    listener) is C{127.0.0.1}.  Anything that is not an IP address (a host
    name) is only folded to lower case.
    """
    if "/" in target:
        try:
            network = _unmapped(ipaddress.ip_network(target, strict=False))
        except ValueError:
            return target.lower()
        if network.prefixlen == network.max_prefixlen:
            # 198.51.100.7/32 is the address 198.51.100.7.
            return str(network.network_address)
        return str(network)
    address = _ip(target)
    return target.lower() if address is None else str(address)


def _unmapped(network):
    """
    An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) as the IPv4 range it
    maps, which is how IPv4 clients of a dual-stack listener are matched.
    """
    if network.version == 6 and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _ip(text):
    """
    The IP address C{text} spells, an IPv4-mapped IPv6 address as the IPv4
    address it maps; L{None} when it is not one.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


@lru_cache(maxsize=ADDRESSES_KEPT)
def addressGroup(host):
    """
    The addresses that per-address limits count as one: one person can
    easily use any of them.  An IPv4 address is its own group; an IPv6
    address is its /64 (one network's, which its owner chooses addresses
    in at will); every loopback address is one group (a local user may
    connect from any 127.x.y.z).  Anything else (L{None}, a name) is itself.
    """
    address = _ip(host) if host else None
    if address is None:
        return host
    if address.is_loopback:
        return "loopback"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _network(key):
    """
    The range an address ban's key covers, or L{None} for a single address.
    """
    return ipaddress.ip_network(key) if "/" in key else None


def targetKind(target):
    """
    Whether C{target} names a nickname (L{NICK}) or an address or range of
    addresses (L{ADDRESS}), or L{None} when it is neither.
    """
    if nickProblem(target) is None:
        return NICK
    # Only what can match a peer: the edge hands the core IP addresses, so
    # a host name, a port or brackets would make a ban that holds nobody.
    try:
        if "/" in target:
            ipaddress.ip_network(target, strict=False)
        else:
            ipaddress.ip_address(target)
    except ValueError:
        return None
    return ADDRESS


def covers(ban, nick, host):
    """
    Whether C{ban} applies to a user called C{nick} connecting from C{host}
    (either may be L{None}).
    """
    if ban.kind == NICK:
        return nick is not None and nickKey(nick) == ban.key[1]
    if host is None:
        return False
    key = ban.key[1]
    network = _network(key)
    if network is None:
        return _addressKey(host) == key
    address = _ip(host)
    return address is not None and address in network


def coversEveryone(ban):
    """
    Whether C{ban} is on a range wider than L{WIDEST_RANGE} allows
    (C{0.0.0.0/0}, C{::/0}, but also C{128.0.0.0/1}): a ban on everyone, or
    half of everyone, which nobody may set.
    """
    network = _network(ban.key[1]) if ban.kind == ADDRESS else None
    return network is not None and network.prefixlen < WIDEST_RANGE[network.version]


# The shortest prefix a ban's range may have, by IP version: a /8 of IPv4
# is a large provider's worth of addresses, a /16 of IPv6 a region's.
WIDEST_RANGE = {4: 8, 6: 16}

_LOOPBACK = ("127.0.0.1", "::1")


def coversLocal(ban, host):
    """
    Whether C{ban} covers a loopback address of either family while C{host}
    is one: a moderator on C{::1} must not shut out everyone on C{127.0.0.1},
    nor one on C{127.0.0.1} everyone on C{::1}.
    """
    address = _ip(host) if host else None
    if address is None or not address.is_loopback:
        return False
    return any(covers(ban, None, local) for local in _LOOPBACK)


def longest(ban, other):
    """
    Of C{ban} and C{other} (either may be L{None}), the one that holds
    longer: one until lifted outlasts any.
    """
    if ban is None or other is None:
        return ban or other
    if other.until is None or (ban.until is not None and other.until > ban.until):
        return other
    return ban


class BanList:
    """
    The bans in force, looked up by the core on the reactor thread.
    """

    def __init__(self):
        self._bans = {}
        # The keys of the bans on ranges, which are matched one by one;
        # every other ban is found by its key.
        self._ranges = set()
        # The keys of each room's bans, by room key (not the server's).
        self._rooms = {}

    def add(self, ban):
        self._bans[ban.key] = ban
        if ban.kind == ADDRESS and _network(ban.key[1]) is not None:
            self._ranges.add(ban.key)
        if ban.room:
            self._rooms.setdefault(ban.key[2], set()).add(ban.key)

    def remove(self, kind, target, room):
        """
        Lift a ban; return it, or L{None} when there was none.
        """
        key = banKey(kind, target, room)
        self._ranges.discard(key)
        keys = self._rooms.get(key[2])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._rooms[key[2]]
        return self._bans.pop(key, None)

    def removeRoom(self, room):
        """
        Lift every ban from the room called C{room}.
        """
        for key in list(self._rooms.get(roomKey(room), ())):
            ban = self._bans[key]
            self.remove(ban.kind, ban.target, ban.room)

    def anyIn(self, room):
        """
        Whether any ban, in force or ended but not yet dropped, is on the
        room called C{room} (C{""}: the server): where none is, L{find}
        finds nothing and ends nothing.
        """
        return bool(self._bans) and (not room or roomKey(room) in self._rooms)

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
        the server) that holds longest, or L{None}.  Bans that have ended
        are dropped here.

        @return: a pair of the ban found (or L{None}) and the bans that ended.
        """
        ended = []
        found = None
        place = roomKey(room)
        keys = [(NICK, nickKey(nick), place) if nick else None,
                (ADDRESS, _addressKey(host), place) if host else None]
        if host:
            keys += [key for key in self._ranges
                     if key[2] == place and covers(self._bans[key], None, host)]
        for key in keys:
            ban = self._bans.get(key) if key else None
            if ban is None:
                continue
            if ban.until is not None and ban.until <= now:
                self.remove(ban.kind, ban.target, ban.room)
                ended.append(ban)
            else:
                found = longest(found, ban)
        return found, ended

    def all(self):
        return sorted(self._bans.values(), key=lambda b: (b.room.lower(), b.time))

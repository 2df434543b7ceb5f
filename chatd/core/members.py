"""
A room's members, kept also grouped by wire format for the fan-out.

Most rooms are all one wire format, but a room where browsers, line clients
and IRC clients talk is not, and there the members come in join order, the
formats interleaved.  Walking them in that order costs the fan-out a look-up
of each recipient's encoded bytes and, for the metrics, another pass over
them to add up the bytes: over sockets, a room of 1,000 with every other member a
browser cost 1.7x an all-line room per delivery (bench/README.md).  Grouped
as they join, the fan-out hands each format's bytes to each group in a plain
loop and counts a group's bytes with one multiplication.
"""


class Members(dict):
    """
    The users in a room, by nickname key, as a C{dict} (in the order they
    joined); L{byWire} holds the same users grouped by their wire format.

    Only item assignment and deletion change it: a user's wire format is
    fixed for their session (L{chatd.core.chat.ChatCore.open}).

    @ivar byWire: for each wire format among the members, its members by
        nickname key, in the order they joined.
    """

    __slots__ = ("byWire",)

    def __init__(self):
        super().__init__()
        self.byWire = {}

    def __setitem__(self, key, user):
        old = self.get(key)
        if old is not None and old.wire is not user.wire:
            self._ungroup(key, old)
        super().__setitem__(key, user)
        group = self.byWire.get(user.wire)
        if group is None:
            group = self.byWire[user.wire] = {}
        group[key] = user

    def __delitem__(self, key):
        user = self[key]
        super().__delitem__(key)
        self._ungroup(key, user)

    def _ungroup(self, key, user):
        group = self.byWire[user.wire]
        del group[key]
        if not group:
            del self.byWire[user.wire]

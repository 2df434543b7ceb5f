"""
A room's members, kept also grouped by wire format for the fan-out.

Most rooms are all one wire format, but a room where browsers, line clients
and IRC clients talk is not, and there the members come in join order, the
formats interleaved.  Walking them in that order costs the fan-out a look-up
of each recipient's encoded bytes and, for the metrics, another pass over
them to add up the bytes: over sockets, a room of 1,000 with every other
member a browser cost 1.7x an all-line room per delivery (bench/README.md).
Grouped as they join, the fan-out hands each format's bytes to each group in
a plain loop and counts a group's bytes with one multiplication.

A room of one format, the usual case, is its own single group: only a room
that mixes formats keeps a second reference to each member.

The fan-out keeps each group's lines of the turn here too (L{chatd.core.runs}),
for as long as the members stay the same.
"""


class Members(dict):
    """
    The users in a room, by nickname key, as a C{dict} (in the order they
    joined); L{byWire} holds the same users grouped by their wire format.

    Only item assignment and deletion change it: a user's wire format is
    fixed for their session (L{chatd.core.chat.ChatCore.open}).

    @ivar byWire: for each wire format among the members, its members by
        nickname key, in the order they joined: while there is one format,
        this very C{dict}.
    @ivar runs: L{None}, or the fan-out's L{chatd.core.runs.Run} (or
        L{chatd.core.runs.FirstLine}) of each wire format, dropped at every
        change of members: a member who left must get no line after
        leaving, one who joined none from before.
    """

    __slots__ = ("byWire", "runs")

    def __init__(self):
        super().__init__()
        self.byWire = {}
        self.runs = None

    def __setitem__(self, key, user):
        self.runs = None
        old = self.get(key)
        if old is not None and old.wire is not user.wire:
            del self[key]
        wire, groups = user.wire, self.byWire
        if not groups:
            groups[wire] = self
        elif wire not in groups and len(groups) == 1:
            # A second format: from now on each has a group of its own.
            (first,) = groups
            groups[first] = dict(self)
            groups[wire] = {}
        elif wire not in groups:
            groups[wire] = {}
        group = groups[wire]
        if group is not self:
            group[key] = user
        super().__setitem__(key, user)

    def __delitem__(self, key):
        self.runs = None
        user = self[key]
        super().__delitem__(key)
        groups = self.byWire
        group = groups[user.wire]
        if group is self:
            if not self:
                groups.clear()
            return
        del group[key]
        if not group:
            del groups[user.wire]
            if len(groups) == 1:
                # One format left: its group is the room's members again.
                (wire,) = groups
                groups[wire] = self

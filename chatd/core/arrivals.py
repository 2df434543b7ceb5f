"""
Arrivals in a room, announced together.

A restart brings everyone back at once, and a big lobby is where new people
land: announced one by one, N arrivals in a room cost N fan-outs to up to N
members, N² deliveries, and in a room of 5,000 that is most of a server's
work.  So a room's arrivals are announced together at the end of the
reactor turn they happened in (a turn with many arrivals costs one fan-out per
room, not one per arrival), and in a room of L{BIG_ROOM} members or more at
most once per window: the first arrival in a quiet room at the end of its
turn, the ones that follow within the window together when it ends.  The
first window after a quiet spell is L{WINDOW} seconds; while arrivals keep
coming, the next ones are L{LONG_WINDOW}: each announcement is a send to
every member, and a storm of arrivals (a restart bringing everyone back)
would otherwise cost one to each member every L{WINDOW} seconds for as long
as it lasts.
Anything else that happens in the room (a line said, a departure, a rename, a
topic, the newcomer's being away) first announces the arrivals waiting, so
that nobody ever hears from or of a newcomer before hearing that they
arrived.

Who is told what: a member who was in the room before the first arrival of a
batch is told every arrival of it; a newcomer of the batch, who was shown the
room's members on entering (L{chatd.core.events.Entered}), is told only the
arrivals after theirs.  A batch of one is a plain L{chatd.core.events.Joined};
of more, an L{chatd.core.events.Arrived}, which each wire format shows as it
must (the line protocol above a few names as one line, IRC as one C{JOIN}
each); a newcomer's is the batch's, from the arrival after theirs on.
"""

from chatd.core import events

# In a room of at least this many members, at most one announcement of
# arrivals in a window: this many seconds after a quiet spell, the long one
# while arrivals keep coming.
BIG_ROOM = 10
WINDOW = 0.5
LONG_WINDOW = 2.0


class Arrivals:
    """
    The arrivals waiting to be announced, per room.

    @ivar window: the least time between two announcements in a big room.
    @ivar longWindow: the time between two announcements in a big room
        while arrivals keep coming.
    @ivar bigRoom: how many members make a room big.
    """

    def __init__(self, clock, fanout, window=WINDOW, bigRoom=BIG_ROOM,
                 longWindow=LONG_WINDOW):
        """
        @param clock: the L{IReactorTime} that times the windows.
        @param fanout: the L{chatd.core.fanout.Fanout} that delivers the
            announcements.
        """
        self._clock = clock
        self._fanout = fanout
        self.window = window
        self.longWindow = longWindow
        self.bigRoom = bigRoom
        # Room -> the users waiting to be announced there, in the order they
        # arrived, each followed by their nickname then: one flat list (a
        # pair per arrival would be 56 bytes more each, and a storm of
        # arrivals keeps thousands waiting for a long window).  A room is
        # here while an announcement is due, with or without anyone still
        # waiting.
        self._waiting = {}
        # The rooms whose first arrivals are announced at the end of this
        # turn, by one call for all of them: in a storm of logins, each
        # arriving in its lobby and leaving it in the same read, a call per
        # room would be a timer made and run per login.
        self._dueThisTurn = []

    def arrive(self, room, user):
        """
        C{user}, who is not yet among C{room}'s members, arrives there: the
        members will be told.
        """
        waiting = self._waiting.get(room)
        if waiting is None:
            # Announced once this turn's other reads are done.
            waiting = self._waiting[room] = []
            if not self._dueThisTurn:
                self._clock.callLater(0, self._turnEnded)
            self._dueThisTurn.append(room)
        waiting.append(user)
        waiting.append(user.nick)

    def announce(self, room):
        """
        Tell C{room}'s members of the arrivals waiting there now, before
        anything else happens in the room.
        """
        waiting = self._waiting.get(room)
        if waiting:
            self._waiting[room] = []
            self._tell(room, waiting)

    def _turnEnded(self):
        due, self._dueThisTurn = self._dueThisTurn, []
        for room in due:
            self._due(room)

    def _due(self, room, window=0.0):
        """
        The window of C{window} seconds (0: the turn of a first arrival)
        has ended in C{room}.
        """
        waiting = self._waiting.get(room)
        if not waiting:
            # A whole window without an arrival, or they were announced
            # early: the room is quiet again.
            del self._waiting[room]
            return
        # Emptied first: a delivery may disconnect its recipient, whose
        # departure announces what waits (nothing, now) before it.
        self._waiting[room] = []
        self._tell(room, waiting)
        if len(room.members) >= self.bigRoom:
            # Those who come next wait for the window to end: a long one
            # while they keep coming.
            window = self.longWindow if window else self.window
            self._clock.callLater(window, self._due, room, window)
        else:
            del self._waiting[room]

    def _tell(self, room, waiting):
        if len(waiting) == 2 and len(room.members) < 2:
            # One arrival, and nobody else there to tell (a login's lobby,
            # which it leaves in the same read).
            return
        # Those who left meanwhile without a word (put out, or mirrored
        # away) were never announced, so they are not now either; those who
        # left with one had this called first.
        waiting = [(user, nick) for user, nick in zip(waiting[::2], waiting[1::2])
                   if user.rooms.get(room.key) is room]
        if not waiting:
            return
        fanout = self._fanout
        nicks = tuple(nick for _, nick in waiting)
        newcomers = {user: i for i, (user, _) in enumerate(waiting)}
        others = [m for m in room.members.values() if m not in newcomers]
        if others:
            # (Not when the newcomers are alone: a login's lobby, which it
            # leaves in the same read, is announced to nobody.)
            fanout.toUsers(others, _announcement(room.name, nicks))
        # Each newcomer of the batch saw those before them among the members.
        for user, i in newcomers.items():
            if i + 1 < len(nicks):
                fanout.toUser(user, _announcement(room.name, nicks, i + 1))


def _announcement(room, nicks, since=0):
    if len(nicks) - since == 1:
        return events.Joined(room, nicks[since])
    return events.Arrived(room, nicks, since)


class BatchLines:
    """
    A wire format's lines for the arrivals of a batch, made once: the
    members are sent all of them, each newcomer of the batch the tail after
    their own (L{events.Arrived.since}), the same lines.  Kept for the last
    batch shown, which every newcomer's announcement follows at once.
    """

    __slots__ = ("_nicks", "_room", "_lines")

    def __init__(self):
        self._nicks = self._room = None
        self._lines = []

    def show(self, event, line):
        """
        The bytes that show the L{events.Arrived} C{event}, each arrival's
        made by C{line(room, nick)}.
        """
        # (The batch's tuple is kept here, so no other can be made at its
        # address meanwhile: the same object is the same batch.)
        if event.nicks is not self._nicks or event.room != self._room:
            self._lines = [line(event.room, nick) for nick in event.nicks]
            self._nicks, self._room = event.nicks, event.room
        return b"".join(self._lines[event.since:])

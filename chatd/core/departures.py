"""
Departures from rooms, announced together.

A network blip or a proxy restart drops everyone at once: announced one by
one, N departures from a room cost N fan-outs to the members left, N²/2
deliveries, each written on its own (5,000 quits from one lobby took 2.6 s
of the daemon's CPU, stalling every other room meanwhile).  So the parts and
quits of a reactor turn wait, and every room's are announced in one go at
the end of the turn (one fan-out per room, one write per member), or sooner
when something else is to be told first:

- anything else that happens in a room with departures waiting (a line, an
  arrival, a rename, a topic, a kick) announces them first, so that nobody
  hears of anything in the room before the departures that came before it,
  and a newcomer, who was not there to see them go, is never told of them;
- so does a nickname's being taken (a login, a rename) while its old holder's
  departures wait, so that nobody hears of the new holder before the old
  one's leaving (an IRC client takes a QUIT for the nickname in every
  channel).

A departure follows the departing user's own lines (said at once) and their
arrival's announcement (L{chatd.core.arrivals}: a departure first announces
the arrivals waiting in its room), so someone who arrives and leaves within
one window is shown arriving, then leaving.  Each member left in the room is
told of each departure exactly once; a member who leaves too before the
announcement is not.

Unlike arrivals, departures have no window in big rooms: every room's are
announced in one go, which is what lets IRC show a quit once across rooms
(a window is a room's), and a mass departure ends by itself, where a storm
of arrivals (a restart) goes on for as long as logins take.  Each room's
batch, of one or more, is a L{chatd.core.events.Departed}, which each wire
format shows as it must (the line protocol above a few as one line, IRC one
C{PART} or C{QUIT} each, a quit once per recipient however many of the
batch's rooms they share).

A brokered fan-out (several daemons) has no clock for this and announces
each departure on its own, in the stream's order, as before: a quit from all
of the user's rooms in one go (L{chatd.broker.fanout.BrokeredFanout.departed}).
"""

from chatd.core import events
from chatd.core.names import nickKey


class Departures:
    """
    The departures waiting to be announced, per room.

    @ivar batches: how many announcements were made (each numbers its
        L{events.Departed}).
    """

    def __init__(self, clock, fanout):
        """
        @param clock: the L{IReactorTime} that ends the turn.
        @param fanout: the L{chatd.core.fanout.Fanout} that delivers the
            announcements.
        """
        self._clock = clock
        self._fanout = fanout
        # Room -> its departures waiting (L{events.Parted}, L{events.Quit}),
        # in the order they happened; rooms in the order of their first.
        self._waiting = {}
        # The keys of the nicknames whose departures wait, and of those
        # with a part among them.
        self._nicks = set()
        self._parted = set()
        self._due = None
        self.batches = 0

    def depart(self, room, event):
        """
        C{event}, a part or a quit of someone no longer among C{room}'s
        members, is to be told to them.
        """
        key = nickKey(event.nick)
        if type(event) is events.Parted:
            self._parted.add(key)
        elif key in self._parted:
            # A quit after parts of the same turn: what waits is told first,
            # or a room parted, told after a room of the quit (rooms are told
            # in the order of their first departures), would hear of someone
            # gone, and an IRC client of a PART from a user it has dropped.
            # (All of it, not the rooms parted alone: a quit that waits in
            # them and in others would be told in two announcements, and an
            # IRC client sharing both given its QUIT twice.)
            self.announce()
        waiting = self._waiting.get(room)
        if waiting is None:
            waiting = self._waiting[room] = []
        waiting.append(event)
        self._nicks.add(key)
        if self._due is None:
            # Announced once this turn's other reads are done (or before:
            # the call is kept, and finds nothing, rather than cancelled and
            # made again for every departure announced early in a turn).
            self._due = self._clock.callLater(0, self._turnEnded)

    def announceIn(self, room):
        """
        Announce the departures waiting, if C{room} has any: something else
        is about to happen there.
        """
        if room in self._waiting:
            self.announce()

    def announceOf(self, nick):
        """
        Announce the departures waiting, if the user called C{nick} is among
        them: someone else is taking the nickname.
        """
        # (Every login asks, and usually no departure waits.)
        if self._nicks and nickKey(nick) in self._nicks:
            self.announce()

    def _turnEnded(self):
        self._due = None
        self.announce()

    def announce(self):
        """
        Tell every room's members the departures waiting there, now.
        """
        if not self._waiting:
            return
        # Taken first: a delivery may disconnect its recipient, whose quit
        # waits for the next announcement.
        waiting, self._waiting = self._waiting, {}
        self._nicks = set()
        self._parted = set()
        self.batches += 1
        batch = self.batches
        tell = self._fanout.toMembers
        for room, departures in waiting.items():
            tell(room, events.Departed(room.name, tuple(departures), batch))

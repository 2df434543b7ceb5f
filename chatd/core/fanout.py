"""
The one place where events reach their recipients.

An event is encoded once per wire format, and the same bytes object is handed
to every recipient's outbox: fan-out to a thousand members costs one format and
a thousand appends, never a thousand formats.  A room's lines go further: the
first of a turn is handed to each member's outbox, a second begins the room's
run (L{chatd.core.runs}), and each further line is one append to the run,
which every member writes, joined once, with the rest of its turn.

A wire format is any object with:

- C{encode(event)}: the bytes every recipient but the actor gets;
- C{encodeOwn(event)}: the bytes that confirm the event to its actor (IRC
  echoes a JOIN, the line protocol says C{=== joined #room}), or L{None} when
  the actor is told nothing (a room message is not echoed);
- C{encodeHistory(event)}: the bytes that show a stored room line later;

and optionally C{ownIsEveryones(event)}: whether the actor's copy of C{event}
is the very bytes everyone else gets (the web's own lines), so that the actor
is sent them, or keeps its share of the room's run, like any member; and
C{runBytes}, the most bytes of a room's run (L{chatd.core.runs.RUN_BYTES}
when absent).
"""

from itertools import repeat
from operator import attrgetter

from chatd.core import events
from chatd.core.arrivals import Arrivals
from chatd.core.departures import Departures
from chatd.core.runs import RUN_BYTES, FirstLine, Run

_wireOf = attrgetter("wire")


def _size(data):
    """
    The length of encoded C{data}; 0 for what a test's wire format makes
    that is not bytes.
    """
    return len(data) if type(data) is bytes else 0


def _ownIsEveryones(wire, event):
    """
    Whether C{wire} shows C{event}'s actor the bytes everyone gets.
    """
    same = getattr(wire, "ownIsEveryones", None)
    return same is not None and same(event)


class Fanout:
    """
    Delivers events to users' outboxes.

    @ivar deliveries: how many times an event reached a recipient other than
        its actor (the metrics read it); counted once per event, never per
        recipient, so that counting costs the hot path nothing.
    @ivar sentBytes: the bytes of those deliveries and of the actors'
        confirmations, counted likewise.
    """

    # (Class attributes, so that a subclass need not call this class's
    # __init__; each instance counts in its own once it counts.)
    deliveries = 0
    sentBytes = 0
    arrivals = None
    departures = None

    def __init__(self, clock=None):
        """
        @param clock: an L{IReactorTime} to announce each room's arrivals
            together (L{chatd.core.arrivals}) and its departures
            (L{chatd.core.departures}), or L{None} to announce each as it
            happens.
        """
        if clock is not None:
            self.arrivals = Arrivals(clock, self)
            self.departures = Departures(clock, self)

    def arrived(self, room, user):
        """
        Tell C{room}'s members that C{user}, not yet one of them, arrived.
        """
        if self.arrivals is None:
            self.toRoom(room, events.Joined(room.name, user.nick))
            return
        # The members are told of those who left before the newcomer came,
        # and the newcomer is not.
        self.departures.announceIn(room)
        self.arrivals.arrive(room, user)

    def departed(self, room, event):
        """
        Tell C{room}'s members C{event}: the part, quit or kick of someone
        no longer among them.  A part or a quit is announced with the
        others of its turn (L{chatd.core.departures}); a kick, a
        moderator's doing, at once.
        """
        if self.departures is None or type(event) is events.Kicked:
            self.toRoom(room, event)
        else:
            self.departures.depart(room, event)

    def nickTaken(self, nick):
        """
        Someone is taking the nickname C{nick}: its old holder's departures
        not yet announced are announced now, before anything of the new
        holder's.
        """
        if self.departures is not None:
            self.departures.announceOf(nick)

    def announceArrivals(self, room):
        """
        Announce the arrivals in C{room} not yet announced, now.
        """
        if self.arrivals is not None:
            self.arrivals.announce(room)

    def toRoom(self, room, event, actor=None):
        """
        Deliver C{event} to every member of C{room}; C{actor}, if a member,
        gets its own confirmation of it instead.  The arrivals and departures
        not yet announced there are announced first (L{chatd.core.arrivals},
        L{chatd.core.departures}).
        """
        self.announceWaiting(room)
        self.toMembers(room, event, actor)

    def announceWaiting(self, room):
        """
        Announce the arrivals and departures in C{room} not yet announced,
        now.
        """
        if self.arrivals is not None:
            self.arrivals.announce(room)
            self.departures.announceIn(room)

    def toMembers(self, room, event, actor=None):
        """
        Deliver C{event} to every member of C{room} as L{toRoom} does, with
        nothing announced first.

        The members are walked one wire format at a time
        (L{chatd.core.members.Members.byWire}): each format's bytes are
        encoded once, and counted with one multiplication, however the
        formats are mixed in the room.  A format's first line in a turn is
        handed to each member's outbox; a second in the same turn begins the
        group's L{Run} (L{chatd.core.runs}), and each further line is one
        append, not one call per member.
        """
        members = room.members
        runs = members.runs
        if runs is None:
            runs = members.runs = {}
        # A snapshot: a delivery may disconnect its recipient, which changes
        # the groups being walked (and drops the runs).
        groups = list(members.byWire.items())
        for wire, users in groups:
            data = wire.encode(event)
            state = runs.get(wire)
            # An actor whose copy is everyone's is sent it as a member, and
            # keeps its share of the run (still counted as confirmed).
            same = actor is not None and _ownIsEveryones(wire, event)
            if type(data) is not bytes:
                # What only the recipient's outbox can render (IRC's): sent
                # to each, which ends any share of a run first.
                confirmed = self._toEach(tuple(users.values()), event, data, actor)[0]
                runs.pop(wire, None)
            elif (type(state) is Run and state.sharing
                    and state.size < getattr(wire, "runBytes", RUN_BYTES)
                    and state.interrupted * 2 <= len(users)):
                confirmed = self._toRun(state, users, event, data, actor, same)
            elif (type(state) is Run and state.sharing
                    and state.size >= getattr(wire, "runBytes", RUN_BYTES)):
                # A full run: a new one.
                run = runs[wire] = Run()
                confirmed = self._begin(run, tuple(users.values()), event, data, actor, same)
            elif type(state) is FirstLine and state.thisTurn():
                if state.shareable:
                    # A second line in the turn: a run, from the first (a
                    # member who holds only that takes it into the run).
                    run = runs[wire] = Run()
                    run.append(state.data)
                    confirmed = self._begin(run, tuple(users.values()), event, data, actor,
                                            same)
                else:
                    # Sent line by line for the rest of the turn (below).
                    confirmed = self._toEach(tuple(users.values()), event, data, actor,
                                             same)[0]
            else:
                # The turn's first line here; or most members were sent
                # something else since the last line (lines of rooms they
                # share interleave: each would end a share and begin one,
                # per member and line), and the room's lines are sent to
                # each for the rest of the turn.
                interleaved = type(state) is Run and state.sharing
                confirmed, probe = self._toEach(tuple(users.values()), event, data, actor,
                                                same)
                turn = probe.turn() if getattr(probe, "turn", None) is not None else None
                runs[wire] = (None if turn is None
                              else FirstLine(probe, turn, not interleaved, data))
            count = len(users) - confirmed
            self.deliveries += count
            self.sentBytes += _size(data) * (count + confirmed if same else count)

    def _begin(self, run, users, event, data, actor, same=False):
        """
        Begin C{run} with C{data} for C{users}: each member's outbox shares
        it from here on, or is sent C{data} itself (and each further line of
        the run) if it cannot share now.  The actor gets its confirmation
        instead, and shares from the next line on; if C{same} (its copy is
        C{data}), it shares from this line as everyone does.

        @return: 1 if the actor is among C{users}, else 0.
        """
        individual = run.individual
        confirmed = 0
        for user in users:
            outbox = user.outbox
            share = getattr(outbox, "share", None)
            if user is actor:
                confirmed = 1
                if not same:
                    self.toActor(user, event)
                    (run.left if share is not None else individual).append(outbox)
                    continue
            if share is not None and share(run):
                continue
            individual.append(outbox)
            outbox.send(data)
        if run.sharing:
            run.append(data)
        if actor is not None:
            run.actors[actor] = confirmed
        return confirmed

    def _toRun(self, run, users, event, data, actor, same=False):
        """
        Append C{data} to C{run}, taking back first those who left it (or
        sending it to them if they cannot share now), and send it to those
        who are sent each line.  The actor's share ends before its line, and
        it is sent its confirmation; if C{same} (its copy is C{data}), the
        line reaches it as it reaches everyone.

        @return: 1 if the actor is among C{users}, else 0.
        """
        individual = run.individual
        if run.left:
            left, run.left, run.interrupted = run.left, [], 0
            for outbox in left:
                if not outbox.share(run):
                    individual.append(outbox)
        mine = None
        confirmed = 0
        if actor is not None:
            # Whether the actor is a member, found once per run: the members
            # stay the same for its life.
            confirmed = run.actors.get(actor)
            if confirmed is None:
                confirmed = run.actors[actor] = int(actor in users.values())
        if confirmed and not same:
            mine = actor.outbox
            # The actor's share ends before its own line: it is told its
            # confirmation instead, and shares again from the next line.
            unshare = getattr(mine, "unshare", None)
            if unshare is not None:
                unshare(run)
            self.toActor(actor, event)
        if run.sharing:
            run.append(data)
        for outbox in individual:
            if outbox is not mine:
                outbox.send(data)
        return confirmed

    def _toEach(self, users, event, data, actor, same=False):
        """
        Send C{data} to each of C{users}, and C{event}'s confirmation to
        C{actor} if among them (C{data} itself if C{same}).

        @return: 1 if the actor is among C{users}, else 0; and the outbox
            sent to last, or L{None}.
        """
        confirmed = 0
        last = None
        for user in users:
            if user is actor:
                confirmed = 1
                if not same:
                    self.toActor(user, event)
                    continue
            last = user.outbox
            last.send(data)
        return confirmed, last

    def toUser(self, user, event):
        """
        Deliver C{event} to C{user} alone.
        """
        data = user.wire.encode(event)
        self.deliveries += 1
        self.sentBytes += _size(data)
        user.outbox.send(data)

    def toActor(self, user, event):
        """
        Confirm C{event} to C{user}, who did it, if their wire format shows
        such a confirmation.
        """
        data = user.wire.encodeOwn(event)
        if data:
            self.sentBytes += _size(data)
            user.outbox.send(data)

    def toUsers(self, users, event, actor=None):
        """
        Deliver C{event} to each of C{users}, and its confirmation to
        C{actor} if among them.
        """
        encoded = {}
        # Everyone usually shares one wire format: only a change of format
        # needs the look-up.
        lastWire = data = None
        # A snapshot: a delivery may disconnect its recipient, which changes
        # the collection being walked.
        users = tuple(users)
        confirmed = 0
        for user in users:
            if user is actor:
                self.toActor(user, event)
                confirmed = 1
                continue
            wire = user.wire
            if wire is not lastWire:
                data = encoded.get(wire)
                if data is None:
                    data = encoded[wire] = wire.encode(event)
                lastWire = wire
            user.outbox.send(data)
        self.counted(users, encoded, confirmed and actor)

    def toEach(self, users, event):
        """
        Deliver C{event}, which some wire formats do not show (they encode
        it as C{b""}), to each of C{users} whose wire format shows it: for
        rare events (away changes), off the hot path of L{toUsers}.
        """
        encoded = {}
        for user in tuple(users):
            wire = user.wire
            data = encoded.get(wire)
            if data is None:
                data = encoded[wire] = wire.encode(event)
            if data:
                self.deliveries += 1
                self.sentBytes += _size(data)
                user.outbox.send(data)

    def counted(self, users, encoded, actor):
        """
        Count, once per event, the deliveries of an event to C{users} (a
        sized collection) other than C{actor} (a member, or a false value),
        and their bytes: C{encoded} holds the bytes per wire format.
        """
        count = len(users) - (1 if actor else 0)
        self.deliveries += count
        if len(encoded) == 1:
            for data in encoded.values():
                self.sentBytes += _size(data) * count
        elif encoded:
            # Several wire formats in one room: each recipient's share, summed
            # in C (no Python step per recipient).
            try:
                sent = sum(map(len, map(encoded.get, map(_wireOf, users), repeat(b""))))
                if actor:
                    sent -= len(encoded.get(actor.wire, b""))
            except TypeError:
                sent = 0
            self.sentBytes += sent

    def readHistory(self, user, room, count, read):
        """
        The last C{count} stored lines of C{room}, which C{user} is in, as
        the store's read C{read()} answers them (a L{Deferred}).  With one
        daemon every line is stored as it is delivered, so the store's
        answer as of now is what the user has not been shown live.  (A
        brokered fan-out reads later and adds what the stream said.)
        """
        return read()

    def mayReadHistory(self, room, history):
        """
        Whether L{readHistory} of C{room} from C{history} may find any
        lines: with one daemon, whether the store may hold any.
        """
        return history.mayHold(room.name)

    def proved(self, user):
        """
        C{user} now owns the nickname they use (they registered it).  Nothing
        to do for one daemon; a brokered fan-out tells the other daemons, who
        show them identified.
        """

    def passwordTried(self, key, group, right):
        """
        A password for the registered nickname whose key is C{key} was
        checked, from address group C{group}, and was C{right} or not.
        Nothing to do for one daemon; a brokered fan-out tells the other
        daemons, whose L{chatd.core.identity.Identity} slows guessing as if
        the attempt had been theirs.
        """

    def passwordChanged(self, key):
        """
        The password of the registered nickname whose key is C{key} was
        changed here.  Nothing to do for one daemon; a brokered fan-out tells
        the other daemons, whose L{chatd.core.identity.Identity} voids the
        proofs of the old one made there.
        """

    def userGone(self, user):
        """
        C{user} has left the server (their rooms were told already).  Nothing
        to do for one daemon; a brokered fan-out frees their nickname in the
        cluster.
        """

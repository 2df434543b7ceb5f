"""
A room's lines of one wire format, shared by its members for a turn.

In a busy room many lines arrive in one reactor turn (ten senders keeping 64
lines in flight to a room of 1,000 put 300-400 in each), and each member
gets them all in the one write of the turn.  Handing every line to every
member's outbox cost a Python call per line per member, most of chatd's CPU
per delivery.  Instead, from a room's second line in a turn on (the first
is sent to each member as before: a run costs each member about two sends,
which only a turn of several lines repays), the fan-out appends each line
once to the room's L{Run}, and each member's outbox takes its share of the
run, joined once for all of them, when it is written
(L{chatd.edge.outbox.Outbox.share}).  Where members keep being sent other
rooms' lines between the room's own, the room is sent line by line for the
rest of the turn (L{chatd.core.fanout.Fanout.toMembers}).

An outbox shares a run from a line on: anything else it is sent (another
room's line, a private one, a reply) first ends its share at the run's end
then, so each member's lines stay in the order they were sent, and it leaves
the run (L{left}) until the room's next line, which takes it back from there.
An outbox that cannot share (paused, holding a place for history, outside a
batch, or one without L{share} at all) is sent each line of the run itself
(L{individual}).

The fan-out keeps a room's runs only while its members stay the same
(L{chatd.core.members.Members}): a join or a departure drops them, so that a
member who left gets no line of the room after leaving and one who joined
none from before.
"""

# A run longer than this is ended and a new one begun: each member's share
# then reaches their outbox, which writes it at once once it holds
# FLUSH_BYTES (chatd.edge.outbox), as it did each line.  A wire format of
# bigger lines may say its own (C{runBytes}: the web's frames are ~1.8x a
# line, and would otherwise begin runs, a share per member each, about
# twice as often).
RUN_BYTES = 8 * 1024


class FirstLine:
    """
    A room's first line of a turn for one wire format, sent to each member
    as it is: a second line in the same turn begins a L{Run} from it.

    @ivar probe: an outbox it was sent to, which tells the turn
        (L{chatd.edge.outbox.Outbox.turn}).
    @ivar turn: the turn it was sent in.
    @ivar shareable: whether a run may begin in this turn: not when the
        room's members were interrupted in the last run (its lines are sent
        line by line for the rest of the turn).
    @ivar data: its bytes.
    """

    __slots__ = ("probe", "turn", "shareable", "data")

    def __init__(self, probe, turn, shareable, data):
        self.probe = probe
        self.turn = turn
        self.shareable = shareable
        self.data = data

    def thisTurn(self):
        """
        Whether a line sent now is sent in the same turn as this one.
        """
        return self.probe.turn() == self.turn


class Run:
    """
    A room's lines for one wire format in one turn.

    @ivar lines: the lines' bytes, in the order sent.
    @ivar size: their length in bytes.
    @ivar sharing: how many outboxes share the run now.
    @ivar left: outboxes that shared the run and left it (sent something
        else, or written) while it still had others: the room's next line
        takes them back.
    @ivar interrupted: how many of L{left} left because they were sent
        something else.
    @ivar individual: outboxes sent each line of the run one by one.
    @ivar actors: whether each actor of the run's lines so far is a member
        (1) or not (0), found once.
    """

    __slots__ = ("lines", "size", "sharing", "left", "interrupted", "individual",
                 "actors", "_joined")

    def __init__(self):
        self.lines = []
        self.size = 0
        self.sharing = 0
        self.left = []
        self.interrupted = 0
        self.individual = []
        self.actors = {}
        # The last lines joined: (from which, how many, the bytes), so that
        # the members sharing from one line on write one object between
        # them.
        self._joined = None

    def append(self, data):
        self.lines.append(data)
        self.size += len(data)

    def since(self, start):
        """
        The lines from the C{start}th on, as one L{bytes}.
        """
        lines = self.lines
        count = len(lines) - start
        if count <= 1:
            return lines[start] if count else b""
        # Only the last join is kept: those who take the same lines take
        # them one after the other (the flush writes outboxes in the order
        # they began to share), and a join kept for each start (an actor's
        # share ends at each of its lines) would keep the run's bytes
        # several times over.
        joined = self._joined
        if joined is None or joined[0] != start or joined[1] != count:
            joined = self._joined = (start, count, b"".join(lines[start:]))
        return joined[2]

    def ended(self):
        """
        No outbox shares the run any more: let its lines go (the fan-out
        begins a new run at the room's next line).
        """
        self.lines, self.left, self.interrupted, self._joined = [], [], 0, None

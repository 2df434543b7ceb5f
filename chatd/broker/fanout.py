"""
The fan-out of a daemon that is one of several sharing rooms through Redis.

One Redis Stream (C{chatd:events}) carries what the core emits about rooms,
from every daemon.  Its entry IDs are the cluster's one order: every daemon,
the sender's own included, delivers a room's lines to its local members as it
reads them back from the stream, so that members on different daemons see
every room's lines, joins, parts and renames in one order.  One stream for all
rooms rather than one per room: membership, renames and nicknames then change
in the same order everywhere, and a daemon has one cursor to resume from.

The core keeps the shape it has with one daemon: this fan-out mirrors the
other daemons' users (L{RemoteUser}s) and their rooms and topics into the
local core, from the same stream, so that C{/who}, C{/rooms}, C{/whois},
C{/msg} and the core's own "is this nickname free" work unchanged; the mirror
is changed directly (or with C{removeMember} and no event), never through
core calls that would emit events of their own.

What the core hands to one local user (replies to their actions, a private
message's confirmation) waits behind the room events that the same daemon
emitted before it, so that a user sees, say, C{=== joined #dev} only after
their earlier lines' events came back; it keeps its place in the user's
outbox meanwhile (C{Outbox.hold}), so that what the front end writes after
it (a reply, a history replay) comes after it, as with one daemon.

Nicknames are claimed in Redis (C{SET NX} with a lease that the heartbeat
renews).  The core accepts a nickname when the local mirror knows no one
holding it; the claim in Redis then decides: whatever the newcomer is told
waits for it, and nothing of theirs is published unless it was won.  Of two
daemons claiming one nickname at once, exactly one wins; the loser's user is
told so and disconnected.

On a shared history store (PostgreSQL), a join's replay is read once the
join has come back from the stream, and is made of the lines before the join
in the stream: those the store has, less those this daemon read after the
join or has not read yet (the joiner gets them live), plus those it read
before the join that their daemon had not stored yet (L{readHistory}).

When Redis cannot be reached, local users keep talking: events are delivered
locally at once and published when Redis is back (the others get them late,
in the order they were said); new nicknames are refused meanwhile.  A daemon
whose heartbeat has not been read for C{lease} seconds is lost: its users are
shown as having quit (C{node lost}).
"""

import os
from collections import OrderedDict, deque
from dataclasses import replace
from weakref import WeakKeyDictionary, WeakSet

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chatd.broker import codec
from chatd.core import events
from chatd.core.chat import Room, User
from chatd.core.fanout import Fanout
from chatd.core.moderation import muteNick, unmuteNick
from chatd.core.names import nickKey, roomKey

NODE_LOST = "node lost"
NODE_STOPPED = "server shutdown"
NICK_TAKEN = "nickname taken elsewhere"
UNREACHABLE = ("the other chat servers cannot be reached to check nicknames; "
               "try again in a moment")

_LEAVING = (events.Parted, events.Quit, events.Kicked)
# Room events said or done by the user they name.
_SPOKEN = (events.Said, events.Acted, events.TopicChanged)
_SKIPPED = object()


class _Nowhere:
    """
    The outbox and wire of a user on another daemon: that daemon delivers to
    them; nothing here does.
    """

    @staticmethod
    def send(data):
        pass

    @staticmethod
    def encode(event):
        return b""

    @staticmethod
    def encodeOwn(event):
        return None


class RemoteUser(User):
    """
    A user connected to another daemon (C{node}), mirrored into this core.
    """

    __slots__ = ("node",)

    def __init__(self, node, nick, hangUp):
        super().__init__(_Nowhere, _Nowhere, None, hangUp)
        self.node = node
        self.named(nick)


class _Item:
    """
    Something for one local user that waits for the room events published
    before it (C{after}: the last own sequence number then), or a nickname
    claim everything after it waits for.
    """

    __slots__ = ("after", "user", "event", "own", "claim", "done", "place")

    def __init__(self, after, user=None, event=None, own=False, claim=None):
        self.place = None
        self.after = after
        self.user = user
        self.event = event
        self.own = own
        self.claim = claim
        self.done = False


class _Heard:
    """
    A room's lines this daemon read from the stream lately, in the order
    read: C{(count, when read, event)}, where C{count} numbers every room
    line read; every line read after C{since} (POSIX) is among them.
    """

    __slots__ = ("lines", "since")

    def __init__(self, since):
        self.lines = deque()
        self.since = since


class BrokeredFanout(Fanout):
    """
    A L{Fanout} for one daemon of several sharing one Redis.

    @ivar node: this daemon's id in the cluster.
    @ivar up: L{None} while connecting the first time, then whether Redis is
        reachable.
    """

    _log = Logger()

    # A daemon not heard from for this long is lost; nicknames are held for
    # as long without renewal.
    LEASE = 5.0
    BEAT = 1.0
    # Events waiting for Redis beyond this are delivered here but never
    # published (logged).
    MAX_BACKLOG = 100_000
    # A room's lines read from the stream are remembered this long, and at
    # most this many, for the joins' replays (see readHistory): a line its
    # daemon stores later than that may be missing from a replay.
    HEARD_SECONDS = 30.0
    HEARD_LINES = 500
    # How far daemons' clocks may disagree (NTP keeps them within
    # milliseconds): a line is taken for one not read yet only if said this
    # long after the daemon began remembering.
    SKEW = 1.0
    # How long a snapshot waits for the nickname claims out here.
    SNAPSHOT_PATIENCE = 1.0

    def __init__(self, clock, link, node=None, lease=LEASE, beat=BEAT):
        self.clock = clock
        self.link = link
        self.node = node or os.urandom(6).hex()
        self.lease = lease
        self.beatInterval = beat
        self.core = None
        self.up = None
        self._upSince = clock.seconds()
        # When this daemon last read its own heartbeat back: while it reads
        # nothing, it cannot tell who else is alive.
        self._readAt = clock.seconds()
        self._seq = 0
        self._outstanding = OrderedDict()  # own seq -> (entry, stash) not yet back
        self._local = deque()
        self._view = {}  # room key -> {nick key: local User}, in stream order
        self._claims = {}  # nick key -> (user, old key, old nick, item)
        self._owned = {}  # nick key -> local user whose nickname we hold
        self._phantoms = WeakSet()
        self._phantomOld = WeakKeyDictionary()
        # Renames refused here: user -> (old key, old nick) while the core
        # finishes the change (Redis away), and user -> (old nick, new
        # nick) once undone, to tell the others under the old nickname what
        # the user did meanwhile.
        self._refused = WeakKeyDictionary()
        self._undone = WeakKeyDictionary()
        # Own entries told here already (Redis away) that wait for a
        # nickname claim before they are published: seq -> (entry, stash).
        self._held = {}
        self._takeovers = set()
        self._awaySaid = {}  # nick key -> the away text the others know
        self._leftAt = {}  # nick key -> own seq of the last "gone" of it
        # Another daemon's user whose quit from one of their rooms took
        # them out of the mirror: nick key -> node, until their "gone", so
        # that their quits from their other rooms are shown too.
        self._quitting = {}
        # The quits of the user the core is letting go, from each of their
        # rooms, published together once it is done (L{departed}).
        self._departing = []
        self._snapshotDue = None  # since when a snapshot waits for claims
        self._forgotten = {}  # lost node -> {nick key: (nick, room names)}
        self._lifted = {}  # (room key, nick key) -> when its mute was lifted
        self._nodes = {}  # node -> when last heard from
        self._lost = set()
        self._departed = set()
        self._lastSeq = {}
        self._byNode = {}  # node -> nick keys of its users
        self._dropped = 0
        self._heart = LoopingCall(self._beat)
        self._heart.clock = clock
        self.coalescer = None
        self._heard = {}  # room key -> _Heard
        self._heardCount = 0
        self._readingSince = None
        self._seating = WeakKeyDictionary()  # local user -> {room key: [callables]}

    # Wiring

    def attach(self, core, coalescer=None):
        """
        @param coalescer: the gate's L{chatd.edge.outbox.Coalescer}: what a
            read of the stream delivers reaches each recipient in one write,
            as what a read of a connection makes the server say does.
        """
        self.core = core
        self.coalescer = coalescer

    def start(self):
        self.link.start(self)
        self._heart.start(self.beatInterval, now=False)

    def stop(self):
        if self._heart.running:
            self._heart.stop()
        self._publish({"k": "bye"})
        return self.link.stop()

    # What the core calls

    def departed(self, room, event):
        """
        L{Fanout.departed}; a quit waits for the user's quits from their
        other rooms, which the core tells one after the other before
        L{userGone}: published together as one entry, they reach each member
        one after the other on every daemon, with nothing between them (a
        line, a private message), so that an IRC client, shown one QUIT for
        them all, is shown it once.
        """
        if type(event) is not events.Quit:
            super().departed(room, event)
            return
        prepared = self._roomEntry(event, None)
        if prepared is not None:
            self._departing.append(prepared)

    def toRoom(self, room, event, actor=None):
        owner = room.owner if isinstance(event, events.Joined) else None
        self._publishRoom(event, actor, owner=owner)

    def toUsers(self, users, event, actor=None):
        if getattr(event, "room", None) is not None:
            self._publishRoom(event, actor)
        else:
            for user in tuple(users):
                if user is actor:
                    self.toActor(user, event)
                else:
                    self.toUser(user, event)

    def toUser(self, user, event):
        if user in self._phantoms:
            return
        if isinstance(event, events.PutOut):
            # Put out of a room without a word to its members (a room ban):
            # the mirrors elsewhere follow.
            if not isinstance(user, RemoteUser):
                self._leaveView(user, event.room)
            self._publish({"k": "out", "nick": user.nick, "room": event.room,
                           "sn": user.node if isinstance(user, RemoteUser) else self.node})
        if isinstance(user, RemoteUser):
            if isinstance(event, events.Ghosted):
                # Its owner proved the nickname theirs here: the claim that
                # follows takes it from the other daemon.
                self._takeovers.add(nickKey(user.nick))
            self._toRemote(user, event)
            return
        if isinstance(event, events.NowKnownAs):
            if not self._nickChanged(user, event):
                return
        elif isinstance(event, events.Identified):
            self.proved(user)
        self._direct(user, event, False)

    def toEach(self, users, event):
        """
        L{Fanout.toEach} for the users here, in order with what this daemon
        delivers them; each other daemon tells its own (an away change
        reaches them with the next heartbeat).
        """
        for user in tuple(users):
            if not isinstance(user, RemoteUser):
                self._direct(user, event, False)

    def toActor(self, user, event):
        if user in self._phantoms or isinstance(user, RemoteUser):
            return
        if getattr(event, "room", None) is not None:
            # Published for the other daemons' mirrors (a room that empties
            # here gets no other word of it); the actor is told here, in
            # the order of their own requests.
            if isinstance(event, _LEAVING):
                self._leaveView(user, event.room)
            self._publishRoom(event, user, actorOnly=True)
        self._direct(user, event, True)

    def readHistory(self, user, room, count, read):
        """
        L{Fanout.readHistory} on a shared store: read once C{user}'s join
        of C{room} has come back from the stream, and made of the lines
        before their place in the stream, so that each line is shown to
        them once, in this or live.
        """
        if not self.core.history.shared:
            return read()
        rkey = roomKey(room.name)
        waiting = self._seating.get(user, {}).get(rkey)
        if waiting is None:
            return read().addCallback(self._before, rkey, count, self._heardCount)
        found = Deferred()
        # (Called as the stream is read: a store that raises fails the
        # replay, not the reading.)
        waiting.append(lambda mark: maybeDeferred(read).addCallback(
            self._before, rkey, count, mark).chainDeferred(found))
        return found

    def mayReadHistory(self, room, history):
        # On a shared store the stream's lines not yet stored are added.
        return history.shared or super().mayReadHistory(room, history)

    def _before(self, stored, rkey, count, mark):
        """
        The last C{count} lines of the room C{rkey} before the place in the
        stream where C{mark} room lines had been read here: C{stored} (the
        store's answer, asked then), less what was read after that place,
        less what is not read yet (coming live), plus what was read before
        it and not stored yet.
        """
        heard = self._heard.get(rkey) or _Heard(self._remembersSince())
        before, after = {}, set()
        for number, when, event in heard.lines:
            if number <= mark:
                before[event.id] = event
            else:
                after.add(event.id)
        lines = {}
        for event in stored:
            if event.id in after:
                continue
            if event.id not in before and event.time > heard.since + self.SKEW:
                # Said since this daemon remembers every line read: not
                # read yet, so after the place, on its way live.
                continue
            lines[event.id] = event
        for id, event in before.items():
            lines.setdefault(id, event)
        return [lines[id] for id in sorted(lines)][-count:]

    def _remembersSince(self):
        """
        Since when every room line read here is remembered, in a room of
        which none is: lines older than L{HEARD_SECONDS} are forgotten.
        """
        now = self.clock.seconds()
        since = now if self._readingSince is None else self._readingSince
        return max(since, now - self.HEARD_SECONDS)

    def _hear(self, rkey, event):
        heard = self._heard.get(rkey)
        if heard is None:
            heard = self._heard[rkey] = _Heard(self._remembersSince())
        self._heardCount += 1
        heard.lines.append((self._heardCount, self.clock.seconds(), event))
        if len(heard.lines) > self.HEARD_LINES:
            heard.since = heard.lines.popleft()[1]

    def _forgetHeard(self):
        """
        Forget the lines read longer ago than L{HEARD_SECONDS}.
        """
        horizon = self.clock.seconds() - self.HEARD_SECONDS
        for rkey, heard in list(self._heard.items()):
            lines = heard.lines
            while lines and lines[0][1] < horizon:
                heard.since = lines.popleft()[1]
            if not lines:
                del self._heard[rkey]

    def proved(self, user):
        if isinstance(user, RemoteUser) or user.nick is None:
            return
        # So that the others know them for an operator (who cannot be
        # kicked) or a nickname's owner.  (One who arrives by proving a
        # nickname is announced with it: see _nickChanged.)
        self._publish({"k": "ident", "nick": user.nick, "account": user.account})

    def passwordTried(self, key, group, right):
        # Counted here already.
        self._publish({"k": "pw", "key": key, "g": group, "ok": right}, here=False)

    def passwordChanged(self, key):
        # Voided here already.
        self._publish({"k": "pwchg", "key": key}, here=False)

    def userGone(self, user):
        if self._departing:
            self._publishQuits()
        if isinstance(user, RemoteUser):
            return
        if user in self._phantoms:
            # Its nickname may have kept another daemon's user of that name
            # out of the mirror here: ask everyone who is where.
            self._publish({"k": "syncreq"})
            old = self._phantomOld.pop(user, None)
            if old is not None:
                # A rename that could not be undone: the others know the old
                # nickname, in the rooms where they saw the user join.
                nick, key = old
                quits = [self._quitOf(user, rkey, nick)
                         for rkey, view in list(self._view.items()) if view.get(key) is user]
                if quits:
                    self._publish({"k": "quits", "es": quits})
                self._publish({"k": "gone", "nick": nick}, {"user": user})
                if self._owned.get(key) is user:
                    del self._owned[key]
                    self.link.release(key)
            key = nickKey(user.nick)
            for rkey, view in list(self._view.items()):
                if view.get(key) is user:
                    # Shown arriving here alone (told at once while Redis
                    # was away), never to the others: shown leaving here.
                    del view[key]
                    if not view:
                        del self._view[rkey]
                    self._deliverAll(list(view.values()), self._quitOf(user, rkey, user.nick))
            return
        key = nickKey(user.nick)
        pending = key in self._claims
        self._publish({"k": "gone", "nick": user.nick}, {"user": user},
                      key if pending else None)
        if self._owned.get(key) is user:
            del self._owned[key]
            self.link.release(key)

    def _quitOf(self, user, rkey, nick):
        """
        The quit of C{user}, known as C{nick}, from the room of key C{rkey}
        (gone already, perhaps).
        """
        room = self.core.rooms.get(rkey) or self.core.kept.get(rkey)
        reason = user.goneBecause or "quit"
        if room is None:
            return events.Quit(rkey, nick, reason)
        # Whether the reason was their words or the server's is not kept: a
        # room that mutes them hears neither (the core's own quits hide only
        # their words), rather than a muted user's /quit being their voice.
        return events.Quit(room.name, nick,
                           self.core.moderation.heardOnLeaving(user, room, reason))

    # Publishing

    def _publish(self, entry, stash=None, needs=None, here=True):
        """
        Publish C{entry} for every daemon; this one applies it when it comes
        back from the stream (at once while Redis is away), unless C{here}
        is false (told here already).

        @param needs: the key of the nickname claim it waits for: not
            published if that claim is lost.
        """
        self._seq += 1
        seq = entry["s"] = self._seq
        entry["n"] = self.node
        data = codec.dumps(entry)
        stash = {} if stash is None else stash
        if needs is not None:
            stash["needs"] = needs
        if self.up is False:
            # Redis is away: local users are served now; the others get it
            # once Redis is back.
            if self.link.backlog() < self.MAX_BACKLOG:
                self.link.publish(seq, data, needs)
            else:
                self._dropped += 1
                if self._dropped == 1:
                    self._log.warn("broker backlog full: events are delivered here "
                                   "but not shared with the other daemons")
            if needs is not None:
                self._held[seq] = (entry, stash)
            if here:
                self._apply(entry, True, stash)
        else:
            self._outstanding[seq] = (entry, stash if here else _SKIPPED)
            if entry["k"] == "gone":
                self._leftAt[nickKey(entry["nick"])] = seq
            self.link.publish(seq, data, needs)

    def _publishRoom(self, event, actor, actorOnly=False, owner=None):
        prepared = self._roomEntry(event, actor, actorOnly, owner)
        if prepared is not None:
            self._publish(*prepared)

    def _publishQuits(self):
        """
        Publish the quits L{departed} kept, one user's from each of their
        rooms, as one entry: the first's, holding them all.
        """
        departing, self._departing = self._departing, []
        entry, stash, needs = departing[0]
        entry = {k: v for k, v in entry.items() if k not in ("e", "a", "o")}
        entry.update(k="quits", es=[prepared[0]["e"] for prepared in departing])
        self._publish(entry, stash, needs)

    def _roomEntry(self, event, actor, actorOnly=False, owner=None):
        """
        The room event C{event} as an entry to publish, with what this
        daemon keeps of it until it comes back, and the nickname claim it
        waits for: C{(entry, stash, needs)}; or L{None} when it is not to
        be published (a phantom's).
        """
        users = self.core.users
        stash = {}
        if actor is not None:
            if actor in self._phantoms:
                return None
            if not isinstance(actor, RemoteUser):
                stash["actor"] = actor
        subject = None
        if isinstance(event, events.Renamed):
            subject = actor
        elif isinstance(event, (events.Joined,) + _LEAVING):
            subject = users.get(nickKey(event.nick))
        if subject is not None and subject in self._phantoms:
            return None
        local = subject is not None and not isinstance(subject, RemoteUser)
        if isinstance(event, events.Renamed) and local:
            new, old = nickKey(event.new), nickKey(event.old)
            if new != old and new not in self._claims and self._owned.get(new) is not subject:
                self._startClaim(subject, new, old, event.old)
            if subject in self._phantoms or subject in self._refused:
                return None
        if isinstance(event, events.Joined) and local:
            stash["joiner"] = subject
            # Its replay waits for the join to come back (readHistory).
            self._seating.setdefault(subject, {})[roomKey(event.room)] = []
        elif isinstance(event, _LEAVING) and local:
            # Whoever leaves sees nothing more of the room from now on, as
            # with one daemon; the others see them leave in stream order.
            self._leaveView(subject, event.room)
        needs = None
        for who in (subject, actor):
            if who is not None and who.nick is not None and nickKey(who.nick) in self._claims:
                needs = nickKey(who.nick)
                # Told again under their old nickname if the claim is lost
                # by a rename (L{_retell}).
                stash["claimant"] = who
        entry = {"k": "room", "e": event, "a": actor.nick if actor else None, "o": actorOnly}
        if isinstance(subject, RemoteUser):
            # Whose this is (a ghost's or a ban's quit, a kick): the
            # others apply it to that daemon's user of the name alone.
            entry["sn"] = subject.node
        if owner is not None:
            # Who owns the room, for the daemons that did not see it made.
            entry["owner"] = owner
        return entry, stash, needs

    def _leaveView(self, user, name):
        rkey = roomKey(name)
        view = self._view.get(rkey)
        if view is not None and view.get(nickKey(user.nick)) is user:
            del view[nickKey(user.nick)]
            if not view:
                del self._view[rkey]

    def _toRemote(self, user, event):
        entry = {"k": "to", "to": user.nick, "tn": user.node, "e": event}
        if isinstance(event, events.PrivatelySaid):
            # Never kept: through the target daemon's inbox, which it empties
            # as it reads.
            entry["n"] = self.node
            self.link.send(user.node, codec.dumps(entry))
        else:
            self._publish(entry)

    def _hangRemote(self, user):
        self._publish({"k": "hang", "to": user.nick, "tn": user.node})

    # Nicknames

    def _nickChanged(self, user, event):
        """
        C{user}'s nickname changed here (or was chosen): claim it.

        @return: whether C{user} is to be told (false when the change is
            refused and undone).
        """
        new = nickKey(event.new)
        if event.old is None:
            self._startClaim(user, new, None, None)
            if user not in self._phantoms:
                self._publish({"k": "hello", "nick": event.new}, needs=new)
                if user.identified:
                    self._publish({"k": "ident", "nick": event.new, "account": user.account},
                                  needs=new)
            return True
        if event.old == event.new:
            return True
        old = nickKey(event.old)
        if old != new and new not in self._claims and self._owned.get(new) is not user:
            self._startClaim(user, new, old, event.old)
        refused = self._refused.pop(user, None)
        if refused is not None:
            # The core is done with the change: undo it.
            self._refuseRename(user, new, *refused, taken=False)
            return False
        if user not in self._phantoms:
            self._publish({"k": "rename", "old": event.old, "new": event.new},
                          needs=new if new in self._claims else None)
        return True

    def _startClaim(self, user, key, oldKey, oldNick):
        if self.up is False:
            if oldKey is None:
                self._phantom(user, None, None, UNREACHABLE)
            else:
                # Refused, and undone once the core has finished the
                # change (L{_nickChanged}): nothing of it is published.
                self._refused.setdefault(user, (oldKey, oldNick))
            return
        item = _Item(self._seq, claim=key)
        self._claims[key] = (user, oldKey, oldNick, item)
        self._local.append(item)
        if key in self._takeovers:
            self._takeovers.discard(key)
            self.link.claim(key, oldKey, force=True)
        else:
            self.link.claim(key, oldKey)

    def claimed(self, key, won):
        """
        Redis answered a claim of the nickname C{key}: C{won} is whether it
        is ours, or L{None} when Redis could not be asked in time.
        """
        claim = self._claims.pop(key, None)
        if claim is None:
            # A nickname held already, claimed again after Redis lost it.
            if not won:
                self._loseOwned(key)
            return
        user, oldKey, oldNick, item = claim
        item.done = True
        held = [self._held.pop(seq) for seq, (_, stash) in list(self._held.items())
                if stash.get("needs") == key]
        if won:
            if oldKey is not None and self._owned.get(oldKey) is user:
                del self._owned[oldKey]
            if user.connected and user not in self._phantoms:
                self._owned[key] = user
            else:
                self.link.release(key)
        elif oldKey is None:
            self._log.info("{nick} lost the nickname to another daemon",
                           nick=user.nick)
            self._phantom(user, None, None, UNREACHABLE if won is None else
                          f"the nickname {user.nick} was taken on another server at "
                          "the same moment; connect again")
        else:
            self._log.info("{old} could not become {nick}: {why}", old=oldNick,
                           nick=user.nick, why="taken elsewhere" if won is False
                           else "Redis did not answer")
            self._refuseRename(user, key, oldKey, oldNick, taken=won is False)
            for entry, stash in held:
                # Told here already: for the others alone.
                self._retell(entry, stash, here=False)
        if self._snapshotDue is not None and not self._claims:
            self._publishSnapshot()
        self._pump()

    def _refuseRename(self, user, newKey, oldKey, oldNick, taken):
        """
        C{user}'s rename from C{oldNick} to the nickname C{newKey}, done by
        the core, could not be confirmed in Redis (C{taken}: another
        daemon's user has it): undo it, and tell them instead of "you are
        now".  The others never saw it: what the user did meanwhile is told
        to them again under the old nickname (L{_retell}), a departure too.
        """
        core = self.core
        new = user.nick
        if nickKey(new) != newKey or (user.connected and
                                      core.users.get(oldKey) not in (None, user)):
            # Renamed again meanwhile, or the old nickname given to someone
            # else here: nothing to go back to.
            if user.connected:
                self._phantom(user, oldKey, oldNick, UNREACHABLE if not taken else
                              f"the nickname {new} was taken on another server at "
                              "the same moment; connect again")
            return
        self._undone[user] = (oldNick, new)
        for seq, (entry, stash) in list(self._outstanding.items()):
            if stash is not _SKIPPED and stash.get("needs") == newKey:
                # Never to be published as it is (the writer skips it):
                # told again, now, under the old nickname.
                self._outstanding[seq] = (None, _SKIPPED)
                self._retell(entry, stash)
        if not user.connected:
            return
        del core.users[newKey]
        core.users[oldKey] = user
        user.named(oldNick)
        for room in user.rooms.values():
            del room.members[newKey]
            room.members[oldKey] = user
            room.names = None
        for rkey, view in self._view.items():
            if view.get(newKey) is user:
                # Shown here already (Redis went away before the claim was
                # answered): shown undone; the user is told by the refusal.
                del view[newKey]
                view[oldKey] = user
                self._deliverAll(list(view.values()),
                                 events.Renamed(core.rooms[rkey].name, new, oldNick), user)
        refusal = events.RenameRefused(new, oldNick, taken)
        for item in self._local:
            if item.user is user and item.event == events.NowKnownAs(oldNick, new):
                item.event = refusal
                break
        else:
            self._direct(user, refusal, False)
        # A snapshot published meanwhile named them by the new nickname.
        self._publishSnapshot()

    def _retell(self, entry, stash, here=True):
        """
        C{entry} is not to be published: it needed a nickname that a rename
        then could not claim.  Publish it under the nickname its user kept
        (for the others alone unless C{here}).
        """
        user = stash.get("claimant") or stash.get("user")
        undone = self._undone.get(user) if user is not None else None
        if (undone is None or entry["k"] not in ("room", "quits", "gone")
                or stash.get("needs") != nickKey(undone[1])):
            return
        old, new = undone
        entry = {k: v for k, v in entry.items() if k not in ("s", "n")}
        stash = {k: v for k, v in stash.items() if k not in ("needs", "claimant")}
        if entry["k"] == "gone":
            entry["nick"] = old
            self._publish(entry, stash, here=here)
            if self._owned.get(nickKey(old)) is user:
                del self._owned[nickKey(old)]
                self.link.release(nickKey(old))
            return
        if entry["k"] == "quits":
            entry["es"] = [_named(event, old, new) for event in entry["es"]]
            self._publish(entry, stash, here=here)
            return
        event = entry["e"]
        if isinstance(event, events.Renamed):
            return
        entry["e"] = _named(event, old, new)
        if entry.get("a") and nickKey(entry["a"]) == nickKey(new):
            entry["a"] = old
        self._publish(entry, stash, here=here)

    def nicksLost(self, keys):
        """
        The heartbeat found nicknames held here that Redis gives to others.
        """
        for key in keys:
            if key not in self._claims:
                self._loseOwned(key)

    def _loseOwned(self, key):
        user = self._owned.pop(key, None)
        if user is not None and user.connected:
            user.outbox.send(user.wire.encode(events.Closing(
                f"the nickname {user.nick} was taken on another server while this one "
                "could not reach it")))
            # Gone at once, not when the connection is closed: its holder
            # elsewhere, kept out of the mirror here by this user, is in the
            # snapshots asked for after its departure.
            self.core.disconnect(user, NICK_TAKEN)
            user.hangUp()
            self._publish({"k": "syncreq"})

    def _phantom(self, user, oldKey, oldNick, reason):
        """
        C{user} does not get the nickname it was given here: nothing more of
        theirs is published or delivered, and they are disconnected.
        """
        self._phantoms.add(user)
        if oldKey is not None:
            self._phantomOld[user] = (oldNick, oldKey)
        self.clock.callLater(0, self._close, user, reason)

    def _close(self, user, reason):
        if user.connected:
            user.outbox.send(user.wire.encode(events.Closing(reason)))
            user.hangUp()

    # Local delivery in order

    def _direct(self, user, event, own):
        if user in self._phantoms:
            return
        item = _Item(self._seq, user, event, own)
        if not self._local and self._ready(item):
            self._deliver(item)
            return
        # What the front end sends this user meanwhile (a reply, a history
        # replay) goes after this, as with one daemon.
        hold = getattr(user.outbox, "hold", None)
        if hold is not None and user.connected:
            item.place = hold()
        self._local.append(item)

    def _ready(self, item):
        if item.claim is not None:
            return item.done
        return not self._outstanding or item.after < next(iter(self._outstanding))

    def _pump(self):
        while self._local and self._ready(self._local[0]):
            self._deliver(self._local.popleft())

    def _entered(self, event, joiner):
        """
        The welcome to a room as of the newcomer's join in the stream: the
        members whose joins came before theirs (the core, ahead of the
        stream for this daemon's users, may know more, who the newcomer will
        see join).
        """
        rkey = roomKey(event.room)
        room = self.core.rooms.get(rkey)
        if room is None:
            return event
        view = self._view.get(rkey, {})
        # (The newcomer's own join may come back later than this: told
        # again under the nickname kept after a rename refused, L{_retell}.)
        members = tuple(user.nick for key, user in room.members.items()
                        if isinstance(user, RemoteUser) or view.get(key) is user
                        or user is joiner)
        # (Sorted by the front end: the core's were of its own members.)
        return replace(event, topic=room.topic, members=members, listed=None)

    def _deliverAll(self, users, event, actor=None):
        """
        L{Fanout.toUsers} for local users, here and now (its own would come
        back to this class's C{toActor}).
        """
        encoded = {}
        confirmed = None
        for user in users:
            if user is actor:
                Fanout.toActor(self, user, event)
                confirmed = user
                continue
            data = encoded.get(user.wire)
            if data is None:
                data = encoded[user.wire] = user.wire.encode(event)
            user.outbox.send(data)
        # For the metrics: once per event, never per recipient.
        self.counted(users, encoded, confirmed)

    def _deliver(self, item):
        user = item.user
        if user is None:
            return
        data = None
        if user not in self._phantoms:
            event = item.event
            if isinstance(event, events.Entered):
                event = self._entered(event, user)
            data = user.wire.encodeOwn(event) if item.own else user.wire.encode(event)
        if data:
            # For the metrics (an actor's confirmation is not a delivery).
            self.deliveries += 0 if item.own else 1
            self.sentBytes += len(data)
        if item.place is not None:
            user.outbox.fill(item.place, data or b"")
        elif data:
            user.outbox.send(data)

    # From the link

    def linkUp(self):
        first = self.up is None
        if self.up is True:
            return
        self.up = True
        now = self.clock.seconds()
        self._upSince = self._readAt = now
        for node in self._nodes:
            self._nodes[node] = now
        if first:
            self._readingSince = now
            self._log.info("broker: node {node} connected", node=self.node)
            self._publish({"k": "syncreq"})
        else:
            self._log.info("broker: reconnected")
        self._publishSnapshot()

    def linkDown(self, why):
        if self.up is False:
            return
        self.up = False
        self._log.warn("broker unreachable ({why}); serving local users, "
                       "reconnecting", why=why)
        # What was published but not read back is delivered here now; its
        # copy in the stream will be skipped.
        outstanding, self._outstanding = self._outstanding, OrderedDict()
        for seq, (entry, stash) in outstanding.items():
            if stash is not _SKIPPED:
                if stash.get("needs") is not None:
                    self._held[seq] = (entry, stash)
                self._apply(entry, True, stash)
        for item in self._local:
            if item.claim is None:
                item.after = -1
        self._pump()

    def linkReset(self):
        """
        Redis restarted without its data: claim our nicknames again and tell
        the others who is here.
        """
        self._log.warn("broker: Redis lost its data; claiming nicknames again")
        self.link.resend()
        for key in list(self._owned):
            self.link.claim(key)
        self._publish({"k": "syncreq"})
        self._publishSnapshot()

    def skipped(self, seq):
        found = self._outstanding.get(seq)
        if found is not None and found[1] is not _SKIPPED:
            self._outstanding[seq] = (None, _SKIPPED)
            self._retell(*found)
        self._drainSkipped()
        self._pump()

    def _drainSkipped(self):
        while self._outstanding:
            seq, (entry, stash) = next(iter(self._outstanding.items()))
            if stash is not _SKIPPED:
                return
            del self._outstanding[seq]

    def received(self, found):
        """
        Entries read from the stream or this daemon's inbox, in order.
        """
        if self.coalescer is None:
            self._received(found)
        else:
            with self.coalescer:
                self._received(found)

    def _received(self, found):
        for fromInbox, entry in found:
            node = entry.get("n")
            seq = entry.get("s", 0)
            if node == self.node:
                self._held.pop(seq, None)
                if entry.get("k") == "hb":
                    self._readAt = self.clock.seconds()
                if seq in self._outstanding:
                    self._ownReturned(seq)
                elif seq > self.link.confirmed:
                    self.link.confirmed = seq
                continue
            if node in self._departed:
                continue
            self._seen(node)
            if fromInbox:
                self._applyTo(entry)
                continue
            if seq and not self._firstSight(node, seq):
                continue
            try:
                self._apply(entry, False, {})
            except Exception:
                self._log.failure("broker: could not apply an entry from {node}",
                                  node=node)
        self._pump()

    def _firstSight(self, node, seq):
        """
        Whether C{node}'s entry C{seq} is new here: entries published again
        after Redis lost its data may come after later ones, and are read
        once.
        """
        seen = self._lastSeq.get(node)
        if seen is None:
            seen = self._lastSeq[node] = (set(), deque())
        found, order = seen
        if seq in found:
            return False
        found.add(seq)
        order.append(seq)
        if len(order) > 10_000:
            found.discard(order.popleft())
        return True

    def _ownReturned(self, seq):
        # Our entries come back in the order published; any before this one
        # still waiting were lost (Redis restarted) and are delivered now.
        while self._outstanding:
            first, (entry, stash) = self._outstanding.popitem(last=False)
            if stash is not _SKIPPED:
                try:
                    self._apply(entry, True, stash)
                except Exception:
                    # Logged; the rest of what was read still goes out.
                    self._log.failure("broker: could not apply an entry of this daemon")
            if first == seq:
                break
        self.link.confirmed = seq
        self._drainSkipped()

    def _seen(self, node):
        if node not in self._nodes and node in self._lost:
            # Declared lost, yet here: ask everyone who is where.
            self._lost.discard(node)
            self._publish({"k": "syncreq"})
        self._nodes[node] = self.clock.seconds()

    # Applying an entry

    def _apply(self, entry, own, stash):
        kind = entry["k"]
        if kind == "room":
            self._applyRoom(entry, own, stash)
        elif kind == "quits":
            # One user's quits, room after room, with nothing between.
            for event in entry["es"]:
                self._applyRoom(dict(entry, e=event), own, stash)
        elif kind in ("to", "hang"):
            self._applyTo(entry)
        elif own:
            if kind == "gone":
                user = stash.get("user")
                key = nickKey(entry["nick"])
                for rkey, view in list(self._view.items()):
                    if user is not None and view.get(key) is user:
                        del view[key]
                        if not view:
                            del self._view[rkey]
        elif kind == "hello":
            self._mirrorUser(entry["n"], entry["nick"])
        elif kind == "rename":
            self._mirrorRename(entry["n"], entry["old"], entry["new"])
        elif kind == "gone":
            key = nickKey(entry["nick"])
            if self._quitting.get(key) == entry["n"]:
                del self._quitting[key]
            self._mirrorGone(entry["nick"], entry["n"])
        elif kind == "away":
            user = self.core.users.get(nickKey(entry["nick"]))
            if isinstance(user, RemoteUser) and user.node == entry["n"]:
                # Told to those here who share a room with them.
                self.core.setAway(user, entry["text"])
        elif kind == "ident":
            user = self.core.users.get(nickKey(entry["nick"]))
            if isinstance(user, RemoteUser) and user.node == entry["n"]:
                user.account = entry["account"]
        elif kind == "out":
            key, rkey = nickKey(entry["nick"]), roomKey(entry["room"])
            user, room = self.core.users.get(key), self.core.rooms.get(rkey)
            if (user is not None and room is not None and room.members.get(key) is user
                    and self._isOf(user, entry.get("sn", entry["n"]))):
                if not isinstance(user, RemoteUser):
                    self._leaveView(user, room.name)
                self.core.removeMember(user, room)
        elif kind == "pw":
            self.core.identity.triedElsewhere(entry["key"], entry["g"], entry["ok"])
        elif kind == "pwchg":
            self.core.identity.changedElsewhere(entry["key"])
        elif kind == "syncreq":
            self._publishSnapshot()
        elif kind == "snap":
            self._mirrorSnapshot(entry["n"], entry)
        elif kind == "bye":
            self._departed.add(entry["n"])
            self._nodeLost(entry["n"], NODE_STOPPED)

    def _applyTo(self, entry):
        if entry.get("tn") != self.node:
            return
        user = self._localUser(entry["to"])
        if user is None:
            return
        if entry["k"] == "hang":
            # Told why already (Expelled, Ghosted), and out of their rooms
            # (their quit came from the other daemon): gone from the core
            # now, so that whoever takes the nickname next is mirrored here.
            self.core.disconnect(user, entry.get("r", "put out"))
            # Gone at that quit's place in the stream, read already: what
            # the next holder does (the ghost's owner arriving) is theirs,
            # not ours until this daemon's word of it comes back.
            self._leftAt.pop(nickKey(user.nick), None)
            user.hangUp()
        else:
            Fanout.toUser(self, user, entry["e"])

    def _applyRoom(self, entry, own, stash):
        event = entry["e"]
        if own and isinstance(event, events.Renamed) and stash.get("actor") in self._phantoms:
            # A rename after one that was refused, its claim won only once
            # they were let go: never theirs.
            return
        if not own and self.core.history is not None and getattr(event, "id", None):
            # A line said elsewhere: this daemon's next ids sort after it (a
            # shared store's ids are in the order lines were said).
            self.core.history.observed(event.id)
        actorNick = entry.get("a")
        rkey = roomKey(event.room)
        history = self.core.history
        if history is not None and history.shared and getattr(event, "id", None):
            self._hear(rkey, event)
        leaving = isinstance(event, _LEAVING)
        shown = own or self._attribute(entry, event)
        view = self._view.get(rkey)
        if entry.get("o") or not shown:
            # The actor was told when it happened (L{toActor}); or it is
            # about someone else of that name here.
            pass
        elif view:
            skip = nickKey(event.nick) if leaving or isinstance(event, events.Joined) else None
            actorUser = view.get(nickKey(actorNick)) if actorNick else None
            if actorUser is None and own and isinstance(event, events.Renamed):
                # The renamer is in the view under their old nickname until
                # this entry is applied: told as the actor (the wire formats
                # confirm a rename once, by NowKnownAs), not as a member.
                actorUser = stash.get("actor")
            self._deliverAll([u for k, u in view.items() if k != skip], event, actorUser)
        core = self.core
        if isinstance(event, events.Joined):
            if own:
                joiner = stash.get("joiner")
                if joiner is not None and joiner.connected and rkey in joiner.rooms:
                    self._view.setdefault(rkey, {})[nickKey(event.nick)] = joiner
                seating = self._seating.get(joiner, {}) if joiner is not None else {}
                for seated in seating.pop(rkey, ()):
                    seated(self._heardCount)
                if joiner is not None and not seating:
                    self._seating.pop(joiner, None)
            elif shown:
                self._mirrorJoin(entry["n"], event.nick, event.room)
                room = core.rooms.get(rkey)
                if room is not None and room.owner is None and entry.get("owner"):
                    room.owner = entry["owner"]
        elif leaving:
            key = nickKey(event.nick)
            if view and shown:
                view.pop(key, None)
                if not view:
                    del self._view[rkey]
            if not own and shown:
                user = core.users.get(key)
                room = core.rooms.get(rkey)
                if isinstance(user, RemoteUser) and isinstance(event, events.Quit):
                    # Gone from the server: from every room at once, and from
                    # the names, which may be taken next (a ghost).
                    self._quitting[key] = user.node
                    self._mirrorGone(user.nick, user.node)
                elif user is not None and room is not None and room.members.get(key) is user:
                    # A local user put out from another daemon (a kick, a
                    # ban) leaves here too, with no second word of it.
                    core.removeMember(user, room)
        elif isinstance(event, events.Unmuted) and own:
            self._liftedMute(rkey, event.nick)
        elif isinstance(event, events.Renamed):
            old, new = nickKey(event.old), nickKey(event.new)
            if view and old in view and old != new:
                view[new] = view.pop(old)
            if not own:
                self._mirrorRename(entry["n"], event.old, event.new)
        elif not own:
            room = core.rooms.get(rkey)
            if room is None:
                return
            if isinstance(event, events.TopicChanged):
                room.topic = event.topic
            elif isinstance(event, events.Banned):
                core.moderation.creatorBannedElsewhere(room, event)
            elif isinstance(event, events.Unbanned):
                core.moderation.creatorUnbannedElsewhere(room, event)
            elif isinstance(event, (events.Muted, events.Unmuted)):
                # As the core keeps a mute: by connection, account and
                # nickname.
                target = core.user(event.nick)
                until = None
                if isinstance(event, events.Muted) and event.duration is not None:
                    until = self.clock.seconds() + event.duration
                for table, key in ((room.muted, target), (room.mutedAccounts,
                                                          target and target.account)):
                    if key is None:
                        continue
                    if isinstance(event, events.Muted):
                        table[key] = until
                    else:
                        table.pop(key, None)
                if isinstance(event, events.Muted):
                    muteNick(room, event.nick, until, target)
                    core.moderation.rankMute(room, event.nick, target,
                                             core.users.get(nickKey(event.by)))
                else:
                    unmuteNick(room, event.nick, target)
                    core.moderation.unrankMute(room, event.nick, target)
                    self._liftedMute(rkey, event.nick)
        if not own and actorNick:
            user = core.users.get(nickKey(actorNick))
            if isinstance(user, RemoteUser) and hasattr(event, "time"):
                user.active = self.clock.seconds()

    def _liftedMute(self, rkey, nick):
        now = self.clock.seconds()
        self._lifted[rkey, nickKey(nick)] = now
        for key, when in list(self._lifted.items()):
            if now - when >= self.HEARD_SECONDS:
                del self._lifted[key]

    # The mirror of the other daemons' users

    def _attribute(self, entry, event):
        """
        Whether C{event}, read from another daemon, is about the user of
        its nickname here: the one on the daemon it names (the one who said
        it, or C{"sn"}).  A daemon cut off from Redis for longer than the
        lease may have a user whose nickname someone else took meanwhile:
        what it says of them is not shown as the newcomer's, and its word
        never puts the newcomer out.  One of its users that this daemon
        forgot (taken for lost) is brought back, shown joining, before what
        they say.
        """
        if isinstance(event, events.Renamed):
            nick = event.old
        elif isinstance(event, _SPOKEN + _LEAVING + (events.Joined,)):
            nick = event.nick
        else:
            return True
        node = entry.get("sn", entry["n"])
        key = nickKey(nick)
        user = self.core.users.get(key)
        if user is None:
            if self._stillOurs(key):
                return False
            if isinstance(event, _LEAVING):
                # Their quit from another of their rooms, read after the
                # first took them out of the mirror; else never known here.
                return isinstance(event, events.Quit) and self._quitting.get(key) == node
            if not isinstance(event, events.Joined):
                self._rejoin(node, key)
            return True
        if self._isOf(user, node):
            return True
        self._log.info("broker: {nick} of {node} is someone else here; not shown: {event}",
                       nick=nick, node=node, event=type(event).__name__)
        return False

    def _isOf(self, user, node):
        """
        Whether C{user} (here) is the one on C{node}.
        """
        if node == self.node:
            return not isinstance(user, RemoteUser)
        return isinstance(user, RemoteUser) and user.node == node

    def _stillOurs(self, key):
        """
        Whether, at the place in the stream read now, the nickname C{key}
        is still one of this daemon's users', though gone from here since
        (their departure is not read back yet).
        """
        return self._leftAt.get(key) in self._outstanding

    def _rejoin(self, node, key):
        """
        If C{node}'s user of the nickname C{key} was shown quitting when
        C{node} was taken for lost, mirror them again into the rooms they
        were in and show them joining, before what they say now.  (Its
        snapshot, which follows, would do it after.)
        """
        nick, rooms = self._forgotten.get(node, {}).pop(key, (None, ()))
        for name in rooms:
            if self._mirrorJoin(node, nick, name):
                self._showJoined(name, events.Joined(name, nick))

    def _showJoined(self, name, event):
        """
        Show the members here of the room C{name} someone arriving there
        (C{event}: L{events.Joined} or L{events.Arrived}) whom they were
        told had quit, or never saw come.
        """
        view = self._view.get(roomKey(name))
        if view:
            self._deliverAll(list(view.values()), event)

    def _localUser(self, nick):
        user = self.core.users.get(nickKey(nick))
        if user is None or isinstance(user, RemoteUser) or user in self._phantoms:
            return None
        return user

    def _mirrorUser(self, node, nick):
        key = nickKey(nick)
        users = self.core.users
        user = users.get(key)
        if user is None:
            if self._stillOurs(key):
                return None
            user = RemoteUser(node, nick, None)
            user.onHangUp = lambda user=user: self._hangRemote(user)
            user.active = user.since = self.clock.seconds()
            users[key] = user
            self._byNode.setdefault(node, set()).add(key)
        elif not isinstance(user, RemoteUser) or user.node != node:
            self._log.warn("broker: {nick} from {node} is already someone else here",
                           nick=nick, node=node)
            return None
        return user

    def _mirrorJoin(self, node, nick, name):
        """
        @return: whether C{node}'s C{nick} is in the room C{name} now and
            was not before.
        """
        user = self._mirrorUser(node, nick)
        if user is None:
            return False
        rkey = roomKey(name)
        room = self.core.rooms.get(rkey)
        if room is None:
            # A room kept here keeps its owner, topic and bans: another
            # daemon's word never makes it someone else's.
            room = self.core.kept.pop(rkey, None) or Room(name)
            self.core.rooms[rkey] = room
        new = rkey not in user.rooms
        room.members[nickKey(nick)] = user
        room.names = None
        user.rooms[rkey] = room
        return new

    def _mirrorGone(self, nick, node):
        key = nickKey(nick)
        user = self.core.users.get(key)
        if not isinstance(user, RemoteUser) or user.node != node:
            # (The nickname is someone else's already: a ghost took it.)
            return
        for room in list(user.rooms.values()):
            self.core.removeMember(user, room)
        del self.core.users[key]
        user.connected = False
        self._byNode.get(user.node, set()).discard(key)

    def _mirrorRename(self, node, old, new):
        users = self.core.users
        oldKey, newKey = nickKey(old), nickKey(new)
        user = users.get(oldKey)
        if not isinstance(user, RemoteUser) or user.node != node:
            return
        if oldKey != newKey:
            if newKey in users:
                self._log.warn("broker: {old} from {node} renamed to {new}, who is "
                               "someone else here", old=old, new=new, node=node)
                return
            del users[oldKey]
            users[newKey] = user
            for room in user.rooms.values():
                del room.members[oldKey]
                room.members[newKey] = user
                room.names = None
            keys = self._byNode.setdefault(node, set())
            keys.discard(oldKey)
            keys.add(newKey)
        user.named(new)
        for room in user.rooms.values():
            room.names = None

    def _publishSnapshot(self):
        now = self.clock.seconds()
        if self._snapshotDue is None:
            self._snapshotDue = now
        if self._claims and now - self._snapshotDue < self.SNAPSHOT_PATIENCE:
            # Made once every nickname claimed here is answered (a Redis
            # round trip), so that it names each user as the others know
            # them at its place in the stream: by the nickname won, or by
            # the one kept when a rename was refused; and none who lost
            # their first one.  (Not for longer than this, if claims keep
            # coming: those still out are then named by what they asked.)
            return
        self._snapshotDue = None
        users = []
        topics = {}
        owners = {}
        mutes = {}
        for user in self.core.users.values():
            if (isinstance(user, RemoteUser) or not user.connected
                    or user in self._phantoms):
                continue
            users.append([user.nick, [room.name for room in user.rooms.values()],
                          user.account, user.away])
            for room in user.rooms.values():
                topics[room.name] = room.topic
                if room.owner is not None:
                    owners[room.name] = room.owner
                if room.name not in mutes and (room.mutedNicks or room.mutedAccounts):
                    mutes[room.name] = self._mutesOf(room)
        self._publish({"k": "snap", "users": users, "topics": topics, "owners": owners,
                       "mutes": mutes})

    def _mutesOf(self, room):
        """
        The mutes of C{room} as a snapshot tells them: C{[kind, key,
        seconds left or None, rank]}, by nickname (C{"n"}) and by account
        (C{"a"}); a mute by connection is one by the nickname it had.
        """
        now = self.clock.seconds()
        found = []
        for kind, table in (("n", room.mutedNicks), ("a", room.mutedAccounts)):
            for key, until in table.items():
                if kind == "n":
                    until = until[0]
                if until is not None and until <= now:
                    continue
                found.append([kind, key, None if until is None else until - now,
                              room.muteRanks.get(key)])
        return found

    def _mirrorMutes(self, room, mutes):
        """
        Hold here the mutes of C{room} that a snapshot tells (see
        L{_mutesOf}), but those lifted here lately: the snapshot may have
        been made before its daemon read the unmute.
        """
        now = self.clock.seconds()
        for kind, key, left, rank in mutes:
            lifted = self._lifted.get((room.key, key))
            if lifted is not None and now - lifted < self.HEARD_SECONDS:
                continue
            until = None if left is None else now + left
            if kind == "n":
                if key not in room.mutedNicks:
                    muteNick(room, key, until, None)
            else:
                room.mutedAccounts.setdefault(key, until)
            if rank is not None:
                room.muteRanks.setdefault(key, rank)

    def _mirrorSnapshot(self, node, entry):
        """
        Everyone on C{node}, as it says, and the topics and mutes of their
        rooms: the mirror of it is made to match.  Whoever is in a room
        here now and was not before is shown joining it (a daemon taken for
        lost and back, a nickname free again here): the members here were
        told they quit, or never saw them come.  (Who is no longer listed
        goes silently, as before.)
        """
        self._forgotten.pop(node, None)
        listed = {nickKey(nick): {roomKey(name) for name in rooms}
                  for nick, rooms, *more in entry["users"]}
        for key in list(self._byNode.get(node, ())):
            user = self.core.users.get(key)
            if not isinstance(user, RemoteUser) or user.node != node:
                continue
            if key not in listed:
                self._mirrorGone(user.nick, node)
                continue
            for rkey, room in list(user.rooms.items()):
                if rkey not in listed[key]:
                    self.core.removeMember(user, room)
        arrived = {}
        for nick, rooms, *more in entry["users"]:
            user = self._mirrorUser(node, nick)
            if user is not None:
                user.account = more[0] if more else None
                user.away = more[1] if len(more) > 1 else ""
                for name in rooms:
                    if self._mirrorJoin(node, nick, name):
                        arrived.setdefault(name, []).append(nick)
        for name, nicks in arrived.items():
            # (In one line from a few on: a daemon back may bring many.)
            self._showJoined(name, events.Arrived(name, tuple(nicks)))
        for name, topic in entry["topics"].items():
            room = self.core.rooms.get(roomKey(name))
            if room is not None:
                room.topic = topic
                owner = entry.get("owners", {}).get(name)
                if owner is not None and room.owner is None:
                    room.owner = owner
                self._mirrorMutes(room, entry.get("mutes", {}).get(name, ()))

    # Heartbeat and lost daemons

    def _beat(self):
        if self.up is not True:
            return
        self.link.beat(list(self._owned), codec.dumps({"k": "hb", "n": self.node}))
        # The core says nothing when someone goes away: the heartbeat tells
        # the others (so /msg's away reply and /whois know it within a
        # second).
        for key, user in self._owned.items():
            if user.away != self._awaySaid.get(key, ""):
                self._awaySaid[key] = user.away
                self._publish({"k": "away", "nick": user.nick, "text": user.away})
        for key in [key for key in self._awaySaid if key not in self._owned]:
            del self._awaySaid[key]
        for key in [key for key, seq in self._leftAt.items() if seq not in self._outstanding]:
            del self._leftAt[key]
        self._forgetHeard()
        if self._snapshotDue is not None:
            self._publishSnapshot()
        now = self.clock.seconds()
        if now - self._upSince < self.lease or now - self._readAt > 2 * self.beatInterval:
            # Just connected, or this daemon's own reading is behind (its
            # process was stopped, its Redis connection stalls): the others
            # are judged once it has caught up with them.
            return
        for node, seen in list(self._nodes.items()):
            if now - seen > self.lease:
                self._nodeLost(node, NODE_LOST)

    def _nodeLost(self, node, reason):
        """
        C{node} is gone: its users quit, as this daemon's members see it.
        """
        self._nodes.pop(node, None)
        # (No "gone" will come from it.)
        self._quitting = {k: n for k, n in self._quitting.items() if n != node}
        forgotten = {}
        if reason == NODE_LOST:
            self._lost.add(node)
            # Shown joining again should it come back (L{_rejoin}).
            self._forgotten[node] = forgotten
        keys = self._byNode.pop(node, set())
        self._log.info("broker: node {node} is gone ({reason}); {n} users with it",
                       node=node, reason=reason, n=len(keys))
        for key in keys:
            user = self.core.users.get(key)
            if not isinstance(user, RemoteUser):
                continue
            forgotten[key] = (user.nick, [room.name for room in user.rooms.values()])
            for room in list(user.rooms.values()):
                self.core.removeMember(user, room)
                view = self._view.get(roomKey(room.name))
                if view:
                    self._deliverAll(list(view.values()),
                                   events.Quit(room.name, user.nick, reason))
            del self.core.users[key]
            user.connected = False


def _named(event, old, new):
    """
    C{event} with the nickname C{new} it names (as who did it, or whom it
    is about) changed back to C{old}.
    """
    fields = {field: old for field in ("nick", "by")
              if nickKey(getattr(event, field, None) or "") == nickKey(new)}
    return replace(event, **fields)

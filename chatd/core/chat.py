"""
The chat core: users, nicknames, rooms and topics.

It knows nothing of sockets, of any wire format, or of which room a front end
shows its user: every request names its room.  Each request either happens,
and the core hands the resulting events to the fan-out together with who
should receive them (the actor gets their own confirmation), or it is refused
with a typed L{chatd.core.refusals.Refusal}.

Front ends act through a L{chatd.core.session.Session} (L{ChatCore.open}).
The rules that protect a person are composed objects the core consults on
every path: registered nicknames (L{chatd.core.identity.Identity}) and
moderation (L{chatd.core.moderation.Moderation}).  A user's address is plain
text from the edge, used only to match bans.
"""

import weakref
from bisect import bisect
from dataclasses import dataclass
from operator import attrgetter

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.identity import Identity
from chatd.core.members import Members
from chatd.core.moderation import Moderation
from chatd.core.names import (nickKey, nickProblem, normalRoomName, roomKey, roomProblem,
                              sortedNicks)
from chatd.core.session import Session
from chatd.ops.logtext import LeanLogger
from chatd.storage import HistoryRefused


_nickOf = attrgetter("nick")

# A room of at most this many members keeps their nicknames sorted for the
# newcomers' lists (L{events.Entered.listed}): sorting them anew for each
# newcomer cost a room of 100 some 5 us per login, more than keeping them
# sorted; in a bigger room each join would copy the sorted names, and the
# line protocol lists no more than 100 on entering.
LISTED_MAX = 100


class User:
    """
    One connected person, as the core sees them.

    @ivar nick: the nickname, or L{None} until one is claimed.
    @ivar key: the nickname's L{nickKey}, or L{None}: kept with it (set
        both with L{named}), since a login looks it up a dozen times.
    @ivar rooms: the rooms joined, by room key, in the order joined.
    @ivar outbox: where the fan-out puts this user's bytes.
    @ivar wire: the wire format that turns events into this user's bytes.
    @ivar host: the address the user connects from, as text, or L{None}.
    @ivar account: the key of the registered nickname the user proved a
        password for on this connection, or L{None}; they are identified
        while they use that nickname, and may take it back without its
        password after using another, until its password changes (see
        L{chatd.core.identity.Identity.changePassword}).
    @ivar onHangUp: called with no arguments to close the user's
        connection (see L{hangUp}), or L{None}.
    @ivar connected: false once the core has been told the user is gone.
    @ivar goneBecause: why, once they are (ghosted, banned, their quit).
    @ivar away: why the user is away, or C{""} while they are not.
    @ivar active: when the user last said something (POSIX seconds).
    @ivar since: when the user got their first nickname (POSIX seconds).
    """

    __slots__ = ("nick", "key", "rooms", "outbox", "wire", "host", "account",
                 "onHangUp", "connected", "goneBecause", "away", "active", "since",
                 "__weakref__")

    def __init__(self, outbox, wire, host=None, hangUp=None):
        self.nick = self.key = None
        self.rooms = {}
        self.outbox = outbox
        self.wire = wire
        self.host = host
        self.account = None
        self.onHangUp = hangUp
        self.connected = True
        self.goneBecause = None
        self.away = ""
        self.active = 0.0
        self.since = 0.0

    def named(self, nick):
        """
        Give the user the nickname C{nick} (unchecked), with its key.
        """
        self.nick = nick
        self.key = nickKey(nick)

    def hangUp(self):
        """
        Close the user's connection: by C{onHangUp}, or else by the outbox's
        own C{hangUp}, if it has one (a connection's outbox has: a callable
        kept per user would be 64 more bytes for every connection).
        """
        if self.onHangUp is not None:
            self.onHangUp()
            return
        hangUp = getattr(self.outbox, "hangUp", None)
        if hangUp is not None:
            hangUp()

    @property
    def identified(self):
        """
        Whether the user has proved they own the nickname they use now.
        """
        return self.account is not None and self.account == self.key


@dataclass(frozen=True)
class Whois:
    """
    What anyone may learn about a connected user.

    @ivar idle: seconds since they last said anything.
    @ivar away: why they are away, or C{""}.
    @ivar since: when they arrived (POSIX seconds).
    """

    nick: str
    rooms: tuple[str, ...]
    idle: float
    identified: bool
    operator: bool
    away: str
    since: float = 0.0


class Room:
    """
    A named set of users with a topic.

    @ivar members: the users in the room, by nickname key (L{Members}: also
        grouped by wire format, for the fan-out).
    @ivar owner: the key of the registered nickname that created the room,
        or L{None}.  A room with an owner is kept when it empties.
    @ivar firstId: the history id before which the room's stored lines
        belong to an earlier room of that name, not shown to this one's
        members; L{None}: all of them are this room's (the lobby, and kept
        rooms).
    @ivar muted: when each muted user's mute ends (L{None}: never), by
        L{User}: the mute follows the connection, under any nickname.
    @ivar mutedAccounts: the same, by the account key of muted users who
        had proved one, so that a new connection does not shed it.
    @ivar mutedNicks: the same, by the key of the nickname each muted user
        had, and a weak reference to them: whoever comes back under it (a
        reconnect) is muted too, while the room lives.
    @ivar muteRanks: the rank (L{chatd.core.moderation.CREATOR}, ...) of the
        moderator who muted each user, by the nickname and account keys of
        those muted, so that only that rank or a higher lifts or changes
        the mute.
    @ivar expelled: the key of the ban that put each user out of the room,
        so that a new nickname does not let them back in while it holds.
    @ivar creator: the L{User} who created the room, while they stay in it
        and no moderator has muted them, or L{None}: they moderate it, as
        the creator of a channel is its operator on every IRC server.
        Unlike an owner, a creator is no registered nickname: their power
        ends when they leave, and so do the room's bans if it is not kept.
    @ivar names: a list of the members' nicknames in the order they joined,
        as each newcomer is shown them, or L{None} until asked for: kept up
        to date by a join (an append, where listing a big room's members
        anew for every newcomer would cost a Python step per member) and
        dropped by any other change to C{members}.
    @ivar listing: L{None}, or the same nicknames sorted for listing
        (L{events.Entered.listed}) and their keys, both lists, with the
        C{names} they were sorted from: a later join inserts its newcomer
        while C{names} is still that one.  Lists changed in place, not
        tuples made anew: a tuple of up to 20 items that is let go waits on
        CPython's free list until the next full collection, and the tuples
        of every room growing through those sizes (three for each
        newcomer) were most of what a storm of logins left there.
    """

    __slots__ = ("name", "key", "members", "topic", "owner", "firstId", "muted",
                 "mutedAccounts", "mutedNicks", "muteRanks", "expelled", "creator",
                 "names", "listing")

    def __init__(self, name, owner=None, topic="", firstId=None):
        self.name = name
        self.key = roomKey(name)
        self.members = Members()
        self.topic = topic
        self.owner = owner
        self.firstId = firstId
        self.muted = weakref.WeakKeyDictionary()
        self.mutedAccounts = {}
        self.mutedNicks = {}
        self.muteRanks = {}
        self.expelled = weakref.WeakKeyDictionary()
        self.creator = None
        self.names = None
        self.listing = None

    def shows(self, event):
        """
        Whether the stored line C{event} is this room's to show (not an
        earlier, emptied room's of the same name).
        """
        return self.firstId is None or (event.id or 0) >= self.firstId


class ChatCore:
    """
    The shared state of one chat server and the rules that change it.

    @ivar users: every user with a nickname, by nickname key.
    @ivar rooms: every room with at least one member, by room key.
    @ivar kept: the rooms with an owner and no members, by room key: they
        keep their owner, topic, bans and history until someone joins.
    @ivar fanout: the L{chatd.core.fanout.Fanout} that delivers events.
    @ivar clock: the L{IReactorTime} that stamps messages and times
        password attempts, mutes and bans.
    @ivar identity: the L{Identity} rules for registered nicknames.
    @ivar moderation: the L{Moderation} rules and the bans in force.
    @ivar logins: how many times a connection got its first nickname.
    @ivar loginRefusals: how many first nicknames were refused, by the
        refusal's class name (for the metrics).
    """

    _log = LeanLogger()

    def __init__(self, fanout, clock, lobby="#lobby", history=None, maxRooms=20,
                 accounts=None, operators=()):
        """
        @param lobby: the room every user joins on arrival.
        @param history: an L{chatd.storage.IHistoryStore} that keeps room
            messages, actions and topic changes, or L{None} to keep nothing.
            Private messages are never kept.
        @param maxRooms: the most rooms one user may be in at once, so that
            the number of rooms stays bounded too.
        @param accounts: an L{chatd.storage.IAccountStore} for registered
            nicknames and bans, or L{None}: nobody can register, and bans
            last until the server stops.
        @param operators: the nicknames of the server's operators; each must
            be registered and identified to act.
        """
        self.fanout = fanout
        self.clock = clock
        self.lobby = lobby
        self.history = history
        self.maxRooms = maxRooms
        self.accounts = accounts
        self.users = {}
        self.rooms = {}
        self.kept = {}
        self._owned = {}
        self.logins = 0
        self.loginRefusals = {}
        self.identity = Identity(self, accounts)
        self.moderation = Moderation(self, accounts, operators)
        # Bound to this core once: a Logger read from its class makes a new
        # one each time, and the core logs a line for every login.
        self._log = self._log

    # Each registered nickname owns at most this many rooms (each kept in
    # the database); a room created beyond that has no owner.
    OWNED_MAX = 20

    def restoreRooms(self, rooms):
        """
        Put back the kept rooms stored by an earlier run: (name, owner key,
        topic, first id) tuples.
        """
        for row in rooms:
            self.storedRoomKept(*row)

    def storedRoomKept(self, name, owner, topic, firstId):
        """
        The room C{name} is stored kept for C{owner}, with C{topic}: by this
        daemon, an earlier run, or another daemon sharing the database.  The
        first to keep a room owns it (the store never gives it to another),
        so the stored owner is the owner here too: a room this daemon
        thought its creator's, or nobody's, becomes the stored owner's,
        with their topic and history, and its creator (who lost the race to
        keep it) no longer moderates it, as anyone who joins a kept room
        does not.
        """
        key = roomKey(name)
        if key == roomKey(self.lobby):
            return
        room = self.rooms.get(key) or self.kept.get(key)
        if room is None:
            self.kept[key] = Room(name, owner, topic, firstId)
            self._countOwned(owner, 1)
            return
        if room.owner == owner:
            if key in self.kept:
                # Nobody here to change it: the newest topic stored holds.
                room.topic = topic
            return
        self._log.info("{room} is {owner}'s, kept through another daemon",
                       room=room.name, owner=owner)
        self._countOwned(room.owner, -1)
        self._countOwned(owner, 1)
        room.owner, room.topic, room.firstId = owner, topic, firstId
        room.creator = None

    def _countOwned(self, owner, change):
        if owner is not None:
            count = self._owned.get(owner, 0) + change
            if count > 0:
                self._owned[owner] = count
            else:
                self._owned.pop(owner, None)

    def restoreLobbyTopic(self, topic):
        """
        Give the lobby the topic it had when the server last stopped (from
        its history), unless someone has set one since.
        """
        key = roomKey(self.lobby)
        room = self.rooms.get(key) or self.kept.get(key)
        if room is None:
            self.kept[key] = Room(self.lobby, topic=topic)
        elif not room.topic:
            room.topic = topic

    def open(self, outbox, wire, host=None, hangUp=None):
        """
        A new connection: the session through which its front end acts.

        @param outbox: where the fan-out puts the connection's bytes.
        @param wire: the wire format of the connection's front end.
        @param host: the address it connects from, as text, to match bans.
        @param hangUp: called with no arguments when the core lets the
            user go (a ban); the connection is to close.  Without it, the
            outbox's C{hangUp} is called, if it has one.

        A banned address is refused when it claims a nickname, not here:
        an operator proving their nickname gets in from anywhere.
        """
        return Session(self, User(outbox, wire, host, hangUp))

    def claimNick(self, user, nick, lobby=True):
        """
        Give a newly connected C{user} their first nickname and bring them into
        the lobby, unless C{lobby} is false.

        @return: the lobby's L{Room}, or L{None}.
        @raise chatd.core.refusals.PasswordRequired: when C{nick} is
            registered and C{user} has not proved it is theirs.
        """
        holder = self.users.get(nickKey(nick))
        if holder is not None and self.identity.provedOwner(user, nick):
            # Proved before it was chosen (IRC's SASL or PASS): a stale
            # connection of the owner's gives it back, unless the owner may
            # not have it anyway.
            self.moderation.checkNotBannedAs(user, nick)
            self.letGo(holder, user)
        self._checkNickFree(user, nick)
        self.moderation.checkNotBannedAs(user, nick)
        self.fanout.nickTaken(nick)
        user.named(nick)
        self.users[user.key] = user
        self.logins += 1
        # With the disconnect line, the one log line a connection costs.
        self._log.info("{nick} logged in from {host}", nick=nick, host=user.host)
        user.active = user.since = self.clock.seconds()
        self.fanout.toUser(user, events.NowKnownAs(None, nick))
        room = self.join(user, self.lobby)[0] if lobby else None
        return room

    def refusedLogin(self, refusal):
        """
        Count a first nickname refused with C{refusal}.
        """
        kind = type(refusal).__name__
        self.loginRefusals[kind] = self.loginRefusals.get(kind, 0) + 1

    def rename(self, user, nick):
        """
        Change C{user}'s nickname and announce it to every room they are in.
        """
        if nick == user.nick:
            self.fanout.toUser(user, events.NowKnownAs(nick, nick))
            return
        if nickKey(nick) != user.key:
            self.moderation.checkMayRename(user)
            holder = self.users.get(nickKey(nick))
            if holder is not None and self.identity.provedOwner(user, nick):
                # Proved on this connection already: a stale connection of
                # the owner's gives it back.
                self.takeNick(user, nick)
                return
            self._checkNickFree(user, nick)
            self.moderation.checkNotBannedAs(user, nick)
        else:
            problem = nickProblem(nick)
            if problem:
                raise R.InvalidNickname(nick, problem)
        self.changeNick(user, nick)

    def takeNick(self, user, nick):
        """
        Give C{user}, who proved C{nick} is theirs, that nickname: whoever
        holds it is let go, and C{user} is told they are identified.

        @return: the lobby's L{Room} when C{user} arrives by it, else L{None}.
        """
        holder = self.user(nick)
        if holder is not None and holder is not user:
            self.letGo(holder, user)
        self.fanout.toUser(user, events.Identified(nick))
        if user.nick is None:
            return self.claimNick(user, nick)
        if user.nick != nick:
            if user.key == nickKey(nick):
                self.changeNick(user, nick)
            else:
                self.rename(user, nick)
        return None

    def letGo(self, holder, user):
        """
        Disconnect C{holder} of a registered nickname, telling them why: its
        owner, C{user}, proved it is theirs (L{None}: changed its password,
        voiding C{holder}'s proof).
        """
        nick = holder.nick
        self.sendOff(holder, events.Ghosted(nick))
        self.disconnect(holder, "ghosted")
        # Its rooms see the holder go before anything of the taker's.
        self.fanout.nickTaken(nick)
        holder.hangUp()
        self._log.info("{by} ghosted {nick}", by=user and user.nick or "-", nick=nick)

    def sendOff(self, user, event):
        """
        Tell C{user}, whom the core is about to disconnect, why (C{event}),
        after the arrivals waiting in their rooms: announced as they leave,
        those would reach them after their goodbye.
        """
        for room in user.rooms.values():
            self.fanout.announceArrivals(room)
        self.fanout.toUser(user, event)

    def changeNick(self, user, nick):
        """
        Give C{user} the free nickname C{nick}, unchecked, and announce it:
        the step a rename and a ghost share.
        """
        old = user.nick
        # Departures not yet announced under either name are shown before
        # the change: the user's own parts, a quit of the name's last holder.
        self.fanout.nickTaken(nick)
        self.fanout.nickTaken(old)
        # And every room's arrivals and departures still waiting, before the
        # first room hears of the change: a member of several of the rooms
        # then gets the rename in one run of lines, which an IRC client is
        # sent once (IrcOutbox drops a repeat only when nothing came
        # between), and never sees anyone arrive under a name already
        # changed.
        for room in user.rooms.values():
            self.fanout.announceWaiting(room)
        oldKey = user.key
        del self.users[oldKey]
        user.named(nick)
        self.users[user.key] = user
        for room in user.rooms.values():
            del room.members[oldKey]
            room.members[user.key] = user
            room.names = None
            self.fanout.toRoom(room, events.Renamed(room.name, old, nick), user)
        # Once to the user, however many rooms they share it with.
        self.fanout.toUser(user, events.NowKnownAs(old, nick))
        self._log.info("{old} is now {new}", old=old, new=nick)

    def join(self, user, name):
        """
        Put C{user} into the room C{name}, creating it on demand.

        @return: the L{Room}, and whether the user joined it now (rather
            than being in it already).
        """
        name = normalRoomName(name)
        problem = roomProblem(name)
        if problem:
            raise R.InvalidRoomName(name, problem)
        key = roomKey(name)
        room = user.rooms.get(key)
        if room is not None:
            return room, False
        if len(user.rooms) >= self.maxRooms:
            raise R.TooManyRooms(len(user.rooms), name)
        room = self.rooms.get(key) or self.kept.get(key)
        self.moderation.checkMayJoin(user, name, room)
        if room is None:
            room = self._create(user, name)
        elif key not in self.rooms:
            # A kept room: its owner, topic, bans and history are as left.
            self.rooms[key] = self.kept.pop(key)
        self.fanout.arrived(room, user)
        room.members[user.key] = user
        user.rooms[room.key] = room
        if user.away and len(room.members) > 1 and self.moderation.heardIn(user, room):
            # The members now share a room with someone away: told once they
            # have been told of the arrival.
            self.fanout.announceArrivals(room)
            self.fanout.toEach([m for m in room.members.values() if m is not user],
                               events.AwayChanged(user.nick, user.away))
        names = room.names
        if names is None:
            names = room.names = list(map(_nickOf, room.members.values()))
        else:
            names.append(user.nick)
        self.fanout.toUser(user, events.Entered(room.name, user.nick, room.topic, tuple(names),
                                                _listed(room, user)))
        return room, True

    def _create(self, user, name):
        """
        A new room called C{name}, created by C{user}, who moderates it while
        they stay (L{Room.creator}).  A registered, identified creator also
        owns it (up to L{OWNED_MAX} rooms each) and it is kept, with its
        history, when it empties; the lobby belongs to nobody, is moderated
        by operators alone, and always shows its history.  Any other room
        shows only the lines said since it was created: not those of an
        earlier room of the same name that emptied.
        """
        key = roomKey(name)
        isLobby = key == roomKey(self.lobby)
        owner = None
        if user.identified and not isLobby:
            if self._owned.get(user.key, 0) < self.OWNED_MAX:
                owner = user.key
        firstId = None
        if not isLobby and self.history is not None:
            firstId = self.history.nextId()
        room = self.rooms[key] = Room(name, owner, firstId=firstId)
        if not isLobby:
            room.creator = user
        if owner is not None:
            self._owned[owner] = self._owned.get(owner, 0) + 1
            self._keep(room)
        return room

    def _keep(self, room):
        """
        Store what a kept room keeps (owner, topic, where its history starts).
        """
        if self.accounts is not None and room.owner is not None:
            done = self.accounts.keepRoom(room.name, room.owner, room.topic, room.firstId)
            # Kept first through another daemon: the room is its owner's.
            done.addCallback(lambda stored: stored and self.storedRoomKept(*stored))
            done.addErrback(lambda f: self._log.failure("storing a room failed", f))

    def findRoom(self, name):
        """
        The room called C{name}, with members or kept, or L{None}.
        """
        key = roomKey(normalRoomName(name))
        return self.rooms.get(key) or self.kept.get(key)

    def part(self, user, name, reason=""):
        """
        Take C{user} out of the room C{name}.

        @return: the L{Room} left.
        """
        room = self.memberRoom(user, name)
        reason = self.moderation.heardOnLeaving(user, room, reason)
        event = events.Parted(room.name, user.nick, reason)
        # The leaver hears of the arrivals waiting while still a member, not
        # after their own leaving.
        self.fanout.announceArrivals(room)
        self.fanout.toActor(user, event)
        self.removeMember(user, room, event)
        return room

    def say(self, user, name, text, notice=False):
        """
        Send C{text} to every other member of the room C{name}, as a notice
        (L{events.Said.notice}) if C{notice}.
        """
        self._talk(events.Said, user, name, text, notice)

    def act(self, user, name, text):
        """
        Send an action ("/me waves") to every other member of the room C{name}.
        """
        self._talk(events.Acted, user, name, text)

    def _talk(self, kind, user, name, text, *notice):
        _checkNotEmpty(text)
        room = self.memberRoom(user, name)
        self.moderation.checkMayTalk(user, room)
        event = kind(room.name, user.nick, text, self.clock.seconds(), self._newId(), *notice)
        user.active = event.time
        self._record(event)
        self.fanout.toRoom(room, event, user)

    def tell(self, user, nick, text, notice=False):
        """
        Send C{text} to the user called C{nick} and nobody else, as a notice
        if C{notice} (which tells the sender nothing of the recipient's
        absence: nothing answers a notice).
        """
        _checkNotEmpty(text)
        target = self.users.get(nickKey(nick))
        if target is None:
            raise R.NoSuchUser(nick)
        event = events.PrivatelySaid(user.nick, target.nick, text, self.clock.seconds(),
                                     notice)
        user.active = event.time
        self.fanout.toUser(target, event)
        if target is not user:
            # (To oneself: once, as received, on every front end.)
            self.fanout.toActor(user, event)
        if target.away and not notice:
            self.fanout.toUser(user, events.Away(target.nick, target.away))

    def setAway(self, user, text):
        """
        Mark C{user} away, for C{text} (C{""}: back again): whoever sends them
        a private message is told, and those who share a room with them are
        told of the change (L{events.AwayChanged}).
        """
        if text == user.away:
            return
        user.away = text
        sharing = {}
        for room in user.rooms.values():
            # Nobody hears of the away of someone not yet announced to them.
            self.fanout.announceArrivals(room)
            if text and not self.moderation.heardIn(user, room):
                # Not pushed into a room that mutes them, where it would be
                # their voice (set again and again); it is told on asking.
                continue
            sharing.update(room.members)
        sharing.pop(user.key, None)
        if sharing:
            self.fanout.toEach(sharing.values(), events.AwayChanged(user.nick, text))

    def whois(self, nick):
        """
        What anyone may learn about the user called C{nick}.
        """
        user = self.users.get(nickKey(nick))
        if user is None:
            raise R.NoSuchUser(nick)
        return Whois(user.nick, tuple(room.name for room in user.rooms.values()),
                     self.clock.seconds() - user.active, user.identified,
                     self.moderation.isOperator(user), user.away, user.since)

    def setTopic(self, user, name, topic):
        """
        Set the topic of the room C{name} and announce it.

        @return: the L{Room}.
        """
        room = self.memberRoom(user, name)
        self.moderation.checkMayTalk(user, room)
        if topic == room.topic:
            # Nothing changes: nothing to announce, and nothing to store.
            raise R.TopicUnchanged(room.name, topic)
        room.topic = topic
        self._keep(room)
        event = events.TopicChanged(room.name, user.nick, topic, self.clock.seconds(),
                                    self._newId())
        self._record(event)
        self.fanout.toRoom(room, event, user)
        return room

    def recent(self, user, name, count):
        """
        The last C{count} lines of the room C{name}, which C{user} must be
        in, oldest first; refused when the server keeps no history.

        What a newcomer is shown, or a user asking for more (C{/history}):
        either is read ahead of any search.

        @return: a L{Deferred} firing with a list of events, or failing with
            a L{chatd.core.refusals.Refusal} when the store is too busy.
        """
        history = self._requireHistory()
        room = self.memberRoom(user, name)
        # The store answers as of the user's place among the room's lines
        # (now, with one daemon): lines after it reach the user live, and
        # only live.  Lines are oldest first, so those of an earlier room of
        # this name are the first ones, if any.
        found = self.fanout.readHistory(user, room, count,
                                        lambda: history.recent(room.name, count))
        return found.addCallbacks(lambda lines: [e for e in lines if room.shows(e)],
                                  _historyRefused)

    def mayReplay(self, user, name):
        """
        Whether L{recent} of the room C{name}, which C{user} must be in, may
        find any lines: L{False} when it certainly finds none (nothing has
        been said there), so that a join's replay, which would show nothing,
        need not be asked for.  (Two replays per login, each a read and its
        callbacks: see bench/README.md, "Login CPU, counted per login".)
        """
        history = self._requireHistory()
        return self.fanout.mayReadHistory(self.memberRoom(user, name), history)

    def page(self, user, name, count, before=None, after=None, oldest=False):
        """
        At most C{count} lines of the room C{name}, which C{user} must be
        in, strictly between the bounds C{after} and C{before} (L{None}, or
        C{("id", ID)} or C{("time", SECONDS)}), oldest first: the newest of
        them, or the oldest with C{oldest}.  Read as a user's request for
        more (ahead of the searches, under the store's limits).

        @return: a L{Deferred} firing with a list of events.
        """
        history = self._requireHistory()
        room = self.memberRoom(user, name)
        if after is None and room.firstId is not None:
            # Nothing of an earlier room of this name.
            after = ("id", room.firstId - 1)
        found = history.page(room.name, count, before, after, oldest)
        return found.addCallbacks(lambda lines: [e for e in lines if room.shows(e)],
                                  _historyRefused)

    def search(self, user, words, limit):
        """
        The newest lines, at most C{limit}, holding every one of C{words}, in
        the rooms C{user} is in now and in no other; newest first.

        @return: a L{Deferred} firing with a list of events.
        """
        history = self._requireHistory()
        rooms = {roomKey(room.name): room for room in user.rooms.values()}
        found = history.search([room.name for room in rooms.values()], words, limit)
        found.addErrback(_historyRefused)
        return found.addCallback(lambda lines: [
            e for e in lines if rooms.get(roomKey(e.room)) is None
            or rooms[roomKey(e.room)].shows(e)])

    def room(self, name):
        """
        The existing room called C{name}; refused when there is none.
        """
        name = normalRoomName(name)
        room = self.rooms.get(roomKey(name))
        if room is None:
            raise R.NoSuchRoom(name)
        return room

    def memberRoom(self, user, name):
        """
        The room called C{name}, which C{user} must be in.
        """
        name = normalRoomName(name)
        room = user.rooms.get(roomKey(name))
        if room is None:
            raise R.NotInRoom(name)
        return room

    def roster(self, name, start=0, count=None):
        """
        Who is in the existing room C{name}: its members' nicknames in the
        order people look names up, from the C{start}th, at most C{count}
        (L{None}: all), and how many members it has in all.
        """
        members = self.room(name).members.values()
        nicks = sortedNicks(map(_nickOf, members))
        end = None if count is None else start + count
        return nicks[start:end], len(nicks)

    def user(self, nick):
        """
        The user called C{nick}, or L{None}.
        """
        return self.users.get(nickKey(nick))

    def disconnect(self, user, reason, said=False):
        """
        Forget C{user}: announce their quit to their rooms and free their
        nickname at once.  Safe to call more than once.

        @param said: whether C{reason} is the user's own words (a quit they
            asked for): a room that mutes them does not hear them, and
            every other room hears them after C{"Quit: "}.
        """
        if user.connected:
            user.connected = False
            # Their own words marked as theirs, as every room is told them
            # (below): a daemon that tells their quit later reads it here.
            user.goneBecause = f"Quit: {reason}" if said and reason else reason
        if user.nick is None or self.users.get(user.key) is not user:
            return
        told = []
        for room in user.rooms.values():
            heard = reason
            if said:
                heard = self.moderation.heardOnLeaving(user, room, reason)
                # Marked as the user's, as IRC servers mark a quit's words:
                # "/quit banned" is not to read as the server's ban.
                heard = f"Quit: {heard}" if heard else heard
            told.append((room, heard))
        if said:
            # The rooms that hear the words first: a front end that shows a
            # quit once for all the rooms it is told in (IRC's QUIT) shows
            # the first, and a room that mutes the user is not to silence
            # the others.
            told.sort(key=lambda pair: not pair[1])
        for room, heard in told:
            self.removeMember(user, room, events.Quit(room.name, user.nick, heard))
        del self.users[user.key]
        self.identity.forget(user)
        self.fanout.userGone(user)

    def removeMember(self, user, room, event=None):
        """
        Take C{user} out of C{room} and tell the members left C{event}
        (L{None}: nothing).  An emptied room is gone.
        """
        key = room.key
        if event is not None:
            # Those told of the departure are told of the arrival first.
            self.fanout.announceArrivals(room)
        del user.rooms[key]
        del room.members[user.key]
        room.names = None
        if room.creator is user:
            room.creator = None
        if not room.members:
            del self.rooms[key]
            if room.owner is not None or key == roomKey(self.lobby):
                # The lobby too keeps its topic while nobody is there.
                self.kept[key] = room
            else:
                self.moderation.roomGone(room)
        elif event is not None:
            self.fanout.departed(room, event)

    def _newId(self):
        # Taken here, on the reactor thread, so that the event carries it
        # without waiting for the store.
        return None if self.history is None else self.history.nextId()

    def _record(self, event):
        if self.history is not None:
            self.history.append(event)

    def _requireHistory(self):
        if self.history is None:
            raise R.NoHistory()
        return self.history

    def _checkNickFree(self, user, nick):
        """
        Refuse C{nick} to C{user} unless it is valid, theirs to use (not
        registered, or proved theirs) and free.
        """
        problem = nickProblem(nick)
        if problem:
            raise R.InvalidNickname(nick, problem)
        if not self.identity.mayHold(user, nick):
            raise R.PasswordRequired(nick)
        if nickKey(nick) in self.users:
            raise R.NicknameTaken(nick, self.identity.isRegistered(nick))


def _listed(room, user):
    """
    C{room}'s nicknames sorted for listing, now that C{user} has joined it
    (and is in its C{names}), kept in C{room.listing}; L{None} for a room of
    more than L{LISTED_MAX}.
    """
    names = room.names
    if len(names) > LISTED_MAX:
        room.listing = None
        return None
    listing = room.listing
    if listing is None or listing[0] is not names:
        nicks = sortedNicks(names)
        room.listing = (names, nicks, list(map(nickKey, nicks)))
    else:
        _, nicks, keys = listing
        # Keys are unique in a room, and sortedNicks orders by them.
        at = bisect(keys, user.key)
        nicks.insert(at, user.nick)
        keys.insert(at, user.key)
    return tuple(nicks)


def _historyRefused(failure):
    """
    The history store's refusal of a read (too busy, too costly) becomes a
    refusal for the user who asked.
    """
    failure.trap(HistoryRefused)
    raise R.HistoryRefused(failure.getErrorMessage())


def _checkNotEmpty(text):
    """
    Refuse an empty C{text} (or only spaces): whatever front end forgot to,
    nothing empty is said, stored, or sent to IRC as an invalid line.
    """
    if not text or text.isspace():
        raise R.Empty()

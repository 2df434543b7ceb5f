"""
The chat core: users, nicknames, rooms and topics.

It knows nothing of sockets or of any wire format.  Each request either
happens, and the core hands the resulting event to the fan-out together with
who should receive it, or it is refused with a L{ChatError} whose message tells
the user why.

The rules of trust are mixed in from their own modules: registered
nicknames (L{chatd.core.identity}) and moderation (L{chatd.core.moderation}).  A user's
address is plain text from the edge, used only to match bans.
"""

import random
import weakref

from twisted.logger import Logger

from chatd.core import events
from chatd.core.bans import BanList
from chatd.core.errors import ChatError
from chatd.core.identity import IdentityRules
from chatd.core.moderation import ModerationRules
from chatd.core.names import (
    nickKey,
    nickProblem,
    normalRoomName,
    roomKey,
    roomProblem,
)


class User:
    """
    One connected person, as the core sees them.

    @ivar nick: the nickname, or L{None} until one is claimed.
    @ivar rooms: the rooms joined, by room key, in the order joined.
    @ivar current: the room plain text goes to, or L{None}.
    @ivar outbox: where the fan-out puts this user's bytes.
    @ivar wire: the wire format that turns events into this user's bytes.
    @ivar host: the address the user connects from, as text, or L{None}.
    @ivar account: the key of the registered nickname the user proved a
        password for, or L{None}; it counts only while they use that nick.
    @ivar hangUp: called with no arguments to close the user's connection.
    @ivar connected: false once the core has been told the user is gone.
    """

    __slots__ = ("nick", "rooms", "current", "outbox", "wire", "host", "account",
                 "hangUp", "connected", "__weakref__")

    def __init__(self, outbox, wire, host=None, hangUp=None):
        self.nick = None
        self.rooms = {}
        self.current = None
        self.outbox = outbox
        self.wire = wire
        self.host = host
        self.account = None
        self.hangUp = hangUp or (lambda: None)
        self.connected = True

    @property
    def identified(self):
        """
        Whether the user has proved they own the nickname they use now.
        """
        return self.nick is not None and self.account == nickKey(self.nick)


class Room:
    """
    A named set of users with a topic.

    @ivar members: the users in the room, by nickname key.
    @ivar owner: the key of the registered nickname that created the room,
        or L{None}.
    @ivar muted: when each muted member's mute ends (L{None}: never), by
        nickname key.
    @ivar expelled: the key of the ban that put each user out of the room,
        so that a new nickname does not let them back in while it holds.
    """

    __slots__ = ("name", "members", "topic", "owner", "muted", "expelled")

    def __init__(self, name, owner=None):
        self.name = name
        self.members = {}
        self.topic = ""
        self.owner = owner
        self.muted = {}
        self.expelled = weakref.WeakKeyDictionary()


class ChatCore(IdentityRules, ModerationRules):
    """
    The shared state of one chat server and the rules that change it.

    @ivar users: every user with a nickname, by nickname key.
    @ivar rooms: every room with at least one member, by room key.
    """

    _log = Logger()

    def __init__(self, fanout, clock, lobby="#lobby", history=None, maxRooms=20,
                 accounts=None, operators=(), identifySeconds=IdentityRules.IDENTIFY_SECONDS,
                 guestNames=None):
        """
        @param fanout: a L{chatd.fanout.Fanout} that delivers events.
        @param clock: an L{IReactorTime} that stamps messages and times
            identification and bans.
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
        @param identifySeconds: how long someone using a registered nickname
            has to identify before being renamed to a guest name.
        @param guestNames: a L{random.Random} that picks guest names.
        """
        self._fanout = fanout
        self._clock = clock
        self.lobby = lobby
        self.history = history
        self.maxRooms = maxRooms
        self.accounts = accounts
        self.operators = frozenset(nickKey(nick) for nick in operators)
        self.identifySeconds = identifySeconds
        self._random = guestNames or random.Random()
        self.bans = BanList()
        self.users = {}
        self.rooms = {}
        self._identifyTimers = {}
        self._attempts = {}

    def claimNick(self, user, nick):
        """
        Give a newly connected C{user} their first nickname and bring them into
        the lobby.
        """
        self._checkNickFree(nick)
        self._checkNotBanned(nick, user.host, "")
        user.nick = nick
        self.users[nickKey(nick)] = user
        # With the disconnect line, the one log line a connection costs.
        self._log.info("{nick} logged in from {host}", nick=nick, host=user.host)
        self.join(user, self.lobby)

    def rename(self, user, nick):
        """
        Change C{user}'s nickname and announce it to every room they are in.
        """
        old = user.nick
        if nick == old:
            return
        if nickKey(nick) != nickKey(old):
            self._checkNickFree(nick)
            self._checkNotBanned(nick, user.host, "")
        else:
            problem = nickProblem(nick)
            if problem:
                raise ChatError(problem)
        self._rename(user, nick)

    def _rename(self, user, nick):
        old = user.nick
        del self.users[nickKey(old)]
        self.users[nickKey(nick)] = user
        user.nick = nick
        for room in user.rooms.values():
            del room.members[nickKey(old)]
            room.members[nickKey(nick)] = user
            self._fanout.toRoom(room, events.Renamed(room.name, old, nick), user)
        self._log.info("{old} is now {new}", old=old, new=nick)

    def join(self, user, name):
        """
        Put C{user} into the room C{name}, creating it on demand, and make it
        their current room.  Joining a room one is in only makes it current.

        @return: the L{Room}.
        """
        name = normalRoomName(name)
        problem = roomProblem(name)
        if problem:
            raise ChatError(problem)
        key = roomKey(name)
        if key not in user.rooms and len(user.rooms) >= self.maxRooms:
            raise ChatError(f"you are in {len(user.rooms)} rooms, the most "
                            "allowed; /part one first")
        room = self.rooms.get(key)
        if key not in user.rooms:
            self._checkNotBanned(user.nick, user.host, name)
            if room is not None and user in room.expelled:
                self._checkNotExpelled(user, room)
        if room is None:
            # A registered, identified user who creates a room owns it; the
            # lobby belongs to nobody.
            owner = nickKey(user.nick) if user.identified and key != roomKey(self.lobby) else None
            room = self.rooms[key] = Room(name, owner)
        if key not in user.rooms:
            self._fanout.toRoom(room, events.Joined(room.name, user.nick))
            room.members[nickKey(user.nick)] = user
            user.rooms[key] = room
        user.current = room
        return room

    def part(self, user, name=None, reason=""):
        """
        Take C{user} out of the room C{name} (their current room by default).

        @return: the L{Room} left.
        """
        room = self._memberRoom(user, name)
        self._leave(user, room, events.Parted(room.name, user.nick, reason))
        return room

    def say(self, user, text):
        """
        Send C{text} to every other member of C{user}'s current room.
        """
        room = self._currentRoom(user)
        self._checkNotMuted(user, room)
        event = events.Said(room.name, user.nick, text, self._clock.seconds(),
                            self._newId())
        self._record(event)
        self._fanout.toRoom(room, event, user)

    def act(self, user, text):
        """
        Send an action ("/me waves") to every other member of the current room.
        """
        room = self._currentRoom(user)
        self._checkNotMuted(user, room)
        event = events.Acted(room.name, user.nick, text, self._clock.seconds(),
                             self._newId())
        self._record(event)
        self._fanout.toRoom(room, event, user)

    def tell(self, user, nick, text):
        """
        Send C{text} to the user called C{nick} and nobody else.
        """
        target = self.users.get(nickKey(nick))
        if target is None:
            raise ChatError(f"no such user: {nick}")
        event = events.PrivatelySaid(user.nick, text, self._clock.seconds())
        self._fanout.toUser(target, event)

    def setTopic(self, user, topic):
        """
        Set the topic of C{user}'s current room and announce it.

        @return: the L{Room}.
        """
        room = self._currentRoom(user)
        self._checkNotMuted(user, room)
        if topic == room.topic:
            # Nothing changes: nothing to announce, and nothing to store.
            raise ChatError(f"{room.name} has no topic" if not topic
                            else f"{room.name} topic is already: {topic}")
        room.topic = topic
        event = events.TopicChanged(room.name, user.nick, topic,
                                    self._clock.seconds(), self._newId())
        self._record(event)
        self._fanout.toRoom(room, event, user)
        return room

    def recent(self, user, room, count):
        """
        The last C{count} lines of C{room}, which C{user} must be in, oldest
        first; refused when the server keeps no history.

        @return: a L{Deferred} firing with a list of events.
        """
        history = self._requireHistory()
        if user.rooms.get(roomKey(room.name)) is not room:
            raise ChatError(f"you are not in {room.name}")
        # The store answers as of now: lines said from now on reach the user
        # live, and only live.
        return history.recent(room.name, count)

    def search(self, user, words, limit):
        """
        The newest lines, at most C{limit}, holding every one of C{words}, in
        the rooms C{user} is in now and in no other; newest first.

        @return: a L{Deferred} firing with a list of events.
        """
        history = self._requireHistory()
        return history.search([room.name for room in user.rooms.values()],
                               words, limit)

    def currentRoom(self, user):
        """
        The room C{user}'s plain text goes to; refused when there is none.
        """
        return self._currentRoom(user)

    def room(self, name):
        """
        The existing room called C{name}; refused when there is none.
        """
        name = normalRoomName(name)
        room = self.rooms.get(roomKey(name))
        if room is None:
            raise ChatError(f"no such room: {name}")
        return room

    def disconnect(self, user, reason):
        """
        Forget C{user}: announce their quit to their rooms and free their
        nickname at once.  Safe to call more than once.
        """
        user.connected = False
        if user.nick is None or self.users.get(nickKey(user.nick)) is not user:
            return
        for room in list(user.rooms.values()):
            self._leave(user, room, events.Quit(room.name, user.nick, reason))
        del self.users[nickKey(user.nick)]
        self._cancelIdentify(user)

    def _newId(self):
        # Taken here, on the reactor thread, so that the event carries it
        # without waiting for the store.
        return None if self.history is None else self.history.nextId()

    def _record(self, event):
        if self.history is not None:
            self.history.append(event)

    def _requireHistory(self):
        if self.history is None:
            raise ChatError("this server keeps no history")
        return self.history

    def _checkNickFree(self, nick):
        problem = nickProblem(nick)
        if problem:
            raise ChatError(problem)
        if nickKey(nick) in self.users:
            if self.accounts is not None and self.accounts.isRegistered(nick):
                raise ChatError(f"the nickname {nick} is taken; "
                                f"/ghost {nick} PASSWORD if it is yours")
            raise ChatError(f"the nickname {nick} is taken")

    def _currentRoom(self, user):
        if user.current is None:
            raise ChatError("you are in no room; /join #room first")
        return user.current

    def _memberRoom(self, user, name):
        if name is None:
            return self._currentRoom(user)
        name = normalRoomName(name)
        room = user.rooms.get(roomKey(name))
        if room is None:
            raise ChatError(f"you are not in {name}")
        return room

    def _leave(self, user, room, event, tellLeaver=False):
        """
        Take C{user} out of C{room} and tell its members C{event} (L{None}:
        nothing), the leaver among them when C{tellLeaver}.
        """
        key = roomKey(room.name)
        if tellLeaver and event is not None:
            self._fanout.toUser(user, event)
        del user.rooms[key]
        del room.members[nickKey(user.nick)]
        if user.current is room:
            # Fall back to the room joined most recently, as a client would.
            user.current = next(reversed(user.rooms.values()), None)
        if not room.members:
            del self.rooms[key]
        elif event is not None:
            self._fanout.toRoom(room, event)


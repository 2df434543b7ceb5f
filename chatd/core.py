"""
The chat core: users, nicknames, rooms and topics.

It knows nothing of sockets or of any wire format.  Each request either
happens, and the core hands the resulting event to the fan-out together with
who should receive it, or it is refused with a L{ChatError} whose message tells
the user why.

Trust lives here too: registered nicknames (their passwords checked by an
L{chatd.storage.IAccountStore}, off the reactor thread), operators, room
owners, and the kicks, bans and mutes they may hand out.  A user's address is
plain text from the edge, used only to match bans.
"""

import math
import random
import weakref

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger

from chatd import events
from chatd.moderation import ADDRESS, NICK, Ban, BanList, targetKind
from chatd.storage import AccountError
from chatd.names import (
    nickKey,
    nickProblem,
    normalRoomName,
    roomKey,
    roomProblem,
)


class ChatError(Exception):
    """
    A request the core refuses; the message is meant for the user who made it.
    """


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


class ChatCore:
    """
    The shared state of one chat server and the rules that change it.

    @ivar users: every user with a nickname, by nickname key.
    @ivar rooms: every room with at least one member, by room key.
    """

    _log = Logger()

    IDENTIFY_SECONDS = 60.0
    PASSWORD_MIN = 8
    # Wrong (or not yet checked) passwords allowed per nickname and per
    # address within ATTEMPT_WINDOW seconds.
    ATTEMPTS = 5
    ATTEMPT_WINDOW = 300.0

    def __init__(self, fanout, clock, lobby="#lobby", history=None, accounts=None,
                 operators=(), identifySeconds=IDENTIFY_SECONDS, guestNames=None):
        """
        @param fanout: a L{chatd.fanout.Fanout} that delivers events.
        @param clock: an L{IReactorTime} that stamps messages and times
            identification and bans.
        @param lobby: the room every user joins on arrival.
        @param history: an L{chatd.storage.IHistoryStore} that keeps room
            messages, actions and topic changes, or L{None} to keep nothing.
            Private messages are never kept.
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
        self._log.info("nickname {nick} claimed", nick=nick)
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
        room = self.rooms.get(roomKey(normalRoomName(name)))
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

    # Registered nicknames

    def admit(self, user):
        """
        Refuse a newly connected C{user} whose address is banned from the
        server.
        """
        self._checkNotBanned(None, user.host, "")

    def checkIdentity(self, user):
        """
        After C{user} takes a nickname: if it is registered and they have not
        proved it is theirs, tell them, and rename them to a guest name unless
        they identify within L{identifySeconds}.
        """
        self._cancelIdentify(user)
        if self.accounts is None or user.identified:
            return
        if not self.accounts.isRegistered(user.nick):
            return
        self._fanout.toUser(user, events.IdentifyRequired(user.nick, self.identifySeconds))
        self._identifyTimers[user] = self._clock.callLater(
            self.identifySeconds, self._identifyExpired, user, nickKey(user.nick))

    def register(self, user, password):
        """
        Register C{user}'s nickname with C{password}; they are identified
        once it is done.

        @return: a L{Deferred} firing when registered, or failing with
            L{ChatError}.
        """
        accounts = self._requireAccounts()
        nick = user.nick
        if accounts.isRegistered(nick):
            raise ChatError(f"{nick} is already registered; /identify PASSWORD "
                            "if it is yours")
        self._checkPassword(password)
        done = accounts.register(nick, password)

        def registered(result):
            self._log.info("{nick} registered", nick=nick)
            if user.nick == nick:
                user.account = nickKey(nick)
                self._cancelIdentify(user)

        return done.addCallbacks(registered, _refused)

    def identify(self, user, password):
        """
        Prove C{user} owns the registered nickname they use.

        @return: a L{Deferred} firing when identified, or failing with
            L{ChatError} for a wrong password.
        """
        nick = user.nick
        if user.identified:
            raise ChatError(f"you are already identified as {nick}")
        checked = self._checkOwner(user, nick, password)

        def identified(result):
            if user.nick == nick:
                user.account = nickKey(nick)
                self._cancelIdentify(user)
            self._log.info("{nick} identified", nick=nick)

        return checked.addCallback(identified)

    def ghost(self, user, nick, password):
        """
        Free the registered nickname C{nick} from whoever holds it (a stale
        connection, say) and give it to C{user}, who proves it is theirs.
        C{user} may have no nickname yet: then this is how they claim theirs
        and arrive in the lobby.

        @return: a L{Deferred} firing when C{user} is C{nick}, identified.
        """
        problem = nickProblem(nick)
        if problem:
            raise ChatError(problem)
        checked = self._checkOwner(user, nick, password)

        def ghosted(result):
            if not user.connected:
                return
            holder = self.users.get(nickKey(nick))
            if holder is not None and holder is not user:
                self._fanout.toUser(holder, events.Ghosted(holder.nick))
                self.disconnect(holder, "ghosted")
                holder.hangUp()
                self._log.info("{by} ghosted {nick}", by=user.nick or "-", nick=nick)
            user.account = nickKey(nick)
            if user.nick is None:
                self.claimNick(user, nick)
            elif user.nick != nick:
                self._rename(user, nick)
            self._cancelIdentify(user)

        return checked.addCallback(ghosted)

    def changePassword(self, user, old, new):
        """
        Change the password of C{user}'s registered nickname, proving the old
        one first.

        @return: a L{Deferred} firing when changed.
        """
        nick = user.nick
        if not user.identified:
            raise ChatError(f"identify as {nick} first")
        self._checkPassword(new)
        checked = self._checkOwner(user, nick, old)
        checked.addCallback(lambda _: self.accounts.changePassword(nick, new))
        checked.addCallback(lambda _: self._log.info("{nick} changed their password",
                                                     nick=nick))
        return checked

    # Moderation

    def isOperator(self, user):
        return user.identified and nickKey(user.nick) in self.operators

    def kick(self, user, nick, reason=""):
        """
        Put C{nick} out of C{user}'s current room.
        """
        room = self._currentRoom(user)
        target = self._moderatable(user, room, nick)
        self._log.info("{by} kicked {nick} from {room}: {reason}", by=user.nick,
                       nick=target.nick, room=room.name, reason=reason)
        self._leave(target, room, events.Kicked(room.name, target.nick, user.nick, reason),
                    tellLeaver=True)

    def ban(self, user, target, duration=None, reason=""):
        """
        Ban C{target}, a nickname or an address: an operator bans from the
        whole server, a room's owner from their room (C{user}'s current
        room).  Whoever the ban covers is put out at once.

        @param duration: seconds, or L{None} until lifted.
        """
        room = self._currentRoom(user)
        kind = targetKind(target)
        if kind is None:
            raise ChatError(f"cannot ban {target}: not a nickname nor an address")
        server = self._mayModerate(user, room)
        if kind == NICK:
            if nickKey(target) == nickKey(user.nick):
                raise ChatError("you cannot ban yourself")
            if nickKey(target) in self.operators:
                raise ChatError(f"{target} is an operator")
        now = self._clock.seconds()
        ban = Ban(kind, target, "" if server else room.name,
                  None if duration is None else now + duration, reason, user.nick, now)
        self.bans.add(ban)
        if self.accounts is not None:
            self._store(self.accounts.addBan(ban), "storing a ban")
        self._log.info("{by} banned {target} from {place} for {duration}: {reason}",
                       by=user.nick, target=target, place=ban.room or "the server",
                       duration=_seconds(duration), reason=reason)
        self._fanout.toRoom(room, events.Banned(room.name, target, user.nick, duration,
                                                reason, server))
        for covered in list(self.users.values()):
            if not _covers(ban, covered) or covered is user:
                continue
            if server:
                self._fanout.toUser(covered, events.Expelled(user.nick, duration, reason))
                self.disconnect(covered, "banned")
                covered.hangUp()
            else:
                # Whoever the ban covers now stays out under any nickname.
                room.expelled[covered] = ban.key
                if room.members.get(nickKey(covered.nick)) is covered:
                    self._leave(covered, room, None)

    def unban(self, user, target):
        """
        Lift the ban on C{target}: an operator's from the server (or else from
        the current room), a room owner's from their room.
        """
        room = self._currentRoom(user)
        server = self._mayModerate(user, room)
        kind = targetKind(target)
        places = ["", room.name] if server else [room.name]
        for place in places:
            ban = self.bans.remove(kind, target, place) if kind else None
            if ban is not None:
                break
        else:
            raise ChatError(f"{target} is not banned here")
        if self.accounts is not None:
            self._store(self.accounts.removeBan(ban), "forgetting a ban")
        self._log.info("{by} lifted the ban on {target} from {place}", by=user.nick,
                       target=target, place=ban.room or "the server")
        self._fanout.toRoom(room, events.Unbanned(room.name, target, user.nick))

    def mute(self, user, nick, duration=None):
        """
        Stop C{nick} talking in C{user}'s current room, for C{duration}
        seconds or until unmuted.
        """
        room = self._currentRoom(user)
        target = self._moderatable(user, room, nick)
        room.muted[nickKey(target.nick)] = (
            None if duration is None else self._clock.seconds() + duration)
        self._log.info("{by} muted {nick} in {room} for {duration}", by=user.nick,
                       nick=target.nick, room=room.name, duration=_seconds(duration))
        self._fanout.toRoom(room, events.Muted(room.name, target.nick, user.nick, duration))

    def unmute(self, user, nick):
        room = self._currentRoom(user)
        self._mayModerate(user, room)
        if room.muted.pop(nickKey(nick), False) is False:
            raise ChatError(f"{nick} is not muted in {room.name}")
        self._log.info("{by} unmuted {nick} in {room}", by=user.nick, nick=nick,
                       room=room.name)
        self._fanout.toRoom(room, events.Unmuted(room.name, nick, user.nick))

    def listBans(self, user):
        """
        The bans C{user} may lift: all of them for an operator, their current
        room's for its owner.
        """
        room = self._currentRoom(user)
        server = self._mayModerate(user, room)
        now = self._clock.seconds()
        return [ban for ban in self.bans.all()
                if (server or ban.room.lower() == room.name.lower())
                and (ban.until is None or ban.until > now)]

    def restoreBans(self, bans):
        """
        Put back the bans stored by an earlier run.
        """
        for ban in bans:
            self.bans.add(ban)

    def announce(self, text):
        """
        Tell every user something from the server (it is going down, say).
        """
        self._fanout.toUsers(self.users.values(), events.ServerNotice(text))

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

    def _requireAccounts(self):
        if self.accounts is None:
            raise ChatError("this server keeps no accounts")
        return self.accounts

    def _checkPassword(self, password):
        if len(password) < self.PASSWORD_MIN or " " in password:
            raise ChatError(f"a password has at least {self.PASSWORD_MIN} characters "
                            "and no spaces")

    def _checkOwner(self, user, nick, password):
        """
        Check C{password} is C{nick}'s, counting the attempt against both the
        nickname and C{user}'s address until it proves right.

        @return: a L{Deferred} firing when it is right, failing with
            L{ChatError} when it is wrong.
        """
        accounts = self._requireAccounts()
        if not accounts.isRegistered(nick):
            raise ChatError(f"{nick} is not registered")
        keys = [("nick", nickKey(nick))] + ([("host", user.host)] if user.host else [])
        now = self._clock.seconds()
        for key in keys:
            recent = [t for t in self._attempts.pop(key, ()) if t > now - self.ATTEMPT_WINDOW]
            # Only keys with recent attempts stay, so the table stays small.
            if recent:
                self._attempts[key] = recent
            if len(recent) >= self.ATTEMPTS:
                wait = math.ceil(recent[0] + self.ATTEMPT_WINDOW - now)
                raise ChatError(f"too many password attempts for {nick}; "
                                f"try again in {wait} seconds")
        # Counted before the answer, so that many attempts sent at once are
        # limited too.
        for key in keys:
            self._attempts.setdefault(key, []).append(now)
        checked = maybeDeferred(accounts.verify, nick, password)

        def answered(right):
            if not right:
                self._log.info("wrong password for {nick} from {host}", nick=nick,
                               host=user.host or "-")
                raise ChatError(f"wrong password for {nick}")
            self._attempts.pop(("nick", nickKey(nick)), None)

        return checked.addCallbacks(answered, _refused)

    def _identifyExpired(self, user, key):
        del self._identifyTimers[user]
        if user.nick is None or nickKey(user.nick) != key or user.identified:
            return
        if self.users.get(key) is not user:
            return
        old = user.nick
        guest = self._guestName()
        self._rename(user, guest)
        self._fanout.toUser(user, events.GuestRenamed(old, guest))

    def _guestName(self):
        while True:
            nick = f"Guest{self._random.randrange(10000):04d}"
            if nickKey(nick) not in self.users and not (
                    self.accounts and self.accounts.isRegistered(nick)):
                return nick

    def _cancelIdentify(self, user):
        timer = self._identifyTimers.pop(user, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _mayModerate(self, user, room):
        """
        Refuse C{user} unless they may moderate C{room}.

        @return: whether they act as an operator (for the whole server).
        """
        if self.isOperator(user):
            return True
        if room.owner is not None and user.identified and room.owner == nickKey(user.nick):
            return False
        raise ChatError(f"you are not an operator nor the owner of {room.name}")

    def _moderatable(self, user, room, nick):
        """
        The member C{nick} of C{room}, whom C{user} may kick or mute there.
        """
        self._mayModerate(user, room)
        target = room.members.get(nickKey(nick))
        if target is None:
            raise ChatError(f"{nick} is not in {room.name}")
        if target is user:
            raise ChatError("you cannot do that to yourself")
        if nickKey(target.nick) in self.operators or (
                room.owner is not None and room.owner == nickKey(target.nick)):
            raise ChatError(f"{target.nick} is a moderator of {room.name}")
        return target

    def _checkNotBanned(self, nick, host, room):
        ban, ended = self.bans.find(nick, host, room, self._clock.seconds())
        for old in ended:
            if self.accounts is not None:
                self._store(self.accounts.removeBan(old), "forgetting an ended ban")
        if ban is None:
            return
        place = room or "this server"
        until = "" if ban.until is None else (
            f" for {math.ceil(ban.until - self._clock.seconds())} more seconds")
        raise ChatError(f"you are banned from {place}{until}" +
                        (f" ({ban.reason})" if ban.reason else ""))

    def _checkNotExpelled(self, user, room):
        ban = self.bans.get(room.expelled[user], self._clock.seconds())
        if ban is None:
            del room.expelled[user]
            return
        raise ChatError(f"you are banned from {room.name}" +
                        (f" ({ban.reason})" if ban.reason else ""))

    def _checkNotMuted(self, user, room):
        key = nickKey(user.nick)
        if key not in room.muted:
            return
        until = room.muted[key]
        if until is not None and until <= self._clock.seconds():
            del room.muted[key]
            return
        raise ChatError(f"you are muted in {room.name}")

    def _store(self, done, what):
        done.addErrback(lambda failure: self._log.failure(what + " failed", failure))

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
        room = user.rooms.get(roomKey(normalRoomName(name)))
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


def _seconds(duration):
    return "ever" if duration is None else f"{duration} seconds"


def _covers(ban, user):
    if user.nick is None:
        return False
    if ban.kind == ADDRESS:
        return user.host is not None and user.host.lower() == ban.target.lower()
    return nickKey(user.nick) == nickKey(ban.target)


def _refused(failure):
    """
    An account store's refusal (L{AccountError}) becomes one for the user.
    """
    failure.trap(AccountError)
    raise ChatError(failure.getErrorMessage())

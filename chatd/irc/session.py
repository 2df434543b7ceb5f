"""
INTERIM: the session API of the seam plan (/work/seam-plan.md, issue 11),
over today's L{chatd.core.chat.ChatCore}, for the IRC front end alone.

The IRC handlers act only through a L{Session} and catch only typed
L{Refusal}s, so that when the real C{chatd.core.session} lands this module is
deleted and the handlers keep working.  Until then it turns the core's prose
refusals (L{ChatError}) into typed ones by checking the conditions first, and
names the room of every call by making it the user's current room (the line
protocol's UI state; an IRC user has no use for it).
"""

from twisted.internet.defer import fail

from chatd.core.chat import ChatError, User
from chatd.core.names import nickKey, nickProblem, normalRoomName, roomKey, roomProblem


class Refusal(Exception):
    """
    A request the core refuses; C{str()} is the core's words for a person.
    """


class NoSuchUser(Refusal):
    def __init__(self, nick):
        super().__init__(f"no such user: {nick}")
        self.nick = nick


class NoSuchRoom(Refusal):
    def __init__(self, room):
        super().__init__(f"no such room: {room}")
        self.room = room


class InvalidRoomName(Refusal):
    def __init__(self, room, reason):
        super().__init__(reason)
        self.room = room


class NotInRoom(Refusal):
    def __init__(self, room):
        super().__init__(f"you are not in {room}")
        self.room = room


class TargetNotInRoom(Refusal):
    def __init__(self, room, nick):
        super().__init__(f"{nick} is not in {room}")
        self.room = room
        self.nick = nick


class NicknameTaken(Refusal):
    def __init__(self, nick, registered=False):
        super().__init__(f"the nickname {nick} is taken")
        self.nick = nick
        self.registered = registered


class InvalidNickname(Refusal):
    def __init__(self, nick, reason):
        super().__init__(reason)
        self.nick = nick


class Banned(Refusal):
    def __init__(self, room, text):
        super().__init__(text)
        self.room = room


class Muted(Refusal):
    def __init__(self, room):
        super().__init__(f"you are muted in {room}")
        self.room = room


class NotModerator(Refusal):
    def __init__(self, room):
        super().__init__(f"you are not an operator nor the owner of {room}")
        self.room = room


class TooManyRooms(Refusal):
    def __init__(self, count):
        super().__init__(f"you are in {count} rooms, the most allowed")
        self.count = count


class Refused(Refusal):
    """
    Any other refusal: only the core's words.
    """


def _typed(error, room=None):
    text = str(error)
    if text.startswith("you are banned"):
        return Banned(room, text)
    if text.startswith("you are muted"):
        return Muted(room)
    if text.startswith("you are not an operator nor the owner"):
        return NotModerator(room)
    return Refused(text)


class Session:
    """
    One connection's way to act, as the seam plan describes it.
    """

    def __init__(self, core, client, host):
        self.core = core
        self.user = User(client.outbox, client.wire, host=host, hangUp=client.hangUp)

    def admit(self):
        try:
            self.core.admit(self.user)
        except ChatError as e:
            raise _typed(e) from None

    @property
    def nick(self):
        return self.user.nick

    @property
    def identified(self):
        return self.user.identified

    @property
    def rooms(self):
        return list(self.user.rooms.values())

    def _call(self, room, method, *args):
        try:
            return method(self.user, *args)
        except ChatError as e:
            raise _typed(e, room) from None

    def checkNick(self, nick):
        problem = nickProblem(nick)
        if problem:
            raise InvalidNickname(nick, problem)
        if nickKey(nick) in self.core.users and self.core.users[nickKey(nick)] is not self.user:
            accounts = self.core.accounts
            raise NicknameTaken(nick, accounts is not None and accounts.isRegistered(nick))

    def claim(self, nick, joinLobby=True):
        """
        Take C{nick} as this connection's first nickname and, unless told
        not to, join the lobby.

        @return: the lobby, or L{None}.
        """
        self.checkNick(nick)
        if joinLobby:
            self._call(None, self.core.claimNick, nick)
        else:
            # INTERIM: ChatCore.claimNick always joins the lobby; this is
            # its first half.
            try:
                self.core._checkNotBanned(nick, self.user.host, "")
            except ChatError as e:
                raise _typed(e) from None
            self.user.nick = nick
            self.core.users[nickKey(nick)] = self.user
        self.core.checkIdentity(self.user)
        return self.user.current

    def rename(self, nick):
        self.checkNick(nick)
        self._call(None, self.core.rename, nick)
        self.core.checkIdentity(self.user)

    def memberRoom(self, name):
        """
        The room C{name} that this user is in; refused when it does not
        exist or they are not in it.
        """
        room = self.room(name)
        if self.user.rooms.get(roomKey(room.name)) is not room:
            raise NotInRoom(room.name)
        return room

    def room(self, name):
        name = normalRoomName(name)
        room = self.core.rooms.get(roomKey(name))
        if room is None:
            raise NoSuchRoom(name)
        return room

    def join(self, name):
        name = normalRoomName(name)
        problem = roomProblem(name)
        if problem:
            raise InvalidRoomName(name, problem)
        key = roomKey(name)
        if key in self.user.rooms:
            return self.user.rooms[key], False
        if len(self.user.rooms) >= self.core.maxRooms:
            raise TooManyRooms(len(self.user.rooms))
        return self._call(name, self.core.join, name), True

    def part(self, name, reason=""):
        room = self.memberRoom(name)
        return self._call(room.name, self.core.part, room.name, reason)

    def _inRoom(self, name, method, *args):
        room = self.memberRoom(name)
        self.user.current = room
        return self._call(room.name, method, *args)

    def say(self, room, text):
        self._inRoom(room, self.core.say, text)

    def act(self, room, text):
        self._inRoom(room, self.core.act, text)

    def tell(self, nick, text):
        if nickKey(nick) not in self.core.users:
            raise NoSuchUser(nick)
        self._call(None, self.core.tell, nick, text)

    def setTopic(self, room, topic):
        return self._inRoom(room, self.core.setTopic, topic)

    def isModerator(self, room, user=None):
        """
        Whether C{user} (this session's by default) may moderate C{room}.
        """
        user = user or self.user
        if self.core.isOperator(user):
            return True
        return (room.owner is not None and user.identified
                and room.owner == nickKey(user.nick))

    def kick(self, room, nick, reason=""):
        r = self.memberRoom(room)
        if not self.isModerator(r):
            raise NotModerator(r.name)
        if nickKey(nick) not in r.members:
            if nickKey(nick) not in self.core.users:
                raise NoSuchUser(nick)
            raise TargetNotInRoom(r.name, nick)
        self._inRoom(room, self.core.kick, nick, reason)

    def ban(self, room, target, duration=None, reason=""):
        self._inRoom(room, self.core.ban, target, duration, reason)

    def unban(self, room, target):
        self._inRoom(room, self.core.unban, target)

    def mute(self, room, nick, duration=None):
        self._inRoom(room, self.core.mute, nick, duration)

    def unmute(self, room, nick):
        self._inRoom(room, self.core.unmute, nick)

    def bans(self, room):
        return self._inRoom(room, self.core.listBans)

    def recent(self, room, count):
        r = self.memberRoom(room)
        return self._call(r.name, self.core.recent, r, count)

    def checkPassword(self, nick, password):
        """
        Check that C{password} is the registered nickname C{nick}'s (for
        SASL, before any nickname is taken), with the core's limits on
        attempts.

        @return: a L{Deferred} firing when it is right, failing with a
            L{Refusal} when it is not.
        """
        self._requireAccounts()
        # INTERIM: the core's own check, which ChatCore keeps private.
        try:
            checked = self.core._checkOwner(self.user, nick, password)
        except ChatError as e:
            raise _typed(e) from None

        def refused(failure):
            failure.trap(ChatError)
            raise _typed(failure.value)

        return checked.addErrback(refused)

    def _requireAccounts(self):
        if self.core.accounts is None:
            raise Refused("this server keeps no accounts")

    def identify(self, password):
        """
        @return: a L{Deferred}; its failure is the core's L{ChatError}
            (INTERIM: not yet typed).
        """
        try:
            return self._call(None, self.core.identify, password)
        except Refusal as e:
            return fail(e)

    def register(self, password):
        try:
            return self._call(None, self.core.register, password)
        except Refusal as e:
            return fail(e)

    def quit(self, reason):
        self.core.disconnect(self.user, reason)

"""
The session API: the one way a front end acts on the core.

A front end opens one L{Session} per connection (L{ChatCore.open}) and calls
it for everything its user does.  Every call names its room; a call either
returns what happened or raises a typed L{chatd.core.refusals.Refusal}, and
whatever the user and others are to be told reaches them as events through
the fan-out.  The checks that protect a person (registered nicknames, bans,
mutes) are made by the core behind these calls, so no front end can forget
one.
"""

from chatd.core import refusals as R


class Session:
    """
    One connection's handle on the core.
    """

    __slots__ = ("_core", "_user")

    def __init__(self, core, user):
        self._core = core
        self._user = user

    # Who the user is

    @property
    def nick(self):
        """
        The nickname, or L{None} until one is claimed.
        """
        return self._user.nick

    @property
    def identified(self):
        """
        Whether the user proved they own the nickname they use.
        """
        return self._user.identified

    @property
    def away(self):
        """
        The user's away message, or C{""} when they are not away.
        """
        return self._user.away or ""

    @property
    def isOperator(self):
        return self._core.moderation.isOperator(self._user)

    @property
    def rooms(self):
        """
        The rooms the user is in, in the order joined.
        """
        return list(self._user.rooms.values())

    @property
    def goneBecause(self):
        """
        Why the core let the user go (ghosted, banned), or L{None}.
        """
        return self._user.goneBecause

    @property
    def connected(self):
        """
        Whether the core still counts the user as connected.
        """
        return self._user.connected

    # Names and rooms

    def claim(self, nick, password=None, lobby=True):
        """
        Take a first nickname and arrive in the lobby (unless C{lobby} is
        false, without a password: IRC clients choose their own channels,
        and prove a registered nickname first, with L{authenticate}).

        A registered nickname needs its password: without one (or before it
        is proved) the claim is refused with
        L{chatd.core.refusals.PasswordRequired}, and the front end asks for
        it and claims again with it.  Whoever holds the nickname meanwhile
        (a stale connection of its owner's) is let go.

        @return: the lobby's L{chatd.core.chat.Room}; with a C{password}, a
            L{Deferred} firing with it once the password is checked (or
            failing with a L{chatd.core.refusals.Refusal}).
        """
        if self._user.nick is not None:
            raise R.AlreadyNamed(self._user.nick)
        if password is None:
            return self._arriving(self._core.claimNick, self._user, nick, lobby)
        return self._arriving(self._core.identity.take, self._user, nick, password)

    def rename(self, nick, password=None):
        """
        Change nickname.  As with L{claim}, a registered nickname not proved
        on this connection needs its C{password}: then the answer is a
        L{Deferred}.
        """
        if password is None:
            return self._core.rename(self._named(), nick)
        return self._core.identity.take(self._named(), nick, password)

    def join(self, room):
        """
        @return: the L{chatd.core.chat.Room} and whether it was joined now.
        """
        return self._core.join(self._named(), room)

    def part(self, room, reason=""):
        return self._core.part(self._named(), room, reason)

    def isIn(self, room):
        """
        Whether the user is in C{room}, a L{chatd.core.chat.Room}.
        """
        return self._user.rooms.get(room.key) is room

    def room(self, name):
        """
        The existing room called C{name}, member or not.
        """
        return self._core.room(name)

    def memberRoom(self, name):
        """
        The room called C{name}, which the user must be in.
        """
        return self._core.memberRoom(self._named(), name)

    def roster(self, room, start=0, count=None):
        """
        The nicknames in the room called C{room}, sorted, from C{start}, at
        most C{count}; and how many there are.
        """
        return self._core.roster(room, start, count)

    def allRooms(self):
        return list(self._core.rooms.values())

    # Talking

    def say(self, room, text, notice=False):
        self._core.say(self._named(), room, text, notice)

    def act(self, room, text):
        self._core.act(self._named(), room, text)

    def tell(self, nick, text, notice=False):
        self._core.tell(self._named(), nick, text, notice)

    def setAway(self, text):
        """
        Be away for C{text}, or back with C{""}.
        """
        self._core.setAway(self._named(), text)

    def whois(self, nick):
        """
        @return: a L{chatd.core.chat.Whois}.
        """
        return self._core.whois(nick)

    def setTopic(self, room, topic):
        return self._core.setTopic(self._named(), room, topic)

    # History

    @property
    def keepsHistory(self):
        return self._core.history is not None

    def mayReplay(self, room):
        """
        Whether L{recent} of C{room} may find any lines (see
        L{ChatCore.mayReplay}).
        """
        return self._core.mayReplay(self._named(), room)

    def recent(self, room, count):
        """
        The last C{count} lines of C{room}: what a newcomer is shown, or
        more that the user asked for.
        """
        return self._core.recent(self._named(), room, count)

    def page(self, room, count, before=None, after=None, oldest=False):
        """
        Lines of C{room} between two bounds (see L{ChatCore.page}).
        """
        return self._core.page(self._named(), room, count, before, after, oldest)

    def search(self, words, limit):
        return self._core.search(self._named(), words, limit)

    # Registered nicknames

    def register(self, password):
        return self._core.identity.register(self._named(), password)

    def identify(self, password):
        return self._core.identity.identify(self._named(), password)

    def authenticate(self, nick, password):
        """
        Prove the registered nickname C{nick} is this user's before a
        nickname is chosen (IRC's SASL PLAIN).
        """
        if self._user.nick is not None:
            raise R.AlreadyNamed(self._user.nick)
        return self._core.identity.authenticate(self._user, nick, password)

    def ghost(self, nick, password):
        """
        Take the registered C{nick} back with its password, from whoever
        holds it: L{claim} or L{rename} with a password, whichever applies.

        @return: a L{Deferred} firing (with the lobby's room, when arriving
            by it) once done.
        """
        core = self._core
        if not core.identity.isRegistered(nick):
            # Nothing to prove: not "taken" when someone holds it (which
            # tells the one asking nothing they did not know), nor quietly
            # a /nick when nobody does.
            raise R.NotRegistered(nick)
        if self._user.nick is None:
            return self._arriving(core.identity.take, self._user, nick, password)
        return core.identity.take(self._user, nick, password)

    def _arriving(self, call, *args):
        """
        C{call(*args)}, which logs the user in: a refusal, now or later, is
        counted by its kind for the metrics.
        """
        try:
            answer = call(*args)
        except R.Refusal as e:
            self._core.refusedLogin(e)
            raise
        if hasattr(answer, "addErrback"):
            answer.addErrback(self._refusedLater)
        return answer

    def _refusedLater(self, failure):
        if failure.check(R.Refusal):
            self._core.refusedLogin(failure.value)
        return failure

    def changePassword(self, old, new):
        return self._core.identity.changePassword(self._named(), old, new)

    # Moderation

    def kick(self, room, nick, reason=""):
        self._core.moderation.kick(self._named(), room, nick, reason)

    def ban(self, room, target, duration=None, reason=""):
        self._core.moderation.ban(self._named(), room, target, duration, reason)

    def unban(self, room, target):
        """
        Lift the ban on C{target} in C{room}: an operator lifts a server ban
        or a room's from anywhere, an owner their room's, in it or not.
        """
        self._core.moderation.unban(self._named(), room, target)

    def mute(self, room, nick, duration=None):
        self._core.moderation.mute(self._named(), room, nick, duration)

    def unmute(self, room, nick):
        self._core.moderation.unmute(self._named(), room, nick)

    def moderators(self, room):
        """
        The members of C{room}, a L{chatd.core.chat.Room}, who moderate it
        (operators, its owner, its creator), in the order they joined.
        """
        isModerator = self._core.moderation.isModerator
        return [member for member in room.members.values() if isModerator(member, room)]

    def bans(self, room):
        """
        The bans the user may lift: every one for an operator, C{room}'s for
        its owner.
        """
        return self._core.moderation.listBans(self._named(), room)

    # Leaving

    def _named(self):
        """
        The user, who must have chosen a nickname for what is asked.
        """
        if self._user.nick is None:
            raise R.NoNickname()
        return self._user

    def quit(self, reason, said=False):
        """
        The connection is going: tell the user's rooms, free the nickname.
        Safe to call more than once.

        @param said: whether C{reason} is the user's own words (see
            L{chatd.core.chat.ChatCore.disconnect}).
        """
        self._core.disconnect(self._user, reason, said)

"""
Moderation: who may kick, ban and mute whom, and what everyone is told.

Operators (named in configuration, registered and identified) act in any room
and ban from the whole server; a room's owner (its registered, identified
creator) acts in that room only.  Composed into L{chatd.core.chat.ChatCore},
which consults it on every path a banned or muted user could take, and which
it reaches only through its public operations; the bans themselves are plain
data in L{chatd.core.bans}.
"""

import math

from twisted.logger import Logger

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.bans import NICK, Ban, BanList, covers, targetKind
from chatd.core.names import nickKey, roomKey


class Moderation:
    """
    The operators, the bans in force and the rules of moderation.

    @ivar operators: the nickname keys of the server's operators.
    @ivar bans: the L{BanList} in force.
    """

    _log = Logger()

    def __init__(self, core, accounts, operators=()):
        """
        @param core: the L{chatd.core.chat.ChatCore} whose rooms these are.
        @param accounts: the L{chatd.storage.IAccountStore} that keeps bans
            across restarts, or L{None}.
        @param operators: the nicknames of the server's operators.
        """
        self._core = core
        self._accounts = accounts
        self.operators = frozenset(nickKey(nick) for nick in operators)
        self.bans = BanList()

    def isOperator(self, user):
        return user.identified and nickKey(user.nick) in self.operators

    # The checks the core makes

    def checkNotBanned(self, nick, host, room):
        """
        Refuse C{nick} (or L{None}) from C{host} (or L{None}) if banned from
        C{room} (C{""}: the server).
        """
        now = self._core.clock.seconds()
        ban, ended = self.bans.find(nick, host, room, now)
        for old in ended:
            if self._accounts is not None:
                self._store(self._accounts.removeBan(old), "forgetting an ended ban")
        if ban is None:
            return
        left = None if ban.until is None else math.ceil(ban.until - now)
        raise R.Banned(room, left, ban.reason)

    def checkMayJoin(self, user, name, room):
        """
        Refuse C{user} entry to the room C{name} (L{None} while it does not
        exist) if a ban keeps them out, under any nickname.
        """
        self.checkNotBanned(user.nick, user.host, name)
        if room is None or user not in room.expelled:
            return
        ban = self.bans.get(room.expelled[user], self._core.clock.seconds())
        if ban is None:
            del room.expelled[user]
            return
        raise R.Banned(room.name, None, ban.reason)

    def checkMayTalk(self, user, room):
        """
        Refuse C{user} a voice in C{room} while muted there.
        """
        if not room.muted:
            # Every line said passes here: most rooms mute nobody.
            return
        key = nickKey(user.nick)
        if key not in room.muted:
            return
        until = room.muted[key]
        if until is not None and until <= self._core.clock.seconds():
            del room.muted[key]
            return
        raise R.Muted(room.name)

    # What moderators do

    def kick(self, user, name, nick, reason=""):
        """
        Put C{nick} out of the room C{name}.
        """
        core = self._core
        room = core.memberRoom(user, name)
        target = self._moderatable(user, room, nick)
        self._log.info("{by} kicked {nick} from {room}: {reason}", by=user.nick,
                       nick=target.nick, room=room.name, reason=reason)
        event = events.Kicked(room.name, target.nick, user.nick, reason)
        core.fanout.toUser(target, event)
        core.removeMember(target, room, event)
        core.fanout.toUser(target, events.PutOut(room.name))

    def ban(self, user, name, target, duration=None, reason=""):
        """
        Ban C{target}, a nickname or an address: an operator bans from the
        whole server, a room's owner from their room C{name}.  Whoever the
        ban covers is put out at once.

        @param duration: seconds, or L{None} until lifted.
        """
        core = self._core
        room = core.memberRoom(user, name)
        kind = targetKind(target)
        if kind is None:
            raise R.InvalidBanTarget(target)
        server = self._mayModerate(user, room)
        if kind == NICK:
            if nickKey(target) == nickKey(user.nick):
                raise R.BanYourself()
            if nickKey(target) in self.operators:
                raise R.IsOperator(target)
        now = core.clock.seconds()
        ban = Ban(kind, target, "" if server else room.name,
                  None if duration is None else now + duration, reason, user.nick, now)
        if covers(ban, None, user.host):
            # On a server whose users all come through one address (every
            # local user shares 127.0.0.1), that ban would take everyone.
            raise R.CoversOwnAddress(target)
        self.bans.add(ban)
        if self._accounts is not None:
            self._store(self._accounts.addBan(ban), "storing a ban")
        self._log.info("{by} banned {target} from {place} for {duration}: {reason}",
                       by=user.nick, target=target, place=ban.room or "the server",
                       duration=_seconds(duration), reason=reason)
        core.fanout.toRoom(room, events.Banned(room.name, target, user.nick, duration,
                                               reason, server))
        for covered in list(core.users.values()):
            if not _covers(ban, covered) or covered is user:
                continue
            if server:
                core.fanout.toUser(covered, events.Expelled(user.nick, duration, reason))
                core.disconnect(covered, "banned")
                covered.hangUp()
            else:
                # Whoever the ban covers now stays out under any nickname.
                room.expelled[covered] = ban.key
                if room.members.get(nickKey(covered.nick)) is covered:
                    core.removeMember(covered, room)
                    core.fanout.toUser(covered, events.PutOut(room.name))

    def unban(self, user, name, target):
        """
        Lift the ban on C{target}: an operator's from the server (or else from
        the room C{name}), a room owner's from their room.
        """
        room = self._core.memberRoom(user, name)
        server = self._mayModerate(user, room)
        kind = targetKind(target)
        places = ["", room.name] if server else [room.name]
        for place in places:
            ban = self.bans.remove(kind, target, place) if kind else None
            if ban is not None:
                break
        else:
            raise R.NotBanned(target)
        if self._accounts is not None:
            self._store(self._accounts.removeBan(ban), "forgetting a ban")
        # Named as it was banned: "/unban 10.1.2.3/8" lifts "10.0.0.0/8".
        self._log.info("{by} lifted the ban on {target} from {place}", by=user.nick,
                       target=ban.target, place=ban.room or "the server")
        self._core.fanout.toRoom(room, events.Unbanned(room.name, ban.target, user.nick))

    def mute(self, user, name, nick, duration=None):
        """
        Stop C{nick} talking in the room C{name}, for C{duration} seconds or
        until unmuted.
        """
        core = self._core
        room = core.memberRoom(user, name)
        target = self._moderatable(user, room, nick)
        room.muted[nickKey(target.nick)] = (
            None if duration is None else core.clock.seconds() + duration)
        self._log.info("{by} muted {nick} in {room} for {duration}", by=user.nick,
                       nick=target.nick, room=room.name, duration=_seconds(duration))
        core.fanout.toRoom(room, events.Muted(room.name, target.nick, user.nick, duration))

    def unmute(self, user, name, nick):
        room = self._core.memberRoom(user, name)
        self._mayModerate(user, room)
        if room.muted.pop(nickKey(nick), False) is False:
            raise R.NotMuted(nick, room.name)
        self._log.info("{by} unmuted {nick} in {room}", by=user.nick, nick=nick,
                       room=room.name)
        self._core.fanout.toRoom(room, events.Unmuted(room.name, nick, user.nick))

    def listBans(self, user, name):
        """
        The bans C{user} may lift: all of them for an operator, the room
        C{name}'s for its owner.
        """
        room = self._core.memberRoom(user, name)
        server = self._mayModerate(user, room)
        now = self._core.clock.seconds()
        return [ban for ban in self.bans.all()
                if (server or roomKey(ban.room) == room.key)
                and (ban.until is None or ban.until > now)]

    def restoreBans(self, bans):
        """
        Put back the bans stored by an earlier run.
        """
        for ban in bans:
            self.bans.add(ban)

    def _mayModerate(self, user, room):
        """
        Refuse C{user} unless they may moderate C{room}.

        @return: whether they act as an operator (for the whole server).
        """
        if self.isOperator(user):
            return True
        key = nickKey(user.nick)
        if room.owner is not None and user.identified and room.owner == key:
            return False
        if not user.identified and (key in self.operators or key == room.owner):
            # They may be who they say: tell them what is missing.
            raise R.IdentifyFirst(user.nick)
        raise R.NotModerator(room.name)

    def _moderatable(self, user, room, nick):
        """
        The member C{nick} of C{room}, whom C{user} may kick or mute there.
        """
        self._mayModerate(user, room)
        target = room.members.get(nickKey(nick))
        if target is None:
            raise R.NotMember(nick, room.name)
        if target is user:
            raise R.NotToYourself()
        if nickKey(target.nick) in self.operators or (
                room.owner is not None and room.owner == nickKey(target.nick)):
            raise R.IsModerator(target.nick, room.name)
        return target

    def _store(self, done, what):
        done.addErrback(lambda failure: self._log.failure(what + " failed", failure))


def _seconds(duration):
    return "ever" if duration is None else f"{duration} seconds"


def _covers(ban, user):
    return user.nick is not None and covers(ban, user.nick, user.host)

"""
Moderation: who may kick, ban and mute whom, and what everyone is told.

Operators (named in configuration, registered and identified) act in any room
and ban from the whole server; a room's owner (its registered, identified
creator) acts in that room only.  Mixed into L{chatd.core.ChatCore}, whose
state it uses; the bans themselves are plain data in L{chatd.core.bans}.
"""

import math

from chatd.core import events
from chatd.core.bans import NICK, Ban, covers, targetKind
from chatd.core.errors import ChatError
from chatd.core.names import nickKey


class ModerationRules:
    """
    The moderation half of L{chatd.core.ChatCore}.
    """

    def admit(self, user):
        """
        Refuse a newly connected C{user} whose address is banned from the
        server.
        """
        self._checkNotBanned(None, user.host, "")

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
        self._fanout.toUser(target, events.PutOut(room.name))

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
        if covers(ban, None, user.host):
            # On a server whose users all come through one address (every
            # local user shares 127.0.0.1), that ban would take everyone.
            raise ChatError(f"{target} covers your own address")
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
                    self._fanout.toUser(covered, events.PutOut(room.name))

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
        # Named as it was banned: "/unban 10.1.2.3/8" lifts "10.0.0.0/8".
        self._log.info("{by} lifted the ban on {target} from {place}", by=user.nick,
                       target=ban.target, place=ban.room or "the server")
        self._fanout.toRoom(room, events.Unbanned(room.name, ban.target, user.nick))

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


def _seconds(duration):
    return "ever" if duration is None else f"{duration} seconds"


def _covers(ban, user):
    return user.nick is not None and covers(ban, user.nick, user.host)

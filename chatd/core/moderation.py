"""
Moderation: who may kick, ban and mute whom, and what everyone is told.

Operators (named in configuration, registered and identified) act in any room
and ban from the whole server; a room's owner (its registered, identified
creator) acts in that room only, and so does the creator of a room that is
not kept, while they stay in it (as the creator of a channel is its operator
on IRC servers): their room's bans end with the room.  Protection follows
proof: only an identified operator or owner is protected from moderation,
and no ban covers an identified operator (nor can one be set that would),
nor an identified owner in their own room.
Mutes and bans follow the person: the connection, and the account they
proved; a mute also the nickname, for as long as the room lives (not the
address, which strangers may share: see L{mute}).

Composed into L{chatd.core.chat.ChatCore}, which consults it on every path a
banned or muted user could take, and which it reaches only through its public
operations; the bans themselves are plain data in L{chatd.core.bans}.
"""

import math
import weakref

from twisted.logger import Logger

from chatd.core import events
from chatd.core import refusals as R
from chatd.core.bans import ADDRESS, NICK, Ban, BanList, banKey, covers, coversEveryone, \
    coversLocal, longest, normalTarget, targetKind
from chatd.core.names import nickKey, normalRoomName, roomKey

# The ranks of moderators, lowest first: a mute or a room ban is lifted or
# changed only by a moderator of the rank that set it or a higher one.
CREATOR, OWNER, OPERATOR = range(3)


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
        return user.identified and user.key in self.operators

    def isModerator(self, user, room):
        """
        Whether C{user} may moderate C{room}: an operator, the room's
        registered, identified owner, or its creator while they stay.
        """
        return self.isOperator(user) or room.creator is user or self.isOwner(user, room)

    def isOwner(self, user, room):
        """
        Whether C{user} is the registered, identified owner of C{room}
        (L{None}: a room that does not exist).
        """
        return (room is not None and room.owner is not None and user.identified
                and room.owner == user.key)

    # The checks the core makes

    def checkNotBanned(self, nick, host, room, account=None):
        """
        Refuse C{nick} (or L{None}) from C{host} (or L{None}), who proved the
        account C{account} (or L{None}), if banned from C{room} (C{""}: the
        server).
        """
        ban = self._banOn(nick, host, room, account)
        if ban is not None:
            raise _refusal(ban, room, self._core.clock.seconds())

    def _banOn(self, nick, host, room, account):
        """
        The ban in force on C{nick}, C{host} or C{account} in C{room} that
        holds longest, or L{None} (see L{checkNotBanned}).
        """
        if not self.bans.anyIn(room):
            # A login asks of three places (the server, the lobby, its
            # room), and most have no ban.
            return None
        now = self._core.clock.seconds()
        found = None
        for name in ([nick] + ([account] if account and account != nickKey(nick or "")
                               else [])):
            ban, ended = self.bans.find(name, host, room, now)
            for old in ended:
                if self._accounts is not None:
                    self._store(self._accounts.removeBan(old), "forgetting an ended ban")
            found = longest(found, ban)
        return found

    def checkNotBannedAs(self, user, nick):
        """
        Refuse C{user} the nickname C{nick} if a server ban covers it, their
        address or their account.  An operator who proved their nickname is
        not refused: no ban covers an operator.
        """
        if (user.account is not None and user.account == nickKey(nick)
                and user.account in self.operators):
            return
        self.checkNotBanned(nick, user.host, "", user.account)

    def checkMayRename(self, user):
        """
        Refuse C{user} a new nickname while they are muted in any of their
        rooms (a mute follows them anyway; this keeps who is muted plain to
        see).
        """
        for room in user.rooms.values():
            if self._mutedUntil(user, room) is not False:
                raise R.NoRenameWhileMuted(room.name)

    def checkMayJoin(self, user, name, room):
        """
        Refuse C{user} entry to the room C{name} (L{None} while it does not
        exist) if a ban keeps them out, under any nickname; an operator is
        never kept out, and nor is a room's identified owner from their
        room (whoever set a ban that names them: another daemon's creator of
        a room of that name, say).
        """
        if self.isOperator(user) or self.isOwner(user, room):
            return
        # (The refusal names the room as it is spelt, not as typed.)
        name = name if room is None else room.name
        ban = self._banOn(user.nick, user.host, name, user.account)
        now = self._core.clock.seconds()
        if room is not None and user in room.expelled:
            expelled = self.bans.get(room.expelled[user], now)
            if expelled is None:
                del room.expelled[user]
            ban = longest(ban, expelled)
        if ban is not None:
            raise _refusal(ban, name, now)

    def checkMayTalk(self, user, room):
        """
        Refuse C{user} a voice in C{room} while muted there, under whatever
        nickname, on this connection or through their account.
        """
        if not (room.muted or room.mutedAccounts or room.mutedNicks):
            # Every line said passes here: most rooms mute nobody.
            return
        if self._mutedUntil(user, room) is not False:
            raise R.Muted(room.name)

    def heardOnLeaving(self, user, room, reason):
        """
        What of C{reason}, C{user}'s own words on leaving C{room} (a part's
        or a quit's), its members are told: nothing while C{user} is muted
        there, since a reason is said in the room (else a part and a join
        again would be a muted user's voice), as IRC servers drop a muted
        member's.
        """
        return reason if not reason or self.heardIn(user, room) else ""

    def heardIn(self, user, room):
        """
        Whether words of C{user}'s that are not messages (a part's or quit's
        reason, an away message) reach the members of C{room}: not while
        C{user} is muted there.
        """
        return not ((room.muted or room.mutedAccounts or room.mutedNicks)
                    and self._mutedUntil(user, room) is not False)

    def _mutedUntil(self, user, room):
        """
        When C{user}'s mute in C{room} ends (L{None}: when lifted), or
        L{False} when they are not muted there.
        """
        now = self._core.clock.seconds()
        nick = user.key
        if self.isOperator(user) or (user.identified and room.owner == nick):
            # Whoever proved a moderator's nickname is not the stranger
            # muted under it earlier, before it was registered.
            nick = None
        for table, key in ((room.muted, user), (room.mutedAccounts, user.account),
                           (room.mutedNicks, nick)):
            if key is None or key not in table:
                continue
            until = table[key]
            if table is room.mutedNicks:
                until = until[0]
            if until is not None and until <= now:
                del table[key]
                continue
            return until
        return False

    # What moderators do

    def kick(self, user, name, nick, reason=""):
        """
        Put C{nick} out of the room C{name}.
        """
        core = self._core
        room = core.memberRoom(user, name)
        target = self._moderatable(user, room, nick)
        # What the reason says is the room's business, not the log's.
        self._log.info("{by} kicked {nick} from {room}{given}", by=user.nick,
                       nick=target.nick, room=room.name, given=_given(reason))
        self._putOut(room, target, user, reason)

    def _putOut(self, room, target, by, reason):
        """
        Take C{target} out of C{room}, kicked by C{by}: everyone there sees
        them go, and they are told.
        """
        core = self._core
        event = events.Kicked(room.name, target.nick, by.nick, reason)
        # As a leaver does (ChatCore.part): the arrivals waiting first.
        core.fanout.announceArrivals(room)
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
            if nickKey(target) == user.key:
                raise R.BanYourself()
            if nickKey(target) in self.operators:
                raise R.IsOperator(target)
            if not server and nickKey(target) == room.owner:
                raise R.IsModerator(target, room.name)
        now = core.clock.seconds()
        # Refusals quote the target as typed; the ban has its one spelling.
        ban = Ban(kind, normalTarget(kind, target), "" if server else room.name,
                  None if duration is None else now + duration, reason, user.nick, now)
        if kind == ADDRESS:
            if coversEveryone(ban):
                raise R.CoversEveryone(target)
            if covers(ban, None, user.host) or coversLocal(ban, user.host):
                # On a server whose users all come through one address (every
                # local user shares 127.0.0.1, or ::1), that ban would take
                # everyone.
                raise R.CoversOwnAddress(target)
        for other in core.users.values():
            if self.isOperator(other) and _covers(ban, other):
                raise R.CoversOperator(target, other.nick)
        if not server:
            self._checkBanRank(user, room, ban.key, target)
        self.bans.add(ban)
        if self._accounts is not None and (server or room.owner is not None):
            # A creator's ban ends with their room (L{roomGone}), within
            # this run: it is never stored.
            self._store(self._accounts.addBan(ban), "storing a ban")
        self._log.info("{by} banned {target} from {place} for {duration}{given}",
                       by=user.nick, target=ban.target, place=ban.room or "the server",
                       duration=_seconds(duration), given=_given(reason))
        if server:
            self._tellServerBan(user, room, ban, duration)
        else:
            core.fanout.toRoom(room, events.Banned(room.name, ban.target, user.nick, duration,
                                                   reason))
        for covered in list(core.users.values()):
            if (not _covers(ban, covered) or covered is user
                    or (not server and self.isOwner(covered, room))):
                continue
            if server:
                core.sendOff(covered, events.Expelled(user.nick, duration, reason))
                core.disconnect(covered, "banned")
                covered.hangUp()
            else:
                # Whoever the ban covers now stays out under any nickname.
                self._expel(room, covered, ban, now)
                if room.members.get(covered.key) is covered:
                    # Seen to go, kicked with the ban's reason, as IRC
                    # services kick whom their bans cover.
                    self._putOut(room, covered, user, reason or "banned")

    def _tellServerBan(self, user, room, ban, duration):
        """
        Announce the server ban C{ban} in the rooms of those it puts out,
        where they were seen (not in the operator's own room, whose members
        may never have met them), and to the operator, wherever they are.
        """
        core = self._core
        rooms = {}
        for covered in core.users.values():
            if covered is not user and _covers(ban, covered):
                rooms.update(covered.rooms)
        for told in rooms.values():
            core.fanout.toRoom(told, events.Banned(told.name, ban.target, user.nick, duration,
                                                   ban.reason, True))
        if not any(user.key in told.members for told in rooms.values()):
            core.fanout.toUser(user, events.Banned(room.name, ban.target, user.nick, duration,
                                                   ban.reason, True))

    def unban(self, user, name, target):
        """
        Lift the ban on C{target}: an operator's from the server, or else
        from the room C{name}, wherever they are; a room owner's from their
        room, in it or not.
        """
        core = self._core
        name = normalRoomName(name)
        room = core.findRoom(name)
        server = self._mayModerate(user, room, name)
        kind = targetKind(target)
        if kind and not server:
            self._checkBanRank(user, room, banKey(kind, target, name), target)
        # The room's ban first: the room named (the current one by
        # default) is the one meant; an operator's then lifts the server's.
        places = [name, ""] if server else [name]
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
        shown = room.name if room is not None else name
        event = events.Unbanned(shown, ban.target, user.nick)
        if ban.room and room is not None and core.rooms.get(roomKey(room.name)) is room:
            core.fanout.toRoom(room, event)
            if room.members.get(user.key) is user:
                return
        # Lifted from elsewhere, or from the server (which the room never
        # saw as its own ban): the moderator is told all the same.
        core.fanout.toUser(user, event)

    def mute(self, user, name, nick, duration=None):
        """
        Stop C{nick} talking in the room C{name}, for C{duration} seconds or
        until unmuted: on their connection, under the account they proved,
        and under the nickname, whoever comes back with it.

        Not by address: who shares an address with the muted user later (a
        NAT, a shared host; every local user is 127.0.0.1) says nothing
        about who they are, and a mute must not silence a stranger.  So an
        unproved user who comes back on a new connection under a new
        nickname is not muted; a room ban on their address is the tool for
        that (announced, listed and lifted as bans are).
        """
        core = self._core
        room = core.memberRoom(user, name)
        target = self._moderatable(user, room, nick)
        if self._mutedUntil(target, room) is not False:
            self._checkMuteRank(room, _muteKeys(target.nick, target),
                                self._rank(user, room), target.nick)
        until = None if duration is None else core.clock.seconds() + duration
        room.muted[target] = until
        self.rankMute(room, target.nick, target, user)
        demoted = room.creator is target
        if demoted:
            # A muted creator could otherwise lift their own mute.
            room.creator = None
        if target.account is not None:
            # A new connection that proves the same account is muted too.
            room.mutedAccounts[target.account] = until
        muteNick(room, target.nick, until, target)
        self._log.info("{by} muted {nick} in {room} for {duration}", by=user.nick,
                       nick=target.nick, room=room.name, duration=_seconds(duration))
        core.fanout.toRoom(room, events.Muted(room.name, target.nick, user.nick, duration,
                                              demoted))

    def unmute(self, user, name, nick):
        room = self._core.memberRoom(user, name)
        self._mayModerate(user, room)
        target = self._core.user(nick)
        keys = _muteKeys(nick, target)
        if ((target is not None and target in room.muted)
                or any(key in room.mutedAccounts or key in room.mutedNicks for key in keys)):
            self._checkMuteRank(room, keys, self._rank(user, room), nick)
        self.unrankMute(room, nick, target)
        lifted = room.mutedAccounts.pop(nickKey(nick), False) is not False
        lifted = unmuteNick(room, nick, target) or lifted
        if target is not None:
            lifted = room.muted.pop(target, False) is not False or lifted
            if target.account is not None:
                lifted = room.mutedAccounts.pop(target.account, False) is not False or lifted
        if not lifted:
            raise R.NotMuted(nick, room.name)
        self._log.info("{by} unmuted {nick} in {room}", by=user.nick, nick=nick,
                       room=room.name)
        self._core.fanout.toRoom(room, events.Unmuted(room.name, nick, user.nick))

    def rankMute(self, room, nick, target, by):
        """
        Remember that C{by} (L{None}: someone unknown, as low as a creator)
        muted C{nick} (the L{User} C{target}, or L{None}) in C{room}: from
        now on only their rank or a higher one lifts or changes it.  The
        broker's mirror of a mute set on another daemon calls it too.
        """
        rank = CREATOR if by is None else self._rank(by, room)
        for key in _muteKeys(nick, target):
            room.muteRanks[key] = rank

    def unrankMute(self, room, nick, target):
        """
        Forget the rank that muted C{nick} in C{room}: the mute is lifted.
        """
        for key in _muteKeys(nick, target):
            room.muteRanks.pop(key, None)

    def listBans(self, user, name):
        """
        The bans C{user} may lift: all of them for an operator, wherever they
        are; the room C{name}'s for its owner.
        """
        name = normalRoomName(name)
        room = self._core.findRoom(name)
        server = self._mayModerate(user, room, name)
        now = self._core.clock.seconds()
        return [ban for ban in self.bans.all()
                if (server or roomKey(ban.room) == roomKey(name))
                and (ban.until is None or ban.until > now)]

    def roomGone(self, room):
        """
        C{room}, which is not kept, emptied: its bans, set by its creator,
        go with it, so that nobody keeps a room's name from others by
        creating it once.
        """
        self.bans.removeRoom(room.name)

    def restoreBans(self, bans):
        """
        Put back the bans stored by an earlier run.
        """
        for ban in bans:
            self.bans.add(ban)

    def creatorBannedElsewhere(self, room, event):
        """
        Another daemon's creator of C{room} set the ban C{event}
        (L{events.Banned}): a creator's ban is never stored, so it is told
        through the fan-out, and it holds here as on their daemon: for the
        nickname or address it names, and for whoever it covers here, under
        any nickname.  (An owner's or operator's ban comes from the shared
        store: L{storedBanAdded}.)
        """
        kind = targetKind(event.target)
        if kind is None or event.server or room.owner is not None:
            return
        now = self._core.clock.seconds()
        ban = Ban(kind, normalTarget(kind, event.target), room.name,
                  None if event.duration is None else now + event.duration,
                  event.reason, event.by, now)
        self.bans.add(ban)
        for covered in self._core.users.values():
            if (_covers(ban, covered) and covered.key != nickKey(event.by)
                    and not self.isOperator(covered)):
                self._expel(room, covered, ban, now)

    def creatorUnbannedElsewhere(self, room, event):
        """
        Another daemon's creator of C{room} lifted the ban C{event}
        (L{events.Unbanned}) that L{creatorBannedElsewhere} holds here.
        """
        kind = targetKind(event.target)
        if kind is not None and room.owner is None:
            self.bans.remove(kind, event.target, room.name)

    def storedBanAdded(self, ban):
        """
        Another daemon sharing the account store set C{ban} (or this one's
        own was stored): it holds here too.
        """
        self.bans.add(ban)

    def storedBanRemoved(self, ban):
        """
        Another daemon sharing the account store lifted C{ban}, or it ended.
        """
        self.bans.remove(ban.kind, ban.target, ban.room)

    def _expel(self, room, user, ban, now):
        """
        Keep C{user} out of C{room} under C{ban}, whatever nickname they
        take, unless a ban that holds longer keeps them out already (a
        shorter one on the nickname they took since).
        """
        held = room.expelled.get(user)
        if held is None or longest(self.bans.get(held, now), ban) is ban:
            room.expelled[user] = ban.key

    def _mayModerate(self, user, room, name=None):
        """
        Refuse C{user} unless they may moderate C{room} (L{None}: the room
        called C{name}, which does not exist).

        @return: whether they act as an operator (for the whole server).
        """
        if self.isOperator(user):
            return True
        if room is not None and room.creator is user:
            return False
        key = user.key
        if (room is not None and room.owner is not None and user.identified
                and room.owner == key):
            return False
        if not user.identified and (key in self.operators
                                    or (room is not None and key == room.owner)):
            # They may be who they say: tell them what is missing.
            raise R.IdentifyFirst(user.nick)
        raise R.NotModerator(room.name if room is not None else name)

    def _rank(self, user, room):
        """
        The rank of C{user}, who may moderate C{room}.
        """
        if self.isOperator(user):
            return OPERATOR
        if user.identified and room.owner == user.key:
            return OWNER
        return CREATOR

    def _checkMuteRank(self, room, keys, rank, nick):
        """
        Refuse a moderator of C{rank} the mute in C{room} of C{nick} (known
        by C{keys}) if a higher rank set it.
        """
        if any(room.muteRanks.get(key, CREATOR) > rank for key in keys):
            raise R.MutedByHigher(nick, room.name)

    def _checkBanRank(self, user, room, key, target):
        """
        Refuse C{user} the room ban with C{key} in C{room} (on C{target}, as
        typed), to lift or replace, if its owner set it and they are only
        its creator.  (Operators' bans are the server's, which only they
        lift; the owner's are named by the owner's nickname.)
        """
        ban = self.bans.get(key, self._core.clock.seconds())
        if (ban is not None and room.owner is not None and nickKey(ban.by) == room.owner
                and self._rank(user, room) < OWNER):
            raise R.BannedByHigher(target, room.name)

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
        # Protection follows proof: a nickname alone protects nobody.
        if self.isOperator(target) or (
                target.identified and room.owner == target.key):
            raise R.IsModerator(target.nick, room.name)
        return target

    def _store(self, done, what):
        done.addErrback(lambda failure: self._log.failure(what + " failed", failure))


def muteNick(room, nick, until, user):
    """
    Mute the nickname C{nick} in C{room} until C{until} (L{None}: until
    lifted), as that of C{user} (a L{chatd.core.chat.User}, or L{None}).
    """
    room.mutedNicks[nickKey(nick)] = (until, None if user is None else weakref.ref(user))


def unmuteNick(room, nick, user):
    """
    Lift the mute on the nickname C{nick} in C{room}, and on every nickname
    muted as C{user}'s (L{None}: nobody's), which they may since have left
    (parting, then renaming).

    @return: whether one was lifted.
    """
    lifted = room.mutedNicks.pop(nickKey(nick), None) is not None
    if user is not None:
        for key, (until, muted) in list(room.mutedNicks.items()):
            if muted is not None and muted() is user:
                del room.mutedNicks[key]
                lifted = True
    return lifted


def _muteKeys(nick, user):
    """
    The keys a mute of C{nick} (the L{User} C{user}, or L{None} when gone)
    is known by in L{Room.muteRanks}: their nickname's (a muted user cannot
    rename) and their account's.
    """
    keys = {nickKey(nick)}
    if user is not None and user.account is not None:
        keys.add(user.account)
    return keys


def _refusal(ban, place, now):
    """
    The refusal of entry to C{place} (C{""}: the server) under C{ban}, in
    force at C{now}: with the time it still holds, however it was found (by
    the nickname asked under, or as the person it covered).
    """
    left = None if ban.until is None else math.ceil(ban.until - now)
    return R.Banned(place, left, ban.reason)


def _seconds(duration):
    return "ever" if duration is None else f"{duration} seconds"


def _given(reason):
    return " (a reason was given)" if reason else ""


def _covers(ban, user):
    """
    Whether C{ban} covers C{user}: their nickname, the account they proved,
    or their address.
    """
    if user.nick is None:
        return False
    return covers(ban, user.nick, user.host) or (
        user.account is not None and covers(ban, user.account, None))

"""
The core's refusals in IRC's terms: the numeric a client expects, and words
for the person reading it.

L{reply} answers with the numeric and its parameters (without the leading
nickname); the command being refused decides some numerics (a message to a
room one is not in is 404, a PART of it 442), so it is passed in.
"""

from chatd.core import refusals as R
from chatd.irc import numerics as N


def _banned(r, command):
    place = r.room or "this server"
    until = "" if r.seconds is None else f" for {r.seconds} more seconds"
    text = f"You are banned from {place}{until}" + (f" ({r.reason})" if r.reason else "")
    if r.room:
        return N.ERR_BANNEDFROMCHAN, (r.room, f"Cannot join channel (+b): {text}")
    return N.ERR_YOUREBANNEDCREEP, (text,)


def _notInRoom(r, command):
    if command in ("PRIVMSG", "NOTICE"):
        return N.ERR_CANNOTSENDTOCHAN, (r.room, "Cannot send to channel (not a member)")
    return N.ERR_NOTONCHANNEL, (r.room, "You're not on that channel")


def _noSuchRoom(r, command):
    if command in ("PRIVMSG", "NOTICE"):
        return N.ERR_NOSUCHNICK, (r.room, "No such nick/channel")
    return N.ERR_NOSUCHCHANNEL, (r.room, "No such channel")


def _takeBack(nick):
    """
    How the owner of the registered nickname C{nick}, connected, gets it,
    from whoever holds it too.
    """
    return (f"Nickname is registered: if it is yours, /msg NickServ GHOST {nick} PASSWORD "
            f"(or IDENTIFY {nick} PASSWORD); whoever holds it is let go")


def _takeBackAtLogin(nick):
    """
    L{_takeBack} before registration, when PASS or SASL can still prove it.
    """
    return (f"Nickname is registered: if it is yours, connect with its password (PASS or "
            f"SASL) or /msg NickServ GHOST {nick} PASSWORD; whoever holds it is let go")


def _taken(takeBack):
    """
    The 433 of a nickname in use, saying how (C{takeBack}) its owner takes
    it back when it is registered.
    """
    return lambda r, c: (N.ERR_NICKNAMEINUSE, (
        r.nick, takeBack(r.nick) if r.registered else "Nickname is already in use"))


def _unproved(takeBack):
    """
    The 433 of a registered nickname not proved, saying how (C{takeBack}).
    """
    return lambda r, c: (N.ERR_NICKNAMEINUSE, (r.nick, takeBack(r.nick)))


def _fail(text):
    """
    A refusal with no numeric of its own: ERR_UNKNOWNERROR naming the
    command.
    """
    return lambda r, command: (N.ERR_UNKNOWNERROR, (command, text(r)))


_REPLIES = {
    R.NoNickname: lambda r, c: (N.ERR_NOTREGISTERED, ("You have not registered",)),
    R.AlreadyNamed: lambda r, c: (N.ERR_ALREADYREGISTERED, ("You may not reregister",)),
    R.InvalidNickname: lambda r, c: (N.ERR_ERRONEUSNICKNAME, (r.nick, "Erroneous nickname")),
    R.NicknameTaken: _taken(_takeBack),
    R.PasswordRequired: _unproved(_takeBack),
    R.NoRenameWhileMuted: _fail(lambda r: f"You cannot change nickname while muted in {r.room}"),
    R.InvalidRoomName: lambda r, c: (N.ERR_NOSUCHCHANNEL, (r.name, "No such channel")),
    R.NoSuchUser: lambda r, c: (N.ERR_NOSUCHNICK, (r.nick, "No such nick/channel")),
    R.NoSuchRoom: _noSuchRoom,
    R.NotInRoom: _notInRoom,
    R.TooManyRooms: lambda r, c: (N.ERR_TOOMANYCHANNELS,
                                  (r.room or "*",
                                   f"You have joined too many channels ({r.count})")),
    R.Empty: lambda r, c: (N.ERR_NOTEXTTOSEND, ("No text to send",)),
    R.TopicUnchanged: _fail(lambda r: f"The topic of {r.room} is already that"),
    R.NoHistory: _fail(lambda r: "This server keeps no history"),
    R.HistoryRefused: _fail(lambda r: f"History is unavailable right now ({r.reason})"),
    R.Banned: _banned,
    R.Muted: lambda r, c: (N.ERR_CANNOTSENDTOCHAN,
                           (r.room, "Cannot send to channel (you are muted)")),
    R.NotModerator: lambda r, c: (N.ERR_CHANOPRIVSNEEDED, (r.room, "You're not channel operator")),
    R.NotMember: lambda r, c: (N.ERR_USERNOTINCHANNEL,
                               (r.nick, r.room, "They aren't on that channel")),
    R.NotToYourself: _fail(lambda r: "You cannot do that to yourself"),
    R.BanYourself: _fail(lambda r: "You cannot ban yourself"),
    R.IsModerator: lambda r, c: (N.ERR_CHANOPRIVSNEEDED,
                                 (r.room, f"{r.nick} is a moderator of {r.room}")),
    R.IsOperator: _fail(lambda r: f"{r.nick} is an operator"),
    R.CoversOwnAddress: _fail(lambda r: f"{r.target} covers your own address"),
    R.CoversEveryone: _fail(lambda r: f"{r.target} covers every address"),
    R.CoversOperator: _fail(lambda r: f"{r.target} covers the operator {r.nick}"),
    R.InvalidBanTarget: _fail(lambda r: f"Cannot ban {r.target}: not a nickname nor an address"),
    R.NotBanned: _fail(lambda r: f"{r.target} is not banned here"),
    R.NotMuted: _fail(lambda r: f"{r.nick} is not muted in {r.room}"),
    R.MutedByHigher: lambda r, c: (N.ERR_CHANOPRIVSNEEDED, (
        r.room, f"{r.nick} was muted by an operator or the channel's owner")),
    R.BannedByHigher: lambda r, c: (N.ERR_CHANOPRIVSNEEDED, (
        r.room, f"The ban on {r.target} was set by the channel's owner")),
    R.NoAccounts: _fail(lambda r: "This server keeps no accounts"),
    R.AlreadyRegistered: _fail(lambda r: f"{r.nick} is already registered"),
    R.WeakPassword: _fail(lambda r: f"A password has at least {r.minimum} characters "
                                    "and no spaces"),
    R.AlreadyIdentified: _fail(lambda r: f"You are already identified as {r.nick}"),
    R.NotRegistered: _fail(lambda r: f"{r.nick} is not registered"),
    R.IdentifyFirst: _fail(lambda r: f"Identify as {r.nick} first"),
    R.AttemptWaiting: _fail(lambda r: f"A password for {r.nick} is still being checked"),
    R.PasswordChanging: _fail(lambda r: f"The password of {r.nick} is being changed; "
                                        "try again in a moment"),
    R.TooManyRegistrations: _fail(lambda r: "Registrations from your address come too "
                                            f"fast; try again in {r.seconds} seconds"),
    R.WrongPassword: _fail(lambda r: f"Wrong password for {r.nick}"),
    R.AccountRefused: _fail(lambda r: r.reason),
}


# Where a client not yet registered is told otherwise.
_AT_LOGIN = {
    R.NicknameTaken: _taken(_takeBackAtLogin),
    R.PasswordRequired: _unproved(_takeBackAtLogin),
}


def reply(refusal: R.Refusal, command: str, registered=True):
    """
    The numeric and its parameters (after the recipient's nickname) that
    tell an IRC client its C{command} was refused for C{refusal};
    C{registered}: whether the client has registered (has a nickname).
    """
    answer = None if registered else _AT_LOGIN.get(type(refusal))
    return (answer or _REPLIES[type(refusal)])(refusal, command)


def text(refusal: R.Refusal) -> str:
    """
    The words for a person, as the last parameter of L{reply} has them.
    """
    return reply(refusal, "*")[1][-1]

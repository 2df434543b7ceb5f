"""
The core's refusals in the line protocol's words: the text of its C{!!!}
lines, which scripts and the companion client read.
"""

from chatd.core import refusals as R
from chatd.line.wire import duration


def _banned(r):
    place = r.room or "this server"
    until = "" if r.seconds is None else f" for {duration(r.seconds)} more"
    return f"you are banned from {place}{until}" + (f" ({r.reason})" if r.reason else "")


def _taken(r):
    if r.registered:
        return f"the nickname {r.nick} is taken; /ghost {r.nick} PASSWORD if it is yours"
    return f"the nickname {r.nick} is taken"


_TEXT = {
    R.NoNickname: lambda r: "choose a nickname first",
    R.AlreadyNamed: lambda r: f"you are already {r.nick}",
    R.InvalidNickname: lambda r: r.reason,
    R.NicknameTaken: _taken,
    R.PasswordRequired: lambda r: (f"{r.nick} is registered: /nick {r.nick} PASSWORD "
                                   "if it is yours"),
    R.InvalidRoomName: lambda r: r.reason,
    R.NoSuchUser: lambda r: f"no such user: {r.nick}",
    R.NoSuchRoom: lambda r: f"no such room: {r.room}",
    R.NotInRoom: lambda r: f"you are not in {r.room}",
    R.TooManyRooms: lambda r: f"you are in {r.count} rooms, the most allowed; /part one first",
    R.Empty: lambda r: "the text is empty once cleaned; nothing was sent",
    R.TopicUnchanged: lambda r: (f"{r.room} topic is already: {r.topic}" if r.topic
                                 else f"{r.room} has no topic"),
    R.NoHistory: lambda r: "this server keeps no history",
    R.HistoryRefused: lambda r: r.reason,
    R.Banned: _banned,
    R.Muted: lambda r: f"you are muted in {r.room}",
    R.NotModerator: lambda r: (f"you do not moderate {r.room}: operators, its owner and "
                               "its creator do"),
    R.NotMember: lambda r: f"{r.nick} is not in {r.room}",
    R.NotToYourself: lambda r: "you cannot do that to yourself",
    R.BanYourself: lambda r: "you cannot ban yourself",
    R.IsModerator: lambda r: f"{r.nick} is a moderator of {r.room}",
    R.IsOperator: lambda r: f"{r.nick} is an operator",
    R.CoversOwnAddress: lambda r: f"{r.target} covers your own address",
    R.CoversEveryone: lambda r: f"{r.target} covers everyone",
    R.CoversOperator: lambda r: f"{r.target} covers the operator {r.nick}",
    R.NoRenameWhileMuted: lambda r: (f"you are muted in {r.room}; "
                                     "you cannot change nickname until the mute ends"),
    R.InvalidBanTarget: lambda r: f"cannot ban {r.target}: not a nickname nor an address",
    R.NotBanned: lambda r: f"{r.target} is not banned here",
    R.NotMuted: lambda r: f"{r.nick} is not muted in {r.room}",
    R.MutedByHigher: lambda r: (f"{r.nick} was muted in {r.room} by an operator or its "
                                "owner: only they may change that"),
    R.BannedByHigher: lambda r: (f"the ban on {r.target} in {r.room} was set by its owner: "
                                 "only they or an operator may change it"),
    R.NoAccounts: lambda r: "this server keeps no accounts",
    R.AlreadyRegistered: lambda r: (f"{r.nick} is already registered; "
                                    "/identify PASSWORD if it is yours"),
    R.WeakPassword: lambda r: (f"a password has at least {r.minimum} characters "
                               "and no spaces"),
    R.AlreadyIdentified: lambda r: f"you are already identified as {r.nick}",
    R.NotRegistered: lambda r: f"{r.nick} is not registered",
    R.IdentifyFirst: lambda r: f"identify as {r.nick} first",
    R.AttemptWaiting: lambda r: (f"your last password for {r.nick} is still being "
                                 "checked; wait for the answer"),
    R.PasswordChanging: lambda r: (f"the password of {r.nick} is being changed; "
                                   "try again in a moment"),
    R.TooManyRegistrations: lambda r: ("too many registrations from your address; "
                                       f"try again in {r.seconds} seconds"),
    R.WrongPassword: lambda r: f"wrong password for {r.nick}",
    R.AccountRefused: lambda r: r.reason,
}


def describe(refusal: R.Refusal) -> str:
    """
    The text of the C{!!!} line that tells the user about C{refusal}.
    """
    return _TEXT[type(refusal)](refusal)

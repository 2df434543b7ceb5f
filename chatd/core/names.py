"""
The rules for nicknames and room names: the only place that knows them.

Nicknames are ASCII so that two users can never look alike through invisible
or confusable Unicode characters; they compare case-insensitively.
"""

import re

NICK_MAX = 16
ROOM_MAX = 32

# IRC's nickname alphabet: a letter or one of the "special" characters first,
# then letters, digits, specials and "-".  None of them can start a server
# line ("#", "*", "-", "!", "=", "?"), so a nickname never looks like one.
_NICK = re.compile(r"[A-Za-z_\[\]\\`^{|}][A-Za-z0-9_\[\]\\`^{|}-]*\Z")
_ROOM = re.compile(r"#[A-Za-z0-9_.-]+\Z")

# The server's names, and the services IRC users write to: whoever held
# "NickServ" would be sent the passwords of every IRC user who identifies the
# way IRC clients do (/msg NickServ IDENTIFY), and "ChanServ" or "OperServ"
# would pass for the server's staff.  Reserved on every front end.
RESERVED_NICKS = frozenset({"chatd", "server", "services", "nickserv", "chanserv",
                            "operserv", "memoserv", "hostserv", "botserv", "saslserv",
                            "global"})
# What a reserved name is compared without: NickServ_, Nick-Serv and
# Services2 pass for the service as well as NickServ does.
_NOT_LETTERS = str.maketrans("", "", "0123456789_-[]{}\\|^`")

NICK_RULES = (
    f"1-{NICK_MAX} characters: ASCII letters, digits and _ - [ ] {{ }} \\ | ^ `; "
    "not starting with a digit or -"
)
ROOM_RULES = f"# followed by 1-{ROOM_MAX} ASCII letters, digits, _ - or ."


# Case folding for ASCII letters only: str.lower would also map look-alikes
# such as the Kelvin sign (U+212A) onto "k" and let them find a user.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _asciiLower(text: str) -> str:
    # An ASCII string's str.lower maps A-Z alone, as the table does, and is
    # several times faster (the table is looked up character by character):
    # a login asks for a dozen keys.  Only text with other characters needs
    # the table.
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def nickKey(nick: str) -> str:
    """
    The form under which a nickname is unique: "Alice" and "alice" are the same
    user.
    """
    key = _asciiLower(nick)
    # The nickname itself when it is its own key: the users' and rooms'
    # tables then share the one string.
    return nick if key == nick else key


def sortedNicks(nicks) -> list:
    """
    The nicknames C{nicks} in the order people look names up: by
    L{nickKey}.
    """
    nicks = list(nicks)
    # For ASCII text (every nickname is: see _NICK) str.lower is nickKey,
    # without a Python call per name: the members of a room are sorted for
    # every newcomer.
    nicks.sort(key=str.lower if "".join(nicks).isascii() else nickKey)
    return nicks


def nickProblem(nick: str) -> str | None:
    """
    Why C{nick} cannot be a nickname, or L{None} when it can.
    """
    if not nick:
        return "a nickname cannot be empty"
    if len(nick) > NICK_MAX:
        return f"a nickname has at most {NICK_MAX} characters"
    if not _NICK.match(nick):
        return f"a nickname is {NICK_RULES}"
    if nickKey(nick).translate(_NOT_LETTERS) in RESERVED_NICKS:
        return f"{nick} is reserved"
    return None


def roomKey(name: str) -> str:
    """
    The form under which a room name is unique.
    """
    key = _asciiLower(name)
    # The name itself when it is its own key (most are): each line waiting
    # for the history writer keeps its room's key, and thousands wait
    # while it is behind.
    return name if key == name else key


def normalRoomName(name: str) -> str:
    """
    Accept C{lobby} for C{#lobby}, as people type it.
    """
    return name if name.startswith("#") else "#" + name


def roomProblem(name: str) -> str | None:
    """
    Why C{name} cannot name a room, or L{None} when it can.
    """
    if len(name) > ROOM_MAX + 1 or not _ROOM.match(name):
        return f"a room name is {ROOM_RULES}"
    return None

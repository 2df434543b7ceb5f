"""
The line protocol's commands: each one parses its arguments, calls the core and
replies to the user who typed it.

The table is the single source of C{/help} and of the README's command list,
so the two cannot drift from the code.
"""

import math
import re
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger

from chatd.core.chat import ChatError

HISTORY_DEFAULT = 50
HISTORY_MAX = 500
SEARCH_LIMIT = 20
SEARCH_WORDS = 10
DURATION_MAX = 365 * 86400

_log = Logger()
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Command:
    """
    @ivar usage: the arguments, as C{/help} shows them.
    @ivar run: called with the connection and the rest of the line.
    @ivar beforeNick: whether it may be used before a nickname is chosen.
    """

    name: str
    usage: str
    help: str
    run: Callable
    beforeNick: bool = False


COMMANDS = {}


def command(name, usage, help, beforeNick=False):
    def register(run):
        COMMANDS[name] = Command(name, usage, help, run, beforeNick)
        return run

    return register


def _required(arg, usage):
    if not arg:
        raise ChatError(f"usage: {usage}")
    return arg


def _oneWord(arg, usage):
    if not arg or " " in arg:
        raise ChatError(f"usage: {usage}")
    return arg


def _members(room):
    names = sorted((u.nick for u in room.members.values()), key=str.lower)
    return f"{room.name} members ({len(names)}): {' '.join(names)}"


def _lines(count):
    return f"{count} line" if count == 1 else f"{count} lines"


def _showJoined(conn, room):
    conn.reply(f"joined {room.name}")
    if room.topic:
        conn.reply(f"{room.name} topic: {room.topic}")
    conn.reply(_members(room))
    if conn.core.history is not None and conn.factory.replay > 0:
        conn.showHistory(conn.core.recent(conn.user, room, conn.factory.replay))


def _claim(conn, nick):
    conn.core.claimNick(conn.user, nick)
    conn.reply(f"you are now {nick}")
    _showJoined(conn, conn.user.current)
    conn.core.checkIdentity(conn.user)


def _duration(word):
    """
    Seconds for a duration as moderators type it (90s, 10m, 2h, 1d), or
    L{None} when C{word} is not one.
    """
    match = _DURATION.match(word)
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > DURATION_MAX:
        raise ChatError("a duration is at most 365d")
    return seconds


def _afterwards(conn, done, success):
    """
    Reply with C{success()} (unless it is L{None}) once C{done} fires; show
    a refusal as an error.

    @return: C{done}, firing (with L{None}) once the answer is shown.
    """
    def failed(failure):
        if failure.check(ChatError):
            conn.error(failure.getErrorMessage())
            return
        _log.failure("a command failed", failure)
        conn.error("that did not work; try again later")

    def succeeded(result):
        text = success()
        if text is not None:
            conn.reply(text)

    return done.addCallbacks(succeeded, failed)


@command("help", "", "list the commands", beforeNick=True)
def _help(conn, arg):
    for cmd in COMMANDS.values():
        conn.reply(helpLine(cmd))
    conn.reply("a line not starting with / goes to your current room; "
               "start it with // to send a literal /")


def helpLine(cmd):
    """
    How C{/help} and the README describe C{cmd}.
    """
    synopsis = f"/{cmd.name} {cmd.usage}".rstrip()
    return f"{synopsis:<22} {cmd.help}"


@command("nick", "NAME", "choose or change your nickname", beforeNick=True)
def _nick(conn, arg):
    nick = _required(arg, "/nick NAME")
    if conn.user.nick is None:
        _claim(conn, nick)
    else:
        conn.core.rename(conn.user, nick)
        conn.reply(f"you are now {nick}")
        conn.core.checkIdentity(conn.user)


@command("join", "#ROOM", "join a room (created on demand) and talk there")
def _join(conn, arg):
    name = _oneWord(arg, "/join #ROOM")
    wasMember = len(conn.user.rooms)
    room = conn.core.join(conn.user, name)
    if len(conn.user.rooms) == wasMember:
        conn.reply(f"now talking in {room.name}")
        return
    _showJoined(conn, room)


@command("part", "[#ROOM [REASON]]", "leave a room (the current one by default)")
def _part(conn, arg):
    # As /join: the first word names the room, with or without its #.
    name, _, reason = arg.partition(" ")
    room = conn.core.part(conn.user, name or None, reason.strip())
    conn.reply(f"left {room.name}")
    if conn.user.current is not None:
        conn.reply(f"now talking in {conn.user.current.name}")


@command("rooms", "", "list the rooms with their member counts and topics")
def _rooms(conn, arg):
    rooms = sorted(conn.core.rooms.values(), key=lambda r: r.name.lower())
    conn.reply("1 room" if len(rooms) == 1 else f"{len(rooms)} rooms")
    for room in rooms:
        conn.reply(f"{room.name} ({len(room.members)}) {room.topic}".rstrip())


@command("who", "[#ROOM]", "list the members of a room (the current one by default)")
def _who(conn, arg):
    if arg:
        room = conn.core.room(_oneWord(arg, "/who [#ROOM]"))
    else:
        room = conn.core.currentRoom(conn.user)
    conn.reply(_members(room))


@command("topic", "[TEXT | -]",
         "show the current room's topic, set it to TEXT, or clear it with -")
def _topic(conn, arg):
    if arg:
        room = conn.core.setTopic(conn.user, "" if arg == "-" else arg)
        conn.reply(f"{room.name} topic set: {room.topic}" if room.topic
                   else f"{room.name} topic cleared")
        return
    room = conn.core.currentRoom(conn.user)
    if room.topic:
        conn.reply(f"{room.name} topic: {room.topic}")
    else:
        conn.reply(f"{room.name} has no topic")


@command("me", "ACTION", "act in the current room: /me waves")
def _me(conn, arg):
    conn.core.act(conn.user, _required(arg, "/me ACTION"))


@command("msg", "NICK TEXT", "send TEXT to NICK alone")
def _msg(conn, arg):
    nick, _, text = arg.partition(" ")
    text = text.strip()
    if not nick or not text:
        raise ChatError("usage: /msg NICK TEXT")
    conn.core.tell(conn.user, nick, text)


@command("history", "[N]",
         f"show the current room's last N lines (default {HISTORY_DEFAULT}, "
         f"at most {HISTORY_MAX})")
def _history(conn, arg):
    count = HISTORY_DEFAULT
    if arg:
        if not arg.isdigit() or not 1 <= int(arg) <= HISTORY_MAX:
            raise ChatError(f"usage: /history [N], N from 1 to {HISTORY_MAX}")
        count = int(arg)
    room = conn.core.currentRoom(conn.user)

    def header(found):
        if not found:
            return f"{room.name} has no history"
        return f"{room.name}: the last {_lines(len(found))}"

    conn.showHistory(conn.core.recent(conn.user, room, count), header)


@command("search", "WORDS",
         f"find the newest {SEARCH_LIMIT} lines holding all WORDS in your rooms")
def _search(conn, arg):
    words = _required(arg, "/search WORDS").split()
    if len(words) > SEARCH_WORDS:
        raise ChatError(f"/search takes at most {SEARCH_WORDS} words")
    wanted = " ".join(words)

    def header(found):
        if not found:
            return f"nothing in your rooms matches {wanted}"
        return f"{_lines(len(found))} in your rooms with {wanted}, newest first"

    conn.showHistory(conn.core.search(conn.user, words, SEARCH_LIMIT), header)


@command("register", "PASSWORD", "register your nickname; only you can then use it")
def _register(conn, arg):
    nick = conn.user.nick
    done = conn.core.register(conn.user, _required(arg, "/register PASSWORD"))
    return _afterwards(conn, done, lambda: f"{nick} is registered to you and you are "
                       "identified; next time, /identify PASSWORD")


@command("identify", "PASSWORD", "prove the registered nickname you use is yours")
def _identify(conn, arg):
    nick = conn.user.nick
    done = conn.core.identify(conn.user, _required(arg, "/identify PASSWORD"))
    return _afterwards(conn, done, lambda: f"you are identified as {nick}")


@command("ghost", "NICK PASSWORD",
         "take your registered NICK back from another connection", beforeNick=True)
def _ghost(conn, arg):
    nick, _, password = arg.partition(" ")
    if not nick or not password.strip():
        raise ChatError("usage: /ghost NICK PASSWORD")
    arriving = conn.user.nick is None
    done = conn.core.ghost(conn.user, nick, password.strip())

    def ghosted():
        conn.reply(f"you are now {conn.user.nick}")
        conn.reply(f"you are identified as {conn.user.nick}")
        if arriving:
            # The nickname chosen this way: show the arrival as for any other.
            _showJoined(conn, conn.user.current)

    return _afterwards(conn, done, ghosted)


@command("password", "OLD NEW", "change the password of your registered nickname")
def _password(conn, arg):
    old, _, new = arg.partition(" ")
    if not old or not new.strip():
        raise ChatError("usage: /password OLD NEW")
    done = conn.core.changePassword(conn.user, old, new.strip())
    return _afterwards(conn, done, lambda: "your password is changed")


@command("kick", "NICK [REASON]", "moderators: put NICK out of the current room")
def _kick(conn, arg):
    nick, _, reason = arg.partition(" ")
    conn.core.kick(conn.user, _required(nick, "/kick NICK [REASON]"), reason.strip())


@command("ban", "NICK|ADDRESS [DURATION] [REASON]",
         "moderators: ban from the server (operators) or the current room "
         "(its owner), for a time (10m, 2h, 1d) or until lifted; ADDRESS may be "
         "a range (10.0.0.0/8)")
def _ban(conn, arg):
    target, _, rest = arg.partition(" ")
    _required(target, "/ban NICK|ADDRESS [DURATION] [REASON]")
    first, _, reason = rest.strip().partition(" ")
    duration = _duration(first)
    if duration is None:
        reason = rest
    conn.core.ban(conn.user, target, duration, reason.strip())


@command("unban", "NICK|ADDRESS", "moderators: lift a ban")
def _unban(conn, arg):
    conn.core.unban(conn.user, _required(arg.split(" ", 1)[0], "/unban NICK|ADDRESS"))


@command("bans", "", "moderators: list the bans you may lift")
def _bans(conn, arg):
    bans = conn.core.listBans(conn.user)
    conn.reply("1 ban" if len(bans) == 1 else f"{len(bans)} bans")
    for ban in bans:
        left = None if ban.until is None else ban.until - conn.factory.clock.seconds()
        until = "until lifted" if left is None else f"for {math.ceil(left)}s more"
        reason = f" ({ban.reason})" if ban.reason else ""
        conn.reply(f"{ban.target} from {ban.room or 'the server'} {until}, "
                   f"by {ban.by}{reason}")


@command("mute", "NICK [DURATION]", "moderators: stop NICK talking in the current room")
def _mute(conn, arg):
    nick, _, rest = arg.partition(" ")
    _required(nick, "/mute NICK [DURATION]")
    duration = None
    if rest.strip():
        duration = _duration(rest.strip())
        if duration is None:
            raise ChatError("a duration looks like 90s, 10m, 2h or 1d")
    conn.core.mute(conn.user, nick, duration)


@command("unmute", "NICK", "moderators: let NICK talk again in the current room")
def _unmute(conn, arg):
    conn.core.unmute(conn.user, _required(arg.split(" ", 1)[0], "/unmute NICK"))


@command("ping", "[TEXT]", "ask for \"=== pong TEXT\": proof that all you sent before was handled",
         beforeNick=True)
def _ping(conn, arg):
    conn.reply(f"pong {arg}".rstrip())


@command("quit", "[REASON]", "leave the server", beforeNick=True)
def _quit(conn, arg):
    conn.quit(arg)


def dispatch(conn, line):
    """
    Act on one clean line of text from C{conn}: a command, or a message for
    the current room (or, before a nickname is chosen, a nickname).

    @raise ChatError: for the user, when the line is refused.
    @return: a L{Deferred} that fires once the answer is shown, when it
        comes later (a password is being checked); otherwise L{None}.
    """
    if line.startswith("/") and not line.startswith("//"):
        name, _, arg = line[1:].partition(" ")
        cmd = COMMANDS.get(name.lower())
        if cmd is None:
            raise ChatError(f"unknown command /{name}; /help lists the commands")
        if conn.user.nick is None and not cmd.beforeNick:
            raise ChatError("choose a nickname first")
        return cmd.run(conn, arg.strip())
    elif conn.user.nick is None:
        _claim(conn, line)
    else:
        conn.core.say(conn.user, line[1:] if line.startswith("//") else line)

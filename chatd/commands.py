"""
The line protocol's commands: each one parses its arguments, calls the core and
replies to the user who typed it.

The table is the single source of C{/help} and of the README's command list,
so the two cannot drift from the code.
"""

from dataclasses import dataclass
from typing import Callable

from chatd.core import ChatError

HISTORY_DEFAULT = 50
HISTORY_MAX = 500
SEARCH_LIMIT = 20
SEARCH_WORDS = 10


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
    """
    if line.startswith("/") and not line.startswith("//"):
        name, _, arg = line[1:].partition(" ")
        cmd = COMMANDS.get(name.lower())
        if cmd is None:
            raise ChatError(f"unknown command /{name}; /help lists the commands")
        if conn.user.nick is None and not cmd.beforeNick:
            raise ChatError("choose a nickname first")
        cmd.run(conn, arg.strip())
    elif conn.user.nick is None:
        _claim(conn, line)
    else:
        conn.core.say(conn.user, line[1:] if line.startswith("//") else line)

"""
The line protocol's commands: each one parses its arguments, calls the
session API and replies to the user who typed it.  The core tells the user
what it did (events); the replies here add what only the line protocol shows,
such as the room that plain text now goes to.

The table is the single source of C{/help} and of the README's command list,
so the two cannot drift from the code.
"""

import re
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger

from chatd.core.names import nickKey, roomKey
from chatd.core.refusals import AccountRefused, AttemptWaiting, PasswordChanging, \
    PasswordRequired, Refusal, WrongPassword
from chatd.line import wire

HISTORY_DEFAULT = 50
HISTORY_MAX = 500
SEARCH_LIMIT = 20
SEARCH_WORDS = 10
DURATION_MAX = 365 * 86400

_log = Logger()
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])\Z")
# ASCII digits only: str.isdigit() and int() also take "²" or "٣".
_NUMBER = re.compile(r"[0-9]{1,9}\Z")
# An answer to the password prompt that cannot be a password (see
# Identity.PASSWORD_MIN) is another nickname.
_PASSWORD_MIN = 8
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class LineError(Exception):
    """
    A line the line front end itself cannot act on (a usage error); the
    message is for the user.
    """


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


def command(name, usage, help, beforeNick=False, alias=None):
    """
    Register the decorated function as the command C{name}, and as
    C{alias} too when given.
    """
    def register(run):
        COMMANDS[name] = Command(name, usage, help, run, beforeNick)
        if alias is not None:
            COMMANDS[alias] = Command(alias, usage, f"the same as /{name}", run, beforeNick)
        return run

    return register


def _required(arg, usage):
    if not arg:
        raise LineError(f"usage: {usage}")
    return arg


def _oneWord(arg, usage):
    if not arg or " " in arg:
        raise LineError(f"usage: {usage}")
    return arg


def number(text, low, high, usage, name="N"):
    """
    The whole number C{text} spells in ASCII digits, from C{low} to
    C{high}; anything else is a usage error saying so, calling it C{name}
    as C{usage} does.
    """
    if not _NUMBER.match(text) or not low <= int(text) <= high:
        raise LineError(f"usage: {usage}, {name} a number from {low} to {high}")
    return int(text)


def _count(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _showRoom(conn, room):
    """
    After the core's welcome to C{room} (L{events.Entered}): plain text goes
    there now, and its last lines are replayed (if it may have any: a
    room nothing was said in is not read).
    """
    conn.talkIn(room)
    if (conn.session.keepsHistory and conn.factory.replay > 0
            and conn.session.mayReplay(room.name)):
        conn.showHistory(conn.session.recent(room.name, conn.factory.replay), replay=True)


def _claim(conn, nick, password=None):
    """
    Take C{nick} as the first nickname.  A registered one needs its
    password: without one the user is asked for it, and their next line
    answers (see L{dispatch}).
    """
    conn.passwordFor = None
    if password is None:
        try:
            room = conn.session.claim(nick)
        except PasswordRequired as e:
            conn.passwordFor = e.nick
            conn.prompt(f"{e.nick} is registered: password (or another nickname)")
            return None
        _showRoom(conn, room)
        return None
    done = conn.session.claim(nick, password)

    def askAgain(failure):
        # A refused password leaves the user at the password question, not
        # at the nickname prompt, where the next try of their password
        # would become their public nickname (and a log line).
        if failure.check(WrongPassword, AccountRefused, AttemptWaiting, PasswordChanging) \
                and conn.session.nick is None and conn.passwordFor is None:
            conn.passwordFor = nick
            conn.refused(failure.value)
            conn.prompt(f"{nick} is registered: password again (or another nickname)")
            return None
        return failure

    return _afterwards(conn, done.addErrback(askAgain), lambda room: _arrived(conn, room))


def _claimTyped(conn, line):
    """
    Take what was typed at the nickname prompt: a nickname, or a nickname
    and a word that can be its password (as C{/nick NAME PASSWORD} does),
    so that a password typed after its nickname is never refused as a bad
    nickname and then typed again, alone, where it would become one.
    """
    nick, _, password = line.partition(" ")
    if len(password) < _PASSWORD_MIN or " " in password:
        # Cannot be a password: the line is a (bad) nickname.
        return _claim(conn, line)
    return _claim(conn, nick, password)


def _arrived(conn, room):
    """
    After a nickname was taken with its password: show the lobby, when the
    user arrived by it.
    """
    if room is not None:
        _showRoom(conn, room)


def _notDuration(word):
    return LineError(f"{word} is not a duration: one looks like 90s, 10m, 2h or 1d")


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
        raise LineError("a duration is at most 365d")
    return seconds


def _afterwards(conn, done, success):
    """
    Reply with C{success(result)} (unless it is L{None}) once C{done} fires
    with C{result}; show a refusal as an error.

    @return: C{done}, firing (with L{None}) once the answer is shown.
    """
    def failed(failure):
        if failure.check(Refusal):
            conn.refused(failure.value)
            return
        _log.failure("a command failed", failure)
        conn.error("that did not work; try again later")

    def succeeded(result):
        text = success(result)
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


@command("nick", "NAME [PASSWORD]",
         "choose or change your nickname; a registered one needs its password",
         beforeNick=True)
def _nick(conn, arg):
    nick, _, password = _required(arg, "/nick NAME [PASSWORD]").partition(" ")
    password = password.strip() or None
    if conn.session.nick is None:
        return _claim(conn, nick, password)
    if password is None:
        conn.session.rename(nick)
        return None
    return _afterwards(conn, conn.session.rename(nick, password), lambda _: None)


@command("join", "#ROOM", "join a room (created on demand) and talk there")
def _join(conn, arg):
    room, joined = conn.session.join(_oneWord(arg, "/join #ROOM"))
    if joined:
        _showRoom(conn, room)
    else:
        conn.talkIn(room)
        conn.reply(f"now talking in {room.name}")


@command("part", "[#ROOM [REASON]]", "leave a room (the current one by default)")
def _part(conn, arg):
    # As /join: the first word names the room, with or without its #.
    name, _, reason = arg.partition(" ")
    conn.leftByChoice(conn.session.part(name or conn.currentRoom().name, reason.strip()))
    if conn.session.rooms:
        conn.reply(f"now talking in {conn.currentRoom().name}")


@command("rooms", "", "list the rooms with their member counts and topics", alias="list")
def _rooms(conn, arg):
    rooms = sorted(conn.session.allRooms(), key=lambda r: roomKey(r.name))
    conn.reply(_count(len(rooms), "room"))
    for room in rooms:
        conn.reply(f"{room.name} ({len(room.members)}) {room.topic}".rstrip())


@command("who", "[#ROOM] [PAGE]", "who is in a room (the current one by default), "
         f"away or moderating; {wire.WHO_PAGE} a page",
         alias="names")
def _who(conn, arg):
    usage = "/who [#ROOM] [PAGE]"
    words = arg.split()
    page = None
    if len(words) == 2 or words and _NUMBER.match(words[-1]):
        # (A second word is a page, and one that is not a number says so.)
        page = number(words.pop(), 1, 10 ** 9 - 1, usage, "PAGE")
    if len(words) > 1:
        raise LineError(f"usage: {usage}")
    room = conn.session.room(words[0]) if words else conn.currentRoom()
    size = wire.WHO_PAGE
    nicks, total = conn.session.roster(room.name, ((page or 1) - 1) * size, size)
    pages = wire.whoPages(total)
    if page is not None and page > pages:
        # An empty page would read as an empty room.
        raise LineError(f"{room.name} has {_count(total, 'member')}, "
                        f"{_count(pages, 'page')} of {size}: /who {room.name} 1"
                        + (f" to {pages}" if pages > 1 else ""))
    if page is None and total <= size:
        conn.send(wire.encodeLine(wire.members(room.name, nicks)))
    else:
        conn.send(wire.encodeLine(wire.membersPage(room.name, nicks, total, page or 1)))
    moderators = conn.session.moderators(room)
    if moderators:
        conn.reply(f"{room.name} moderators: " + " ".join(m.nick for m in moderators))
    shown = {nickKey(nick) for nick in nicks}
    away = sorted((m for key, m in room.members.items() if key in shown and m.away),
                  key=lambda m: nickKey(m.nick))
    if away:
        conn.reply(f"{room.name} away: " + ", ".join(f"{m.nick} ({m.away})" for m in away))


@command("whois", "NICK", "show who NICK is: rooms, idle time, identified or not, away")
def _whois(conn, arg):
    found = conn.session.whois(_oneWord(arg, "/whois NICK"))
    facts = ["identified" if found.identified else "not identified"]
    if found.operator:
        facts.append("operator")
    facts.append(f"in {' '.join(found.rooms)}" if found.rooms else "in no room")
    facts.append(f"idle {wire.duration(found.idle)}")
    if found.away:
        facts.append(f"away: {found.away}")
    conn.reply(f"{found.nick}: " + "; ".join(facts))


@command("away", "[TEXT]", "mark yourself away (shown to whoever messages you); "
         "without TEXT, back again")
def _away(conn, arg):
    wasAway = conn.session.away
    conn.session.setAway(arg)
    conn.reply(f"you are marked away: {arg}" if arg
               else "you are back" if wasAway else "you were not away")


@command("topic", "[TEXT | -]",
         "show the current room's topic, set it to TEXT, or clear it with -")
def _topic(conn, arg):
    room = conn.currentRoom()
    if arg:
        conn.session.setTopic(room.name, "" if arg == "-" else arg)
        return
    if room.topic:
        conn.reply(f"{room.name} topic: {room.topic}")
    else:
        conn.reply(f"{room.name} has no topic")


@command("me", "ACTION", "act in the current room: /me waves")
def _me(conn, arg):
    conn.session.act(conn.currentRoom().name, _required(arg, "/me ACTION"))


@command("msg", "NICK TEXT", "send TEXT to NICK alone")
def _msg(conn, arg):
    nick, _, text = arg.partition(" ")
    text = text.strip()
    if not nick or not text:
        raise LineError("usage: /msg NICK TEXT")
    if text.lower() == "/me" or text.lower().startswith("/me "):
        action = text[4:].strip()
        if not action:
            raise LineError("usage: /msg NICK /me ACTION")
        # The core has no private action: it goes as IRC's private ACTION
        # and the page's private /me go, a message starting "* nick".
        text = f"* {conn.session.nick} {action}"
    conn.session.tell(nick, text)


@command("history", "[N]",
         f"show the current room's last N lines (default {HISTORY_DEFAULT}, "
         f"at most {HISTORY_MAX})")
def _history(conn, arg):
    count = HISTORY_DEFAULT
    if arg:
        count = number(arg, 1, HISTORY_MAX, "/history [N]")
    room = conn.currentRoom()

    def header(found):
        if not found:
            return f"{room.name} has no history"
        return f"{room.name}: the last {_count(len(found), 'line')}"

    conn.showHistory(conn.session.recent(room.name, count), header)


@command("search", "WORDS",
         f"find the newest {SEARCH_LIMIT} lines holding all WORDS in your rooms")
def _search(conn, arg):
    words = _required(arg, "/search WORDS").split()
    if len(words) > SEARCH_WORDS:
        raise LineError(f"/search takes at most {SEARCH_WORDS} words")
    wanted = " ".join(words)

    def header(found):
        if not found:
            return f"nothing in your rooms matches {wanted}"
        return f"{_count(len(found), 'line')} in your rooms with {wanted}, newest first"

    conn.showHistory(conn.session.search(words, SEARCH_LIMIT), header)


@command("register", "PASSWORD", "register your nickname; only you can then use it")
def _register(conn, arg):
    nick = conn.session.nick
    done = conn.session.register(_required(arg, "/register PASSWORD"))
    return _afterwards(conn, done, lambda _: f"{nick} is registered to you and you are "
                       "identified; from now on it takes this password")


@command("identify", "PASSWORD", "prove the registered nickname you use is yours")
def _identify(conn, arg):
    done = conn.session.identify(_required(arg, "/identify PASSWORD"))
    return _afterwards(conn, done, lambda _: None)


@command("ghost", "NICK PASSWORD",
         "take your registered NICK back from another connection", beforeNick=True)
def _ghost(conn, arg):
    nick, _, password = arg.partition(" ")
    if not nick or not password.strip():
        raise LineError("usage: /ghost NICK PASSWORD")
    conn.passwordFor = None
    done = conn.session.ghost(nick, password.strip())

    return _afterwards(conn, done, lambda room: _arrived(conn, room))


@command("password", "OLD NEW", "change the password of your registered nickname")
def _password(conn, arg):
    old, _, new = arg.partition(" ")
    if not old or not new.strip():
        raise LineError("usage: /password OLD NEW")
    done = conn.session.changePassword(old, new.strip())
    return _afterwards(conn, done, lambda _: "your password is changed")


@command("kick", "NICK [REASON]", "moderators: put NICK out of the current room")
def _kick(conn, arg):
    nick, _, reason = arg.partition(" ")
    nick = _required(nick, "/kick NICK [REASON]")
    conn.session.kick(conn.currentRoom().name, nick, reason.strip())


@command("ban", "NICK|ADDRESS [DURATION] [REASON]",
         "moderators: ban from the current room, or the server (operators); "
         "for 10m, 2h, 1d or until lifted")
def _ban(conn, arg):
    target, _, rest = arg.partition(" ")
    _required(target, "/ban NICK|ADDRESS [DURATION] [REASON]")
    first, _, reason = rest.strip().partition(" ")
    duration = _duration(first)
    if duration is None:
        if first.lstrip("+-.")[:1].isnumeric():
            # Meant as a duration (1w, 90, 10min, -5m, .5h, ½h): read as a
            # reason, it would ban until lifted.
            raise _notDuration(first)
        reason = rest
    conn.session.ban(conn.currentRoom().name, target, duration, reason.strip())


def _roomAndWord(conn, arg, usage):
    """
    The room named first (when the line starts with one) or else the
    current room, and the word after it.
    """
    words = arg.split()
    if len(words) >= 2 and words[0].startswith("#"):
        return words[0], words[1]
    if not words:
        raise LineError(f"usage: {usage}")
    try:
        return conn.currentRoom().name, words[0]
    except LineError:
        raise LineError(f"usage: {usage}") from None


@command("unban", "[#ROOM] NICK|ADDRESS",
         "moderators: lift a ban (the current room's by default)")
def _unban(conn, arg):
    room, target = _roomAndWord(conn, arg, "/unban [#ROOM] NICK|ADDRESS")
    conn.session.unban(room, target)


@command("bans", "[#ROOM]", "moderators: list the bans you may lift")
def _bans(conn, arg):
    if arg:
        room = _oneWord(arg, "/bans [#ROOM]")
    else:
        try:
            room = conn.currentRoom().name
        except LineError:
            raise LineError("usage: /bans [#ROOM]") from None
    bans = conn.session.bans(room)
    conn.reply(_count(len(bans), "ban"))
    for ban in bans:
        left = None if ban.until is None else ban.until - conn.factory.gate.clock.seconds()
        until = "until lifted" if left is None else f"for {wire.duration(left)} more"
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
            raise _notDuration(rest.strip())
    conn.session.mute(conn.currentRoom().name, nick, duration)


@command("unmute", "NICK", "moderators: let NICK talk again in the current room")
def _unmute(conn, arg):
    nick = _required(arg.split(" ", 1)[0], "/unmute NICK")
    conn.session.unmute(conn.currentRoom().name, nick)


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

    @raise Refusal: when the core refuses what the line asks.
    @raise LineError: when the line cannot be acted on.
    @return: a L{Deferred} that fires once the answer is shown, when it
        comes later (a password is being checked); otherwise L{None}.
    """
    if line.startswith("/") and not line.startswith("//"):
        name, _, arg = line[1:].partition(" ")
        cmd = COMMANDS.get(name.lower())
        if cmd is None:
            raise LineError(f"unknown command /{name}; /help lists the commands")
        if conn.session.nick is None and not cmd.beforeNick:
            raise LineError("choose a nickname first")
        return cmd.run(conn, arg.strip())
    elif conn.session.nick is None and conn.passwordFor is not None:
        nick = conn.passwordFor
        if len(line) < _PASSWORD_MIN or " " in line:
            # Cannot be a password: another nickname.
            return _claimTyped(conn, line)
        conn.passwordFor = None
        return _claim(conn, nick, line)
    elif conn.session.nick is None:
        return _claimTyped(conn, line)
    else:
        conn.session.say(conn.currentRoom().name, line[1:] if line.startswith("//") else line)

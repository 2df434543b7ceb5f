"""
C{chatd-export}: write a room's history out of chatd's database, oldest line
first, as JSON lines (for backups and for moving data) or as plain text (to
read).  It only reads the database, so it can run beside a live server.

    chatd-export '#lobby' > lobby.txt
    chatd-export --db sqlite:/srv/chat.sqlite3 --format jsonl '#lobby' > lobby.jsonl

The exit status is 0 when lines were written, 1 when the room has no
history (nothing was written: a misspelt room, say) or the database could
not be read, and 2 for a usage error.
"""

import json
import os
import sqlite3
import sys

from twisted.python import usage

from chatd import __version__
from chatd.line import wire
from chatd.core.names import normalRoomName, roomKey
from chatd.storage import HistoryError, schema
from chatd.storage.threaded import toEvent
from chatd.tap import DB_HELP_DEFAULT, databasePath, defaultDatabase, isPostgres

FORMATS = ("jsonl", "text")


class Options(usage.Options):
    synopsis = "Usage: chatd-export [options] #ROOM"
    longdesc = (
        "Write the history of #ROOM, oldest line first, to standard output. "
        "jsonl gives one JSON object per line: id, time (POSIX seconds), utc, "
        "room, kind (said, notice, acted or topic), nick and text. text gives each "
        "line as chat shows it, after its UTC time."
    )
    optParameters = [
        ["db", None, None,
         f"The database, as chatd's --db takes it. [default: {DB_HELP_DEFAULT}]"],
        ["format", None, "text", "jsonl or text."],
    ]

    def opt_version(self):
        """
        Display the version of chatd and exit.
        """
        print(f"chatd-export (chatd) {__version__}")
        sys.exit(0)

    def parseArgs(self, room):
        self["room"] = normalRoomName(room)

    def postOptions(self):
        if self["format"] not in FORMATS:
            raise usage.UsageError(f"--format: one of {', '.join(FORMATS)}")
        db = self["db"] or defaultDatabase()
        if isPostgres(db):
            raise usage.UsageError(
                '--db: only SQLite files are read; from PostgreSQL, psql -c "\\copy '
                '(SELECT ...) TO STDOUT" does (README.md, "History")')
        self["path"] = databasePath(db)
        if self["path"] is None:
            raise usage.UsageError("--db: a database to read is needed (sqlite:PATH)")


def jsonLine(row):
    """
    A stored line, C{row} (id, time, room, kind, nick, text), as JSON.
    """
    id, time, room, kind, nick, text = row
    return json.dumps({"id": id, "time": time, "utc": wire.timestamp(time),
                       "room": room, "kind": kind, "nick": nick, "text": text},
                      ensure_ascii=False)


def textLine(row):
    """
    A stored line, C{row}, as chat shows it, after its UTC time.
    """
    event = toEvent(row)
    return f"{wire.timestamp(event.time)} {wire.formatEvent(event)}"


def export(path, room, format, out):
    """
    Write the history of C{room} in the database at C{path} to C{out}.

    @return: how many lines were written.
    @raise HistoryError: when the database cannot be read.
    """
    connection = schema.connect(path, readOnly=True)
    toLine = jsonLine if format == "jsonl" else textLine
    count = 0
    try:
        rows = connection.execute(
            "SELECT id, time, room, kind, nick, text FROM messages "
            "WHERE room_key = ? ORDER BY id", (roomKey(room),))
        for row in rows:
            out.write(toLine(row) + "\n")
            count += 1
    finally:
        connection.close()
    return count


def main(argv=None):
    config = Options()
    try:
        config.parseOptions(argv)
    except usage.UsageError as e:
        # The usage line, not the whole help: the error stays in sight.
        sys.stderr.write(f"chatd-export: {e}\n{config.getSynopsis()}\n"
                         "chatd-export --help lists the options\n")
        sys.exit(2)
    try:
        count = export(config["path"], config["room"], config["format"], sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, say) has had enough: stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (HistoryError, OSError, sqlite3.Error) as e:
        sys.exit(f"chatd-export: {e}")
    if not count:
        # Nothing written is not success: a script must not take an empty
        # export (a misspelt room) for a backup.
        sys.exit(f"chatd-export: no history for {config['room']}")


if __name__ == "__main__":
    main()

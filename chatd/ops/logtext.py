"""
twistd's log, made cheaper: the same events as Twisted's L{Logger} emits,
and the same bytes as twistd's default text observer writes, for a fraction
of the Python.

twistd logs through C{textFileLogObserver}, whose formatting costs about 25 us
an event (Twisted's C{formatTime} builds a time zone and runs C{strftime} for
every event, and its formatter parses the format string every time): a
quarter of a login's CPU in a storm of logins, each of which logs one line.
L{ClassicText} makes the same text, keeping the time text of the current
second and taking C{str.format_map} for formats that are plain names; every
other event is formatted by Twisted itself.  L{leanTwistdLog} gives it to
twistd's observer once twistd has chosen it, so that every twistd option
(C{--logfile} and its rotation, C{--syslog}, C{--logger}, C{-n}) stays
twistd's, and every line is still written and flushed when it is logged.
"""

import io
import math
from functools import lru_cache
from string import Formatter
from time import time

from twisted.application import service
from twisted.logger import (FileLogObserver, Logger, LogLevel, formatEventAsClassicLogText,
                            formatTime, globalLogPublisher, textFileLogObserver)

_EDGE = 1e-5
"""How far from a second's ends a time must be for the second's cached text
to be used: C{datetime} rounds a time to the microsecond, so one a hair
before a second is written as the next."""


_LEVELS = frozenset(LogLevel.iterconstants())


class LeanLogger(Logger):
    """
    A L{Logger} whose events cost less to emit.  Twisted's C{emit} checks
    each event's level by sorting C{LogLevel}'s constants anew: with the
    formatting, a fifth of the Python of a login's log line (counted with
    cachegrind).  Here a valid level is found in a set made once, and the
    event, the same one, goes to the observer; an invalid level, or an event
    being traced, goes to Twisted's own C{emit}, which reports it.
    """

    def emit(self, level, format=None, **kwargs):
        if level not in _LEVELS or "log_trace" in kwargs:
            super().emit(level, format, **kwargs)
            return
        kwargs.update(log_logger=self, log_level=level, log_namespace=self.namespace,
                      log_source=self.source, log_format=format, log_time=time())
        self.observer(kwargs)


@lru_cache(maxsize=256)
def _plain(logFormat):
    """
    Whether C{str.format_map} formats C{logFormat} as Twisted's formatter
    does: every field a name, no nested field in a format spec.  (Twisted's
    adds calls, C{{f()}}, and attribute and item access through wrappers.)
    """
    try:
        return all(name is None or (name.isidentifier() and "{" not in spec)
                   for _, name, spec, _ in Formatter().parse(logFormat))
    except ValueError:
        return False


class ClassicText:
    """
    What C{textFileLogObserver}'s default formatting makes of an event
    (C{formatEventAsClassicLogText} with RFC 3339 times, in local time):
    C{2026-12-02T12:00:00+0000 [chatd.core.chat.ChatCore#info] alice logged in
    from 127.0.0.1}, a newline, continuation lines indented by a tab.

    Events with a failure, a system, flattened fields, a format that is not
    plain names, or no time or level, and any format that fails, are
    formatted by Twisted's own function.
    """

    def __init__(self):
        self._stamp = None
        self._from = self._until = 0.0

    def __call__(self, event):
        logFormat = event.get("log_format")
        when = event.get("log_time")
        level = event.get("log_level")
        if (type(logFormat) is not str or type(when) is not float or level is None
                or "log_failure" in event or "log_system" in event
                or "log_flattened" in event or not _plain(logFormat)):
            # (Its default time format is textFileLogObserver's.)
            return formatEventAsClassicLogText(event)
        try:
            text = logFormat.format_map(event)
        except BaseException:
            # Twisted's says it could not format the event (it catches
            # everything too).
            return formatEventAsClassicLogText(event)
        if not text:
            return None
        stamp = self._stamp if self._from <= when < self._until else self._newSecond(when)
        line = f"{stamp} [{event.get('log_namespace', '-')}#{level.name}] {text}"
        return line.replace("\n", "\n\t") + "\n"

    def _newSecond(self, when):
        """
        The time text of C{when}, kept for the rest of its second (time zones
        change on whole seconds) but its edges.  (A C{time.tzset()} in the
        process, which chatd never makes, would show a second late.)
        """
        stamp = formatTime(when)
        second = math.floor(when)
        if second + _EDGE <= when < second + 1 - _EDGE:
            self._stamp, self._from, self._until = stamp, second + _EDGE, second + 1 - _EDGE
        return stamp


def _cells(function):
    return [cell.cell_contents for cell in function.__closure__ or ()]


def _isTwistdText(formatEvent):
    """
    Whether C{formatEvent} is what C{textFileLogObserver} formats with by
    default, as twistd makes it.  (Twisted's own code and the same captured
    time format; an observer with another format, JSON's, or an operator's
    C{--logger} of its own, is left as it is.)
    """
    reference = textFileLogObserver(io.StringIO()).formatEvent
    return (getattr(formatEvent, "__code__", None) is reference.__code__
            and _cells(formatEvent) == _cells(reference))


def leanTwistdLog(publisher=globalLogPublisher):
    """
    Have each of C{publisher}'s file observers that formats as twistd's
    default does format with a L{ClassicText} instead.

    Called once twistd has begun logging (twistd chooses its observer after
    the service is built, and tells no one which): the observer, its file,
    its rotation and its flush per line stay twistd's; only the formatting,
    the same bytes, changes.  (An C{ILogObserver} component on the
    application, which twistd documents, would replace twistd's choice rather
    than reuse it: chatd would redo C{--logfile}, C{-n}, rotation and SIGUSR1,
    and C{chatd.tac} cannot see twistd's options.)  Two details are
    Twisted's, not its API: the list of observers, C{LogPublisher._observers}
    (no public call lists them), and the code of C{textFileLogObserver}'s
    formatting, by which its default is known.  Should either change, nothing
    is changed: the log is as it was, only dearer.

    @return: how many observers were changed.
    """
    changed = 0
    for observer in getattr(publisher, "_observers", ()):
        if isinstance(observer, FileLogObserver) and _isTwistdText(observer.formatEvent):
            observer.formatEvent = ClassicText()
            changed += 1
    return changed


class LeanLogService(service.Service):
    """
    Calls L{leanTwistdLog} as the daemon starts: twistd has begun logging by
    then, and no login has been logged yet.
    """

    def privilegedStartService(self):
        leanTwistdLog()
        super().privilegedStartService()

    def startService(self):
        # Under runners that never call privilegedStartService.
        leanTwistdLog()
        super().startService()

"""
chatd's log text (L{chatd.ops.logtext}): byte for byte what twistd's default
text observer writes, for the same events, and given to twistd's observer
only.
"""

import calendar
import datetime
import io
import time

import pytest
from twisted.logger import (FileLogObserver, LogLevel, LogPublisher, Logger,
                            jsonFileLogObserver, textFileLogObserver)
from twisted.python import log as legacyLog
from twisted.python.failure import Failure
from twisted.scripts._twistd_unix import ServerOptions, UnixAppLogger

from chatd.ops.logtext import ClassicText, LeanLogger, leanTwistdLog


def _events(emit):
    """
    The events C{emit} logs through a real L{Logger}, as twistd's observer
    is given them.
    """
    events = []
    emit(Logger(namespace="chatd.core.chat.ChatCore", observer=events.append))
    return events


def _twistds(event):
    # What twistd's default observer formats with: textFileLogObserver's.
    return textFileLogObserver(io.StringIO()).formatEvent(event)


def _assertSameText(events):
    lean = ClassicText()
    for event in events:
        assert lean(event) == _twistds(event), event


class _Shown:
    def __str__(self):
        return "shown by str"


class _Anything:
    # Answers every attribute, so str.format's "{a.size()}" finds one too.
    def __getattr__(self, name):
        return lambda: f"called {name}"


class _Broken:
    def __format__(self, spec):
        raise RuntimeError("cannot")


def _legacyEvents():
    # What twisted.python.log.msg and .err give new observers.
    events = []
    publisher = legacyLog.LogPublisher(observerPublisher=LogPublisher(events.append))
    publisher.msg("ChatFactory starting on 55555")
    publisher.msg("a legacy line", system="TCP,3,127.0.0.1")
    publisher.msg(format="%(count)d legacy %(what)s", count=3, what="lines")
    try:
        1 / 0
    except ZeroDivisionError:
        # What log.err sends.
        publisher.msg(failure=Failure(), why="a legacy failure", isError=1)
    return events


def test_sameTextAsTwistdsObserver():
    """
    chatd's own lines, another library's events (Twisted's, old and new
    logging), a failure with its traceback, formats with specs, conversions,
    attribute access and calls, non-ASCII text and line breaks, and events
    that cannot be formatted all come out exactly as twistd's default text
    observer writes them.
    """
    def emit(log):
        log.info("{nick} logged in from {host}", nick="alice", host="127.0.0.1")
        log.info("{nick} ({peer}) disconnected: {why}", nick="-", peer="127.0.0.1:4242",
                 why="connection lost")
        log.warn("dropping {nick}: {pending} bytes, for at most {grace:g} seconds",
                 nick="bob", pending=262145, grace=5.0)
        log.info("reload: {change!r} {change!a} {change!s}", change="--motd é")
        log.info("héllo {nick} ☃ {text}", nick="zoë", text="naïve\nsecond line\n")
        log.info("{thing} {0} {}", thing=_Shown())
        log.info("{self.__class__.__name__} {when.year} {calls()} {item[k]}",
                 when=datetime.date(2026, 12, 2),
                 calls=lambda: "called", item={"k": "v"})
        log.info("{anything.size()}", anything=_Anything())
        log.info("{missing} is not there")
        log.info("{broken} breaks", broken=_Broken())
        log.info("{{braces}} {nick:>8}|{n:05d}|{x:{width}}", nick="al", n=42, x="w",
                 width=4)
        log.info("")
        log.info("{empty}", empty="")
        log.info("unbalanced {")
        log.info(b"bytes {nick}", nick="al")
        log.debug("a debug line")
        log.critical("a critical line")
        log.emit(LogLevel.info, None, text="no format")
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("storing a room failed")
        log.failure("twice {room}", Failure(KeyError("k")), room="#élan")

    events = _events(emit) + _legacyEvents()
    events.append({"log_format": "no time, level or namespace"})
    events.append({"log_format": "an int time", "log_time": 1764676800,
                   "log_level": LogLevel.info})
    events.append(dict(events[0], log_system="a system"))
    events.append(dict(events[0], log_namespace="name\nspace"))
    _assertSameText(events)


def _at(times, base):
    return [dict(base, log_time=when) for when in times]


def test_sameTimeAcrossSecondsAndTimeZones(monkeypatch):
    """
    The time text of each event is twistd's for its own time: at a
    second's edges (a time a hair before a second is written as the next),
    going back in time, and across daylight saving changes and offsets of
    half an hour, in the zone TZ names.
    """
    [base] = _events(lambda log: log.info("{nick} logged in", nick="alice"))
    second = 1764676800.0
    edges = [second + 0.5, second + 0.999999, second + 0.9999996, second + 0.9999994,
             second + 1.0, second + 1.0000004, second + 1.00001, second + 1.5,
             second + 0.25, second - 0.0000004, second - 0.5, second + 1.999999,
             second + 2.0000001]
    for zone in ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata"]:
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        try:
            times = list(edges)
            for change in [(2026, 3, 29, 1), (2026, 10, 25, 1),  # Berlin
                           (2026, 3, 8, 5), (2026, 11, 1, 4)]:  # St John's (-0330)
                at = float(calendar.timegm((*change, 0, 0)))
                times += [at - 1.5, at - 0.5, at - 0.000001, at - 0.0000004, at,
                          at + 0.0000004, at + 0.5, at + 1.5, at - 0.25]
            _assertSameText(_at(times, base))
        finally:
            monkeypatch.delenv("TZ")
            time.tzset()


def test_aNewSecondIsNotWrittenAsTheLastOne(monkeypatch):
    """
    The cached time text belongs to one second (and one zone offset): the
    events of the next second, or of the same second's last microsecond
    rounded up, get their own.
    """
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        [base] = _events(lambda log: log.info("x"))
        lean = ClassicText()
        change = float(calendar.timegm((2026, 3, 29, 1, 0, 0)))
        before = lean(dict(base, log_time=change - 0.5))
        after = lean(dict(base, log_time=change + 0.5))
        rounded = lean(dict(base, log_time=change - 0.0000004))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert before.startswith("2026-03-29T01:59:59+0100 ")
    assert after.startswith("2026-03-29T03:00:00+0200 ")
    assert rounded.startswith("2026-03-29T03:00:00+0200 ")


def _twistdsObserver(*arguments):
    """
    The observer twistd itself makes for these command-line arguments.
    """
    options = ServerOptions()
    options.parseOptions([*arguments, "chat"])
    return UnixAppLogger(options)._getLogObserver()


def test_twistdsObserverFormatsWithClassicText(tmp_path):
    """
    The observer twistd makes for C{-n} and for C{--logfile} is given a
    L{ClassicText}, once: it goes on writing to the same place (its log
    file), the same bytes.
    """
    logfile = tmp_path / "chatd.log"
    observer = _twistdsObserver("--logfile", str(logfile))
    publisher = LogPublisher(observer)
    events = _events(lambda log: log.info("{nick} logged in from {host}", nick="alice",
                                          host="127.0.0.1"))
    assert leanTwistdLog(publisher) == 1
    assert isinstance(observer.formatEvent, ClassicText)
    assert leanTwistdLog(publisher) == 0
    publisher(events[0])
    assert logfile.read_text() == _twistds(events[0])
    assert logfile.read_text().endswith(
        " [chatd.core.chat.ChatCore#info] alice logged in from 127.0.0.1\n")
    foreground = _twistdsObserver("-n")
    assert leanTwistdLog(LogPublisher(foreground)) == 1
    assert isinstance(foreground.formatEvent, ClassicText)


@pytest.mark.parametrize("observer", [
    lambda path: _twistdsObserver("--syslog"),
    lambda path: jsonFileLogObserver(open(path, "w")),
    lambda path: textFileLogObserver(open(path, "w"), timeFormat="%H:%M"),
    lambda path: FileLogObserver(open(path, "w"), lambda event: "mine\n"),
    lambda path: print,
])
def test_otherObserversAreLeftAlone(observer, tmp_path):
    """
    Syslog's observer, JSON's, a text one with another time format, an
    operator's own (C{--logger}) and anything else keep their formatting.
    """
    chosen = observer(tmp_path / "log")
    formatting = getattr(chosen, "formatEvent", None)
    assert leanTwistdLog(LogPublisher(chosen)) == 0
    assert getattr(chosen, "formatEvent", None) is formatting


def _emitted(loggerClass, emit):
    events = []
    emit(loggerClass(namespace="chatd.core.chat.ChatCore", source="a source",
                     observer=events.append))
    return events


@pytest.mark.parametrize("level", list(LogLevel.iterconstants()))
def test_leanLoggerEmitsTwistedsEvent(level):
    """
    L{LeanLogger} gives its observer the event Twisted's L{Logger} would,
    at every level: the same fields, the logger aside (each names itself).
    """
    def emit(logger):
        logger.emit(level, "{nick} logged in from {host}", nick="alice", host="127.0.0.1")

    [lean], [twisted] = _emitted(LeanLogger, emit), _emitted(Logger, emit)
    assert type(lean.pop("log_logger")) is LeanLogger
    assert type(twisted.pop("log_logger")) is Logger
    assert abs(lean.pop("log_time") - twisted.pop("log_time")) < 1
    assert lean == twisted
    assert lean["log_level"] is level and lean["log_source"] == "a source"


def test_leanLoggerLeavesTheUnusualToTwisted():
    """
    An invalid level is reported as Twisted reports it, and a traced event
    is traced: both go through Twisted's own C{emit}.
    """
    [lean] = _emitted(LeanLogger, lambda logger: logger.emit("loud", "x"))
    [twisted] = _emitted(Logger, lambda logger: logger.emit("loud", "x"))
    assert lean["log_format"] == twisted["log_format"]
    assert lean["invalidLevel"] == "loud" and "log_failure" in lean

    publisher = LogPublisher()
    logger = LeanLogger(observer=publisher)
    trace = []
    logger.info("traced", log_trace=trace)
    assert trace == [(logger, publisher)]

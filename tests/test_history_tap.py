"""
The history options of C{twistd chat} and the service that opens, prunes and
closes the store.
"""

import pytest
from twisted.internet.task import Clock
from twisted.python import usage

from chatd import tap
from chatd.core import events
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.storage import HistoryError
from support import EventWire, Inbox, MemoryHistory


def parse(*args):
    config = tap.Options()
    config.parseOptions(list(args))
    return config


def test_defaultDatabaseInXdgDataHome(monkeypatch, tmp_path):
    """
    Without --db, history goes to $XDG_DATA_HOME/chatd/chatd.sqlite3, or
    below ~/.local/share when XDG_DATA_HOME is unset; replay is 20 lines and
    nothing is pruned.
    """
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    config = parse()
    assert config["history"] == str(tmp_path / "chatd" / "chatd.sqlite3")
    assert (config["replay"], config["history-days"]) == (20, 0)
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse()["history"] == str(tmp_path / ".local/share/chatd/chatd.sqlite3")


def test_dbOption(tmp_path, monkeypatch):
    """
    --db sqlite:PATH names the file (relative to the current folder, ~
    expanded); --db none keeps no history.
    """
    monkeypatch.chdir(tmp_path)
    assert parse("--db", "sqlite:h.sqlite3")["history"] == str(tmp_path / "h.sqlite3")
    assert parse("--db", "none")["history"] is None


@pytest.mark.parametrize("url", ["postgresql://chatd@db.example:5432/chatd",
                                 "postgres://chatd:secret@10.0.0.5/chat"])
def test_postgresDatabase(url):
    """
    A PostgreSQL URL (either scheme libpq takes) names the database that
    keeps history and accounts; no SQLite file then.
    """
    config = parse("--db", url)
    assert config["postgres"] == url
    assert config["history"] is None


@pytest.mark.parametrize("args, message", [
    (["--db", "mysql://x"], "--db mysql://x: expected sqlite:PATH, "
                            "postgresql://USER@HOST:PORT/NAME or none"),
    (["--db", "sqlite:"], "--db sqlite:: expected sqlite:PATH, "
                          "postgresql://USER@HOST:PORT/NAME or none"),
    (["--replay", "-1"], "--replay: 0 or more lines"),
    (["--history-days", "-3"], "--history-days: 0 or more days"),
])
def test_badOptions(args, message):
    """
    Unusable history options are usage errors naming the option.
    """
    with pytest.raises(usage.UsageError) as raised:
        parse(*args)
    assert str(raised.value) == message


def test_makeServiceOpensHistoryFirst(tmp_path):
    """
    The history service comes first, so the store is open before any
    listener accepts a line; --db none builds no history service.
    """
    config = parse("--db", f"sqlite:{tmp_path}/h.sqlite3", "--listen", "tcp:0")
    top = tap.makeService(config, Clock())
    assert isinstance(list(top)[0], tap._HistoryService)
    config = parse("--db", "none", "--listen", "tcp:0")
    services = tap.makeService(config, Clock())
    assert not any(isinstance(s, tap._HistoryService) for s in services)


class Store(MemoryHistory):
    path = "/nowhere/h.sqlite3"

    def __init__(self, problem=None):
        super().__init__()
        self.problem = problem
        self.closed = False

    def open(self):
        if self.problem:
            raise HistoryError(self.problem)

    def close(self):
        self.closed = True
        return super().close()


def test_unusableStoreStopsTheStart():
    """
    A store that cannot be opened fails the start with one line for the
    operator.
    """
    service = tap._HistoryService(Store("it is broken"), Clock(), 0, ChatCore(Fanout(), Clock()))
    with pytest.raises(tap.StartFailure) as raised:
        service.privilegedStartService()
    assert str(raised.value) == "chatd: it is broken"


def test_prunesAtStartAndHourly():
    """
    With --history-days N, lines older than N days are pruned at start and
    every hour; stopping stops pruning and closes the store.
    """
    clock, store = Clock(), Store()
    clock.advance(10 * 86400)
    for day in range(10):
        store.append(events.Said("#a", "alice", f"day {day}", day * 86400.0 + 7200, day))
    service = tap._HistoryService(store, clock, 7, ChatCore(Fanout(), clock))
    service.privilegedStartService()
    service.startService()
    assert [e.text for e in store.lines] == ["day 3", "day 4", "day 5", "day 6",
                                             "day 7", "day 8", "day 9"]
    clock.advance(3600)
    assert [e.text for e in store.lines][0] == "day 3"
    clock.advance(86400)
    assert [e.text for e in store.lines][0] == "day 4"
    service.stopService()
    assert store.closed and not clock.getDelayedCalls()


def test_lobbyTopicComesBack():
    """
    The lobby's last topic, as history has it, is its topic again once the
    store is open: the first to arrive sees it.
    """
    clock, store = Clock(), Store()
    store.append(events.TopicChanged("#lobby", "alice", "release on Friday", 10.0, 1))
    core = ChatCore(Fanout(), clock, history=store)
    service = tap._HistoryService(store, clock, 0, core)
    service.privilegedStartService()
    inbox = Inbox()
    core.open(inbox, EventWire).claim("bob")
    assert inbox.take()[1] == events.Entered("#lobby", "bob", "release on Friday", ("bob",))

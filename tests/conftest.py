import os
import tempfile

import pytest

from support import Daemon, MemoryServer, ThreadCalls


def pytest_configure(config):
    # Daemons started outside any test (module fixtures) keep their default
    # history in a folder of this run's own, never in the user's home.
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="chatd-tests-")
    # Run by default (bounded); deselect with -m "not soak" for a quick run.
    config.addinivalue_line(
        "markers", "soak: a bounded load test with about a thousand clients")
    # The fast subset (-m "not slow") runs in seconds; .ci/run runs all.
    config.addinivalue_line(
        "markers", "slow: an end-to-end test that takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    # A test that starts a daemon (of any kind) or another program is slow by
    # nature; the rest run in memory.
    for item in items:
        module = vars(item.module)
        if ({"startDaemon", "runClient", "subprocess"} & module.keys()
                or any(isinstance(v, type) and issubclass(v, Daemon) for v in module.values())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def server():
    return MemoryServer()


@pytest.fixture(autouse=True)
def privateDataHome(tmp_path, monkeypatch):
    """
    Daemons started by a test keep their default history (under
    $XDG_DATA_HOME) in the test's own folder, fresh for each test, and never
    in the user's home.
    """
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture
def calls():
    """
    Waits for what a store's threads answer, with no reactor running.
    """
    return ThreadCalls()


@pytest.fixture
def path(tmp_path):
    """
    Where a test's database goes: a folder that does not exist yet.
    """
    return str(tmp_path / "data" / "chatd.sqlite3")


@pytest.fixture
def db(tmp_path):
    """
    A --db description for a daemon's own database in the test's folder.
    """
    return f"sqlite:{tmp_path / 'chatd.sqlite3'}"


@pytest.fixture(scope="session")
def postgresServer():
    """
    One throw-away PostgreSQL server for the whole run, started when a test
    first needs it (skipped where PostgreSQL is not installed).
    """
    from pgsupport import PostgresServer

    server = PostgresServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def pgurl(postgresServer):
    """
    The URL of a fresh database of the test's own on that server.
    """
    return postgresServer.newDatabase()


class StoreBackend:
    """
    One of the databases the stores run on, for the store tests that every
    backend must pass: where the test's database is (C{where}: a path or a
    URL), the store classes, and a way to look inside.
    """

    def __init__(self, name, where, history, accounts, connect):
        self.name = name
        self.where = where
        self.historyClass = history
        self.accountsClass = accounts
        self._connect = connect

    def history(self, calls, cls=None, **kwargs):
        """
        An open history store (of C{cls}, a subclass of the backend's, if given).
        """
        store = (cls or self.historyClass)(self.where, calls, **kwargs)
        store.open()
        return store

    def accounts(self, calls, **kwargs):
        store = self.accountsClass(self.where, calls, **kwargs)
        store.open()
        return store

    def query(self, sql):
        """
        The rows C{sql} finds in the database, read apart from the stores.
        """
        connection = self._connect(self.where)
        try:
            return [tuple(row) for row in connection.execute(sql).fetchall()]
        finally:
            connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def backend(request, path):
    """
    Each store test runs once on SQLite and once on PostgreSQL (on the run's
    own server: slow, skipped where PostgreSQL is not installed).
    """
    if request.param == "sqlite":
        import sqlite3

        from chatd.storage.accounts import SQLiteAccounts
        from chatd.storage.sqlite import SQLiteHistory

        return StoreBackend("sqlite", path, SQLiteHistory, SQLiteAccounts, sqlite3.connect)
    import psycopg

    from chatd.storage.postgres import PostgresAccounts, PostgresHistory

    return StoreBackend("postgres", request.getfixturevalue("pgurl"), PostgresHistory,
                        PostgresAccounts, psycopg.connect)

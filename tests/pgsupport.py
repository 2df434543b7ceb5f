"""
A throw-away PostgreSQL server for the tests: C{initdb} in a temporary
folder, C{postgres} on a free loopback port, run as the C{postgres} user when
the tests run as root (PostgreSQL refuses to run as root).  Each test gets a
database of its own on it.
"""

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from brokersupport import freePort


def postgresPrograms():
    """
    The folder of PostgreSQL's server programs (Debian keeps them out of
    the PATH), or L{None} when PostgreSQL is not installed.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def requirePostgres():
    """
    Skip the test when PostgreSQL is not installed, unless CI demands every
    tool.
    """
    if postgresPrograms() is None:
        if os.environ.get("CHATD_REQUIRE_TOOLS"):
            pytest.fail("PostgreSQL (initdb, postgres) is required but not installed")
        pytest.skip("PostgreSQL is not installed")


class PostgresServer:
    """
    A PostgreSQL server of the test run's own, keeping its data in a
    temporary folder, trusting every local connection.
    """

    def __init__(self):
        requirePostgres()
        self.bin = postgresPrograms()
        self.port = freePort()
        self.folder = tempfile.mkdtemp(prefix="chatd-postgres-")
        self.data = os.path.join(self.folder, "data")
        self.process = None
        self._asUser = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            self._asUser = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")
        self._names = itertools.count(1)
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C.UTF-8")

    def _run(self, program, *args):
        subprocess.run(self._asUser + [os.path.join(self.bin, program), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)

    def url(self, name="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self, timeout=30):
        self.process = subprocess.Popen(
            self._asUser + [os.path.join(self.bin, "postgres"), "-D", self.data,
                            "-p", str(self.port), "-k", self.folder,
                            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p",
                 str(self.port), "-t", "1"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, timeout=10)
            if ready.returncode == 0:
                return self
            if self.process.poll() is not None:
                raise AssertionError("postgres exited at start")
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"postgres did not answer within {timeout} s")

    def stop(self, timeout=30):
        """
        Stop the server at once (fast shutdown: connections are cut).
        """
        if self.process is not None and self.process.poll() is None:
            # pg_ctl waits until the server is gone, its lock file too (the
            # process started may be runuser, which does not wait for that).
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w",
                      "-t", str(timeout))
            self.process.wait(timeout)
        self.process = None

    def newDatabase(self):
        """
        The URL of a new, empty database.
        """
        import psycopg

        name = f"chatd_test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

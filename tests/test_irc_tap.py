"""
The --irc options: parsed, refused when malformed, and wired to an IRC
listener over the same core and gate as the line protocol.
"""

import pytest
from twisted.internet.task import Clock
from twisted.python import usage

from chatd import tap
from chatd.irc.protocol import IrcFactory


def test_ircOffByDefault():
    """
    Without --irc nothing listens for IRC.
    """
    config = tap.Options()
    config.parseOptions(["--db", "none"])
    assert config["irc"] == []
    top = tap.makeService(config, reactor=Clock())
    assert not [s for s in top if isinstance(s, tap._ListeningService)
                and isinstance(s.factory, IrcFactory)]


def test_ircListenersShareTheCoreAndGate():
    """
    Each --irc gives an IRC listener; they share one factory, whose core and
    gate are the line protocol's.
    """
    config = tap.Options()
    config.parseOptions(["--db", "none", "--irc", "tcp:0", "--irc", "tcp:0",
                         "--irc-name", "chat.example.org", "--irc-network", "Example"])
    top = tap.makeService(config, reactor=Clock())
    listeners = [s for s in top if isinstance(s, tap._ListeningService)]
    line, irc = listeners[0].factory, [s.factory for s in listeners[1:]]
    assert len(irc) == 2 and irc[0] is irc[1]
    assert isinstance(irc[0], IrcFactory)
    assert irc[0].core is line.core and irc[0].gate is line.gate
    assert irc[0].wire.server == "chat.example.org"
    assert irc[0].network == "Example"


def test_badIrcEndpointIsOneLine():
    """
    A malformed --irc endpoint stops the start with one line naming it, as
    a malformed --listen does.
    """
    with pytest.raises(tap.StartFailure) as e:
        tap.Options().parseOptions(["--irc", "tcp:port"])
    assert str(e.value).startswith("chatd: --irc tcp:port: ")
    assert "\n" not in str(e.value)


def test_badIrcName():
    """
    A server name without a dot, or with spaces, is a usage error.
    """
    with pytest.raises(usage.UsageError, match="--irc-name"):
        tap.Options().parseOptions(["--irc-name", "no dots"])


def test_helpShowsIrc():
    """
    --help documents --irc.
    """
    assert "--irc=" in str(tap.Options())

"""
twistd wiring: the plugin is found, options parse, the service is built.
"""

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python import usage

from chatd import tap


def test_dropinImports():
    """
    The dropin module imports and declares the chat ServiceMaker, pointing at
    chatd.tap.
    """
    from twisted.plugins import chatd_plugin

    assert chatd_plugin.chat.tapname == "chat"
    assert chatd_plugin.chat.module == "chatd.tap"


def test_pluginFound():
    """
    Twisted's plugin scan finds the chat command, as twistd does.
    """
    import twisted.plugins

    names = [p.tapname for p in getPlugins(IServiceMaker, twisted.plugins)]
    assert "chat" in names


def test_defaults():
    """
    With no options chatd listens on 127.0.0.1:55555 and greets in #lobby.
    """
    config = tap.Options()
    config.parseOptions([])
    assert config["listen"] == ["tcp:55555:interface=127.0.0.1"]
    assert config["lobby"] == "#lobby"


def test_listenRepeatable():
    """
    Every --listen given is kept, and the default is then not added.
    """
    config = tap.Options()
    config.parseOptions(["--listen", "tcp:1234", "--listen", "unix:/tmp/chat.sock"])
    assert config["listen"] == ["tcp:1234", "unix:/tmp/chat.sock"]


@pytest.mark.parametrize("args", [["--listen", "tcp:port"], ["--listen", "nonsense:1"]])
def test_badEndpointIsOneLine(args):
    """
    A malformed endpoint stops the start with one line naming the option and
    why, not the usage text, and how a listener is written.
    """
    with pytest.raises(tap.StartFailure) as e:
        tap.Options().parseOptions(args)
    assert str(e.value).startswith(f"chatd: --listen {args[1]}: not a listener (")
    assert str(e.value).endswith(
        "): write tcp:PORT[:interface=ADDRESS] or ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("args", [
    ["--lobby", "lobby with spaces"],
    ["--send-queue", "10"],
    ["--flood-rate", "x"],
    ["--max-connections", "²"],
])
def test_badOptions(args):
    """
    Malformed options are usage errors naming the option.
    """
    with pytest.raises(usage.UsageError, match=args[0]):
        tap.Options().parseOptions(args)


def test_version(capsys):
    """
    C{twistd chat --version} names chatd and its version (and Twisted's
    beside it), not Twisted's alone.
    """
    import twisted

    from chatd import __version__
    with pytest.raises(SystemExit) as exited:
        tap.Options().parseOptions(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"chatd {__version__} (Twisted {twisted.__version__})\n"


def test_makeServiceBuildsOneListenerEach():
    """
    makeService builds a listener per --listen, sharing one factory, plus the
    shutdown notice.
    """
    config = tap.Options()
    config.parseOptions(["--listen", "tcp:0", "--listen", "tcp:0", "--lobby", "#hall"])
    top = tap.makeService(config, reactor=Clock())
    listeners = [s for s in top if isinstance(s, tap._ListeningService)]
    assert len(listeners) == 2
    assert listeners[0].factory is listeners[1].factory
    assert listeners[0].factory.core.lobby == "#hall"


def test_listenBacklog():
    """
    A TCP listener that does not give its own backlog gets chatd's
    (LISTEN_BACKLOG, more than Twisted's 50, so that a crowd reconnecting at
    once is not turned away); one that gives its own keeps it.
    """
    config = tap.Options()
    config.parseOptions(["--listen", "tcp:0:interface=127.0.0.1",
                         "--listen", "tcp:0:backlog=7"])
    top = tap.makeService(config, reactor=Clock())
    backlogs = [s.endpoint._backlog for s in top if isinstance(s, tap._ListeningService)]
    assert backlogs == [tap.LISTEN_BACKLOG, 7]
    assert tap.LISTEN_BACKLOG > 50


def test_helpDocumentsEveryOption():
    """
    C{twistd chat --help} documents every option.
    """
    text = str(tap.Options())
    for option in ["--listen", "--lobby", "--send-queue"]:
        assert option in text


def test_trustOptions():
    """
    --operator is repeatable and checked as a nickname; --identify-time is
    gone (nobody holds a registered nickname unproved, so there is nothing
    to time); numbers are ASCII digits only.
    """
    config = tap.Options()
    config.parseOptions(["--operator", "boss", "--operator", "Deputy"])
    assert config["operators"] == ["boss", "Deputy"]
    assert "identify-time" not in config
    for args, message in [
        (["--operator", "9lives"], "--operator 9lives: a nickname is "),
        (["--identify-time", "60"], "option --identify-time not recognized"),
        (["--replay", "²"], "--replay: '²' is not a whole number"),
        (["--max-rooms", "٣"], "--max-rooms: '٣' is not a whole number"),
        (["--flood-rate", "1_0"], "--flood-rate: '1_0' is not a number"),
    ]:
        with pytest.raises(usage.UsageError) as e:
            tap.Options().parseOptions(args)
        assert str(e.value).startswith(message)


def test_helpHasNoRunsOfSpaces():
    """
    Every option's help reads as prose in --help: no run of spaces inside a
    sentence (a docstring's indentation once leaked into two of them).
    """
    help = str(tap.Options())
    for line in help.splitlines():
        text = line.strip()
        if text.startswith("--"):
            # The option's name is padded to the column of its help.
            text = text.split(None, 1)[-1]
        assert "  " not in text, line

"""
chat-client's command line: defaults, conflicts and endpoints.
"""

import pytest
from twisted.internet import endpoints
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from chatd.client import tap


def _parse(*args):
    config = tap.Options()
    config.parseOptions(list(args))
    return config


def test_defaults():
    """
    Without arguments: localhost 55555, the login name as nickname, a log
    under the XDG state folder.
    """
    config = _parse()
    assert (config["host"], config["port"]) == ("localhost", 55555)
    assert config["nick"] == tap.defaultNick()
    assert config.address() == "localhost:55555"
    assert tap.defaultLogPath({"XDG_STATE_HOME": "/s"}) == "/s/chatd/chat-client.log"


def test_hostPortNick():
    """
    HOST PORT and --nick are taken as given.
    """
    config = _parse("--nick", "bob", "chat.example", "6000")
    assert (config["host"], config["port"], config["nick"]) == ("chat.example", 6000, "bob")
    endpoint = tap.clientEndpoint(config, MemoryReactorClock())
    assert isinstance(endpoint, endpoints.HostnameEndpoint)


@pytest.mark.parametrize("args", [
    ("chat.example", "6000", "--nick", "bob", "--tls"),
    ("chat.example", "--nick=bob", "6000", "--tls"),
    ("--ni", "bob", "chat.example", "--tls", "6000"),
])
def test_optionsAfterHostAndPort(args):
    """
    Options may come after HOST and PORT too (as people type them), with
    their values in either form.
    """
    config = _parse(*args)
    assert (config["host"], config["port"], config["nick"], config["tls"]) == (
        "chat.example", 6000, "bob", True)


def test_argumentsAfterDoubleDash():
    """
    After C{--} nothing is an option: a host that starts with a dash is
    refused as a host, not taken for an option.
    """
    with pytest.raises(usage.UsageError, match="Wrong number of arguments"):
        _parse("--nick", "bob", "--", "--tls", "6000", "extra")


@pytest.mark.parametrize("args, message", [
    (["--connect", "tcp:host=a:port=1", "host"], "either --connect or HOST"),
    (["--connect", "tcp:host=a:port=1", "--tls"], "tls: endpoint description"),
    (["--ca", "x.pem"], "need --tls"),
    (["--tls", "--ca", "x.pem", "--insecure-accept-any-cert"], "not both"),
    (["host", "port"], "PORT must be a number"),
    (["host", "70000"], "PORT must be 1-65535"),
    (["--connect", "nonsense:x"], "--connect nonsense:x"),
    (["--tls", "--ca", "/nonexistent/ca.pem"], "--ca:"),
    # A file where Twisted wants a folder: its error has no words.
    (["--connect", f"tls:127.0.0.1:6697:trustRoots={__file__}"], ": UnlistableError$"),
])
def test_usageErrors(args, message):
    """
    Conflicting or malformed options are usage errors that say what is wrong.
    """
    with pytest.raises(usage.UsageError, match=message):
        _parse(*args)


def test_connectEndpoint():
    """
    --connect takes a Twisted client endpoint description.
    """
    config = _parse("--connect", "unix:path=/tmp/chat.sock")
    assert config.address() == "unix:path=/tmp/chat.sock"
    endpoint = tap.clientEndpoint(config, MemoryReactorClock())
    assert isinstance(endpoint, endpoints.UNIXClientEndpoint)


def test_tlsEndpoints():
    """
    --tls wraps the TCP endpoint in TLS, checking the host name (against
    --ca when given), or checking nothing with --insecure-accept-any-cert.
    """
    for args in (["--tls"], ["--tls", "--insecure-accept-any-cert"]):
        endpoint = tap.clientEndpoint(_parse(*args, "chat.example"), MemoryReactorClock())
        assert type(endpoint).__name__ == "_WrapperEndpoint"


def test_version(capsys):
    """
    --version names chat-client and chatd's version, not Twisted's.
    """
    from chatd import __version__

    with pytest.raises(SystemExit) as e:
        _parse("--version")
    assert e.value.code == 0
    assert capsys.readouterr().out == f"chat-client (chatd) {__version__}\n"


def test_usageErrorFirst(capsys):
    """
    A usage error is said first, then the usage line, which names the
    command, and where the options are listed: not the whole help, under
    which the error scrolled out of sight.
    """
    from chatd.client.script import main
    with pytest.raises(SystemExit) as exited:
        main(["--bogus"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["chat-client: option --bogus not recognized",
                   "Usage: chat-client [options] [HOST [PORT]]",
                   "chat-client --help lists the options"]


@pytest.mark.parametrize("line, problem", [
    ("short\n", "not a password (at least 8 characters, no spaces)"),
    ("pass word x\n", "not a password (at least 8 characters, no spaces)"),
    ("\n", "not a password (at least 8 characters, no spaces)"),
    (None, "No such file or directory"),
])
def test_passwordFileThatHoldsNoPassword(tmp_path, line, problem):
    """
    A password file whose first line cannot be a password is refused at
    once: sent at the password prompt, the server would take it for
    another nickname, a public one (and a missing file says so in words).
    """
    path = tmp_path / "pw"
    if line is not None:
        path.write_text(line)
    with pytest.raises(usage.UsageError) as e:
        _parse("--nick", "boss", "--password-file", str(path))
    assert str(e.value) == f"--password-file {path}: {problem}"


def test_passwordFromTheEnvironmentChecked(monkeypatch):
    """
    So is a password in CHATD_PASSWORD; one that can be is taken.
    """
    monkeypatch.setenv("CHATD_PASSWORD", "short")
    with pytest.raises(usage.UsageError, match="^CHATD_PASSWORD: not a password"):
        _parse("--nick", "boss")
    monkeypatch.setenv("CHATD_PASSWORD", "long-enough")
    assert _parse("--nick", "boss")["password"] == "long-enough"

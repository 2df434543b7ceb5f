"""
chat-client --tls against a daemon listening with TLS (an ssl: endpoint and
a self-signed certificate).
"""

import pytest

from clientsupport import runClient, selfSignedCertificate, startDaemon


@pytest.fixture
def tlsDaemon(tmp_path):
    cert, key = selfSignedCertificate(tmp_path)
    d = startDaemon(tmp_path, listen="ssl:{port}:interface=127.0.0.1:"
                                f"privateKey={key}:certKey={cert}")
    d.cert = cert
    yield d
    d.stop()


def _run(tmp_path, daemon, host, *options, stdin="hello\n"):
    done = runClient(tmp_path, daemon.port, "sec", stdin, "--tls", *options, host=host)
    return done.returncode, done.stdout.decode().splitlines(), done.stderr.decode()


def test_trustedWithCa(tmp_path, tlsDaemon):
    """
    --ca with the server's own certificate: the client logs in, its line is
    confirmed and it exits with status 0.
    """
    code, out, err = _run(tmp_path, tlsDaemon, "localhost", "--ca", tlsDaemon.cert)
    assert code == 0, err
    assert out[2:] == ["=== you are now sec", "=== joined #lobby",
                       "=== #lobby members (1): sec", "=== bye"]


def test_insecureAcceptsAnything(tmp_path, tlsDaemon):
    """
    --insecure-accept-any-cert takes the self-signed certificate unchecked.
    """
    code, out, err = _run(tmp_path, tlsDaemon, "127.0.0.1", "--insecure-accept-any-cert")
    assert code == 0, err
    assert out[-1] == "=== bye"


UNTRUSTED = ("chat-client: the server's certificate is not trusted: no certificate "
             "authority this client trusts signed it (certificate verify failed); connect "
             "with --tls HOST PORT --ca FILE to trust the server's certificate or the CA "
             "that signed it\n")


@pytest.mark.parametrize("stdin", ["hello\n", None], ids=["lines", "devnull"])
def test_untrustedRefused(tmp_path, tlsDaemon, stdin):
    """
    Without --ca the self-signed certificate is refused: nothing is sent,
    and a script is told in one clear line (not OpenSSL's list of tuples)
    and exits with status 1 rather than retrying.
    """
    code, out, err = _run(tmp_path, tlsDaemon, "localhost", stdin=stdin)
    assert code == 1
    assert out == []
    assert err == UNTRUSTED


def test_certificateForAnotherName(tmp_path, tlsDaemon):
    """
    A certificate trusted with --ca but issued for another name than the
    one connected to is refused too, saying so.
    """
    code, out, err = _run(tmp_path, tlsDaemon, "127.0.0.1", "--ca", tlsDaemon.cert)
    assert code == 1
    assert out == []
    assert err == ("chat-client: the server's certificate is not trusted: it was issued "
                   "for another name than 127.0.0.1; connect by the name it was issued for\n")



def test_tlsToAPlainPortSaysWhat(tmp_path):
    """
    --tls to a plain port says what is wrong and what to do, not OpenSSL's
    list of tuples ("wrong version number").
    """
    plain = startDaemon(tmp_path)
    try:
        done = runClient(tmp_path, plain.port, "sec", "hello\n", "--tls",
                         "--insecure-accept-any-cert")
    finally:
        plain.stop()
    assert done.returncode == 1
    assert done.stderr.decode() == (f"chat-client: cannot reach 127.0.0.1:{plain.port}: the "
                                    "server does not speak TLS on that port (leave out --tls)\n")

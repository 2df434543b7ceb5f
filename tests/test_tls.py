"""
TLS listeners: a real handshake over loopback with a certificate made for the
test, beside a plain TCP listener on the same daemon, and clear start failures
for keys that cannot be used.
"""

import ssl
import subprocess

import pytest

from chatd import tap
from support import Daemon, LineClient, makeCertificate, settle, twistdPath


@pytest.fixture
def certificate(tmp_path):
    return makeCertificate(tmp_path)


def clientContext(certPath):
    """
    A client context that trusts exactly the test's certificate and checks
    the server's name, as a careful client would.
    """
    context = ssl.create_default_context(cafile=certPath)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def test_tlsAndPlainListenersSideBySide(tmp_path, certificate):
    """
    A daemon with a plain and an ssl: listener serves both at once: a client
    that completes a verified TLS handshake and a plain TCP client chat with
    each other in the lobby, each seeing exactly the other's lines.
    """
    key, cert = certificate
    daemon = Daemon("--db", "none", "--listen",
                    f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                    cwd=tmp_path, listeners=2).start()
    try:
        plainPort, tlsPort = daemon.ports
        secure = LineClient(tlsPort, tls=clientContext(cert))
        assert secure.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert secure.sock.getpeercert()["subject"] == ((("commonName", "127.0.0.1"),),)
        secure.login("sec_ann")
        plain = LineClient(plainPort)
        plain.login("plain_bo")
        settle(secure, plain)
        secure.send("over TLS")
        plain.send("in the clear")
        assert settle(secure, plain) == [["#lobby <plain_bo> in the clear"],
                                         ["#lobby <sec_ann> over TLS"]]
        secure.close()
        plain.close()
    finally:
        daemon.stop()


def test_plainClientOnTlsListenerGetsNoChat(tmp_path, certificate):
    """
    A client that does not speak TLS to the ssl: listener is not greeted in
    clear text: it reads nothing but the end of the connection.
    """
    key, cert = certificate
    daemon = Daemon("--db", "none", cwd=tmp_path,
                    listen=f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}").start()
    try:
        client = LineClient(daemon.port)
        client.send("nobody")
        with pytest.raises((EOFError, ConnectionResetError)):
            client.readLine()
        client.close()
    finally:
        daemon.stop()


def test_missingKeyStopsTheStart(tmp_path):
    """
    An ssl: listener whose key file does not exist is refused when the
    options are read, in one line naming the file and the reason (not buried
    under the usage text).
    """
    config = tap.Options()
    missing = tmp_path / "nope.key"
    with pytest.raises(tap.StartFailure) as e:
        config.parseOptions(["--listen", f"ssl:6697:privateKey={missing}"])
    assert str(e.value) == (f"chatd: --listen ssl:6697:privateKey={missing}: "
                            f"cannot read {missing}: No such file or directory")


def test_garbageKeyStopsTheStart(tmp_path, certificate):
    """
    A key file that is not a usable PEM key is refused with a message saying
    so, not a traceback.
    """
    key, cert = certificate
    bad = tmp_path / "bad.key"
    bad.write_text("this is not a key\n")
    config = tap.Options()
    with pytest.raises(tap.StartFailure) as e:
        config.parseOptions(["--listen", f"ssl:6697:privateKey={bad}:certKey={cert}"])
    assert str(e.value).startswith(
        f"chatd: --listen ssl:6697:privateKey={bad}:certKey={cert}: a certificate "
        "or private key named there is not a PEM file this server can use (OpenSSL: ")
    # OpenSSL's reasons, not its tuples.
    assert "[(" not in str(e.value)


def test_missingKeyFailsTheStart(tmp_path):
    """
    twistd refuses to start with a missing key: it exits non-zero and its
    output names the missing file; no traceback.
    """
    missing = tmp_path / "gone.key"
    done = subprocess.run(
        [twistdPath(), "-n", "--pidfile=", "chat", "--db", "none", "--listen",
         f"ssl:0:interface=127.0.0.1:privateKey={missing}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"cannot read {missing}: No such file or directory" in output
    assert "Traceback" not in output and "Usage:" not in output

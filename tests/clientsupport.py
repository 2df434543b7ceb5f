"""
Helpers for the client's end-to-end tests: a real chatd daemon in a
subprocess (L{support.Daemon}), and chat-client processes whose output is
read line by line with timeouts (a broken client fails the test rather than
hanging it).
"""

import os
import queue
import subprocess
import sys
import threading

from support import Daemon

BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
CHAT_CLIENT = os.path.join(BIN, "chat-client")
TIMEOUT = 15


def _pump(stream, lines):
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    lines.put(None)


class LineReader:
    """
    The lines a subprocess writes to one stream, read on a thread.
    """

    def __init__(self, stream):
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=_pump, args=(stream, self.lines), daemon=True).start()

    def readUntil(self, predicate, timeout=TIMEOUT):
        """
        Lines up to and including the first one satisfying C{predicate}.
        """
        got = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"timed out; read {got!r}")
            if line is None:
                raise AssertionError(f"stream closed; read {got!r}")
            got.append(line)
            self.seen.append(line)
            if predicate(line):
                return got

    def rest(self, timeout=TIMEOUT):
        """
        Every line until the stream closes.
        """
        got = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                return got
            got.append(line)
            self.seen.append(line)


def startDaemon(folder, port=0, listen="tcp:{port}:interface=127.0.0.1", options=()):
    """
    chatd under twistd in C{folder}, listening on 127.0.0.1 (on C{port}, or
    any free one), with C{options} for C{twistd chat}.
    """
    return Daemon(*options, cwd=folder, listen=listen.format(port=port)).start()


class ClientProcess:
    """
    chat-client in pipe mode, its stdin a pipe that stays open until
    L{close}.
    """

    def __init__(self, folder, port, nick, *extra):
        self.log = os.path.join(folder, f"client-{nick}.log")
        self.process = subprocess.Popen(
            [CHAT_CLIENT, "--nick", nick, "--log", self.log, *extra, "127.0.0.1", str(port)],
            cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.out = LineReader(self.process.stdout)
        self.err = LineReader(self.process.stderr)

    def send(self, line):
        self.process.stdin.write(line.encode("utf-8") + b"\n")
        self.process.stdin.flush()

    def close(self):
        """
        End its input; return its exit status.
        """
        self.process.stdin.close()
        return self.process.wait(TIMEOUT)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)


def runClient(folder, port, nick, stdin, *extra, command=(CHAT_CLIENT,), host="127.0.0.1",
              timeout=TIMEOUT):
    """
    Run chat-client to the end with C{stdin} (text, or L{None} for
    /dev/null); return the completed process.
    """
    log = os.path.join(folder, f"client-{nick}.log")
    streams = (dict(input=stdin.encode("utf-8")) if stdin is not None
               else dict(stdin=subprocess.DEVNULL))
    return subprocess.run(
        [*command, "--nick", nick, "--log", log, *extra, host, str(port)],
        cwd=folder, capture_output=True, timeout=timeout, **streams)


def selfSignedCertificate(folder):
    """
    Write a self-signed certificate for localhost and its key; return their
    paths.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    certPath = os.path.join(folder, "cert.pem")
    keyPath = os.path.join(folder, "key.pem")
    with open(certPath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return certPath, keyPath

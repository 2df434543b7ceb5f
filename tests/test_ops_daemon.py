"""
Metrics, health and reload on a real daemon: scrapes over HTTP while users
chat, and SIGHUP with renewed and broken certificates while TLS clients stay
connected.
"""

import shutil
import signal
import ssl
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from support import Daemon, LineClient, makeCertificate, settle

DEADLINE = 20


def waitForLog(daemon, text, after=0, timeout=DEADLINE):
    """
    Wait until the daemon's log holds C{text} in a line logged after the
    first C{after} lines; return that line.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in daemon.log[after:]:
            if text in line:
                return line
        if daemon.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the log:\n" + daemon.logText()[-3000:])


def metricsPort(daemon):
    line = waitForLog(daemon, "chatd metrics on ")
    return int(line.rsplit(":", 1)[1])


def get(port, path):
    """
    The status and body of GET C{path}.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port):
    """
    Every sample of /metrics, by name and labels.
    """
    status, text = get(port, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def eventually(port, name):
    """
    Scrape until the sample C{name} is at least 1.
    """
    deadline = time.monotonic() + DEADLINE
    while value(scrape(port), name) < 1:
        assert time.monotonic() < deadline, f"{name} stayed 0"
        time.sleep(0.05)


def test_scrapeWhileUsersChat(tmp_path):
    """
    Scraped over HTTP while four users chat, the counters move by exactly
    what happened: three lines to a room of four are nine deliveries and
    three lines received; the connections are counted as chatting; the
    health check answers 200.
    """
    daemon = Daemon("--db", f"sqlite:{tmp_path}/chat.sqlite3",
                    "--metrics", "tcp:0:interface=127.0.0.1", cwd=tmp_path).start()
    try:
        port = metricsPort(daemon)
        clients = [daemon.client() for _ in range(4)]
        for client, nick in zip(clients, ("ann", "bob", "cyd", "dee")):
            client.login(nick)
        settle(*clients)
        before = scrape(port)
        for text in ("one", "two", "three"):
            clients[0].send(text)
        got = settle(*clients)
        assert [len([l for l in lines if "<ann>" in l]) for lines in got] == [0, 3, 3, 3]
        after = scrape(port)
        moved = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)
        assert moved("chatd_deliveries_total") == 9
        # The three lines, and settle's two /ping lines per client.
        assert moved("chatd_lines_received_total") == 3 + 4 * 2
        assert moved("chatd_sent_bytes_total") > 9 * len("#lobby <ann> one\r\n")
        assert value(after, "chatd_connections", frontend="line", state="chatting") == 4
        assert value(after, "chatd_logins_total") == 4
        assert value(after, "chatd_room_members") == 4
        assert value(after, "chatd_delivery_latency_seconds_count") > value(
            before, "chatd_delivery_latency_seconds_count")
        # Stored: three lines, in at least one commit; the reactor's lag is
        # measured twice a second.
        eventually(port, "chatd_history_store_latency_seconds_count")
        eventually(port, "chatd_reactor_lag_seconds_count")
        assert get(port, "/healthz") == (200, "ok\n")
        for client in clients:
            client.close()
    finally:
        daemon.stop()


def tlsClient(port, cert):
    context = ssl.create_default_context(cafile=cert)
    return LineClient(port, tls=context)


def test_sighupRenewsTheCertificate(tmp_path):
    """
    After the certificate and key files are replaced and SIGHUP is sent, a
    new TLS connection is served the new certificate, while a connection
    opened before keeps talking; a reload with a broken key is refused,
    logged with its reason, and the daemon keeps serving the certificate it
    had.
    """
    live, old, new = tmp_path / "live", tmp_path / "old", tmp_path / "new"
    for folder in (live, old, new):
        folder.mkdir()
    oldKey, oldCert = makeCertificate(old)
    newKey, newCert = makeCertificate(new)
    key, cert = live / "server.key", live / "server.crt"
    shutil.copy(oldKey, key)
    shutil.copy(oldCert, cert)
    daemon = Daemon("--db", "none", "--metrics", "tcp:0:interface=127.0.0.1", cwd=tmp_path,
                    listen=f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}").start()
    try:
        port = metricsPort(daemon)
        early = tlsClient(daemon.port, oldCert)
        early.login("early")
        first = early.sock.getpeercert(binary_form=True)

        shutil.copy(newKey, key)
        shutil.copy(newCert, cert)
        mark = len(daemon.log)
        daemon.process.send_signal(signal.SIGHUP)
        changed = waitForLog(daemon, "reload: new certificate for ssl:0", after=mark)
        assert "sha256" in changed
        late = tlsClient(daemon.port, newCert)
        late.login("late")
        assert late.sock.getpeercert(binary_form=True) != first
        # The old certificate is no longer served.
        try:
            tlsClient(daemon.port, oldCert)
        except ssl.SSLCertVerificationError:
            pass
        else:
            raise AssertionError("a new connection was served the old certificate")
        settle(early, late)
        early.send("still here")
        late.send("me too")
        assert settle(early, late) == [["#lobby <late> me too"], ["#lobby <early> still here"]]

        key.write_text("this is not a key\n")
        mark = len(daemon.log)
        daemon.process.send_signal(signal.SIGHUP)
        refused = waitForLog(daemon, "reload failed, the old settings stay", after=mark)
        # One line saying which listener and why, in words.
        assert "reload failed, the old settings stay: --listen ssl:" in refused
        assert str(key) in refused and "is not a PEM file this server can use (OpenSSL: " in refused
        third = tlsClient(daemon.port, newCert)
        third.login("third")
        assert third.sock.getpeercert(binary_form=True) == late.sock.getpeercert(
            binary_form=True)
        early.send("and still")
        assert settle(late, third)[0][-1] == "#lobby <early> and still"
        samples = scrape(port)
        assert value(samples, "chatd_reloads_total", result="ok") == 1
        assert value(samples, "chatd_reloads_total", result="failed") == 1
        for client in (early, late, third):
            client.close()
    finally:
        daemon.stop()


def test_sighupRereadsTheConfigFile(tmp_path):
    """
    SIGHUP reads the --config file again: a new --max-per-address applies
    to the next connection, and the log names the change.
    """
    config = tmp_path / "chatd.toml"
    config.write_text('db = "none"\nmax-per-address = 5\n')
    daemon = Daemon("--config", str(config), cwd=tmp_path).start()
    try:
        clients = [daemon.client() for _ in range(2)]
        for client, nick in zip(clients, ("ann", "bob")):
            client.login(nick)
        config.write_text('db = "none"\nmax-per-address = 2\n')
        mark = len(daemon.log)
        daemon.process.send_signal(signal.SIGHUP)
        waitForLog(daemon, "reload: --max-per-address 5 -> 2", after=mark)
        refused = daemon.client()
        assert refused.readLine().endswith(
            "too many connections from 127.0.0.1 (counted with all of loopback)")
        refused.close()
        for client in clients:
            client.close()
    finally:
        daemon.stop()

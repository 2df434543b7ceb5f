"""
Metrics, health, --config and reload, in memory: the real factory, gate and
core on StringTransports, time on a Clock, no daemon.
"""

import pytest
from prometheus_client import CollectorRegistry
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python import usage

from chatd import tap
from chatd.edge.gate import frontendOf
from chatd.edge.limits import Limits
from chatd.line.wire import LineWire
from chatd.ops import metrics, reload
from chatd.ops.config import withConfigFile
from support import MemoryServer, makeCertificate


def sample(registry, name, **labels):
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name} {labels}"
    return value


def collecting(server, history=None):
    registry = CollectorRegistry()
    registry.register(metrics.ChatCollector(server.gate, server.core, history))
    return registry


def test_threeLinesToARoomOfFourAreNineDeliveries():
    """
    Three lines said to a room of four are delivered nine times: the
    counter moves by exactly that, and the lines received by three.
    """
    server = MemoryServer()
    registry = collecting(server)
    clients = [server.connect(nick) for nick in ("ann", "bob", "cyd", "dee")]
    for client in clients:
        client.lines()
    before = sample(registry, "chatd_deliveries_total")
    lines = sample(registry, "chatd_lines_received_total")
    for text in ("one", "two", "three"):
        clients[0].send(text)
    assert sample(registry, "chatd_deliveries_total") - before == 9
    assert sample(registry, "chatd_lines_received_total") - lines == 3
    assert [len(c.lines()) for c in clients] == [0, 3, 3, 3]


def test_connectionsByStateLoginsAndRefusals():
    """
    Connections are counted as logging in until they have a nickname, then
    as chatting; logins and refused nicknames are counted by reason; the
    rooms' gauges follow joins.
    """
    server = MemoryServer()
    registry = collecting(server)
    ann = server.connect("ann")
    waiting = server.connect()
    waiting.send("ann")          # taken
    waiting.send("9lives")       # invalid
    assert sample(registry, "chatd_connections", frontend="line", state="chatting") == 1
    assert sample(registry, "chatd_connections", frontend="line", state="logging_in") == 1
    assert sample(registry, "chatd_logins_total") == 1
    assert sample(registry, "chatd_login_refusals_total", reason="nickname_taken") == 1
    assert sample(registry, "chatd_login_refusals_total", reason="invalid_nickname") == 1
    ann.send("/join #den")
    assert sample(registry, "chatd_rooms") == 2
    assert sample(registry, "chatd_room_members") == 2
    assert sample(registry, "chatd_users") == 1
    assert sample(registry, "chatd_connections_accepted_total", frontend="line") == 2
    # The lobby, kept while empty for its topic, is no room kept for an owner.
    ann.send("/part #lobby")
    assert sample(registry, "chatd_rooms") == 1
    assert sample(registry, "chatd_rooms_kept") == 0


def test_refusedConnectionsByReason():
    """
    Connections over --max-per-address and over --max-connections are
    counted apart.
    """
    server = MemoryServer(limits=Limits(maxConnections=3, maxPerAddress=2))
    registry = collecting(server)
    for host in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"):
        server.connect(host=host)
    assert sample(registry, "chatd_connections_refused_total", reason="address_full") == 1
    assert sample(registry, "chatd_connections_refused_total", reason="server_full") == 1


def test_floodDelaysAndBytesOut():
    """
    A paste past the flood burst is counted as held back; the bytes written
    to transports are counted, including those of connections since closed.
    """
    server = MemoryServer(limits=Limits(floodBurst=3, floodRate=1.0))
    registry = collecting(server)
    ann, bob = server.connect("ann"), server.connect("bob")
    ann.transport.clear()
    before = sample(registry, "chatd_sent_bytes_total")
    ann.sendBytes(b"a\nb\nc\nd\n")
    assert sample(registry, "chatd_flood_delays_total") == 1
    assert sample(registry, "chatd_flood_delay_seconds_total") > 0
    written = len(bob.transport.value()) + len(ann.transport.value())
    assert written > 0
    assert sample(registry, "chatd_sent_bytes_total") - before == written
    bob.send("/quit")
    server.clock.advance(10)
    written = len(bob.transport.value()) + len(ann.transport.value())
    assert bob.proto.conn not in server.gate.connections
    assert sample(registry, "chatd_sent_bytes_total") - before == written


def test_frontendNames():
    """
    A front end is named by its wire format's package, or its own name.
    """
    from chatd.web.wire import WebWire
    assert frontendOf(LineWire) == "line"
    assert frontendOf(WebWire) == "web"
    from chatd.irc.wire import IrcWire
    assert frontendOf(IrcWire("irc.example")) == "irc"

    class Named:
        frontend = "web"

    assert frontendOf(Named()) == "web"


def test_deliveryLatencyIsTimedPerTurn():
    """
    The coalescer times, once per flush, from the start of the first read
    whose output it writes; a read that writes nothing is not timed.
    """
    server = MemoryServer(coalesceTurns=True)
    ann, bob = server.connect("ann"), server.connect("bob")
    server.clock.advance(0)
    seen = []
    ticks = iter([0.5, 1.0, 1.25])
    server.gate.coalescer.timer = lambda: next(ticks)
    server.gate.coalescer.observe = seen.append
    ann.send("   ")              # an empty line writes nothing: not timed
    server.clock.advance(0)
    assert seen == []
    ann.send("hello")
    assert seen == []            # the writes wait for the end of the turn
    server.clock.advance(0)
    assert seen == [0.25]
    assert bob.lines()[-1] == "#lobby <ann> hello"


def test_lagMeter():
    """
    The lag meter observes how late each half-second tick fires.
    """
    clock = Clock()
    seen = []
    meter = metrics.LagMeter(clock, seen.append)
    meter.start()
    clock.advance(0.5)
    clock.advance(0.7)
    assert seen == [0.0, pytest.approx(0.2)]
    meter.stop()
    clock.advance(5)
    assert len(seen) == 2


class SlowStore:
    def __init__(self):
        self.asked = []

    def flush(self):
        self.asked.append(Deferred())
        return self.asked[-1]


def checked(health):
    out = []
    health.check().addCallback(out.append)
    return out


def test_healthAnswersOnlyWhileTheDatabaseDoes():
    """
    Healthy while listening with a database that answers; a database that
    does not answer within the timeout, a listener that is not listening,
    or a shutdown are problems.
    """
    server = MemoryServer()
    store = SlowStore()
    down = []
    health = metrics.Health(server.clock, server.gate, lambda: down, store)
    answer = checked(health)
    store.asked[-1].callback(None)
    assert answer == [[]]
    answer = checked(health)
    server.clock.advance(metrics.Health.TIMEOUT)
    assert answer == [["the database did not answer within 3 s"]]
    store.asked[-1].callback(None)   # too late: answered once only
    assert len(answer) == 1
    down.append("tcp:55555")
    server.gate.stopping = True
    answer = checked(metrics.Health(server.clock, server.gate, lambda: down))
    assert answer == [["shutting down", "not listening on tcp:55555"]]


def test_configFileUnderTheCommandLine(tmp_path):
    """
    A --config file gives options by their long names, lists for the
    repeatable ones; the command line wins over it, a list included.
    """
    path = tmp_path / "chatd.toml"
    path.write_text('flood-rate = 9\nmax-rooms = 4\noperator = ["boss", "root"]\n'
                    'listen = ["tcp:0:interface=127.0.0.1"]\nhistory-days = 3\n'
                    'db = "none"\n')
    config = tap.Options()
    config.parseOptions(["--config", str(path), "--max-rooms", "7", "--operator=admin"])
    assert config["flood-rate"] == 9.0
    assert config["max-rooms"] == 7
    assert config["operators"] == ["admin"]
    assert config["listen"] == ["tcp:0:interface=127.0.0.1"]
    assert config["history-days"] == 3
    assert config["history"] is None


@pytest.mark.parametrize("text, problem", [
    ("flood-rat = 3\n", "'flood-rat' is not an option of chatd"),
    ("max-rooms = [1, 2]\n", "max-rooms takes one value, not a list"),
    ("max-rooms = 2.5\n", "--max-rooms: '2.5' is not a whole number written in digits"),
    ("= nonsense\n", "not valid TOML"),
    ("flood-rate = 5\nflood-rate = 6\n", "not valid TOML: Cannot overwrite a value"),
])
def test_badConfigFiles(tmp_path, text, problem):
    """
    A config file with an unknown option, a list for a single value, a value
    of the wrong kind or broken TOML is a usage error naming the problem.
    """
    path = tmp_path / "chatd.toml"
    path.write_text(text)
    with pytest.raises(usage.UsageError) as e:
        tap.Options().parseOptions(["--config", str(path)])
    assert problem in str(e.value)


def test_missingConfigFile(tmp_path):
    with pytest.raises(usage.UsageError, match="cannot read it: No such file"):
        withConfigFile(["--config", str(tmp_path / "nope.toml")], tap.Options())


def test_swappableTlsBehindTwistedsEndpoint(tmp_path):
    """
    Twisted's ssl: endpoint still keeps its TLS options where chatd wraps
    them, and a swap changes what new connections are given.
    """
    key, cert = makeCertificate(tmp_path)
    endpoint = endpoints.serverFromString(None, f"ssl:0:privateKey={key}:certKey={cert}")
    tls = reload.swappable(endpoint)
    assert endpoint._sslContextFactory is tls
    first = tls.getContext()
    other = tmp_path / "other"
    other.mkdir()
    key2, cert2 = makeCertificate(other)
    fresh = reload.freshTLS(f"ssl:0:privateKey={key2}:certKey={cert2}")
    tls.swap(fresh)
    assert tls.getContext() is not first
    assert reload.fingerprint(fresh) != reload.fingerprint(endpoints.serverFromString(
        None, f"ssl:0:privateKey={key}:certKey={cert}")._sslContextFactory)
    assert reload.swappable(endpoints.serverFromString(None, "tcp:0")) is None


def reloader(server, path, argv=()):
    config = tap.Options()
    config.parseOptions(["--config", str(path), "--db", "none", *argv])
    return reload.Reloader(config, server.clock, server.gate, server.core)


def test_reloadAppliesLimitsAndOperators(tmp_path):
    """
    A reload applies the new limits to the gate, to connections already
    open and to the core, and the new operators; the command line still
    wins over the file.
    """
    path = tmp_path / "chatd.toml"
    path.write_text('send-queue = 100000\nflood-rate = 2\noperator = ["boss"]\n')
    server = MemoryServer()
    ann = server.connect("ann")
    reloading = reloader(server, path, ["--max-rooms", "3"])
    path.write_text('send-queue = 200000\nflood-rate = 4\nmax-rooms = 9\n'
                    'operator = ["root"]\nmax-connections = 5\n')
    assert reloading.reload()
    assert server.gate.limits.sendQueueBytes == 200000
    assert server.gate.limits.floodRate == 4
    assert server.gate.limits.maxRooms == 3 == server.core.maxRooms
    assert ann.proto.conn.outbox.limit == 200000
    assert ann.proto.conn._flood._rate == 4
    assert server.core.moderation.operators == {"root"}
    assert reloading.reloads == {"ok": 1, "failed": 0}
    for n in range(5):
        server.connect(host=f"10.0.0.{n}")
    assert "the server is full" in server.connect(host="10.9.9.9").lines()[-1]


def test_failedReloadKeepsEverything(tmp_path):
    """
    A reload whose options are wrong changes nothing and is counted as
    failed.
    """
    path = tmp_path / "chatd.toml"
    path.write_text("flood-rate = 2\n")
    server = MemoryServer()
    reloading = reloader(server, path)
    before = server.gate.limits
    path.write_text("flood-rate = 2\nmax-rooms = -1\n")
    assert not reloading.reload()
    assert server.gate.limits is before
    assert reloading.reloads == {"ok": 0, "failed": 1}


def test_reloadWithABrokenKeyKeepsTheOldCertificate(tmp_path):
    """
    A key that cannot be read any more fails the reload: the listener keeps
    serving the certificate it had.
    """
    key, cert = makeCertificate(tmp_path)
    description = f"ssl:0:privateKey={key}:certKey={cert}"
    server = MemoryServer()
    config = tap.Options()
    config.parseOptions(["--db", "none", "--listen", description])
    tls = reload.swappable(endpoints.serverFromString(None, description))
    reloading = reload.Reloader(config, server.clock, server.gate, server.core,
                                tls={description: tls})
    kept = tls.options
    with open(key, "w") as f:
        f.write("not a key\n")
    assert not reloading.reload()
    assert tls.options is kept


def test_contribConfigParses(tmp_path):
    """
    The example configuration in contrib/ is one chatd takes.
    """
    from pathlib import Path
    example = Path(__file__).resolve().parent.parent / "contrib" / "chatd.toml"
    config = tap.Options()
    config.parseOptions(["--config", str(example)])
    assert config["metrics"] == "tcp:9100:interface=127.0.0.1"
    assert config["history-days"] == 90
    assert config["db"] == "sqlite:/var/lib/chatd/chatd.sqlite3"


def test_contribUnit():
    """
    The systemd unit runs twistd in the foreground as an unprivileged user,
    sandboxed, with its database in its state directory, and reloads with
    SIGHUP.
    """
    from pathlib import Path
    unit = (Path(__file__).resolve().parent.parent / "contrib" / "chatd.service").read_text()
    for line in ("User=chatd", "ProtectSystem=strict", "PrivateTmp=yes", "StateDirectory=chatd",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert f"\n{line}\n" in unit, line
    # Every option from the file: one on the command line would win over it
    # (a trial: the unit's --db hid the file's PostgreSQL database).
    [start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert start.endswith("twistd -n --pidfile= chat --config /etc/chatd/chatd.toml")


def test_fanoutCountsPerEventAcrossWireFormats():
    """
    The fan-out counts deliveries and their bytes once per event, exactly,
    when the recipients speak different wire formats; the actor's own
    confirmation counts as bytes, not as a delivery.
    """
    from chatd.core.fanout import Fanout
    from fanoutfakes import Member, Wire

    short, long = Wire(b"a "), Wire(b"longer ", own=b"ok\r\n")
    members = [Member(short), Member(long), Member(short), Member(long)]
    fanout = Fanout()
    fanout.toUsers(members, b"x", actor=members[1])
    assert fanout.deliveries == 3
    sent = sum(len(d) for m in members for d in m.outbox.got)
    assert fanout.sentBytes == sent == 5 + 4 + 5 + 10


def test_brokeredDeliveriesAreCountedOnTheDaemonThatDelivers():
    """
    With several daemons sharing rooms, each daemon counts the deliveries it
    makes to its own users: three lines from A to a room of two users on A
    and two on B are 3 deliveries on A and 6 on B.
    """
    from brokersupport import Cluster

    cluster = Cluster("A", "B")
    a, b = cluster.nodes

    def login(node, nick):
        client = node.connect()
        client.send(nick)
        cluster.settle()
        return client

    clients = [login(a, "alice"), login(a, "carol"), login(b, "bob"), login(b, "dave")]
    cluster.settle()
    before = (a.fanout.deliveries, b.fanout.deliveries)
    for text in ("one", "two", "three"):
        clients[0].send(text)
    cluster.settle()
    assert (a.fanout.deliveries - before[0], b.fanout.deliveries - before[1]) == (3, 6)
    assert [len([l for l in c.lines() if "<alice>" in l]) for c in clients] == [0, 3, 3, 3]

"""
twistd wiring: the C{chat} command's options and the service they build.

This is the only module that knows about endpoints, files and defaults; the
twistd plugin and C{chatd.tac} both call L{makeService}.
"""

import os
import re
import resource
import sys

import twisted
from twisted.application import service, strports
from twisted.internet import endpoints, task
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from chatd import __version__
from chatd.core.chat import ChatCore
from chatd.core.fanout import Fanout
from chatd.core.names import nickProblem, normalRoomName, roomProblem
from chatd.edge.gate import Gate
from chatd.edge.leantcp import useLeanServer
from chatd.edge.limits import Limits
from chatd.irc.protocol import IrcFactory
from chatd.irc.wire import IrcWire
from chatd.line.protocol import ChatFactory
from chatd.ops import reload
from chatd.ops.config import withConfigFile
from chatd.ops.collector import CollectorService
from chatd.ops.logtext import LeanLogService
from chatd.storage import HistoryError
from chatd.storage.accounts import SQLiteAccounts
from chatd.storage.sqlite import SQLiteHistory
from chatd.web.protocol import WebFactory
from chatd.web.resource import OriginCheck, WebSite, normalOrigin

DEFAULT_LISTEN = "tcp:55555:interface=127.0.0.1"
LISTEN_BACKLOG = 4096
"""Connections the kernel may hold for chatd before it accepts them, for
listeners that do not say; Linux caps it at net.core.somaxconn.  Twisted's
own default, 50, is too few for every client reconnecting at once after a
restart: the rest wait seconds for the kernel's retries.  (Measured with
10,000 clients connecting at once: all in within 4 s with 4096; 5,520 in a
minute with 511; 1,573 with 50.)"""
DB_HELP_DEFAULT = "sqlite:$XDG_DATA_HOME/chatd/chatd.sqlite3"


def _strict(kind):
    """
    A coercer for a numeric option that takes ASCII digits only (and, for
    a float, one decimal point): int() and float() would also take "²",
    "٣", "1_000" or " 5 ".
    """
    pattern = re.compile(r"-?[0-9]+\Z" if kind is int else r"-?[0-9]+(\.[0-9]+)?\Z")

    what = "a whole number" if kind is int else "a number"

    def coerce(text):
        if not pattern.match(str(text)):
            raise ValueError(f"{text!r} is not {what} written in digits 0-9")
        return kind(text)

    coerce.coerceDoc = "A number."
    return coerce


INT, FLOAT = _strict(int), _strict(float)


class _NamedCoercion(usage.CoerceParameter):
    """
    An option's value coerced, refused naming the option (Twisted's own
    says "Parameter type enforcement failed" and names none).
    """

    def dispatch(self, parameterName, value):
        if value is not None:
            try:
                self.coerce(value)
            except ValueError as e:
                raise usage.UsageError(f"--{parameterName}: {e}") from None
        super().dispatch(parameterName, value)


def defaultDatabase():
    """
    Where history is kept unless told otherwise: the user's data folder, as
    the XDG base directory specification has it (~/.local/share by default).
    """
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return "sqlite:" + os.path.join(data, "chatd", "chatd.sqlite3")


def isPostgres(description):
    """
    Whether the C{--db} description names a PostgreSQL database (a libpq
    URI), which several daemons may share.
    """
    return description.startswith(("postgresql://", "postgres://"))


def databasePath(description):
    """
    The SQLite file a C{--db} description names, or L{None} for C{none}.

    @raise usage.UsageError: for a description of no known kind.
    """
    if description == "none":
        return None
    kind, _, path = description.partition(":")
    if kind != "sqlite" or not path:
        raise usage.UsageError(f"--db {description}: expected sqlite:PATH or none")
    return os.path.abspath(os.path.expanduser(path))


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run chatd, a multi-user chat server that people reach with nc, telnet "
        "or chat-client. It listens on " + DEFAULT_LISTEN + " unless told "
        "otherwise with --listen, which takes a Twisted endpoint description "
        "and may be given several times. With --web it also serves the web "
        "client, a page for browsers, on the endpoints given."
    )
    optParameters = [
        ["lobby", None, "#lobby", "The room every user joins on arrival."],
        # The limits (see chatd.edge.limits): every one has a default that suits a
        # small public server.
        ["send-queue", None, Limits.sendQueueBytes,
         "Bytes that may wait for a client that does not read before it is "
         "disconnected.", INT],
        ["send-queue-grace", None, Limits.sendQueueGrace,
         "Seconds a client may stay over --send-queue (a burst it is still "
         "reading) before it is disconnected; more than twice --send-queue "
         "waiting disconnects at once (the most a client that stops reading "
         "may cost; see README.md, \"Clients that do not read\").", FLOAT],
        ["flood-rate", None, Limits.floodRate,
         "Lines per second a connection's lines are handled at, sustained; "
         "faster lines wait their turn (nothing is refused).", FLOAT],
        ["flood-burst", None, Limits.floodBurst,
         "Lines a connection may send at once (a paste) before --flood-rate "
         "applies.", INT],
        ["recv-queue", None, Limits.recvQueueBytes,
         "Bytes of unread input (a flood waiting its turn) a connection may "
         "keep for --recv-queue-time seconds before it is closed.", INT],
        ["recv-queue-time", None, Limits.recvQueueTime,
         "Seconds a connection may keep more than --recv-queue bytes unread.",
         FLOAT],
        ["max-connections", None, Limits.maxConnections,
         "Open connections allowed in all; more are refused.", INT],
        ["max-per-address", None, Limits.maxPerAddress,
         "Open connections allowed from one IP address; more are refused.",
         INT],
        ["max-rooms", None, Limits.maxRooms,
         "Rooms one user may be in at once.", INT],
        ["login-timeout", None, Limits.loginTimeout,
         "Seconds a connection may take to choose a nickname (0: forever).",
         FLOAT],
        ["idle-timeout", None, Limits.idleTimeout,
         "Seconds a user may send nothing before being disconnected "
         "(0: forever).", FLOAT],
        ["close-timeout", None, Limits.closeTimeout,
         "Seconds a closing connection may take to go (a client that does "
         "not read its last lines, a TLS handshake that never completes) "
         "before it is cut off.", FLOAT],
        ["db", None, None,
         "Where room history, accounts and bans are kept: sqlite:PATH (the file "
         "and its folder are created on first start), postgresql://USER@HOST:PORT/NAME "
         "(a PostgreSQL database, which several daemons may share; its tables are "
         "created on first start), or none to keep no history. "
         f"[default: {DB_HELP_DEFAULT}, ~/.local/share when XDG_DATA_HOME is unset]"],
        ["replay", None, ChatFactory.REPLAY,
         "How many of a room's last lines a user sees on joining it (0: none).", INT],
        ["history-days", None, 0,
         "Forget history older than this many days (0: keep it forever).", INT],
        ["irc-name", None, "irc.chatd",
         "The server name IRC clients see (the source of its numerics)."],
        ["irc-network", None, "chatd",
         "The network name IRC clients see (NETWORK in ISUPPORT)."],
        ["broker", None, None,
         "Share rooms with other chatd daemons through this Redis: "
         "redis://HOST:PORT[/DB] (see the README's \"Several daemons\"). "
         "[default: none, one daemon alone]"],
        ["metrics", None, None,
         "Serve Prometheus metrics at /metrics and a health check at /healthz on "
         "this endpoint, e.g. tcp:9100:interface=127.0.0.1 [default: off]"],
        ["config", None, None,
         "Read options from this TOML file, whose keys are the long option names "
         "(flood-rate = 10, listen = [...]); the command line wins. SIGHUP reads "
         "it again."],
    ]
    # Options that may be given several times (in a --config file: a list).
    repeatable = ("listen", "operator", "irc", "web", "web-origin")

    def __init__(self):
        super().__init__()
        for name, handler in self._dispatch.items():
            if isinstance(handler, usage.CoerceParameter):
                self._dispatch[name] = _NamedCoercion(self, handler.coerce)
        self["listen"] = []
        self["irc"] = []
        self["operators"] = []
        self["web"] = []
        self["web-origins"] = []

    def parseOptions(self, options=None):
        if options is None:
            import sys
            options = sys.argv[1:]
        # Kept, so that a reload (SIGHUP) reads the same options again.
        self.argv = list(options)
        super().parseOptions(withConfigFile(self.argv, self))

    def opt_version(self):
        """
        Display the version of chatd (and of Twisted) and exit.
        """
        print(f"chatd {__version__} (Twisted {twisted.__version__})")
        sys.exit(0)

    def opt_operator(self, nick):
        problem = nickProblem(nick)
        if problem:
            raise usage.UsageError(f"--operator {nick}: {problem}")
        self["operators"].append(nick)

    def opt_listen(self, description):
        self["listen"].append(description)

    def opt_irc(self, description):
        self["irc"].append(description)

    def opt_web(self, description):
        self["web"].append(description)

    def opt_web_origin(self, origin):
        if origin != "*" and normalOrigin(origin) is None:
            raise usage.UsageError(f"--web-origin {origin}: expected an origin such as "
                                   "https://chat.example:8443, or *")
        self["web-origins"].append(origin)

    # The help texts of the repeatable options, built so that --help shows
    # no run of spaces (it keeps a docstring's indentation inside lines).
    opt_operator.__doc__ = (
        "A nickname whose owner is an operator, once registered and identified "
        "(repeatable). Accounts are kept in --db, so operators need one.")
    opt_listen.__doc__ = (
        "Listen on this endpoint description (repeatable), e.g. "
        "tcp:55555:interface=127.0.0.1, tcp:6667, or for TLS "
        "ssl:6697:privateKey=KEY.pem:certKey=CERT.pem. "
        "[default: tcp:55555:interface=127.0.0.1]")
    opt_irc.__doc__ = (
        "Listen for IRC clients (irssi, WeeChat, HexChat) on this endpoint "
        "description (repeatable), e.g. tcp:6667:interface=127.0.0.1, or for TLS "
        "ssl:6697:privateKey=KEY.pem:certKey=CERT.pem. [default: none]")
    opt_web.__doc__ = (
        "Serve the web client (the page and its WebSocket) on this endpoint "
        "description (repeatable), e.g. tcp:8080:interface=127.0.0.1, or for HTTPS "
        "ssl:8443:privateKey=KEY.pem:certKey=CERT.pem. [default: off]")
    opt_web_origin.__doc__ = (
        "Also accept the web client's WebSocket from pages of this origin, and "
        "serve browsers that call the server by its name (repeatable), e.g. "
        "https://chat.example; * accepts any. "
        "[default: only the page's own origin, by an IP address or localhost]")

    def postOptions(self):
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        for option, description in ([("listen", d) for d in self["listen"]]
                                    + [("irc", d) for d in self["irc"]]
                                    + [("web", d) for d in self["web"]]):
            try:
                # Parsing needs no reactor; a bad description (or, for TLS, an
                # unreadable key) stops the start with one line saying why,
                # not a traceback, nor the whole usage text burying it.
                endpoints.serverFromString(None, description)
            except Exception as e:
                raise StartFailure(
                    f"chatd: --{option} {description}: {reload.listenProblem(e)}") from None
        if self["metrics"] is not None:
            try:
                endpoints.serverFromString(None, self["metrics"])
            except Exception as e:
                raise usage.UsageError(f"--metrics {self['metrics']}: {reload.listenProblem(e)}")
        if " " in self["irc-name"] or "." not in self["irc-name"]:
            raise usage.UsageError("--irc-name: a server name has a dot and no spaces")
        self["lobby"] = normalRoomName(self["lobby"])
        problem = roomProblem(self["lobby"])
        if problem:
            raise usage.UsageError(f"--lobby: {problem}")
        for name in ("send-queue", "recv-queue"):
            if self[name] < 1024:
                raise usage.UsageError(f"--{name}: at least 1024 bytes")
        if self["db"] is None:
            self["db"] = defaultDatabase()
        self["postgres"] = self["history"] = None
        if isPostgres(self["db"]):
            self["postgres"] = self["db"]
        else:
            try:
                self["history"] = databasePath(self["db"])
            except usage.UsageError:
                raise usage.UsageError(
                    f"--db {self['db']}: expected sqlite:PATH, "
                    "postgresql://USER@HOST:PORT/NAME or none") from None
        if self["replay"] < 0:
            raise usage.UsageError("--replay: 0 or more lines")
        if self["history-days"] < 0:
            raise usage.UsageError("--history-days: 0 or more days")
        for name in ("flood-rate", "flood-burst", "max-connections",
                     "max-per-address", "max-rooms", "close-timeout"):
            if self[name] <= 0:
                raise usage.UsageError(f"--{name}: must be more than 0")
        for name in ("send-queue-grace", "recv-queue-time", "login-timeout",
                     "idle-timeout"):
            if self[name] < 0:
                raise usage.UsageError(f"--{name}: cannot be negative")

        if self["broker"] is not None:
            self["broker"] = _brokerURL(self["broker"])

    def limits(self):
        """
        The L{Limits} these options ask for.
        """
        return Limits(
            sendQueueBytes=self["send-queue"],
            sendQueueGrace=self["send-queue-grace"],
            floodRate=self["flood-rate"],
            floodBurst=self["flood-burst"],
            recvQueueBytes=self["recv-queue"],
            recvQueueTime=self["recv-queue-time"],
            maxConnections=self["max-connections"],
            maxPerAddress=self["max-per-address"],
            maxRooms=self["max-rooms"],
            loginTimeout=self["login-timeout"],
            idleTimeout=self["idle-timeout"],
            closeTimeout=self["close-timeout"],
        )


def _brokerURL(url):
    """
    C{url} if it is a C{redis://HOST:PORT[/DB]} address chatd can use.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise usage.UsageError(f"--broker {url}: {e}")
    if parts.scheme != "redis" or not parts.hostname or port is None:
        raise usage.UsageError(f"--broker {url}: not redis://HOST:PORT[/DB]")
    if parts.path not in ("", "/") and not parts.path[1:].isdigit():
        raise usage.UsageError(f"--broker {url}: the database is a number, as in /0")
    return url


class StartFailure(SystemExit, Exception):
    """
    The daemon cannot start; the message says why.

    A L{SystemExit}, so that C{twistd -n} prints just the message and exits
    non-zero; an L{Exception}, so that a daemonizing twistd reports it to the
    waiting parent process, which prints it and exits non-zero too.
    """


def _withBacklog(description):
    """
    C{description} with chatd's L{LISTEN_BACKLOG} added, when it is a kind of
    endpoint that takes one and does not give its own.
    """
    kind = description.split(":", 1)[0].lower()
    if kind in ("tcp", "tcp6", "ssl", "unix") and "backlog=" not in description:
        return description + f":backlog={LISTEN_BACKLOG}"
    return description


class _ListeningService(strports.StreamServerEndpointService):
    """
    An endpoint service that logs the address it actually listens on, so that
    C{tcp:0} can be found.
    """

    _log = Logger()
    port = None

    def __init__(self, description, endpoint, factory, web=False, kind="", what=None):
        """
        @param what: what the log line says before the address, instead of
            "chatd listening on" (the metrics listener's).
        """
        super().__init__(endpoint, factory)
        self._description = description
        self._web = web
        self._kind = kind
        self._what = what
        # As strports.service does: a port that cannot be bound fails the
        # start, rather than leaving a daemon with nothing to listen on.
        self._raiseSynchronously = True

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            # One clear line, not a traceback; twistd then exits non-zero.
            # Short: a daemonizing twistd shows only 100 bytes of it.
            reason = getattr(e.socketError, "strerror", None) or e.socketError
            raise StartFailure(f"cannot listen on {self._description}: {reason}") from None
        except OverflowError as e:
            # A port out of range (tcp:99999) is bind()'s to refuse.
            raise StartFailure(f"cannot listen on {self._description}: {e}") from None
        self._waitingForPort.addCallback(self._listening)

    def _listening(self, port):
        if port is not None:
            self.port = port
            useLeanServer(port)
            address = port.getHost()
            if self._web:
                scheme = "https" if self._description.lower().startswith("ssl:") else "http"
                self._log.info("chatd listening on {host}:{port} (web client: "
                               "{scheme}://{host}:{port}/)", host=address.host,
                               port=address.port, scheme=scheme)
            else:
                self._log.info("{what} {host}:{port}", what=self._what or (
                    "chatd listening" + (" for IRC" if self._kind else "") + " on"),
                    host=address.host, port=address.port)
        return port


class _ShutdownNotice(service.Service):
    """
    On shutdown (SIGTERM, SIGINT), tells every connected user the server is
    going down and lets their connections drain before the reactor stops.
    """

    def __init__(self, gate):
        self._gate = gate

    def stopService(self):
        super().stopService()
        return self._gate.shutDown()


class _StoreService(service.Service):
    """
    Opens a store before anyone can connect: in C{privilegedStartService}
    under twistd (before it drops privileges and before any listener), and in
    C{startService} under runners that never call that (C{twist}), so that
    every runner behaves the same.  A store that cannot be opened stops the
    start with one line saying why.
    """

    _log = Logger()
    _opened = False

    def __init__(self, store):
        self._store = store

    def privilegedStartService(self):
        self._open()
        super().privilegedStartService()

    def startService(self):
        self._open()
        super().startService()

    def _open(self):
        if self._opened:
            return
        try:
            self._store.open()
        except HistoryError as e:
            raise StartFailure(f"chatd: {e}") from None
        self._opened = True
        self.opened()

    def opened(self):
        """
        Called once the store is open.
        """

    def stopService(self):
        super().stopService()
        return self._store.close()


class _AccountService(_StoreService):
    """
    Opens the account store (in the history's database), hands its bans to
    the core, and closes it on shutdown.
    """

    def __init__(self, store, core, operators):
        super().__init__(store)
        self._core = core
        self._operators = operators

    def opened(self):
        bans = self._store.bans()
        self._core.moderation.restoreBans(bans)
        # Other daemons sharing the database ban and lift bans too.
        self._store.watch(self._core.moderation)
        self._core.restoreRooms(self._store.rooms())
        # And keep rooms: the first to keep one owns it, on every daemon.
        self._store.watchRooms(self._core)
        self._log.info("chatd keeps accounts in {path}; bans in force: {count}",
                       path=self._store.path, count=len(bans))
        for nick in self._operators:
            if not self._store.isRegistered(nick):
                # Whoever registers it first becomes an operator.
                self._log.warn("operator {nick} is not registered yet: register it "
                               "before anyone else does", nick=nick)


class _HistoryService(_StoreService):
    """
    Opens the history store before anyone can talk, prunes it now and then,
    and on shutdown stores every pending line before letting the process
    exit.
    """

    PRUNE_EVERY = 3600.0

    def __init__(self, store, clock, keepDays, core):
        super().__init__(store)
        self._clock = clock
        self._keepDays = keepDays
        self._core = core
        self._pruning = None

    def opened(self):
        self._log.info("chatd keeps history in {path}", path=self._store.path)
        # The lobby's topic as it was: history knows the last one set.
        found = self._store.lastTopic(self._core.lobby)
        found.addCallback(lambda last: last and self._core.restoreLobbyTopic(last[0]))
        found.addErrback(lambda f: self._log.failure("reading the lobby's topic failed", f))

    def startService(self):
        super().startService()
        self._startPruning()

    def _startPruning(self):
        if self._keepDays:
            self._pruning = task.LoopingCall(self._prune)
            self._pruning.clock = self._clock
            self._pruning.start(self.PRUNE_EVERY, now=True)

    def setKeepDays(self, days):
        """
        Keep C{days} of history from now on (a reload); 0: forever.
        """
        self._keepDays = days
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        self._pruning = None
        if self.running:
            self._startPruning()

    def _prune(self):
        before = self._clock.seconds() - self._keepDays * 86400
        pruned = self._store.prune(before)
        pruned.addCallback(lambda count: count and self._log.info(
            "forgot {count} history lines older than {days} days",
            count=count, days=self._keepDays))
        # A failed prune is logged and tried again next time.
        pruned.addErrback(lambda f: self._log.failure("pruning history failed", f))
        return pruned

    def stopService(self):
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        return super().stopService()


class _BrokerService(service.Service):
    """
    Follows the cluster's Redis while the daemon runs.
    """

    def __init__(self, fanout, url):
        self.fanout = fanout
        self.url = url

    def startService(self):
        super().startService()
        Logger().info("chatd broker {url}: this daemon is node {node}", url=self.url,
                      node=self.fanout.node)
        self.fanout.start()

    def stopService(self):
        super().stopService()
        return self.fanout.stop()


def makeService(config, reactor=None):
    """
    Build the chat service from parsed L{Options}.
    """
    if reactor is None:
        from twisted.internet import reactor
    # Whatever the daemon creates (twistd's log file, opened after this)
    # is readable by no one but its owner and group: it names who logged in
    # from where.  The database is created 0600 (chatd.storage.schema).
    os.umask(os.umask(0) | 0o027)
    limits = config.limits()
    _allowDescriptors(limits.maxConnections)
    history = accounts = None
    if config["history"] is not None:
        history = SQLiteHistory(config["history"], reactor)
        accounts = SQLiteAccounts(config["history"], reactor)
    elif config["postgres"] is not None:
        # Imported only here: one daemon on SQLite needs no PostgreSQL client.
        from chatd.storage.postgres import PostgresAccounts, PostgresHistory

        history = PostgresHistory(config["postgres"], reactor)
        accounts = PostgresAccounts(config["postgres"], reactor)
    fanout = Fanout(reactor)
    if config["broker"] is not None:
        # Imported only here: one daemon alone needs no Redis client.
        from chatd.broker.fanout import BrokeredFanout
        from chatd.broker.link import RedisLink

        fanout = BrokeredFanout(reactor, None)
        fanout.link = RedisLink(config["broker"], reactor, fanout.node, fanout.lease)
    core = ChatCore(fanout, reactor, lobby=config["lobby"], history=history,
                    maxRooms=limits.maxRooms, accounts=accounts,
                    operators=config["operators"])
    gate = Gate(reactor, limits, coalesceTurns=True)
    factory = ChatFactory(core, gate, replay=config["replay"])
    if history is not None:
        # While the history writer is behind, no connection's input is read.
        history.registerProducer(gate, True)
    top = service.MultiService()
    pruning = None
    if history is not None:
        # Started first: open before any listener accepts a line.  Stopped
        # together with the others, after them in order: by then the
        # shutdown notice has stopped all input, so closing the store stores
        # every line there will ever be.
        pruning = _HistoryService(history, reactor, config["history-days"], core)
        pruning.setServiceParent(top)
        _AccountService(accounts, core, config["operators"]).setServiceParent(top)
    # Browsers pass the same gate as every other connection: one count
    # against the limits, one batching of output, one shutdown.
    web = WebFactory(core, gate, replay=config["replay"])
    if config["broker"] is not None:
        fanout.attach(core, gate.coalescer)
        # Before the listeners: stopped after them, so that the users' quits
        # reach the other daemons.
        _BrokerService(fanout, config["broker"]).setServiceParent(top)
    listeners, tls = [], {}
    reloader = reload.Reloader(config, reactor, gate, core, pruning, tls)
    if config["metrics"] is not None:
        # Stopped after the shutdown notice: while connections drain,
        # /healthz says 503.
        _serveMetrics(config["metrics"], reactor, gate, core, history, listeners,
                      reloader).setServiceParent(top)
    # Before the listeners: every login's log line costs less to write, and
    # the collector walks the connections' long-lived objects less often.
    LeanLogService().setServiceParent(top)
    CollectorService().setServiceParent(top)
    # Started first, so stopped last: the listeners close before the
    # connected users are told and let go.
    _ShutdownNotice(gate).setServiceParent(top)
    for description in config["listen"]:
        endpoint = endpoints.serverFromString(reactor, _withBacklog(description))
        listener = _ListeningService(description, endpoint, factory)
        _reloadable(description, endpoint, tls)
        listener.setServiceParent(top)
        listeners.append(listener)
    if config["irc"]:
        # The same core and gate: one count of connections, one shutdown.
        ircFactory = IrcFactory(core, gate, wire=IrcWire(config["irc-name"]),
                                network=config["irc-network"], replay=config["replay"])
        for description in config["irc"]:
            endpoint = endpoints.serverFromString(reactor, _withBacklog(description))
            listener = _ListeningService(description, endpoint, ircFactory, kind="IRC")
            _reloadable(description, endpoint, tls)
            listener.setServiceParent(top)
            listeners.append(listener)
    originCheck = OriginCheck(config["web-origins"])
    for description in config["web"]:
        endpoint = endpoints.serverFromString(reactor, _withBacklog(description))
        listener = _ListeningService(description, endpoint, WebSite(web, originCheck),
                                     web=True)
        _reloadable(description, endpoint, tls)
        listener.setServiceParent(top)
        listeners.append(listener)
    reloader.setServiceParent(top)
    return top


def _reloadable(description, endpoint, tls):
    """
    Make the certificate of an ssl: C{endpoint} reloadable (SIGHUP), and
    keep its L{reload.SwappableTLS} in C{tls} by C{description}.
    """
    swappable = reload.swappable(endpoint)
    if swappable is not None:
        tls[description] = swappable


def _serveMetrics(description, reactor, gate, core, history, listeners, reloader):
    """
    The C{--metrics} listener, and what times the metrics, as one service.
    """
    from chatd.ops import metrics
    measured = metrics.Metrics(gate, core, history, reloader)
    health = metrics.Health(reactor, gate, lambda: [
        listener._description for listener in listeners if listener.port is None
        or not listener.port.connected], history)
    both = service.MultiService()
    metrics.MetricsService(measured, reactor, gate, history).setServiceParent(both)
    endpoint = endpoints.serverFromString(reactor, description)
    _ListeningService(description, endpoint, metrics.site(measured, health),
                      what="chatd metrics on").setServiceParent(both)
    return both


def _allowDescriptors(connections):
    """
    Raise the soft limit on open files so that C{connections} sockets fit
    (with room for listeners, logs and storage), as far as the hard limit
    allows; --max-connections is then what limits connections, not a
    refusal by the system to accept them.
    """
    wanted = connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < connections + 64:
        Logger().warn(
            "--max-connections {connections} needs more open files than the "
            "hard limit of {hard} allows; raise it (ulimit -Hn)",
            connections=connections, hard=hard)

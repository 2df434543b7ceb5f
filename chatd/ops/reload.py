"""
Reload on SIGHUP, without dropping a connection: the options are read again
from the same command line and C{--config} file, and what can change while
running does: the TLS certificates and keys of every C{ssl:} listener (new
connections get the new ones; open ones keep theirs), the operators, the
limits and C{--history-days}.  Everything is checked before anything is
applied, so a reload that fails (an unreadable key, a bad option) changes
nothing and says why.  The log says what changed.

TLS: Twisted's C{ssl:} endpoint builds its C{CertificateOptions} once, when
the description is parsed, and Twisted's TLS asks that object for an OpenSSL
connection for each new connection.  L{SwappableTLS} stands in for it and
hands each new connection to whichever options are current; an open
connection keeps the OpenSSL connection (and so the context) it was made
with.
"""

import calendar
import signal
import time

from twisted.application import service
from twisted.internet import endpoints
from twisted.internet.interfaces import IOpenSSLContextFactory, IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from chatd.core.names import nickKey

# The options a reload applies, beyond the certificates.
LIMIT_OPTIONS = ("send-queue", "send-queue-grace", "flood-rate", "flood-burst",
                 "recv-queue", "recv-queue-time", "max-connections", "max-per-address",
                 "max-rooms", "login-timeout", "idle-timeout", "close-timeout")
# Those that only a restart applies.
RESTART_OPTIONS = ("listen", "irc", "irc-name", "irc-network", "web", "web-origins", "lobby",
                   "db", "replay", "metrics", "broker")


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLContextFactory)
class SwappableTLS:
    """
    TLS options whose certificate and key can be replaced while listening.

    @ivar options: the current C{CertificateOptions}.
    """

    def __init__(self, options):
        self.options = options

    def serverConnectionForTLS(self, protocol):
        return self.options.serverConnectionForTLS(protocol)

    def getContext(self):
        return self.options.getContext()

    def swap(self, options):
        self.options = options


def swappable(endpoint):
    """
    Make the TLS options of C{endpoint}, if it is an C{ssl:} endpoint,
    swappable.

    @return: the L{SwappableTLS}, or L{None} for an endpoint without TLS.
    """
    if not isinstance(endpoint, endpoints.SSL4ServerEndpoint):
        return None
    # (Twisted keeps them in a private attribute; tests/test_reload.py
    # checks that it still does.)
    tls = SwappableTLS(endpoint._sslContextFactory)
    endpoint._sslContextFactory = tls
    return tls


def freshTLS(description):
    """
    New TLS options for the C{ssl:} listener C{description}, its files read
    again, and checked (the key matches the certificate).

    @raise Exception: when they cannot be used; L{listenProblem} says why.
    """
    options = endpoints.serverFromString(None, description)._sslContextFactory
    options.getContext()
    return options


def listenProblem(e):
    """
    Why a listener's description (C{tcp:...}, C{ssl:...} with its key and
    certificate, which are read as it is parsed) could not be used, in words
    for the person who wrote it.
    """
    if isinstance(e, OSError) and e.filename:
        return f"cannot read {e.filename}: {e.strerror}"
    if type(e).__module__.startswith("OpenSSL"):
        # OpenSSL's errors are lists of (library, function, reason).
        reasons = [entry[-1] for entry in (e.args[0] if e.args else ())
                   if isinstance(entry, tuple) and entry and entry[-1]]
        return ("a certificate or private key named there is not a PEM file this server "
                f"can use (OpenSSL: {'; '.join(reasons) or e})")
    if isinstance(e, ValueError):
        return (f"not a listener ({e}): write tcp:PORT[:interface=ADDRESS] or "
                "ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem")
    return str(e)


def fingerprint(options):
    certificate = getattr(options, "certificate", None)
    return certificate.digest("sha256").decode() if certificate is not None else None


def notAfter(options):
    """
    When the certificate of C{options} expires (POSIX seconds), or L{None}.
    """
    certificate = getattr(options, "certificate", None)
    if certificate is None or certificate.get_notAfter() is None:
        return None
    return calendar.timegm(time.strptime(certificate.get_notAfter().decode(), "%Y%m%d%H%M%SZ"))


class Reloader(service.Service):
    """
    Applies the options again on SIGHUP (or L{reload}).

    @ivar reloads: how many reloads succeeded (C{ok}) and failed.
    """

    _log = Logger()

    def __init__(self, config, reactor, gate, core, history=None, tls=None):
        """
        @param config: the parsed L{chatd.tap.Options} the daemon runs with;
            its C{argv} is read again on each reload.
        @param history: the service that prunes history (with
            C{setKeepDays}), or L{None}.
        @param tls: the L{SwappableTLS} of each C{ssl:} listener, by its
            description.
        """
        self.config = config
        self._reactor = reactor
        self._gate = gate
        self._core = core
        self._history = history
        self._tls = tls if tls is not None else {}
        self.reloads = {"ok": 0, "failed": 0}
        self._previous = None

    def startService(self):
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangUp)

    def stopService(self):
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None
        return super().stopService()

    def _hangUp(self, signum, frame):
        # In the signal handler: act on the reactor thread, soon.
        self._reactor.callFromThread(self.reload)

    def certificates(self):
        """
        When the certificate of each C{ssl:} listener expires (POSIX
        seconds), by the listener's port and interface.
        """
        out = {}
        for description, tls in self._tls.items():
            expiry = notAfter(tls.options)
            if expiry is not None:
                out[_listenerName(description)] = expiry
        return out

    def reload(self):
        """
        Read the options again and apply what changed.

        @return: whether the reload succeeded.
        """
        from chatd.tap import Options
        self._log.info("reloading the options (SIGHUP)")
        try:
            new = Options()
            new.parseOptions(self.config.argv)
        except (Exception, SystemExit) as e:
            # (A start's failure says whose it is: here the log does.)
            return self._failed(str(e).strip().removeprefix("chatd: ") or type(e).__name__)
        fresh = {}
        for description in self._tls:
            try:
                fresh[description] = freshTLS(description)
            except Exception as e:
                return self._failed(f"--listen {description}: {listenProblem(e)}")
        changes = self._apply(new, fresh)
        self.config = new
        self.reloads["ok"] += 1
        if changes:
            for change in changes:
                self._log.info("reload: {change}", change=change)
        else:
            self._log.info("reload: nothing changed")
        return True

    def _failed(self, why):
        self.reloads["failed"] += 1
        self._log.error("reload failed, the old settings stay: {why}", why=why)
        return False

    def _apply(self, new, fresh):
        """
        Apply C{new} options and C{fresh} TLS options, checked already.

        @return: what changed, in words for the log.
        """
        from chatd.tap import _allowDescriptors as allowDescriptors
        old, changes = self.config, []
        limitsChanged = [name for name in LIMIT_OPTIONS if old[name] != new[name]]
        for name in limitsChanged:
            changes.append(f"--{name} {old[name]:g} -> {new[name]:g}")
        if limitsChanged:
            limits = new.limits()
            if limits.maxConnections > old["max-connections"]:
                allowDescriptors(limits.maxConnections)
            self._gate.setLimits(limits)
            self._core.maxRooms = limits.maxRooms
        before = {nickKey(n): n for n in old["operators"]}
        after = {nickKey(n): n for n in new["operators"]}
        if before.keys() != after.keys():
            added = sorted(after[k] for k in after.keys() - before.keys())
            removed = sorted(before[k] for k in before.keys() - after.keys())
            self._core.moderation.operators = frozenset(after)
            if added:
                changes.append("operators added: " + " ".join(added))
            if removed:
                changes.append("operators removed: " + " ".join(removed))
            accounts = self._core.accounts
            for nick in added:
                if accounts is not None and not accounts.isRegistered(nick):
                    self._log.warn("operator {nick} is not registered yet: register it "
                                   "before anyone else does", nick=nick)
        if old["history-days"] != new["history-days"]:
            changes.append(f"--history-days {old['history-days']} -> {new['history-days']}")
            if self._history is not None:
                self._history.setKeepDays(new["history-days"])
        for description, options in fresh.items():
            tls = self._tls[description]
            if fingerprint(options) != fingerprint(tls.options):
                changes.append(f"new certificate for {description} "
                               f"(sha256 {fingerprint(options)})")
            tls.swap(options)
        for name in RESTART_OPTIONS:
            if old[name] != new[name]:
                self._log.warn("--{name} changed; only a restart applies it", name=name)
        return changes


def _listenerName(description):
    """
    C{ssl:6697:interface=::1:privateKey=...} as C{ssl:6697:interface=::1}:
    the description without its file names, for a label.
    """
    keep = [part for part in description.split(":")
            if "=" not in part or part.split("=", 1)[0] in ("interface",)]
    return ":".join(keep)

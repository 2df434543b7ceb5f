"""
Prometheus metrics and a health check, served over HTTP by C{--metrics}.

Nothing here runs on the fan-out's hot path.  The chat counts what happens
once per event in plain integers (L{chatd.edge.gate.Counts}, the fan-out's
C{deliveries} and C{sentBytes}, the core's C{logins}), and
L{ChatCollector} reads them, and the gauges (connections, rooms, the history
writer's backlog), only when Prometheus scrapes.  Only the histograms are
observed as things happen, and none per delivery: once per list of writes
(delivery latency: see L{chatd.edge.outbox.Coalescer}), per history commit (in the writer thread), and
twice a second (reactor lag).

The page is rendered on the reactor thread, unlike
C{prometheus_client.twisted.MetricsResource}, which renders in the reactor's
thread pool: the collector reads the gate's and the core's state, which only
the reactor thread may touch (a set of connections changing size while
another thread walks it).
"""

import time

from prometheus_client import CollectorRegistry, Histogram, exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from chatd import __version__

# Seconds, for latencies inside the daemon: from half a millisecond to the
# seconds that mean trouble.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0)


def _snake(name):
    """
    C{NicknameTaken} as a label value: C{nickname_taken}.
    """
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class ChatCollector:
    """
    Reads chatd's counts and gauges when scraped.

    @param reloads: an object with C{reloads} (a dict from C{ok}/C{failed}
        to a count) and C{certificates()} (listener to its certificate's
        expiry, POSIX seconds), or L{None}.
    """

    def __init__(self, gate, core, history=None, reloads=None):
        self._gate = gate
        self._core = core
        self._history = history
        self._reloads = reloads

    def collect(self):
        gate, core, counts = self._gate, self._core, self._gate.counts
        info = GaugeMetricFamily("chatd_info", "chatd's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

        open_ = GaugeMetricFamily(
            "chatd_connections", "Open connections, by front end and state "
            "(logging_in until a nickname is chosen, then chatting)",
            labels=["frontend", "state"])
        census = gate.census()
        for frontend in sorted({f for f, _ in census} | set(counts.accepted) or {"line"}):
            for state in ("logging_in", "chatting"):
                open_.add_metric([frontend, state], census.get((frontend, state), 0))
        yield open_
        accepted = CounterMetricFamily(
            "chatd_connections_accepted", "Connections admitted, by front end",
            labels=["frontend"])
        for frontend, count in sorted(counts.accepted.items()):
            accepted.add_metric([frontend], count)
        yield accepted
        refused = CounterMetricFamily(
            "chatd_connections_refused", "Connections refused by the limits, by reason",
            labels=["reason"])
        for reason in ("server_full", "address_full"):
            refused.add_metric([reason], counts.refused.get(reason, 0))
        yield refused
        yield CounterMetricFamily("chatd_logins", "Connections that chose their first "
                                  "nickname", value=core.logins)
        loginRefusals = CounterMetricFamily(
            "chatd_login_refusals", "First nicknames refused, by reason",
            labels=["reason"])
        for reason, count in sorted(core.loginRefusals.items()):
            loginRefusals.add_metric([_snake(reason)], count)
        yield loginRefusals
        yield CounterMetricFamily("chatd_lines_received", "Lines (or frames) of input "
                                  "acted on, commands included", value=counts.lines)
        yield CounterMetricFamily("chatd_deliveries", "Events handed to a recipient other "
                                  "than their actor (a room line to a room of 4: 3)",
                                  value=core.fanout.deliveries)
        yield CounterMetricFamily("chatd_sent_bytes", "Bytes queued for connections' peers "
                                  "(before TLS)",
                                  value=counts.sentBytes + core.fanout.sentBytes)
        yield CounterMetricFamily("chatd_send_queue_drops", "Connections dropped for not "
                                  "reading their output (slow readers)",
                                  value=counts.sendQueueDrops)
        yield CounterMetricFamily("chatd_flood_delays", "Times a connection's input was "
                                  "held back for sending too fast", value=counts.floodDelays)
        yield CounterMetricFamily("chatd_flood_delay_seconds", "Seconds of those holds, "
                                  "in all", value=counts.floodDelaySeconds)
        yield GaugeMetricFamily("chatd_input_paused", "1 while every connection's input "
                                "waits for the history writer to catch up",
                                value=int(gate.inputPaused))

        yield GaugeMetricFamily("chatd_users", "Connected users with a nickname",
                                value=len(core.users))
        yield GaugeMetricFamily("chatd_rooms", "Rooms with members", value=len(core.rooms))
        # (The lobby is kept too while empty, for its topic: no owner's.)
        yield GaugeMetricFamily("chatd_rooms_kept", "Empty rooms kept for their owner",
                                value=sum(1 for r in list(core.kept.values())
                                          if r.owner is not None))
        yield GaugeMetricFamily("chatd_room_members", "Room memberships, over every room",
                                value=sum(len(r.members) for r in list(core.rooms.values())))

        if self._history is not None:
            lines, text = self._history.behind
            yield GaugeMetricFamily("chatd_history_queue_lines", "Lines said and not yet "
                                    "committed to the history database", value=lines)
            yield GaugeMetricFamily("chatd_history_queue_bytes", "Bytes of text said and "
                                    "not yet committed", value=text)
            yield CounterMetricFamily("chatd_history_pauses", "Times input was paused "
                                      "because the history writer fell behind",
                                      value=self._history.pauses)

        if self._reloads is not None:
            reloads = CounterMetricFamily("chatd_reloads", "Reloads (SIGHUP), by result",
                                          labels=["result"])
            for result in ("ok", "failed"):
                reloads.add_metric([result], self._reloads.reloads.get(result, 0))
            yield reloads
            expiry = GaugeMetricFamily(
                "chatd_tls_certificate_expiry_timestamp_seconds",
                "When the certificate each ssl: listener serves expires (POSIX time)",
                labels=["listener"])
            for listener, notAfter in sorted(self._reloads.certificates().items()):
                expiry.add_metric([listener], notAfter)
            yield expiry


class Metrics:
    """
    chatd's metrics registry: the collector, the process's own metrics, and
    the histograms observed as things happen.
    """

    def __init__(self, gate, core, history=None, reloads=None):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(ChatCollector(gate, core, history, reloads))
        self.deliveryLatency = Histogram(
            "chatd_delivery_latency_seconds",
            "From the start of handling a read of input to the end of the writes it "
            "caused, per list of writes (its first read, so its slowest line)",
            buckets=FAST_BUCKETS, registry=self.registry)
        self.reactorLag = Histogram(
            "chatd_reactor_lag_seconds",
            "How late a timer set every half second fires: the reactor's lag",
            buckets=FAST_BUCKETS, registry=self.registry)
        self.commitDuration = Histogram(
            "chatd_history_commit_duration_seconds",
            "How long one commit of lines to the history database takes",
            buckets=FAST_BUCKETS, registry=self.registry)
        self.storeLatency = Histogram(
            "chatd_history_store_latency_seconds",
            "From a line being said to its commit, for the oldest line of each commit",
            buckets=FAST_BUCKETS, registry=self.registry)

    def observeCommit(self, seconds, oldest):
        """
        Called from the history writer thread after each commit.
        """
        self.commitDuration.observe(seconds)
        self.storeLatency.observe(max(0.0, time.time() - oldest))


class MetricsPage(Resource):
    """
    C{/metrics}: the registry in Prometheus' text format (or OpenMetrics,
    when the scraper asks for it), rendered on the reactor thread.
    """

    isLeaf = True

    def __init__(self, registry):
        super().__init__()
        self._registry = registry

    def render_GET(self, request):
        accept = request.getHeader("accept") or ""
        encoder, contentType = exposition.choose_encoder(accept)
        request.setHeader("content-type", contentType)
        return encoder(self._registry)


class Health:
    """
    Whether the daemon is in working order: it accepts connections (its
    listeners listen, it is not shutting down, it is not full) and its
    database answers within L{TIMEOUT} seconds.
    """

    TIMEOUT = 3.0

    def __init__(self, clock, gate, listening, history=None):
        """
        @param listening: called with no arguments: the descriptions of the
            chat listeners not listening (yet or any more).
        @param history: the history store (in the database the accounts
            share), or L{None} when there is none.
        """
        self._clock = clock
        self._gate = gate
        self._listening = listening
        self._history = history

    def check(self):
        """
        @return: a L{Deferred} firing with a list of problems, empty when
            healthy.
        """
        problems = []
        if self._gate.stopping:
            problems.append("shutting down")
        for description in self._listening():
            problems.append(f"not listening on {description}")
        if self._gate.full:
            problems.append("full: no more connections accepted")
        if self._history is None:
            return succeed(problems)
        answered = Deferred()
        # The writer answers once everything queued before is committed: a
        # stuck disk or a dead writer never answers.
        asked = self._history.flush()
        late = self._clock.callLater(self.TIMEOUT, lambda: answered.called or answered.callback(
            problems + [f"the database did not answer within {self.TIMEOUT:g} s"]))

        def ok(_):
            if late.active():
                late.cancel()
            if not answered.called:
                answered.callback(problems)

        def failed(failure):
            if late.active():
                late.cancel()
            if not answered.called:
                answered.callback(problems + [f"the database failed: {failure.getErrorMessage()}"])

        asked.addCallbacks(ok, failed)
        return answered


class HealthPage(Resource):
    """
    C{/healthz}: 200 and C{ok} while healthy, else 503 and the problems, one
    a line.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, health):
        super().__init__()
        self._health = health

    def render_GET(self, request):
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(problems):
            if gone:
                return
            request.setResponseCode(503 if problems else 200)
            request.setHeader("content-type", "text/plain; charset=utf-8")
            request.setHeader("cache-control", "no-store")
            request.write(("\n".join(problems) if problems else "ok").encode("utf-8") + b"\n")
            request.finish()

        checked = self._health.check()
        checked.addCallback(answer)
        checked.addErrback(lambda f: self._log.failure("the health check failed", f))
        return NOT_DONE_YET


def site(metrics, health):
    """
    The metrics listener's web site: C{/metrics} and C{/healthz}.
    """
    root = Resource()
    root.putChild(b"metrics", MetricsPage(metrics.registry))
    root.putChild(b"healthz", HealthPage(health))
    made = Site(root)
    made.noisy = False
    # No access log: scrapes every few seconds would drown the chat's log.
    made.log = lambda request: None
    return made


class LagMeter:
    """
    Measures how late the reactor runs a timer set every L{INTERVAL}
    seconds, and hands each lateness to C{observe}.
    """

    INTERVAL = 0.5

    def __init__(self, clock, observe):
        self._clock = clock
        self._observe = observe
        self._call = None

    def start(self):
        self._due = self._clock.seconds() + self.INTERVAL
        self._call = self._clock.callLater(self.INTERVAL, self._tick)

    def _tick(self):
        now = self._clock.seconds()
        self._observe(max(0.0, now - self._due))
        self._due = now + self.INTERVAL
        self._call = self._clock.callLater(self.INTERVAL, self._tick)

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class MetricsService(service.Service):
    """
    While running, times what the metrics time: the reactor's lag, each
    turn's writes, the history writer's commits.
    """

    def __init__(self, metrics, clock, gate, history=None, timer=time.perf_counter):
        self._metrics = metrics
        self._gate = gate
        self._history = history
        self._timer = timer
        self._lag = LagMeter(clock, metrics.reactorLag.observe)

    def startService(self):
        super().startService()
        coalescer = self._gate.coalescer
        coalescer.timer = self._timer
        coalescer.observe = self._metrics.deliveryLatency.observe
        if self._history is not None:
            self._history.onCommit = self._metrics.observeCommit
        self._lag.start()

    def stopService(self):
        self._lag.stop()
        self._gate.coalescer.observe = None
        if self._history is not None:
            self._history.onCommit = None
        return super().stopService()

"""Prometheus metrics of ``fontus serve --metrics-port P``, per hosted mark.

Two sources, chosen to keep the request path cheap:

- counters (sessions, requests, outputs, bytes) and queue depth are read from
  the sessions' own :class:`SessionStats` when Prometheus scrapes.  A Fontus
  session's counts are folded into its mark's totals when it closes; a Juturna
  session (which has no close) is found at scrape time and folded when it is
  gone, so counters never go back;
- the two latency histograms and failures by code are recorded by the
  :class:`GraphWorker` as requests finish, through a :class:`WorkerMetrics`
  bound to the worker's mark (two ``Histogram.observe`` per request).

With metrics disabled the server and workers hold ``None`` and do nothing.
``mark`` is the hosted node's mark, or the marks of a hosted graph joined by
``+`` (what a Warp's ``fontus_warp_*`` series call it too).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...metrics import MetricsEndpoint, new_registry, serve_metrics
from .._wire.v1 import session_pb2 as spb
from ._catalogue import Catalogue, Plan

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ._server import RemoteServer

__all__ = ["LATENCY_BUCKETS", "ServerMetrics", "WorkerMetrics", "plan_mark"]

#: Histogram buckets in seconds, in 1-2.5-5 steps from a 100 µs echo to a 10 s model
#: call, so p50/p99 of 20 ms audio or a 720p frame land between two close buckets.
LATENCY_BUCKETS = (*(round(m * 10.0**e, 6) for e in range(-4, 1) for m in (1, 2.5, 5)), 10.0)
#: FailCode value → label: FAIL_NODE_ERROR → node_error.
_CODES = {
    value.number: value.name.removeprefix("FAIL_").lower()
    for value in spb.FailCode.DESCRIPTOR.values
}


def plan_mark(plan: Plan) -> str:
    """The ``mark`` label of a session running ``plan``."""
    return "+".join(dict.fromkeys(node.spec.mark for node in plan.nodes)) or plan.entry_name


def _hosted_marks(catalogue: Catalogue) -> list[str]:
    """Labels known before any session, so that their series start at 0."""
    if catalogue.pipeline is not None:
        return ["+".join(dict.fromkeys(node.mark for node in catalogue.pipeline.nodes))]
    return catalogue.marks()


class WorkerMetrics:
    """What a :class:`GraphWorker` records as requests finish; bound to one mark."""

    __slots__ = ("_failures", "_other", "_processing", "_round_trip", "mark")

    def __init__(self, mark: str, processing: Any, round_trip: Any, failures: Any) -> None:
        self.mark = mark
        self._processing = processing.labels(mark)
        self._round_trip = round_trip.labels(mark)
        # Every code starts at 0, so that rate() sees the first failure.
        self._failures = {
            code: failures.labels(mark, name) for code, name in _CODES.items() if code
        }
        self._other = failures

    def done(self, compute_s: float, round_trip_s: float) -> None:
        """A request answered with Done: its update() time and arrival → Done queued."""
        self._processing.observe(compute_s)
        self._round_trip.observe(round_trip_s)

    def failed(self, code: int) -> None:
        child = self._failures.get(code)
        if child is None:
            child = self._other.labels(self.mark, _CODES.get(code, str(code)))
        child.inc()


@dataclass
class _Totals:
    sessions: int = 0
    requests: int = 0
    outputs: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    tails: int = 0
    tail_refs: int = 0

    def add(self, session: Any) -> None:
        st = session.stats
        self.requests += st.requests
        self.outputs += st.outputs
        self.bytes_in += st.bytes_in
        self.bytes_out += st.bytes_out
        self.tails += st.tails
        self.tail_refs += st.tail_refs


class ServerMetrics:
    """The server's registry and HTTP endpoint; a custom collector over its sessions."""

    def __init__(self, server: RemoteServer) -> None:
        self.registry = new_registry()  # first: says what to install when it is missing
        from prometheus_client import Counter, Histogram

        self.server = server
        self.processing = Histogram(
            "fontus_server_processing_seconds",
            "time in the hosted node's update() per request",
            ["mark"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.round_trip = Histogram(
            "fontus_server_round_trip_seconds",
            "server-side round trip per request: arrival to Done queued (queue + compute)",
            ["mark"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "fontus_server_request_failures_total",
            "requests answered with Failed, by failure code",
            ["mark", "code"],
            registry=self.registry,
        )
        self.endpoint: MetricsEndpoint | None = None
        self._lock = threading.Lock()
        # Per mark: sessions opened, and the counts of closed sessions.
        self._closed = {mark: _Totals() for mark in _hosted_marks(server.catalogue)}
        for mark in self._closed:
            self.for_mark(mark)  # creates its histogram and failure series
        self._live: dict[str, tuple[str, Any]] = {}  # session id → (mark, session)
        self._juturna: set[str] = set()  # ids in _live found in the Juturna service
        self.registry.register(self)

    @classmethod
    def start(cls, server: RemoteServer, host: str, port: int) -> ServerMetrics:
        """Build the metrics and serve them on ``host:port``; ConfigError if that is impossible."""
        metrics = cls(server)
        metrics.endpoint = serve_metrics(metrics.registry, port, host)
        return metrics

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None

    def for_plan(self, plan: Plan) -> WorkerMetrics:
        return self.for_mark(plan_mark(plan))

    def for_mark(self, mark: str) -> WorkerMetrics:
        return WorkerMetrics(mark, self.processing, self.round_trip, self.failures)

    # -- session lifecycle (event loop) -------------------------------------------------
    def opened(self, session: Any) -> None:
        mark = plan_mark(session.plan)
        with self._lock:
            self._closed.setdefault(mark, _Totals()).sessions += 1
            self._live[session.id] = (mark, session)

    def closed(self, session: Any) -> None:
        with self._lock:
            self._fold(session.id)

    def _fold(self, session_id: str) -> None:
        entry = self._live.pop(session_id, None)
        if entry is not None:
            self._closed.setdefault(entry[0], _Totals()).add(entry[1])

    def _sync_juturna(self) -> None:
        current = {s.id: s for s in list(self.server.juturna.sessions.values())}
        for gone in self._juturna - current.keys():
            self._fold(gone)
        for session_id, session in current.items():
            if session_id not in self._juturna:
                mark = plan_mark(session.plan)
                self._closed.setdefault(mark, _Totals()).sessions += 1
                self._live[session_id] = (mark, session)
        self._juturna = set(current)

    # -- collector (HTTP thread) ----------------------------------------------------------
    def describe(self) -> Iterator[Metric]:
        return self._families({}, {}, {})

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._sync_juturna()
            totals = {mark: _Totals(**vars(t)) for mark, t in self._closed.items()}
            live = list(self._live.values())
        active: dict[str, int] = {}
        depth: dict[str, int] = {}
        for mark, session in live:
            totals.setdefault(mark, _Totals()).add(session)
            active[mark] = active.get(mark, 0) + 1
            depth[mark] = depth.get(mark, 0) + session.in_flight
        return self._families(totals, active, depth)

    def _families(
        self, totals: dict[str, _Totals], active: dict[str, int], depth: dict[str, int]
    ) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for key, name, doc in (
            ("sessions", "fontus_server_sessions_opened_total", "sessions opened"),
            ("requests", "fontus_server_requests_total", "requests received"),
            ("outputs", "fontus_server_outputs_total", "outputs sent back"),
            (
                "tails",
                "fontus_server_tails_total",
                "outputs whose array went back as the tail of their result frame, uncopied",
            ),
            (
                "tail_refs",
                "fontus_server_tail_refs_total",
                "outputs whose array was their own request's, named instead of sent back",
            ),
        ):
            counter = CounterMetricFamily(name, doc, labels=["mark"])
            for mark, t in totals.items():
                counter.add_metric([mark], getattr(t, key))
            yield counter
        traffic = CounterMetricFamily(
            "fontus_server_bytes_total",
            "bytes of session frames (in: from clients, out: to clients)",
            labels=["mark", "direction"],
        )
        for mark, t in totals.items():
            traffic.add_metric([mark, "in"], t.bytes_in)
            traffic.add_metric([mark, "out"], t.bytes_out)
        yield traffic
        sessions = GaugeMetricFamily(
            "fontus_server_sessions_active", "sessions open now", labels=["mark"]
        )
        queue = GaugeMetricFamily(
            "fontus_server_queue_depth",
            "requests received and not yet answered (in flight), over open sessions",
            labels=["mark"],
        )
        for mark in totals:
            sessions.add_metric([mark], active.get(mark, 0))
            queue.add_metric([mark], depth.get(mark, 0))
        yield sessions
        yield queue

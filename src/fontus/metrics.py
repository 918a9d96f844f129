"""Prometheus metrics of a running pipeline: ``fontus run PIPELINE --metrics-port P``.

::

    endpoint = serve_pipeline_metrics(pipeline, 9100)   # http://127.0.0.1:9100/metrics
    try:
        pipeline.run()
    finally:
        endpoint.close()

Nothing is counted on the message path: a custom collector reads
:meth:`Pipeline.stats` when Prometheus scrapes, and turns each node's snapshot
into ``fontus_node_*`` series and each Warp's ``stats_extra()`` (its view of
the remote hop) into ``fontus_warp_*`` series.  Labels: ``pipeline``, ``node``
and ``mark`` — the mark as written in the pipeline file, so a node keeps its
series when it moves to a server (``fontus_warp_*`` then appear beside them).

Every endpoint gets a private ``CollectorRegistry`` (never the process-wide
one), and ``prometheus-client`` stays an optional extra (``fontus[metrics]``):
it is imported when an endpoint starts.  This module imports the core only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .core.errors import ConfigError
from .core.pipeline import Pipeline
from .core.stats import NodeStatsSnapshot

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "MISSING_PROMETHEUS",
    "MetricsEndpoint",
    "PipelineCollector",
    "new_registry",
    "serve_metrics",
    "serve_pipeline_metrics",
]

log = logging.getLogger(__name__)

#: What a user without the optional dependency is told.
MISSING_PROMETHEUS = "--metrics-port needs prometheus-client: pip install 'fontus[metrics]'"
#: Quantiles of the latency gauges, as (label value, snapshot field).
_QUANTILES = (("0.5", "p50_ms"), ("0.99", "p99_ms"))
_NODE_LABELS = ("pipeline", "node", "mark")
#: Node counters: (snapshot field, help).
_NODE_COUNTERS = (
    ("received", "messages the node received"),
    ("sent", "messages the node transmitted"),
    ("errors", "inputs whose processing raised"),
    ("dropped", "inputs dropped by a drop_oldest inbox"),
)
#: Warp counters: (stats_extra key, help, always present).  The optional ones appear
#: when the Warp reports them.
_WARP_COUNTERS = (
    ("requests", "requests sent to the server", True),
    ("outputs", "outputs received from the server", True),
    ("failures", "requests that finally failed (after retries)", True),
    ("timeouts", "requests that got no answer within the timeout", True),
    ("late", "answers that arrived after their request had timed out", True),
    ("reconnects", "sessions re-opened after a broken stream", False),
    ("replayed", "requests sent again after a reconnect", False),
    ("discarded", "outputs not forwarded after a failure with on_error: stop", False),
    ("tails_out", "requests whose last array went uncopied, as its frame's tail", False),
    ("tails_in", "outputs received as the tail of their result frame", False),
    ("tail_refs", "outputs whose array was the request's own, named and not sent back", False),
)
#: Warp gauges: (stats_extra key, metric name, help, always present).
_WARP_GAUGES = (
    ("in_flight", "fontus_warp_in_flight", "requests sent and not yet answered", True),
    ("window", "fontus_warp_window", "requests the server allows in flight", True),
    ("streams", "fontus_warp_streams", "sessions the Warp spreads requests over", False),
    (
        "failover_s",
        "fontus_warp_failover_seconds",
        "how long the last reconnect took, from the broken stream to the session re-opened",
        False,
    ),
)


def new_registry() -> CollectorRegistry:
    """A private registry; raises ConfigError when prometheus-client is not installed."""
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        raise ConfigError(MISSING_PROMETHEUS) from None
    return CollectorRegistry()


class MetricsEndpoint:
    """An HTTP endpoint serving one registry on ``http://host:port/metrics``; ``close()`` stops it."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port: int = httpd.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(
    registry: CollectorRegistry, port: int, host: str = "127.0.0.1"
) -> MetricsEndpoint:
    """Serve ``registry`` over HTTP on ``host:port`` (0 picks a free port) from a daemon thread."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port must be 0..65535, got {port}")
    from prometheus_client import start_http_server

    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pick another --metrics-port"
        ) from None
    endpoint = MetricsEndpoint(httpd, thread, host)
    log.info("metrics on %s", endpoint.url)
    return endpoint


def serve_pipeline_metrics(
    pipeline: Pipeline, port: int, host: str = "127.0.0.1"
) -> MetricsEndpoint:
    """Expose ``pipeline``'s node and Warp metrics on ``http://host:port/metrics``."""
    registry = new_registry()
    registry.register(PipelineCollector(pipeline))
    return serve_metrics(registry, port, host)


def _written_marks(pipeline: Pipeline) -> dict[str, str]:
    """Node name → the mark as written; a Warp gets the mark(s) it runs remotely."""
    marks = {}
    for node in pipeline.config.nodes:
        mark = node.mark
        if mark == "warp":
            conf = node.configuration
            spec, graph = conf.get("node"), conf.get("graph")
            if isinstance(spec, str):
                mark = spec
            elif isinstance(spec, Mapping) and spec.get("mark"):
                mark = str(spec["mark"])
            elif isinstance(graph, Mapping):
                inner = [
                    str(n.get("mark")) for n in graph.get("nodes", ()) if isinstance(n, Mapping)
                ]
                mark = "+".join(dict.fromkeys(inner)) or mark
        marks[node.name] = mark
    return marks


class PipelineCollector:
    """Reads ``pipeline.stats()`` at scrape time (a ``prometheus_client`` custom collector)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._marks = _written_marks(pipeline)
        self._warps = {node.name for node in pipeline.config.nodes if node.mark == "warp"}

    def describe(self) -> Iterator[Metric]:
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        return self._families(self.pipeline.stats())

    def _families(self, stats: Mapping[str, NodeStatsSnapshot]) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        def counter(name: str, doc: str, labels: Sequence[str] = _NODE_LABELS) -> Any:
            return CounterMetricFamily(name, doc, labels=labels)

        def gauge(name: str, doc: str, labels: Sequence[str] = _NODE_LABELS) -> Any:
            return GaugeMetricFamily(name, doc, labels=labels)

        quantile = (*_NODE_LABELS, "quantile")
        node_counters = {
            field: counter(f"fontus_node_{field}_total", doc) for field, doc in _NODE_COUNTERS
        }
        depth = gauge("fontus_node_queue_depth", "messages waiting in the node's inbox")
        capacity = gauge("fontus_node_queue_capacity", "capacity of the node's inbox")
        latency = gauge(
            "fontus_node_update_latency_seconds",
            "update() duration over the recent samples, by quantile",
            quantile,
        )
        warps = [(name, snap) for name, snap in stats.items() if name in self._warps]
        extras = [snap.extra or {} for _, snap in warps]
        warp_counters = {
            key: counter(f"fontus_warp_{key}_total", doc)
            for key, doc, always in _WARP_COUNTERS
            if always or any(key in extra for extra in extras)
        }
        warp_bytes = counter(
            "fontus_warp_bytes_total",
            "bytes on the remote hop (out: to the server, in: from it)",
            (*_NODE_LABELS, "direction"),
        )
        warp_gauges = {
            key: gauge(name, doc)
            for key, name, doc, always in _WARP_GAUGES
            if always or any(key in extra for extra in extras)
        }
        rtt = gauge(
            "fontus_warp_round_trip_seconds",
            "request → Done round trip over the recent samples, by quantile",
            quantile,
        )
        info = gauge("fontus_warp_info", "the Warp's target (always 1)", (*_NODE_LABELS, "target"))

        name_label = self.pipeline.name
        for name, snap in stats.items():
            labels = [name_label, name, self._marks.get(name, snap.mark)]
            for field, family in node_counters.items():
                family.add_metric(labels, getattr(snap, field))
            depth.add_metric(labels, snap.queue_depth)
            capacity.add_metric(labels, snap.queue_capacity)
            for q, field in _QUANTILES:
                latency.add_metric([*labels, q], getattr(snap, field) / 1000.0)
        for (name, snap), extra in zip(warps, extras, strict=True):
            labels = [name_label, name, self._marks.get(name, snap.mark)]
            for key, family in warp_counters.items():
                family.add_metric(labels, _number(extra.get(key)))
            warp_bytes.add_metric([*labels, "out"], _number(extra.get("bytes_out")))
            warp_bytes.add_metric([*labels, "in"], _number(extra.get("bytes_in")))
            for key, family in warp_gauges.items():
                family.add_metric(labels, _number(extra.get(key)))
            for q, key in (("0.5", "rtt_p50_ms"), ("0.99", "rtt_p99_ms")):
                rtt.add_metric([*labels, q], _number(extra.get(key)) / 1000.0)
            target = extra.get("target", "")
            info.add_metric(
                [*labels, ",".join(target) if isinstance(target, list) else str(target)], 1
            )
        yield from node_counters.values()
        yield from (depth, capacity, latency)
        yield from warp_counters.values()
        yield warp_bytes
        yield from warp_gauges.values()
        yield from (rtt, info)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

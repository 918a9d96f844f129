"""``RemoteServer``: the grpc.aio server hosting nodes behind sessions.

Serves ``fontus.v1.Remote`` (Session, Describe, Stats), standard
``grpc.health.v1`` health (overall and per hosted mark) and server reflection.
SIGTERM/SIGINT drain it: health turns NOT_SERVING, new sessions are refused,
sessions finish the work they received within the grace period and end with
UNAVAILABLE so clients move elsewhere, nodes are destroyed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ... import __version__
from ...core._values import thaw_value
from ...core.errors import WireError
from .._arrays import CompressionConfig, available_compressions
from .._frames import decode_frame
from .._packed import tree_formats
from .._security import TokenAuth, security_summary
from .._wire.v1 import session_pb2 as spb
from ._catalogue import Catalogue, Plan, Refusal
from ._config import ServerConfig
from ._describe import describe_specs, fill_node_info
from ._hosted import HostedGraph, HostedNode
from ._juturna import JuturnaService
from ._metrics import ServerMetrics
from ._session import ServerSession, StreamEnd
from ._worker import GraphWorker

__all__ = ["RemoteServer"]

log = logging.getLogger(__name__)

SERVICE = "fontus.v1.Remote"
#: Most nodes one Open may ask for: each is built and warmed up for the session.  A
#: remote group is a handful of nodes; without a bound one Open could ask for millions.
MAX_GRAPH_NODES = 256
#: Shortest heartbeat period a client may ask for.
MIN_HEARTBEAT_MS = 100


class RemoteServer:
    """Hosts a catalogue of nodes; one instance per ``fontus serve`` process."""

    def __init__(self, catalogue: Catalogue, config: ServerConfig | None = None) -> None:
        self.catalogue = catalogue
        self.config = config or ServerConfig()
        #: Value-tree forms offered to clients for their requests (FONTUS_VALUE_TREES).
        self.tree_formats = tree_formats()
        self.sessions: dict[str, ServerSession] = {}
        self.sessions_total = 0
        self.draining = False
        self.started_at = time.monotonic()
        self.port = 0
        self._shared: dict[str, GraphWorker] = {}
        self._shared_lock = asyncio.Lock()
        self._server: grpc.aio.Server | None = None
        self._health = HealthServicer()
        self._session_tasks: set[asyncio.Task[Any]] = set()
        self._closed_sessions: list[ServerSession] = []
        # Opens past the --max-sessions check whose nodes are still being built.
        self._opening = 0
        self.juturna = JuturnaService(self)
        #: Prometheus metrics; None unless ``metrics_port`` is set (then nothing is recorded).
        self.metrics: ServerMetrics | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> int:
        cfg = self.config
        if cfg.metrics_port:
            self.metrics = ServerMetrics.start(self, cfg.metrics_host, cfg.metrics_port)
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Answer client keepalive pings often enough for a 5 s dead-peer bound.
            ("grpc.http2.min_ping_interval_without_data_ms", 1000),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        # Bearer tokens are checked per call (a session is one call), before any handler runs.
        interceptors = [TokenAuth(cfg.tokens)] if cfg.tokens else []
        server = grpc.aio.server(options=options, interceptors=interceptors)
        handlers = {
            "Session": grpc.stream_stream_rpc_method_handler(self._session_rpc),
            "Describe": grpc.unary_unary_rpc_method_handler(
                self._describe,
                request_deserializer=spb.DescribeRequest.FromString,
                response_serializer=spb.Description.SerializeToString,
            ),
            "Stats": grpc.unary_unary_rpc_method_handler(
                self._stats,
                request_deserializer=spb.StatsRequest.FromString,
                response_serializer=spb.StatsReply.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers), self.juturna.handler())
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        self.port = self._bind(server)
        await server.start()
        self._server = server
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        for mark in self.catalogue.marks():
            await self._health.set(f"{SERVICE}/{mark}", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "listening on %s:%d (%s, %s sessions, %s)",
            cfg.host,
            self.port,
            self.catalogue.hosting,
            cfg.sessions,
            security_summary(cfg),
        )
        return self.port

    def _bind(self, server: grpc.aio.Server) -> int:
        from .._security import server_credentials  # TLS is optional; imported when used

        address = self.config.address
        credentials = server_credentials(self.config)
        try:
            port = (
                server.add_secure_port(address, credentials)
                if credentials
                else server.add_insecure_port(address)
            )
        except RuntimeError:
            port = 0  # grpc raises "Failed to bind" where older versions returned 0
        if port == 0:
            raise OSError(
                f"could not listen on {address}: the port is in use or the address is not local"
            )
        return port

    async def drain(self, grace_s: float | None = None) -> None:
        """Refuse new sessions, let current ones finish received work, then stop."""
        grace = self.config.grace_s if grace_s is None else grace_s
        if self.draining:
            return
        self.draining = True
        log.info("draining: %d sessions, grace %.1fs", len(self.sessions), grace)
        await self._health.enter_graceful_shutdown()
        for session in list(self.sessions.values()):
            session.drain(grace)
        deadline = time.monotonic() + grace
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.stop(0.5)

    async def stop(self, grace_s: float = 0.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
        await self.juturna.close()
        if self.metrics is not None:
            self.metrics.close()
        for worker in self._shared.values():
            worker.shared = False  # so that the worker destroys the shared graph
            worker.stop()
        for worker in self._shared.values():
            await asyncio.to_thread(worker.thread.join, 10.0)
        self._shared.clear()

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    # -- Session ---------------------------------------------------------------------
    async def _session_rpc(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        frames = request_iterator.__aiter__()
        try:
            first = await asyncio.wait_for(frames.__anext__(), self.config.open_timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no Open frame within {self.config.open_timeout_s:g}s of starting the stream",
            )
            return
        try:
            session, release = await self._open(first, context)
        except Refusal as refusal:
            log.info("session refused (%s): %s", refusal.code, refusal.detail)
            await context.abort(getattr(grpc.StatusCode, refusal.code), refusal.detail)
            return
        reader: asyncio.Task[None] | None = None
        end = StreamEnd()
        try:
            # Inside the try: a client that cancels while Opened is being sent must
            # still free its session (worker thread, nodes).
            yield self._opened_frame(session, release)
            reader = asyncio.create_task(session.read(frames))
            async for out in session.frames():
                if isinstance(out, StreamEnd):
                    end = out
                    break
                yield out
            if end.code:
                # Before the cleanup below: drain() stops the server once no session is
                # left, and the client must get this status, not a connection torn down.
                await context.abort(getattr(grpc.StatusCode, end.code), end.detail)
        finally:
            if reader is not None:
                reader.cancel()
            session.close()
            self.sessions.pop(session.id, None)
            release()
            if self.metrics is not None:
                self.metrics.closed(session)
            log.info(
                "session %s (%s) ended: %d requests, %d outputs, %d failures",
                session.id,
                session.client,
                session.stats.requests,
                session.stats.outputs,
                session.stats.failures,
            )
            self._closed_sessions.append(session)
            del self._closed_sessions[:-256]

    async def _open(
        self, data: bytes, context: grpc.aio.ServicerContext
    ) -> tuple[ServerSession, Any]:
        frame = spb.ClientFrame()
        try:
            decoder = decode_frame(data, frame, self.config.limits)
        except WireError as exc:
            raise Refusal("INVALID_ARGUMENT", f"malformed Open frame: {exc}") from None
        if frame.WhichOneof("kind") != "open":
            raise Refusal("FAILED_PRECONDITION", "the first frame of a session must be Open")
        if self.draining:
            raise Refusal("UNAVAILABLE", "server is draining; connect to another replica")
        if len(self.sessions) + self._opening >= self.config.max_sessions:
            raise Refusal(
                "RESOURCE_EXHAUSTED",
                f"server has its --max-sessions limit of {self.config.max_sessions} sessions open; "
                "try another replica",
            )
        op = frame.open
        try:
            plan = self._plan(op, decoder)
        except WireError as exc:
            raise Refusal("INVALID_ARGUMENT", f"Open: {exc}") from None
        compression = "none"
        if op.compression and op.compression != "none":
            if op.compression not in available_compressions():
                raise Refusal(
                    "INVALID_ARGUMENT",
                    f"compression {op.compression!r} is not available on this server",
                )
            compression = op.compression
        # The slot is held while nodes are built, so that Opens arriving together cannot
        # all pass the check above; the session is registered right after, with no await.
        self._opening += 1
        try:
            worker, release = await self._worker_for(plan)
        finally:
            self._opening -= 1
        window = max(1, min(op.window or 1, self.config.max_window))
        session = ServerSession(
            client=op.client or context.peer(),
            window=window,
            worker=worker,
            entry_name=plan.entry_name,
            limits=self.config.limits,
            compression=CompressionConfig(compression),
            loop=asyncio.get_running_loop(),
            inline=self.config.inline_light and self.config.sessions == "isolated" and worker.light,
            pack_trees="msgpack" in self.tree_formats and "msgpack" in op.value_formats,
            parts_out=op.frame_parts,
            tails_out=op.frame_tails,
            tail_refs=op.tail_refs,
            sized_tails=op.sized_tails,
            max_frame_bytes=self.config.max_message_bytes,
        )
        session.plan = plan
        # Bounded below so a client cannot make the server spin on heartbeats.
        session.heartbeat_s = (
            max(op.heartbeat_ms, MIN_HEARTBEAT_MS) / 1000.0 if op.heartbeat_ms else 0.0
        )
        self.sessions[session.id] = session
        self.sessions_total += 1
        if self.metrics is not None:
            self.metrics.opened(session)
        log.info(
            "session %s opened by %s: %s, window %d, %s, outputs' value trees as %s",
            session.id,
            session.client,
            ", ".join(f"{n.name}={n.spec.mark}" for n in plan.nodes),
            window,
            "light: on the event loop" if session.inline else "on a worker thread",
            "MessagePack" if session.pack_trees else "columns",
        )
        return session, release

    def _plan(self, op: Any, decoder: Any) -> Plan:
        which = op.WhichOneof("target")
        if which == "graph":
            g = op.graph
            if len(g.nodes) > MAX_GRAPH_NODES:
                raise Refusal(
                    "INVALID_ARGUMENT",
                    f"graph has {len(g.nodes)} nodes, over the limit of {MAX_GRAPH_NODES}",
                )
            nodes = [
                (n.name, n.mark, thaw_value(decoder.value_map(n.configuration, "configuration")))
                for n in g.nodes
            ]
            return self.catalogue.plan_graph(
                nodes, [(link.source, link.target) for link in g.links], list(g.exits)
            )
        if which == "node":
            n = op.node
            conf = thaw_value(decoder.value_map(n.configuration, "configuration"))
            return self.catalogue.plan_node(n.name, n.mark, conf)
        if self.catalogue.pipeline is not None:
            return self.catalogue.hosted_pipeline_plan()
        if self.catalogue.node:
            return self.catalogue.plan_node(self.catalogue.node, "", {})
        raise Refusal("INVALID_ARGUMENT", "Open names no node or graph")

    async def _worker_for(self, plan: Plan) -> tuple[GraphWorker, Any]:
        if self.config.sessions == "shared":
            async with self._shared_lock:
                worker = self._shared.get(plan.key)
                if worker is None:
                    worker = await asyncio.to_thread(_build_worker, plan, True, self.metrics)
                    self._shared[plan.key] = worker
            return worker, lambda: None
        worker = await asyncio.to_thread(_build_worker, plan, False, self.metrics)
        return worker, worker.stop

    def _opened_frame(self, session: ServerSession, release: Any) -> bytes:
        frame = spb.ServerFrame()
        op = frame.opened
        op.session_id = session.id
        op.window = session.window
        op.server_version = __version__
        op.session_mode = self.config.sessions
        op.compression = session.compression.algorithm
        op.value_formats.extend(self.tree_formats)
        op.frame_parts = True
        op.frame_tails = True
        for node in session.plan.nodes:
            fill_node_info(op.nodes.add(), node.spec, node.name)
        return frame.SerializeToString()

    # -- Describe and Stats -------------------------------------------------------------
    async def _describe(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        reply = describe_specs(self.catalogue.specs())
        reply.server_version = __version__
        reply.session_mode = self.config.sessions
        reply.hosting = self.catalogue.hosting
        reply.max_window = self.config.max_window
        reply.max_message_bytes = self.config.max_message_bytes
        reply.encodings.extend(available_compressions())
        reply.value_formats.extend(self.tree_formats)
        reply.max_sessions = self.config.max_sessions
        reply.active_sessions = len(self.sessions)
        return reply

    async def _stats(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        reply = spb.StatsReply(
            uptime_s=time.monotonic() - self.started_at,
            active_sessions=len(self.sessions),
            sessions_total=self.sessions_total,
        )
        for session in [*self._closed_sessions, *self.sessions.values()]:
            st = session.stats
            reply.requests_total += st.requests
            reply.failures_total += st.failures
        active = set(self.sessions)
        for session in [*self._closed_sessions[-32:], *self.sessions.values()]:
            st = session.stats
            p50, p99 = st.latency.quantiles(0.5, 0.99)
            for node in session.plan.nodes:
                reply.nodes.add(
                    session_id=session.id,
                    node=node.name,
                    mark=node.spec.mark,
                    requests=st.requests,
                    outputs=st.outputs,
                    failures=st.failures,
                    p50_ms=p50 * 1000,
                    p99_ms=p99 * 1000,
                    bytes_in=st.bytes_in,
                    bytes_out=st.bytes_out,
                    tails=st.tails,
                    tail_refs=st.tail_refs,
                    queue_depth=session.in_flight if session.id in active else 0,
                    client=session.client,
                    active=session.id in active,
                )
        return reply


def _build_worker(plan: Plan, shared: bool, metrics: ServerMetrics | None) -> GraphWorker:
    """Build and warm up the plan's nodes (runs in a thread: constructors and warmup may be slow)."""
    hosted = []
    for node in plan.nodes:
        try:
            instance = node.spec.build(dict(node.arguments))
        except Exception as exc:  # noqa: BLE001 - reported to the client as a refusal
            raise Refusal(
                "INVALID_ARGUMENT",
                f"node '{node.name}' (mark '{node.spec.mark}') could not be built: {type(exc).__name__}: {exc}",
            ) from None
        hosted.append(HostedNode(node.name, node.spec.mark, instance))
    graph = HostedGraph(hosted, plan.links, plan.exits)
    try:
        graph.warmup()
    except Exception as exc:  # noqa: BLE001 - reported to the client as a refusal
        graph.destroy()
        raise Refusal("INTERNAL", f"warmup failed: {type(exc).__name__}: {exc}") from None
    worker = GraphWorker(
        graph, plan.entry_name, shared=shared, metrics=metrics.for_plan(plan) if metrics else None
    )
    worker.start()
    return worker

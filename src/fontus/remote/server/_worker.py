"""``GraphWorker``: the thread that runs a hosted graph's node code for its sessions.

Node code is synchronous; the gRPC side runs on an asyncio loop.  This is
the bridge: sessions submit work (requests, configure, close) in order, the
worker runs it and hands encoded results back to each session, which queues
them for its writer on the loop (``SessionSink.push`` is thread-safe).
Encoding outputs happens here, off the event loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...core.errors import WireError
from ...core.message import Message
from ...core.payloads import ConfigPayload
from .._wire.v1 import session_pb2 as spb
from ._hosted import HostedGraph
from ._metrics import WorkerMetrics
from ._stats import SessionStats


class SessionSink(Protocol):
    """What the worker reports to: a Fontus stream session or a Juturna caller."""

    id: str
    entry_name: str
    stats: SessionStats
    #: True once nobody will read the results: the worker skips its queued work.
    closed: bool

    def output(self, seq: int, exit_name: str, message: Message[Any]) -> None: ...
    def done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None: ...
    def failed(self, seq: int, code: int, detail: str) -> None: ...
    def finish(self, code: str = "", detail: str = "") -> None: ...


__all__ = ["GraphWorker", "SessionSink", "Work"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Work:
    kind: str  # "request", "configure", "close" (client half-close), "drained" (server drain)
    session: SessionSink
    seq: int = 0
    target: str = ""
    decode: Any = None  # () -> Message, run on the worker
    changes: ConfigPayload | None = None
    arrival: float = field(default_factory=time.monotonic)
    deadline: float = 0.0


class GraphWorker:
    """Runs one :class:`HostedGraph` on its own thread."""

    def __init__(
        self,
        graph: HostedGraph,
        name: str,
        shared: bool = False,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.graph = graph
        self.shared = shared
        self.metrics = metrics  # None when the server exposes no metrics
        self.queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"fontus-worker-{name}", daemon=True)
        # Work submitted (counted on the loop) and finished (counted on this thread).
        self.submitted = 0
        self.finished = 0
        self._current: SessionSink | None = None
        self._outputs = 0
        graph.bind(self._on_output)

    def start(self) -> None:
        self.thread.start()

    def submit(self, work: Work) -> None:
        """Queue ``work`` (called on the server's loop only: ``submitted`` has one writer)."""
        self.submitted += 1
        self.queue.put(work)

    @property
    def idle(self) -> bool:
        """Nothing submitted is queued or running (see ServerSession._submit)."""
        return self.finished == self.submitted

    def stop(self) -> None:
        """Destroy the graph after the queued work (a node's ``sleep`` ends at once)."""
        self.graph.stop()
        self.queue.put(None)

    def _on_output(self, seq: int, exit_name: str, message: Message[Any]) -> None:
        session = self._current
        if session is None:
            log.warning("output of '%s' emitted while no session is current; dropped", exit_name)
            return
        self._outputs += 1
        if seq == 0:
            session.stats.outputs += 1  # outputs of update() are counted with their request
        session.output(seq, exit_name, message)

    @property
    def light(self) -> bool:
        """Whether every node of the graph is declared ``light`` (see :meth:`handle`)."""
        return all(type(h.node).light for h in self.graph.nodes.values())

    def _run(self) -> None:
        while True:
            work = self.queue.get()
            if work is None:
                if not self.shared:
                    for error in self.graph.destroy():
                        log.warning("%s", error)
                return
            self.handle(work)
            self.finished += 1

    def handle(self, work: Work) -> None:
        """Run one piece of work now, on the calling thread.

        The worker thread runs everything submitted to it this way.  A session whose
        nodes are all ``light`` calls it directly on the server's event loop instead
        (never both at once: a session runs work inline only while its worker is idle).
        """
        session = work.session
        if session.closed and work.kind in ("request", "configure"):
            return  # the stream has ended (client gone): nobody would read the results
        self._current = session
        try:
            if work.kind == "request":
                self._request(work)
            elif work.kind == "configure":
                self._configure(work)
            elif work.kind == "close":
                if not self.shared:
                    self.graph.flush()
                session.finish()
            elif work.kind == "drained":
                session.finish("UNAVAILABLE", "server is draining; reconnect to another replica")
        except Exception as exc:
            log.exception("session %s: worker error", session.id)
            self._failed(session, work.seq, spb.FAIL_NODE_ERROR, f"{type(exc).__name__}: {exc}")
            if work.kind == "close":
                session.finish()

    def _request(self, work: Work) -> None:
        session = work.session
        start = time.monotonic()
        queued = start - work.arrival
        if work.deadline and start > work.deadline:
            session.stats.deadline_missed += 1
            self._failed(
                session,
                work.seq,
                spb.FAIL_DEADLINE_EXCEEDED,
                f"deadline passed {1000 * (start - work.deadline):.0f} ms before the request's turn",
            )
            return
        if self._unknown_target(work):
            return
        try:
            message = work.decode()
        except WireError as exc:
            self._failed(session, work.seq, spb.FAIL_INVALID_MESSAGE, str(exc))
            return
        self._outputs = 0
        t0 = time.perf_counter()
        try:
            self.graph.process(work.seq, work.target, message)
        except Exception as exc:  # noqa: BLE001 - a node exception fails this request only
            compute = time.perf_counter() - t0
            session.stats.record(compute, failed=True)
            name = work.target or session.entry_name
            self._failed(
                session,
                work.seq,
                spb.FAIL_NODE_ERROR,
                f"node '{name}': update() raised {type(exc).__name__}: {exc}",
            )
            return
        compute = time.perf_counter() - t0
        session.stats.record(compute, failed=False, outputs=self._outputs)
        session.done(work.seq, queued, compute, self._outputs)
        if self.metrics is not None:
            self.metrics.done(compute, time.monotonic() - work.arrival)

    def _failed(self, session: SessionSink, seq: int, code: int, detail: str) -> None:
        if self.metrics is not None:
            self.metrics.failed(code)
        session.failed(seq, code, detail)

    def _unknown_target(self, work: Work) -> bool:
        """Fail ``work`` when it names a node the graph lacks (a client error, not a node's)."""
        if not work.target or work.target in self.graph.nodes:
            return False
        self._failed(
            work.session,
            work.seq,
            spb.FAIL_INVALID_MESSAGE,
            f"{work.kind} target '{work.target}' is not a node of this session; "
            f"its nodes: {', '.join(self.graph.nodes)}",
        )
        return True

    def _configure(self, work: Work) -> None:
        session = work.session
        assert work.changes is not None
        if self._unknown_target(work):
            return
        try:
            self.graph.configure(work.seq, work.target, work.changes)
        except Exception as exc:  # noqa: BLE001 - reported to the client as this seq's failure
            session.failed(
                work.seq,
                spb.FAIL_NODE_ERROR,
                f"node '{work.target or session.entry_name}': set_on_config raised "
                f"{type(exc).__name__}: {exc}",
            )
            return
        session.done(work.seq, 0.0, 0.0, 0)

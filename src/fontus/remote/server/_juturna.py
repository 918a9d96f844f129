"""Juturna's remotizer protocol on a Fontus server: ``MessagingService/SendAndReceive``.

Each unary call carries one message in a ``ProtoEnvelope``.  The hosted node
processes it on the same worker machinery as Fontus sessions; the reply
carries the first output in ``message`` and the output count in ``metadata``
(``outputs``), so a node that emits nothing answers at once instead of timing
out.  ``sender`` keys one isolated session per client (or every sender shares
the one instance with ``--sessions shared``).  Errors use the status codes
Juturna clients expect: INVALID_ARGUMENT, DEADLINE_EXCEEDED, INTERNAL.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import grpc

from ...core._values import thaw_value
from ...core.errors import WireError
from ...core.message import Message
from .._wire.v1 import session_pb2 as spb
from ..juturna import (
    SEND_AND_RECEIVE,
    envelope_from_bytes,
    envelope_message,
    envelope_to_bytes,
    make_reply_envelope,
    read_struct,
)
from ._catalogue import Plan, Refusal
from ._stats import SessionStats
from ._worker import GraphWorker, Work

if TYPE_CHECKING:
    from ._server import RemoteServer

__all__ = ["JuturnaService"]

log = logging.getLogger(__name__)

#: Juturna's rules for ``ttl``: 0 means 30 s; anything above 300 s is capped.
DEFAULT_TTL_S = 30
MAX_TTL_S = 300
#: A Juturna client never says goodbye: its session is closed after this much silence.
IDLE_SESSION_S = 600.0

_ids = itertools.count(1)


class JuturnaSession:
    """The Fontus-side state of one Juturna sender."""

    def __init__(
        self, sender: str, worker: GraphWorker, plan: Plan, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.id = f"j{next(_ids)}-{sender}"
        self.client = sender
        self.worker = worker
        self.plan = plan
        self.entry_name = plan.entry_name
        self.loop = loop
        self.stats = SessionStats()
        self.seq = itertools.count(1)
        self.waiting: dict[int, tuple[asyncio.Future[Any], list[Message[Any]]]] = {}
        self.last_used = time.monotonic()
        self.in_flight = 0
        self.configuration: dict[str, Any] = {}
        #: SessionSink: each call waits for its own result, so none is ever abandoned.
        self.closed = False

    # -- SessionSink (worker thread) ----------------------------------------------
    def output(self, seq: int, exit_name: str, message: Message[Any]) -> None:
        entry = self.waiting.get(seq)
        if entry is not None:
            entry[1].append(message)

    def done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        self._resolve(seq, ("done", compute_s))

    def failed(self, seq: int, code: int, detail: str) -> None:
        self._resolve(seq, ("failed", code, detail))

    def finish(self, code: str = "", detail: str = "") -> None:
        pass

    def _resolve(self, seq: int, value: tuple[Any, ...]) -> None:
        entry = self.waiting.get(seq)
        if entry is None:
            return
        future = entry[0]
        self.loop.call_soon_threadsafe(_set_result, future, value)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class JuturnaService:
    """Serves SendAndReceive for a RemoteServer hosting one node (or one allowed mark)."""

    def __init__(self, server: RemoteServer) -> None:
        self.server = server
        self.sessions: dict[str, JuturnaSession] = {}
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    def handler(self) -> grpc.GenericRpcHandler:
        service, method = SEND_AND_RECEIVE.strip("/").split("/")
        return grpc.method_handlers_generic_handler(
            service, {method: grpc.unary_unary_rpc_method_handler(self.send_and_receive)}
        )

    def _mark(self) -> str:
        catalogue = self.server.catalogue
        if catalogue.node:
            return catalogue.node
        marks = catalogue.marks()
        if len(marks) == 1 and catalogue.allow:
            return marks[0]
        raise Refusal(
            "INVALID_ARGUMENT",
            "this server hosts several marks; a Juturna client cannot name one — "
            "start it with 'fontus serve --node MARK' (or 'fontus remotize -m MARK')",
        )

    async def _session(self, sender: str, configuration: dict[str, Any]) -> JuturnaSession:
        shared = self.server.config.sessions == "shared"
        key = "*" if shared else sender
        async with self._lock:
            session = self.sessions.get(key)
            if session is None:
                if (
                    len(self.sessions) + len(self.server.sessions)
                    >= self.server.config.max_sessions
                ):
                    raise Refusal("RESOURCE_EXHAUSTED", "server is at its --max-sessions limit")
                plan = self.server.catalogue.plan_node(
                    self._mark(), self._mark(), {} if shared else configuration
                )
                worker, _release = await self.server._worker_for(plan)
                session = JuturnaSession(sender, worker, plan, asyncio.get_running_loop())
                session.configuration = dict(configuration)
                self.sessions[key] = session
                log.info("juturna session %s opened for sender %r", session.id, sender)
                if self._reaper is None:
                    self._reaper = asyncio.create_task(self._reap())
        return session

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SESSION_S / 10)
            now = time.monotonic()
            async with self._lock:
                for key, session in list(self.sessions.items()):
                    if session.in_flight == 0 and now - session.last_used > IDLE_SESSION_S:
                        del self.sessions[key]
                        if self.server.config.sessions != "shared":
                            session.worker.stop()
                        log.info(
                            "juturna session %s closed after %.0fs idle", session.id, IDLE_SESSION_S
                        )

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for session in self.sessions.values():
            if self.server.config.sessions != "shared":
                session.worker.stop()
        self.sessions.clear()

    async def send_and_receive(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = envelope_from_bytes(data, max_bytes=self.server.config.max_message_bytes)
        except WireError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not request.sender:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "envelope.sender is empty; Juturna requires one"
            )
        if self.server.draining:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "server is draining; connect to another replica"
            )
        ttl = request.ttl if request.ttl > 0 else DEFAULT_TTL_S
        ttl = min(ttl, MAX_TTL_S)
        try:
            message = envelope_message(request, limits=self.server.config.limits)
            configuration = (
                dict(
                    thaw_value(
                        read_struct(request.configuration, "envelope.configuration", ints=True)
                    )
                )
                if request.configuration.fields
                else {}
            )
        except WireError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if message is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "envelope carries no message")
        try:
            session = await self._session(request.sender, configuration)
        except Refusal as refusal:
            await context.abort(getattr(grpc.StatusCode, refusal.code), refusal.detail)
        assert message is not None
        session.last_used = time.monotonic()
        loop = asyncio.get_running_loop()
        if (
            configuration
            and configuration != session.configuration
            and self.server.config.sessions != "shared"
        ):
            # A changed remote_config is applied in order with the requests (set_on_config).
            await self._configure(session, configuration, loop)
        seq = next(session.seq)
        future: asyncio.Future[Any] = loop.create_future()
        outputs: list[Message[Any]] = []
        session.waiting[seq] = (future, outputs)
        session.in_flight += 1
        session.stats.requests += 1
        session.stats.bytes_in += len(data)
        now = time.monotonic()
        session.worker.submit(
            Work("request", session, seq, "", lambda: message, arrival=now, deadline=now + ttl)
        )
        try:
            result = await asyncio.wait_for(future, ttl + 1.0)
        except TimeoutError:
            result = ("failed", spb.FAIL_DEADLINE_EXCEEDED, f"no answer within ttl {ttl}s")
        finally:
            session.waiting.pop(seq, None)
            session.in_flight -= 1
        if result[0] == "failed":
            code = result[1]
            status = (
                grpc.StatusCode.DEADLINE_EXCEEDED
                if code == spb.FAIL_DEADLINE_EXCEEDED
                else (
                    grpc.StatusCode.INVALID_ARGUMENT
                    if code == spb.FAIL_INVALID_MESSAGE
                    else grpc.StatusCode.INTERNAL
                )
            )
            await context.abort(status, result[2])
        metadata = {"outputs": len(outputs), "processing_time": result[1], "session": session.id}
        first = outputs[0] if outputs else None
        try:
            reply = make_reply_envelope(request, first, metadata, sender=session.entry_name)
        except WireError as exc:
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"the node's output cannot travel on Juturna's wire: {exc}",
            )
        out = envelope_to_bytes(reply)
        session.stats.bytes_out += len(out)
        return out

    async def _configure(
        self, session: JuturnaSession, configuration: dict[str, Any], loop: Any
    ) -> None:
        from ...core.payloads import ConfigPayload

        changes = {k: v for k, v in configuration.items() if session.configuration.get(k) != v}
        session.configuration = dict(configuration)
        seq = next(session.seq)
        future: asyncio.Future[Any] = loop.create_future()
        session.waiting[seq] = (future, [])
        session.worker.submit(Work("configure", session, seq, "", changes=ConfigPayload(changes)))
        try:
            result = await asyncio.wait_for(future, DEFAULT_TTL_S)
        finally:
            session.waiting.pop(seq, None)
        if result[0] == "failed":
            log.warning(
                "juturna session %s: configuration change failed: %s", session.id, result[2]
            )

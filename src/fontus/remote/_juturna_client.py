"""The client side of Juturna's protocol: a Warp calling an upstream ``juturna remotize``.

Same interface as :class:`~fontus.remote._stream.RemoteStream`, so the Warp's
window, ordering and delivery are the same: each request is one unary
``SendAndReceive`` call, up to ``window`` of them in flight (pipelined as far
as the upstream server allows), and outputs are released in request order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc

from ..core.errors import RemoteError, WireError
from ..core.message import Message
from ._errors import from_status
from ._limits import WireLimits
from ._stream import ResultSink
from ._wire.v1 import session_pb2 as spb
from .juturna import (
    SEND_AND_RECEIVE,
    envelope_from_bytes,
    envelope_message,
    envelope_to_bytes,
    make_request_envelope,
    read_struct,
)

__all__ = ["JuturnaItem", "JuturnaTransport", "encode_juturna_request", "probe_protocol"]

log = logging.getLogger(__name__)

DESCRIBE_METHOD = "/fontus.v1.Remote/Describe"


@dataclass(slots=True)
class JuturnaItem:
    seq: int
    data: bytes
    size: int


def encode_juturna_request(
    seq: int,
    message: Message[Any],
    sender: str,
    timeout: float,
    configuration: dict[str, Any] | None,
) -> JuturnaItem:
    """One request envelope (encoded on the Warp's node thread)."""
    envelope = make_request_envelope(
        message, sender, ttl=math.ceil(timeout), configuration=configuration
    )
    data = envelope_to_bytes(envelope)
    return JuturnaItem(seq, data, len(data))


async def probe_protocol(
    channel: grpc.aio.Channel,
    timeout: float,
    where: str,
    metadata: tuple[tuple[str, str], ...] = (),
) -> str:
    """``"fontus"`` when the server answers Fontus's Describe, ``"juturna"`` when it does not know it."""
    describe = channel.unary_unary(
        DESCRIBE_METHOD,
        request_serializer=spb.DescribeRequest.SerializeToString,
        response_deserializer=spb.Description.FromString,
    )
    try:
        await describe(
            spb.DescribeRequest(), timeout=timeout, wait_for_ready=True, metadata=metadata or None
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return "juturna"
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise from_status(
                grpc.StatusCode.UNAVAILABLE,
                f"no answer within {timeout:.1f}s (connection refused?)",
                where,
            ) from None
        raise from_status(exc.code(), exc.details(), where) from None
    return "fontus"


class JuturnaTransport:
    """Unary calls to an upstream Juturna service; results go to the Warp's tracker."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        sink: ResultSink,
        where: str,
        timeout: float,
        limits: WireLimits,
    ) -> None:
        self.channel = channel
        self.sink = sink
        self.where = where
        self.timeout = timeout
        self.limits = limits
        self.method = channel.unary_unary(SEND_AND_RECEIVE)
        self.tasks: set[asyncio.Task[None]] = set()
        self.bytes_out = 0
        self.bytes_in = 0
        self._closed = False
        self._warned_outputs = False

    async def open(self, open_frame: bytes, timeout: float) -> Any:
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except TimeoutError:
            raise from_status(
                grpc.StatusCode.UNAVAILABLE, f"could not connect within {timeout:.1f}s", self.where
            ) from None
        return SimpleNamespace(session_id="juturna", window=0)

    def send(self, item: JuturnaItem | bytes | None) -> None:
        if item is None:
            self._closed = True
            task = asyncio.create_task(self._finish())
        elif isinstance(item, bytes):
            return  # control frames have no Juturna equivalent (configuration travels per request)
        else:
            task = asyncio.create_task(self._call(item))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def release_after_write(self, lock: threading.Lock) -> None:
        """Each call is its own task, started by send: nothing to wait for (see Warp._send)."""
        lock.release()

    async def _finish(self) -> None:
        pending = [t for t in self.tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.sink.on_end(None)

    async def _call(self, item: JuturnaItem) -> None:
        sink = self.sink
        self.bytes_out += item.size
        try:
            data = await self.method(item.data, timeout=self.timeout + 1.0)
        except grpc.aio.AioRpcError as exc:
            error = from_status(exc.code(), exc.details(), self.where)
            code = (
                spb.FAIL_DEADLINE_EXCEEDED
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                else spb.FAIL_NODE_ERROR
            )
            sink.on_failed(item.seq, code, str(error))
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                log.warning("%s", error)
            return
        except asyncio.CancelledError:
            raise
        self.bytes_in += len(data)
        try:
            reply = envelope_from_bytes(data)
            message = envelope_message(reply, limits=self.limits)
            metadata = (
                read_struct(reply.metadata, "reply.metadata") if reply.metadata.fields else {}
            )
        except WireError as exc:
            sink.on_failed(
                item.seq, spb.FAIL_INVALID_MESSAGE, f"{self.where}: malformed reply: {exc}"
            )
            return
        if message is not None:
            sink.on_output(item.seq, "", lambda: message)
        emitted = metadata.get("outputs")
        if isinstance(emitted, float) and emitted > 1 and not self._warned_outputs:
            # A Fontus server answering on Juturna's wire says how many outputs the node
            # made; the wire carries one, so say once that the rest do not arrive.
            self._warned_outputs = True
            log.warning(
                "%s: the remote node emitted %d outputs for one request; Juturna's protocol "
                "carries only the first. Use protocol 'fontus' to receive them all",
                self.where,
                int(emitted),
            )
        compute = float(metadata.get("processing_time", 0.0) or 0.0)
        sink.on_done(item.seq, 0.0, compute, 1 if message is not None else 0)

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()


# RemoteError is part of this module's contract through from_status.
_ = RemoteError

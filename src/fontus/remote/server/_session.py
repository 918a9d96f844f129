"""``ServerSession``: one client stream — reading requests, enforcing the protocol, writing results.

Runs on the server's event loop.  Requests go to a :class:`GraphWorker` in
order; encoded results come back through :meth:`push` (thread-safe) and are
coalesced into frames by the writer.  Protocol violations end the stream with
a precise status; they never touch other sessions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ...core.errors import WireError
from ...core.payloads import ConfigPayload
from .._arrays import CompressionConfig
from .._frames import (
    EncodedItem,
    decode_frame,
    encode_done,
    encode_failed,
    encode_output,
    item_decoder,
    join_results,
)
from .._limits import WireLimits
from .._wire.v1 import session_pb2 as spb
from ._stats import SessionStats
from ._worker import GraphWorker, Work

__all__ = ["MAX_COALESCE_BYTES", "MAX_COALESCE_ITEMS", "ServerSession", "SessionStats", "StreamEnd"]

log = logging.getLogger(__name__)

#: Results coalesced into one frame at most: enough to amortise per-frame cost
#: of small messages, small enough that a frame never waits long.
MAX_COALESCE_ITEMS = 256
MAX_COALESCE_BYTES = 4 * 1024 * 1024

_ids = itertools.count(1)


@dataclass(frozen=True)
class StreamEnd:
    """Put on the result queue last; ``code`` set when the stream ends with an error status."""

    code: str = ""
    detail: str = ""


class ProtocolError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ServerSession:
    """State of one ``Session`` stream."""

    def __init__(
        self,
        *,
        client: str,
        window: int,
        worker: GraphWorker,
        entry_name: str,
        limits: WireLimits,
        compression: CompressionConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.id = f"s{next(_ids)}-{int(time.time()) % 100000}"
        self.client = client
        self.window = window
        self.worker = worker
        self.entry_name = entry_name
        self.limits = limits
        self.compression = compression
        self.loop = loop
        self.results: asyncio.Queue[EncodedItem | StreamEnd | bytes] = asyncio.Queue()
        self.stats = SessionStats()
        self.in_flight = 0
        self.last_seq = 0
        self.draining = False
        self.opened_at = time.monotonic()
        #: The Plan the session runs (set by the server when it opens the session).
        self.plan: Any = None

    # -- called from the worker thread -----------------------------------------
    def output(self, seq: int, exit_name: str, message: Any) -> None:
        self.push(encode_output(seq, message, exit_name, self.compression))

    def done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        self.push(encode_done(seq, queue_s, compute_s, outputs))

    def failed(self, seq: int, code: int, detail: str) -> None:
        self.push(encode_failed(seq, code, detail))

    def push(self, item: EncodedItem | StreamEnd | bytes) -> None:
        self.loop.call_soon_threadsafe(self.results.put_nowait, item)

    def finish(self, code: str = "", detail: str = "") -> None:
        self.push(StreamEnd(code, detail))

    # -- reading ---------------------------------------------------------------
    async def read(self, frames: AsyncIterator[bytes]) -> None:
        """Consume client frames until half-close; errors end the stream via the result queue."""
        try:
            async for data in frames:
                self.stats.bytes_in += len(data)
                if self._frame(data):
                    break
        except ProtocolError as exc:
            log.warning("session %s (%s): %s", self.id, self.client, exc.detail)
            self.push(StreamEnd(exc.code, exc.detail))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken stream ends this session only
            log.info("session %s (%s): stream broke: %s", self.id, self.client, exc)
            self.push(StreamEnd("CANCELLED", f"client stream broke: {exc}"))
            return
        if not self.draining:
            self.worker.submit(Work("close", self))

    def drain(self, grace_s: float) -> None:
        """Stop taking requests; finish those received, then end with UNAVAILABLE."""
        if self.draining:
            return
        self.draining = True
        frame = spb.ServerFrame()
        frame.draining.grace_s = grace_s
        frame.draining.reason = "server is shutting down"
        self.results.put_nowait(frame.SerializeToString())
        self.worker.submit(Work("drained", self))

    def _frame(self, data: bytes) -> bool:
        """Handle one client frame; True when the client closed its side."""
        frame = spb.ClientFrame()
        try:
            decoder = decode_frame(data, frame, self.limits)
        except WireError as exc:
            raise ProtocolError("INVALID_ARGUMENT", f"malformed frame: {exc}") from None
        kind = frame.WhichOneof("kind")
        if self.draining and kind in ("requests", "configure"):
            return False  # not run here: the client replays them on another replica
        if kind == "requests":
            now = time.monotonic()
            for item in frame.requests.items:
                self._check_seq(item.seq)
                deadline = now + item.timeout_ms / 1000.0 if item.timeout_ms else 0.0
                decode = _Decode(decoder, item)
                self.stats.requests += 1
                self.worker.submit(
                    Work(
                        "request",
                        self,
                        item.seq,
                        item.target,
                        decode,
                        arrival=now,
                        deadline=deadline,
                    )
                )
        elif kind == "configure":
            self._check_seq(frame.configure.seq)
            try:
                changes = ConfigPayload(
                    dict(decoder.value_map(frame.configure.changes, "configure.changes"))
                )
            except (WireError, ValueError) as exc:
                raise ProtocolError("INVALID_ARGUMENT", f"configure: {exc}") from None
            self.worker.submit(
                Work("configure", self, frame.configure.seq, frame.configure.node, changes=changes)
            )
        elif kind == "close":
            return True
        elif kind == "open":
            raise ProtocolError("FAILED_PRECONDITION", "Open was sent twice on one session")
        else:
            raise ProtocolError(
                "INVALID_ARGUMENT", "frame has no kind set (or a kind this server does not know)"
            )
        return False

    def _check_seq(self, seq: int) -> None:
        if seq <= self.last_seq:
            raise ProtocolError(
                "INVALID_ARGUMENT",
                f"sequence number {seq} is not above the previous one ({self.last_seq}); "
                "seq must increase by request",
            )
        if self.in_flight >= self.window:
            raise ProtocolError(
                "RESOURCE_EXHAUSTED",
                f"window exceeded: {self.in_flight} requests in flight and the granted window is {self.window}",
            )
        self.last_seq = seq
        self.in_flight += 1

    # -- writing -----------------------------------------------------------------
    async def frames(self) -> AsyncIterator[bytes | StreamEnd]:
        """Coalesced result frames, then the StreamEnd."""
        results = self.results
        pending: EncodedItem | StreamEnd | bytes | None = None
        while True:
            item = pending if pending is not None else await results.get()
            pending = None
            if isinstance(item, StreamEnd):
                yield item
                return
            if isinstance(item, bytes):
                yield item
                continue
            batch = [item]
            size = item.size
            while (
                not results.empty()
                and len(batch) < MAX_COALESCE_ITEMS
                and size < MAX_COALESCE_BYTES
            ):
                nxt = results.get_nowait()
                if not isinstance(nxt, EncodedItem):
                    pending = nxt
                    break
                batch.append(nxt)
                size += nxt.size
            finals = sum(1 for b in batch if b.final)
            self.in_flight -= finals
            data = join_results(batch)
            self.stats.bytes_out += len(data)
            yield data


class _Decode:
    """Decodes one request's message on the worker thread (off the event loop)."""

    __slots__ = ("decoder", "item")

    def __init__(self, decoder: Any, item: Any) -> None:
        self.decoder = decoder
        self.item = item

    def __call__(self) -> Any:
        return item_decoder(self.decoder, self.item.blob_base).message(self.item.message)

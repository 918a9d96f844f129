"""``RemoteStream``: the client side of one ``Session`` stream, on the client loop.

It writes coalesced request frames and reads result frames, handing each
result to a :class:`ResultSink` (the Warp's tracker).  It knows nothing of
ordering, windows or delivery; that lives in the tracker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import grpc

from ..core.errors import RemoteError, RemoteUnavailable, WireError
from ._channel import MAX_MESSAGE_BYTES
from ._errors import from_status
from ._fifo import LoopFifo
from ._frames import (
    PART_BYTES,
    TAIL_MIN_BYTES,
    EncodedItem,
    PartAssembler,
    add_request_blob,
    add_sized_tail,
    add_tail,
    attach_request_tail,
    decode_frame,
    item_decoder,
    join_requests,
    requests_in_parts,
    requests_with_tail,
)
from ._limits import WireLimits
from ._wire.v1 import session_pb2 as spb
from .codec import WireDecoder

__all__ = ["RemoteStream", "ResultSink"]

log = logging.getLogger(__name__)

SESSION_METHOD = "/fontus.v1.Remote/Session"
#: Bytes coalesced into one frame at most (see the server's MAX_COALESCE_*).
MAX_COALESCE_BYTES = 4 * 1024 * 1024
#: A Warp's frame carries half of the granted window at most, between these two
#: bounds: with two frames or more in flight both processes work at once instead of
#: passing the window back and forth as one convoy (a whole window per frame, sixth
#: session), and each frame's write, about 0.1 ms of the client's GIL, is shared by
#: 16 requests at window 32 rather than 8 (a quarter of the window, seventh session).
#: Below 8 the cost per frame shows; above 32 the convoys come back (window 128:
#: frames of 64 slower than of 32).  See docs/performance.md.
MIN_COALESCE_ITEMS = 8
MAX_FRAME_REQUESTS = 32
#: A frame that travels alone and is larger than this goes in parts even when its last
#: array could go uncopied as its tail: with three parts or more, copying one while the
#: one before travels shortens the round trip more than the saved copy does (1080p at
#: window 1: 8.3-8.6 ms in parts, 8.5-9.2 as a tail; 720p, two parts: 4.6-4.9 in
#: parts, 4.1-4.2 as a tail; sixteenth session).  Pipelined frames never go in parts.
PARTS_OVER_TAIL_BYTES = 2 * PART_BYTES


def coalesce_limit(window: int) -> int:
    """Requests per frame at most, for a session granted ``window`` requests in flight."""
    return max(MIN_COALESCE_ITEMS, min(MAX_FRAME_REQUESTS, window // 2))


class ResultSink(Protocol):
    def on_output(self, seq: int, exit_name: str, decode: Any) -> None: ...
    def on_done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None: ...
    def on_failed(self, seq: int, code: int, detail: str) -> None: ...
    def on_draining(self, grace_s: float) -> None: ...
    def on_end(self, error: RemoteError | None) -> None: ...
    def request_blob(self, seq: int) -> Any:
        """The last blob request ``seq`` was sent with, while it is unanswered; else None."""


class RemoteStream:
    """One open session; all methods run on the client loop unless noted."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        sink: ResultSink,
        where: str,
        limits: WireLimits,
        metadata: tuple[tuple[str, str], ...] = (),
        liveness_s: float = 0.0,
    ) -> None:
        self.channel = channel
        self.sink = sink
        self.where = where
        self.limits = limits
        self.metadata = metadata
        self.call: Any = None
        self.opened: Any = None
        #: What send() queued for the writer.
        self.queue: LoopFifo[EncodedItem | bytes | None] = LoopFifo()
        self.bytes_out = 0
        self.bytes_in = 0
        self._tasks: list[asyncio.Task[Any]] = []
        #: Seconds of server silence that end the stream (0: rely on gRPC keepalive only).
        self.liveness_s = liveness_s
        self.last_heard = 0.0
        self._dead: RemoteError | None = None
        #: The server's Draining notice, once received (see _ended_error).
        self.draining: Any = None
        # Node threads waiting for their request to be written (see Warp._send): each lock
        # with the count of items queued when it was handed over, its request the last.
        self._handoffs: list[tuple[int, threading.Lock]] = []
        # Items queued by send, and items whose frame's first gRPC message is written.
        self._queued = 0
        self._written = 0
        #: Send large frames in parts (the server said it reads them: Opened.frame_parts).
        self.parts_out = False
        #: Send an array that is the end of a ``bytes`` as its frame's tail (the server
        #: said it reads them: Opened.frame_tails).
        self.send_tails = False
        #: Request frames sent with a tail (ClientFrame.tail_size).
        self.tails_out = 0
        # Requests and Configures written and not yet answered (each gets one Done or
        # Failed): parts pay off only for a frame sent alone (see _send_loop).
        self._unanswered = 0
        self._parts_in = PartAssembler(MAX_MESSAGE_BYTES)
        #: Result frames received with a tail (ServerFrame.tail_skip).
        self.tails_in = 0
        #: Frames whose last blob was named (ServerFrame.tail_request), not sent.
        self.tail_refs_in = 0

    async def open(self, open_frame: bytes, timeout: float, *, wait_for_ready: bool = True) -> Any:
        """Send Open and wait for Opened; raises the mapped RemoteError on refusal.

        ``wait_for_ready=False`` fails at once when the server refuses connections
        (a mistyped port at pipeline start); reconnects wait for a server coming back.
        """
        method = self.channel.stream_stream(SESSION_METHOD)
        self.call = method(metadata=self.metadata or None, wait_for_ready=wait_for_ready)
        try:
            await asyncio.wait_for(self.call.write(open_frame), timeout)
            data = await asyncio.wait_for(self.call.read(), timeout)
        except TimeoutError:
            self.call.cancel()
            raise from_status(
                grpc.StatusCode.UNAVAILABLE,
                f"no answer to Open within {timeout:.1f}s (connection refused or server not answering)",
                self.where,
            ) from None
        except grpc.aio.AioRpcError as exc:
            raise from_status(exc.code(), exc.details(), self.where) from None
        if data is grpc.aio.EOF:
            raise await self._status_error()
        frame = spb.ServerFrame()
        try:
            decode_frame(data, frame, self.limits)
        except WireError as exc:
            raise RemoteError(f"{self.where}: malformed Opened frame: {exc}") from None
        if frame.WhichOneof("kind") != "opened":
            raise RemoteError(f"{self.where}: server answered Open with {frame.WhichOneof('kind')}")
        self.opened = frame.opened
        self.parts_out = frame.opened.frame_parts
        self.send_tails = frame.opened.frame_tails
        self.last_heard = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._recv_loop()),
        ]
        if self.liveness_s > 0:
            self._tasks.append(asyncio.create_task(self._watchdog()))
        return frame.opened

    async def _status_error(self) -> RemoteError:
        code = await self.call.code()
        details = await self.call.details()
        return self._ended_error(code, details)

    def _ended_error(self, code: grpc.StatusCode, details: str | None) -> RemoteError:
        """The error a stream ended with, as the server meant it.

        A server that drains ends each stream with UNAVAILABLE after its Draining
        frame.  When that status arrives while this side is still writing
        requests, gRPC's client can report INTERNAL "Internal error from Core"
        instead (its failed write wins over the status).  After a Draining frame
        that can only be the drain, so it is reported as one.
        """
        if self.draining is not None and code == grpc.StatusCode.INTERNAL:
            reason = self.draining.reason or "server is draining"
            return from_status(
                grpc.StatusCode.UNAVAILABLE,
                f"{reason}; draining, the stream ended while requests were being written",
                self.where,
            )
        return from_status(code, details, self.where)

    # -- writing -----------------------------------------------------------------
    def send(self, item: EncodedItem | bytes | None) -> None:
        """Queue a request (or a control frame, or None to half-close). Loop thread only."""
        self._queued += 1
        self.queue.put(item)

    def release_after_write(self, lock: threading.Lock) -> None:
        """Release ``lock`` once the item queued last is written (the first gRPC message of
        its frame), at once if it is already or cannot be.  Loop thread only."""
        if self._written >= self._queued or not self._tasks or self._tasks[0].done():
            lock.release()
        else:
            self._handoffs.append((self._queued, lock))

    def _wrote(self, items: int) -> None:
        """``items`` more are written: hand back the node threads that waited for them."""
        self._written += items
        if self._handoffs:
            written = self._written
            waiting = [h for h in self._handoffs if h[0] > written]
            for upto, lock in self._handoffs:
                if upto <= written:
                    lock.release()
            self._handoffs = waiting

    def _hand_back(self) -> None:
        """The writer has ended: nobody may wait for it any longer."""
        handoffs, self._handoffs = self._handoffs, []
        for _, lock in handoffs:
            lock.release()

    async def _send_loop(self) -> None:
        fifo = self.queue
        queue = fifo.items
        limit = coalesce_limit(self.opened.window)
        try:
            while True:
                item = queue.popleft() if queue else await fifo.get()
                if item is None:
                    await self.call.done_writing()
                    return
                if isinstance(item, bytes):  # a Configure
                    self._unanswered += 1
                    await self.call.write(item)
                    self.bytes_out += len(item)
                    self._wrote(1)
                    continue
                batch = [item]
                size = item.size
                end = False
                control: bytes | None = None
                # A request of TAIL_MIN_BYTES or more ends its frame: the server can then
                # send its array back as the frame's tail, uncopied (decision 0015).
                while (
                    queue
                    and len(batch) < limit
                    and size < MAX_COALESCE_BYTES
                    and batch[-1].size < TAIL_MIN_BYTES
                ):
                    nxt = queue.popleft()
                    if nxt is None:
                        end = True
                        break
                    if isinstance(nxt, bytes):
                        control = nxt
                        break
                    batch.append(nxt)
                    size += nxt.size
                # In parts only when nothing else is on the way: then each part is copied
                # while the one before travels.  With requests in flight the two processes
                # are busy anyway, and the receiver's copy of the parts into one frame is a
                # copy more.  A last array that already is the end of a bytes object goes
                # as the frame's tail instead, uncopied, unless the frame travels alone
                # and is large enough for three parts or more to overlap (decision 0017).
                parts: tuple[bytes, ...] | Iterator[bytes]
                last = batch[-1]
                alone = self.parts_out and not self._unanswered and not queue
                if (
                    self.send_tails
                    and last.size >= TAIL_MIN_BYTES
                    and not (alone and size > PARTS_OVER_TAIL_BYTES)
                    and attach_request_tail(last)
                ):
                    parts = requests_with_tail(batch, last)
                    self.tails_out += 1
                elif alone:
                    parts = requests_in_parts(batch)
                else:
                    parts = (join_requests(batch),)
                self._unanswered += len(batch)
                first = True
                for data in parts:
                    self.bytes_out += len(data)
                    await self.call.write(data)
                    if first:
                        first = False
                        self._wrote(len(batch))
                if control is not None:
                    self._unanswered += 1
                    await self.call.write(control)
                    self._wrote(1)
                if end:
                    await self.call.done_writing()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the read side reports the stream's status
            log.debug("%s: write failed: %s", self.where, exc)
        finally:
            self._hand_back()

    # -- reading -------------------------------------------------------------------
    async def _recv_loop(self) -> None:
        sink = self.sink
        error: RemoteError | None = None
        # A frame whose tail is the next message (ServerFrame.tail_skip or tail_size), and
        # its decoder.
        tailed: tuple[Any, WireDecoder] | None = None
        try:
            while True:
                data = await self.call.read()
                if data is grpc.aio.EOF:
                    code = await self.call.code()
                    if code != grpc.StatusCode.OK:
                        error = await self._status_error()
                    elif missing := self._parts_in.incomplete():
                        error = RemoteError(
                            f"{self.where}: the server ended the stream with {missing}"
                        )
                    elif tailed is not None:
                        error = RemoteError(
                            f"{self.where}: the server ended the stream before the tail "
                            "of its last frame"
                        )
                    break
                self.bytes_in += len(data)
                self.last_heard = time.monotonic()  # any frame, heartbeats included
                if tailed is not None:  # the tail of the frame before
                    frame, decoder = tailed
                    tailed = None
                    if frame.tail_size:
                        decoder = add_sized_tail(decoder, data, frame.tail_size)
                    else:
                        decoder = add_tail(decoder, data, frame.tail_skip)
                    self.tails_in += 1
                else:
                    data = self._parts_in.add(data)
                    if data is None:
                        continue  # a part of a large frame: the rest follows
                    frame = spb.ServerFrame()
                    decoder = decode_frame(data, frame, self.limits)
                    if frame.tail_skip or frame.tail_size:
                        if (frame.tail_skip and frame.tail_size) or frame.tail_request:
                            raise WireError(
                                "a frame has more than one of tail_skip, tail_size and tail_request"
                            )
                        tailed = (frame, decoder)  # its tail is the next message
                        continue
                    if frame.tail_request:  # the array is our own request's: not sent back
                        seq = frame.tail_request
                        decoder = add_request_blob(decoder, sink.request_blob(seq), seq)
                        self.tail_refs_in += 1
                kind = frame.WhichOneof("kind")
                if kind == "results":
                    for r in frame.results.items:
                        which = r.WhichOneof("kind")
                        if which == "output":
                            sink.on_output(r.seq, r.output.exit, _OutputDecode(decoder, r))
                        elif which == "done":
                            d = r.done
                            self._unanswered -= 1
                            sink.on_done(r.seq, d.queue_s, d.compute_s, d.outputs)
                        elif which == "failed":
                            self._unanswered -= 1
                            sink.on_failed(r.seq, r.failed.code, r.failed.detail)
                elif kind == "draining":
                    self.draining = frame.draining
                    sink.on_draining(frame.draining.grace_s)
        except asyncio.CancelledError:
            error = self._dead or RemoteError(f"{self.where}: session cancelled")
        except grpc.aio.AioRpcError as exc:
            error = self._dead or self._ended_error(exc.code(), exc.details())
        except WireError as exc:
            error = RemoteError(f"{self.where}: malformed result frame: {exc}")
            self.call.cancel()
        except Exception as exc:  # noqa: BLE001 - any other failure ends this stream, reported once
            error = RemoteError(f"{self.where}: session failed: {type(exc).__name__}: {exc}")
            self.call.cancel()
        # The writer may still wait for frames and the watchdog tick: end them with the
        # stream, or they linger until the replaced stream is garbage-collected, which
        # asyncio reports as "Task was destroyed but it is pending!".
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        sink.on_end(error)

    async def _watchdog(self) -> None:
        """End the stream when the server has been silent longer than ``liveness_s``.

        The server sends heartbeats when it has nothing else to say, so silence
        means a frozen process or a dead network, even while the node is busy.
        """
        period = min(0.5, self.liveness_s / 4)
        while True:
            await asyncio.sleep(period)
            silent = time.monotonic() - self.last_heard
            if silent > self.liveness_s:
                self._dead = RemoteUnavailable(
                    f"{self.where}: server silent for {silent:.1f}s (no heartbeat within "
                    f"keepalive {self.liveness_s:.1f}s): frozen process or dead network"
                )
                self.call.cancel()
                return

    @property
    def went_silent(self) -> bool:
        """True when the watchdog ended the stream: the server stopped answering (frozen)."""
        return self._dead is not None

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.call is not None:
            self.call.cancel()


class _OutputDecode:
    """Decodes an output on the delivery thread, off the loop."""

    __slots__ = ("decoder", "result")

    def __init__(self, decoder: Any, result: Any) -> None:
        self.decoder = decoder
        self.result = result

    def __call__(self) -> Any:
        return item_decoder(self.decoder, self.result.blob_base).message(self.result.output.message)

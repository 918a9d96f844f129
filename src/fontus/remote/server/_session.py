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
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from ...core.errors import WireError
from ...core.payloads import ConfigPayload
from .._arrays import CompressionConfig
from .._fifo import LoopFifo
from .._frames import (
    TAIL_MIN_BYTES,
    EncodedItem,
    PartAssembler,
    PartsTooLarge,
    add_sized_tail,
    attach_tail,
    decode_frame,
    encode_done,
    encode_failed,
    encode_output,
    item_decoder,
    join_results,
    results_in_parts,
    results_with_tail,
    same_memory,
)
from .._limits import WireLimits
from .._wire.v1 import session_pb2 as spb
from ._stats import SessionStats
from ._worker import GraphWorker, Work

__all__ = ["MAX_COALESCE_BYTES", "MAX_COALESCE_ITEMS", "ServerSession", "SessionStats", "StreamEnd"]

log = logging.getLogger(__name__)

#: Results coalesced into one frame at most: enough to amortise per-frame cost
#: of small messages, small enough that a frame never waits long.  Unlike the
#: client's request frames (``_stream.coalesce_limit``) not cut to a part of the
#: window: result frames of 8 were 20-30% slower at window 32 (performance.md).
MAX_COALESCE_ITEMS = 256
MAX_COALESCE_BYTES = 4 * 1024 * 1024
#: A request's outputs wait on the worker for its Done (or Failed) and reach the loop
#: with it in one hand-off: one wake-up and one frame for a small request instead of
#: one each (waking the loop mid-request also hands it the GIL while the worker still
#: has the Done to encode).  Once held outputs reach this many bytes they go at once,
#: so large outputs travel while ``update`` still runs.  The Warp delivers a request's
#: outputs when its Done arrives either way.
HOLD_OUTPUT_BYTES = 256 * 1024
#: The reader stops taking frames while the session's unfinished requests arrived in
#: more than this many bytes; HTTP/2 flow control then holds the client back.  The
#: window bounds requests, not bytes: 256 requests of 100 MiB would be 25 GiB per
#: session.  64 MiB still keeps 20+ 720p frames in flight, plenty to hide a round trip.
MAX_UNFINISHED_BYTES = 64 * 1024 * 1024
#: Longest call a node declared ``light`` may make on the event loop.  A session whose
#: calls go over it INLINE_STRIKES times within INLINE_STRIKE_CALLS calls moves to its
#: worker thread, and at once after a call over INLINE_LIMIT_S: a node that is not light
#: blocks the loop (every session's reads, writes and heartbeats) three times at most,
#: while a call that was only preempted, or met a garbage collection, on a busy machine
#: does not cost a light session the loop for good (it did at one strike: 1 call of
#: 5,000 was enough, seventh session).  50 ms is half the shortest heartbeat period.
INLINE_BUDGET_S = 0.010
INLINE_LIMIT_S = 0.050
INLINE_STRIKES = 3
INLINE_STRIKE_CALLS = 100
#: Requests in frames larger than this go to the worker even in a light session: their
#: arrays' decoding and encoding (copies) would hold up the loop's reads and writes.
INLINE_MAX_BYTES = 256 * 1024

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
        inline: bool = False,
        pack_trees: bool = False,
        parts_out: bool = False,
        tails_out: bool = False,
        tail_refs: bool = False,
        sized_tails: bool = False,
        max_frame_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.id = f"s{next(_ids)}-{int(time.time()) % 100000}"
        self.client = client
        self.window = window
        self.worker = worker
        self.entry_name = entry_name
        self.limits = limits
        self.compression = compression
        #: Write the outputs' value trees in MessagePack (the client reads it: Open.value_formats).
        self.pack_trees = pack_trees
        #: Send large result frames in parts (the client reads them: Open.frame_parts).
        self.parts_out = parts_out
        #: Send an array received and passed on as the tail of its result frame, its
        #: request frame as it arrived (the client reads them: Open.frame_tails).
        self.tails_out = tails_out
        #: Name the request answered instead of sending back its own array, passed on
        #: (the client holds it: Open.tail_refs).
        self.tail_refs = tail_refs
        #: Send tails by size (ServerFrame.tail_size), so an array that is the end of a
        #: request tail, not preceded by a blob field, can go back uncopied too (the
        #: client reads them: Open.sized_tails).
        self.sized_tails = sized_tails
        self._parts_in = PartAssembler(max_frame_bytes)
        # A request frame whose tail (ClientFrame.tail_size) is the next message: the
        # frame as received, its head and its decoder.
        self._tail_due: tuple[bytes | memoryview, Any, Any] | None = None
        self.loop = loop
        self.results: LoopFifo[EncodedItem | StreamEnd | bytes] = LoopFifo()
        self.stats = SessionStats()
        self.in_flight = 0
        self.last_seq = 0
        self.draining = False
        self.opened_at = time.monotonic()
        #: Seconds of silence after which the writer sends a Heartbeat (0: never).
        self.heartbeat_s = 0.0
        self._last_out = 0.0  # loop time the writer last sent a frame (see _heartbeats)
        #: The Plan the session runs (set by the server when it opens the session).
        self.plan: Any = None
        # Outputs of the request the worker is running (worker thread only; see HOLD_OUTPUT_BYTES).
        self._held: list[EncodedItem] = []
        self._held_bytes = 0
        # Results handed over by other threads, not yet on ``results`` (see _post).
        self._outbox: list[EncodedItem | StreamEnd | bytes] = []
        self._outbox_lock = threading.Lock()
        #: True once the stream has ended: results still coming from the worker are dropped.
        self.closed = False
        # Request frames not yet finished, as (last seq, bytes, what is kept of it): its
        # large messages kept (see _tail_frames); see MAX_UNFINISHED_BYTES.
        self._unfinished: deque[tuple[int, int, tuple[bytes, ...]]] = deque()
        self.unfinished_bytes = 0
        # This session's large request frames and tails not yet finished, by id: only
        # these may go back as a result frame's tail.  In a shared session a node could emit an
        # array of another session's frame, whose other bytes are not this client's.
        self._tail_frames: dict[int, bytes] = {}
        # With tail_refs: the last blob of each large request frame not yet finished, by
        # the seq of the request it belongs to.  An output of that request whose array is
        # that very memory goes back by reference.  Held, so the memory cannot be reused.
        self._ref_blobs: dict[int, memoryview] = {}
        self._room = asyncio.Event()
        #: Run work here on the loop instead of the worker thread (nodes declared light;
        #: see _submit).  Built on the loop, so this is the loop's thread.
        self.inline = inline
        self._loop_thread = threading.get_ident()
        # Inline calls so far, and the last few that went over the budget (see _over_budget).
        self._inline_calls = 0
        self._strikes: deque[int] = deque(maxlen=INLINE_STRIKES)

    # -- called from the worker thread -----------------------------------------
    def output(self, seq: int, exit_name: str, message: Any) -> None:
        item = encode_output(seq, message, exit_name, self.compression, self.pack_trees)
        if item.size >= TAIL_MIN_BYTES:
            ref = self._ref_blobs.get(seq) if seq and item.blobs else None
            if ref is not None and same_memory(item.blobs[-1], ref):
                # The node passed its own input's array on: the client still has it (the
                # request's Done comes after this output), so nothing needs to go back.
                item.tail_request = seq
                self.stats.tail_refs += 1
            elif (self.tails_out or self.sized_tails) and attach_tail(
                item, self._tail_frames, sized=self.sized_tails
            ):
                self.stats.tails += 1
        if seq == 0:
            # Outside update (flush, a node's own thread): nothing to wait for.
            self.push(item)
            return
        self._held.append(item)
        self._held_bytes += item.size
        if self._held_bytes >= HOLD_OUTPUT_BYTES:
            self._release([])

    def done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        self._release([encode_done(seq, queue_s, compute_s, outputs)])

    def failed(self, seq: int, code: int, detail: str) -> None:
        self._release([encode_failed(seq, code, detail)])

    def _release(self, final: list[EncodedItem]) -> None:
        """Hand the held outputs, then ``final``, to the loop in one go (request order kept)."""
        items = [*self._held, *final] if self._held else final
        self._held = []
        self._held_bytes = 0
        if items:
            self._post(items)

    def push(self, item: EncodedItem | StreamEnd | bytes) -> None:
        self._post([item])

    def _post(self, items: list[Any]) -> None:
        """Queue ``items`` for the writer, from any thread.

        The loop is woken only when the outbox was empty: results finished while a
        wake-up is already due ride along with it.  Each wake-up costs a syscall and
        a GIL hand-off, which at thousands of results per second is most of the cost.
        """
        if threading.get_ident() == self._loop_thread:
            # Work run inline (or a protocol error): straight to the writer, after
            # anything other threads handed over before.
            if self._outbox:
                self._take_outbox()
            if not self.closed:
                self.results.put_many(items)
            return
        with self._outbox_lock:
            wake = not self._outbox
            self._outbox.extend(items)
        if wake:
            self.loop.call_soon_threadsafe(self._take_outbox)

    def _take_outbox(self) -> None:
        with self._outbox_lock:
            items, self._outbox = self._outbox, []
        if self.closed:
            return
        self.results.put_many(items)

    def finish(self, code: str = "", detail: str = "") -> None:
        self.push(StreamEnd(code, detail))

    def close(self) -> None:
        """The stream has ended (on the loop): drop queued results; the worker skips the rest."""
        self.closed = True
        self.results.items.clear()

    # -- reading ---------------------------------------------------------------
    async def read(self, frames: AsyncIterator[bytes]) -> None:
        """Consume client frames until half-close; errors end the stream via the result queue."""
        try:
            async for received in frames:
                self.stats.bytes_in += len(received)
                if self._tail_due is not None:  # the tail of the frame before
                    self._tail(received)
                else:
                    try:
                        data = self._parts_in.add(received)
                    except PartsTooLarge as exc:
                        raise ProtocolError("RESOURCE_EXHAUSTED", str(exc)) from None
                    except WireError as exc:
                        raise ProtocolError("INVALID_ARGUMENT", f"malformed frame: {exc}") from None
                    if data is None:
                        continue  # a part of a large frame: the rest follows
                    if self._frame(data):
                        break
                if self.results.woke:
                    # The writer was waiting and has results now: let it send them before
                    # this task asks gRPC for the next frame (a read takes ~10 us to set up).
                    self.results.woke = False
                    await asyncio.sleep(0)
                while self.unfinished_bytes > MAX_UNFINISHED_BYTES:
                    self._room.clear()
                    await self._room.wait()
            missing = self._parts_in.incomplete() or (
                "a frame whose tail (tail_size) never came" if self._tail_due else None
            )
            if missing:
                raise ProtocolError(
                    "INVALID_ARGUMENT",
                    f"the client half-closed with {missing}; send every part (the last "
                    "without part_more) and every tail before half-closing",
                )
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
            self._submit(Work("close", self))

    def _submit(self, work: Work, size: int = 0) -> None:
        """Run ``work`` in request order: on the worker thread, or here when inline.

        A light session still hands a request of a frame over INLINE_MAX_BYTES to its
        worker (decoding and encoding large arrays would hold up the loop), and then
        everything after it until the worker has caught up, so order is kept.  An
        inline call that takes longer than INLINE_BUDGET_S blocked the loop (and
        every other session) that long; when that happens again and again, or once for
        longer than INLINE_LIMIT_S, the node is not as light as it says, and the
        session's later work goes to its worker thread for good.
        """
        if (
            not self.inline
            or size > INLINE_MAX_BYTES
            or not self.worker.idle  # the worker still has some: queue behind it
        ):
            self.worker.submit(work)
            return
        start = time.perf_counter()
        self.worker.handle(work)
        took = time.perf_counter() - start
        self._inline_calls += 1
        if took > INLINE_BUDGET_S:
            self._over_budget(work, took)

    def _over_budget(self, work: Work, took: float) -> None:
        """An inline call went over INLINE_BUDGET_S: a strike, or the move to the worker."""
        strikes = self._strikes
        strikes.append(self._inline_calls)
        repeated = len(strikes) == INLINE_STRIKES and (
            strikes[-1] - strikes[0] < INLINE_STRIKE_CALLS
        )
        nodes = ", ".join(f"{n.name} ({n.spec.mark})" for n in self.plan.nodes)
        if took <= INLINE_LIMIT_S and not repeated:
            log.info(
                "session %s (%s): %s took %.0f ms on the event loop, over the %.0f ms budget "
                "of a light node (nodes: %s); %d such calls within %d move it off the loop",
                self.id,
                self.client,
                work.kind,
                took * 1000,
                INLINE_BUDGET_S * 1000,
                nodes,
                INLINE_STRIKES,
                INLINE_STRIKE_CALLS,
            )
            return
        self.inline = False
        why = (
            f"over the {INLINE_LIMIT_S * 1000:.0f} ms a node declared light may take once"
            if took > INLINE_LIMIT_S
            else f"{INLINE_STRIKES} calls within {INLINE_STRIKE_CALLS} over the "
            f"{INLINE_BUDGET_S * 1000:.0f} ms budget of a node declared light"
        )
        log.warning(
            "session %s (%s): %s took %.0f ms on the event loop, %s; the session's work "
            "moves to its worker thread (nodes: %s; set light = False on a node that can be slow)",
            self.id,
            self.client,
            work.kind,
            took * 1000,
            why,
            nodes,
        )

    def drain(self, grace_s: float) -> None:
        """Stop taking requests; finish those received, then end with UNAVAILABLE."""
        if self.draining:
            return
        self.draining = True
        frame = spb.ServerFrame()
        frame.draining.grace_s = grace_s
        frame.draining.reason = "server is shutting down"
        self.results.put(frame.SerializeToString())
        self._submit(Work("drained", self))

    def _frame(self, data: bytes | memoryview) -> bool:
        """Handle one client frame; True when the client closed its side."""
        frame = spb.ClientFrame()
        try:
            decoder = decode_frame(data, frame, self.limits)
        except WireError as exc:
            raise ProtocolError("INVALID_ARGUMENT", f"malformed frame: {exc}") from None
        kind = frame.WhichOneof("kind")
        if frame.tail_size:
            if kind != "requests" or not frame.requests.items:
                what = (
                    "a requests frame with no request"
                    if kind == "requests"
                    else f"a {kind or 'kindless'} frame"
                )
                raise ProtocolError(
                    "INVALID_ARGUMENT",
                    f"malformed frame: tail_size on {what}; only a frame carrying requests "
                    "may have a tail",
                )
            self._tail_due = (data, frame, decoder)  # read with its tail, the next message
            return False
        if self.draining and kind in ("requests", "configure"):
            return False  # not run here: the client replays them on another replica
        if kind == "requests":
            self._requests(frame, decoder, data)
        elif kind == "configure":
            self._check_seq(frame.configure.seq)
            try:
                changes = ConfigPayload(
                    dict(decoder.value_map(frame.configure.changes, "configure.changes"))
                )
            except (WireError, ValueError) as exc:
                raise ProtocolError("INVALID_ARGUMENT", f"configure: {exc}") from None
            self._submit(
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

    def _tail(self, tail: bytes) -> None:
        """The tail of the request frame before (``ClientFrame.tail_size``)."""
        assert self._tail_due is not None
        data, frame, decoder = self._tail_due
        self._tail_due = None
        try:
            decoder = add_sized_tail(decoder, tail, frame.tail_size)
        except WireError as exc:
            raise ProtocolError("INVALID_ARGUMENT", f"malformed frame: {exc}") from None
        if not self.draining:
            self._requests(frame, decoder, data, tail)

    def _requests(
        self, frame: Any, decoder: Any, data: bytes | memoryview, tail: bytes | None = None
    ) -> None:
        """Queue the requests of one frame (its tail, if it had one, already read)."""
        now = time.monotonic()
        size = len(data) + (len(tail) if tail is not None else 0)
        # Registered before the worker can encode an output of it (see _tail_frames).
        kept: tuple[bytes, ...] = ()
        if self.tails_out or self.sized_tails:
            kept = tuple(b for b in (data, tail) if type(b) is bytes and len(b) >= TAIL_MIN_BYTES)
            for b in kept:
                self._tail_frames[id(b)] = b
        items = frame.requests.items
        # The frame's last blob is its last request's when that request is alone, when
        # its blobs start after others' (blob_base > 0; a frame sent in parts too), and
        # when it is the frame's tail (a tail is always the last request's).
        if (
            self.tail_refs
            and size >= TAIL_MIN_BYTES
            and decoder.blobs
            and items
            and (tail is not None or len(items) == 1 or items[-1].blob_base > 0)
        ):
            self._ref_blobs[items[-1].seq] = decoder.blobs[-1]
        for item in items:
            self._check_seq(item.seq)
            deadline = now + item.timeout_ms / 1000.0 if item.timeout_ms else 0.0
            self.stats.requests += 1
            self._submit(
                Work(
                    "request",
                    self,
                    item.seq,
                    item.target,
                    _Decode(decoder, item),
                    arrival=now,
                    deadline=deadline,
                ),
                size,
            )
        if items:
            self._unfinished.append((self.last_seq, size, kept))
            self.unfinished_bytes += size
        else:
            for b in kept:
                del self._tail_frames[id(b)]

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
        loop = asyncio.get_running_loop()
        self._last_out = loop.time()
        ticker = (
            loop.create_task(self._heartbeats(self.heartbeat_s)) if self.heartbeat_s > 0 else None
        )
        try:
            while True:
                item = pending if pending is not None else await results.get()
                pending = None
                if isinstance(item, StreamEnd):
                    yield item
                    return
                if isinstance(item, bytes):
                    yield item
                    self._last_out = loop.time()
                    continue
                batch = [item]
                size = item.size
                # The item whose last blob is sent as the frame's tail (one per frame).
                tailed = item if item.has_tail else None
                # Requests this frame finishes (Done or Failed), and the last of them.
                finals, last_final = (1, item.seq) if item.final else (0, 0)
                if self._outbox:
                    # What the worker handed over after the loop moved ``item`` (a Done
                    # pushed just after its large output, HOLD_OUTPUT_BYTES) is part of
                    # this frame's queue too; its own wake-up would come too late.
                    self._take_outbox()
                queued = results.items
                while queued and len(batch) < MAX_COALESCE_ITEMS:
                    nxt = queued.popleft()
                    # A full frame still takes Dones and Faileds (a few bytes each): the
                    # Warp delivers a request's outputs on its Done, which would
                    # otherwise wait for the whole of the next frame.
                    if not isinstance(nxt, EncodedItem) or (
                        size >= MAX_COALESCE_BYTES and not nxt.final
                    ):
                        pending = nxt
                        break
                    if nxt.has_tail:
                        if tailed is not None:
                            pending = nxt
                            break
                        tailed = nxt
                    batch.append(nxt)
                    size += nxt.size
                    if nxt.final:
                        finals += 1
                        last_final = max(last_final, nxt.seq)
                self.in_flight -= finals
                if finals and self._unfinished:
                    self._finished_upto(last_final)
                # In parts only for a frame of the last request in flight (its Done may
                # follow in the next frame; at window 1, every frame): see the client's
                # _send_loop.
                alone = self.in_flight <= 1
                parts: Iterable[bytes]
                if tailed is not None:
                    parts = results_with_tail(batch, tailed)
                elif self.parts_out and alone:
                    parts = results_in_parts(batch)
                else:
                    parts = (join_results(batch),)
                for data in parts:
                    self.stats.bytes_out += len(data)
                    yield data
                self._last_out = loop.time()
        finally:
            if ticker is not None:
                ticker.cancel()

    async def _heartbeats(self, period: float) -> None:
        """Queue a Heartbeat whenever the writer has had nothing to send for ``period``.

        A ticker at half the period (so silence stays under 1.5 periods) rather than
        a timeout on each wait for a result: ``asyncio.wait_for`` costs a task and a
        timer per frame, a large share of a small request's round trip.
        """
        loop = asyncio.get_running_loop()
        while not self.closed:
            await asyncio.sleep(period / 2)
            if not self.results.items and loop.time() - self._last_out >= period:
                self.results.put(_heartbeat_frame())
                self._last_out = loop.time()  # one at a time: the writer sends it next

    def _finished_upto(self, seq: int) -> None:
        """Requests up to ``seq`` are finished (results come in request order)."""
        unfinished = self._unfinished
        while unfinished and unfinished[0][0] <= seq:
            last, size, kept = unfinished.popleft()
            self.unfinished_bytes -= size
            for b in kept:
                del self._tail_frames[id(b)]
            if self._ref_blobs:
                self._ref_blobs.pop(last, None)
        if self.unfinished_bytes <= MAX_UNFINISHED_BYTES:
            self._room.set()


class _Decode:
    """Decodes one request's message on the worker thread (off the event loop)."""

    __slots__ = ("decoder", "item")

    def __init__(self, decoder: Any, item: Any) -> None:
        self.decoder = decoder
        self.item = item

    def __call__(self) -> Any:
        base = self.item.blob_base
        if base > len(self.decoder.blobs):
            raise WireError(
                f"request blob_base {base} is beyond the {len(self.decoder.blobs)} blobs its frame carries"
            )
        return item_decoder(self.decoder, base).message(self.item.message)


def _heartbeat_frame() -> bytes:
    frame = spb.ServerFrame()
    frame.heartbeat.server_time = time.time()
    return frame.SerializeToString()

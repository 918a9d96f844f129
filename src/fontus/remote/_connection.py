"""``Connection``: one session of a Warp, kept alive across failures.

When a stream breaks (server killed or restarted, network blip, a frozen peer
caught by keepalive, a replica draining), the connection reconnects with
backoff — through the same channel, so to another replica when the target
lists several — re-opens the session, and replays, in sequence order, the
configuration changes and every request that has no ``Done`` yet.  Outputs
already received for those requests were discarded when the stream broke, so
for a deterministic node downstream sees exactly what a run without the
failure would have produced.  A stateful node starts again from empty state
on the new session; the log and the stats say so.

Everything here runs on the client event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import RemoteError, RemoteRefused, RemoteUnavailable
from ._limits import DEFAULT_LIMITS
from ._stream import RemoteStream

if TYPE_CHECKING:
    from .warp import Warp

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "Connection"]

log = logging.getLogger(__name__)

#: First retry after 100 ms (a restarted replica is usually back within a second),
#: doubling up to 2 s so a long outage costs little.
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 2.0
#: RemoteStream counters a connection sums over its streams (it opens a new one after
#: each reconnect): bytes each way, request frames sent with a tail, result frames
#: received with a tail, and outputs whose array was named (the request's own).
STREAM_COUNTERS = ("bytes_out", "bytes_in", "tails_out", "tails_in", "tail_refs_in")


class _Sink:
    """Results of one stream generation; a replaced stream's late callbacks are ignored."""

    __slots__ = ("connection", "generation")

    def __init__(self, connection: Connection, generation: int) -> None:
        self.connection = connection
        self.generation = generation

    def _current(self) -> bool:
        return self.generation == self.connection.generation

    # (on_output and on_done come once per request: _current() written out)
    def on_output(self, seq: int, exit_name: str, decode: Any) -> None:
        if self.generation == self.connection.generation:
            self.connection.warp.on_output(seq, exit_name, decode)

    def on_done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        if self.generation == self.connection.generation:
            self.connection.warp.on_done(seq, queue_s, compute_s, outputs)

    def on_failed(self, seq: int, code: int, detail: str) -> None:
        if self._current():
            self.connection.warp.on_failed(seq, code, detail)

    def on_draining(self, grace_s: float) -> None:
        if self._current():
            log.info(
                "%s: server is draining (grace %.1fs); will move on when it ends the session",
                self.connection.warp.where,
                grace_s,
            )

    def on_end(self, error: RemoteError | None) -> None:
        if self._current():
            self.connection.ended(error)

    def request_blob(self, seq: int) -> Any:
        return self.connection.warp.request_blob(seq) if self._current() else None


class Connection:
    """One session (of ``streams``) between a Warp and its server."""

    def __init__(
        self, warp: Warp, index: int, channel: Any, metadata: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.warp = warp
        self.index = index
        self.channel = channel
        self.metadata = metadata
        self.stream: RemoteStream | None = None
        self.generation = 0
        self.state = "new"  # new, open, reconnecting, closing, closed
        self.last_sent = 0
        self.session_id = ""
        self.window = 0
        #: Value-tree forms the server of the current session reads (Opened.value_formats).
        self.value_formats: tuple[str, ...] = ()
        self.reconnects = 0
        self.replayed = 0
        self.failover_s = 0.0
        #: While reconnecting: when the stream broke, and the latest reason it is still down
        #: (read by Warp._unreachable).
        self.down_since = 0.0
        self.last_error: RemoteError | None = None
        # Counters of this connection's earlier streams (see total()).
        self._before = dict.fromkeys(STREAM_COUNTERS, 0)
        self._task: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        return self.warp.where

    def total(self, counter: str) -> int:
        """``counter`` (one of STREAM_COUNTERS) over every stream of this connection."""
        current: int = getattr(self.stream, counter) if self.stream else 0
        return self._before[counter] + current

    @property
    def bytes_out(self) -> int:
        return self.total("bytes_out")

    @property
    def bytes_in(self) -> int:
        return self.total("bytes_in")

    async def open(self, timeout: float, preferred: Any = None) -> None:
        """Open the session; raises the mapped RemoteError (used at warmup: fail fast).

        ``preferred`` is a channel to one replica, tried first so that the sessions of
        ``streams`` start on different replicas; when that replica is down or draining,
        the balancer of ``channel`` picks another.
        """
        if preferred is not None:
            try:
                await self._open_on(preferred, max(1.0, min(timeout, self.warp.keepalive)))
                return
            except RemoteUnavailable as exc:
                log.info("%s: preferred replica unavailable (%s)", self.where, exc)
        await self._open_on(self.channel, timeout)

    async def _open_on(self, channel: Any, timeout: float) -> None:
        self.generation += 1
        stream = self._new_stream(channel)
        # At pipeline start, fail fast when nothing listens (wait_for_ready off).
        opened = await stream.open(self.warp._open_frame(), timeout, wait_for_ready=False)
        self.stream = stream
        self.session_id = opened.session_id
        self.window = opened.window
        self.value_formats = tuple(opened.value_formats)
        self.state = "open"

    def _new_stream(self, channel: Any) -> RemoteStream:
        """A stream of the current generation (results of older ones are ignored)."""
        return RemoteStream(
            channel,
            _Sink(self, self.generation),
            self.where,
            DEFAULT_LIMITS,
            metadata=self.metadata,
            liveness_s=self.warp.keepalive,
        )

    def send(self, seq: int, item: Any) -> None:
        """Queue a request or Configure frame (loop thread).  While reconnecting it waits:
        the replay sends every request without Done, this one included."""
        if self.state == "open" and self.stream is not None and seq > self.last_sent:
            if seq <= self.warp.last_packed_seq and "msgpack" not in self.value_formats:
                # Encoded with MessagePack trees before a reconnect told the Warp that
                # this server does not read them (later requests are in columns).
                item = self.warp.columns_item(seq, item)
                if item is None:
                    return  # failed in its turn by the delivery thread
            self.last_sent = seq
            self.stream.send(item)

    def release_after_write(self, lock: threading.Lock) -> None:
        """Release ``lock`` once the current stream's next write is done (at once if none)."""
        if self.stream is not None:
            self.stream.release_after_write(lock)
        else:
            lock.release()

    def close(self) -> None:
        """Half-close after the last request: the server flushes the node and ends with OK."""
        if self.state == "open" and self.stream is not None:
            self.state = "closing"
            self.stream.send(None)
        elif self.state in ("new", "reconnecting"):
            self.state = "closed"
            if self._task is not None:
                self._task.cancel()
            self.warp.connection_closed(self, None)

    def cancel(self) -> None:
        self.state = "closed"
        if self._task is not None:
            self._task.cancel()
        if self.stream is not None:
            self.stream.cancel()

    def ended(self, error: RemoteError | None) -> None:
        """The stream ended: done, or reconnect and replay."""
        if self.state in ("closing", "closed") or error is None:
            self.state = "closed"
            self.warp.connection_closed(self, error)
            return
        if isinstance(error, RemoteRefused) or self.warp.closing:
            self.state = "closed"
            self.warp.connection_closed(self, error)
            return
        self.state = "reconnecting"
        broke_at = time.monotonic()
        self.down_since, self.last_error = broke_at, error
        discarded = self.warp.discard_partial(self.index)
        log.warning(
            "%s: session %s broke (%s); reconnecting%s",
            self.where,
            self.session_id,
            error,
            f", {discarded} partial outputs discarded" if discarded else "",
        )
        if self.stream is not None and self.stream.went_silent:
            # gRPC still holds the frozen server's connection as READY and would pick it
            # again: reconnect through a fresh channel, which finds the live replicas.
            self.channel = self.warp.fresh_channel(broke_at)
        self._task = asyncio.get_running_loop().create_task(self._reconnect(broke_at, error))

    async def _reconnect(self, broke_at: float, error: RemoteError) -> None:
        delay = BACKOFF_INITIAL_S
        attempt = 0
        while self.state == "reconnecting" and not self.warp.closing:
            attempt += 1
            self.generation += 1
            stream = self._new_stream(self.channel)
            try:
                # Bounded by keepalive: an attempt that lands on a frozen replica is
                # abandoned as fast as a frozen session is detected.
                opened = await stream.open(
                    self.warp._open_frame(),
                    max(1.0, min(self.warp.open_timeout, self.warp.keepalive)),
                )
            except RemoteRefused as exc:
                self.state = "closed"
                self.warp.connection_closed(self, exc)
                return
            except RemoteError as exc:
                self.last_error = exc
                log.info("%s: reconnect attempt %d failed: %s", self.where, attempt, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self.state != "reconnecting":
                stream.cancel()
                return
            previous = self.session_id
            if self.stream is not None:
                for counter in STREAM_COUNTERS:
                    self._before[counter] += getattr(self.stream, counter)
            self.stream = stream
            self.session_id = opened.session_id
            self.window = opened.window
            self.value_formats = tuple(opened.value_formats)
            if self.warp.pack_trees and "msgpack" not in self.value_formats:
                # A replica of another version: requests from now on use the columns.
                self.warp.pack_trees = False
                log.warning(
                    "%s: the new session's server does not read MessagePack trees; "
                    "later requests use the column form",
                    self.where,
                )
            self.state = "open"
            self.last_sent = 0
            items = self.warp.replay_items(self.index, columns="msgpack" not in self.value_formats)
            for seq, item in items:
                self.last_sent = seq
                stream.send(item)
            self.reconnects += 1
            self.replayed += len(items)
            self.failover_s = time.monotonic() - broke_at
            log.warning(
                "%s: session %s replaces %s after %.2fs (%d attempts); replayed %d requests in order; "
                "a stateful node restarts from empty state",
                self.where,
                self.session_id,
                previous,
                self.failover_s,
                attempt,
                len(items),
            )
            return

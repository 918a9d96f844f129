"""``Warp``: the proxy node that runs a node (or a group of nodes) on a Fontus server.

Downstream nodes see the same messages as if the remote node ran locally:
requests are pipelined up to ``window``; each request's outputs are released
when its ``Done`` arrives, in request order, with the Warp's name as creator;
when the window is full new requests wait, so backpressure reaches the source.
In a local pipeline the data items reach the Warp on the client loop, where
they are encoded and written as window slots free up (``_feed.LoopFeed``);
``update`` on the node thread is the path against a Juturna server and for
inputs that are synchronised or may be dropped (decision 0013).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..core.errors import ConfigError, NodeError, RemoteError, RemoteTimeout, WireError
from ..core.inbox import QuietCondition, Room
from ..core.message import Message
from ..core.node import Node
from ..core.payloads import ConfigPayload, ObjectPayload
from ..core.stats import LatencyWindow
from ._arrays import CompressionConfig
from ._channel import make_channel, normalise_target, replica_targets
from ._connection import Connection
from ._feed import LoopFeed
from ._frames import EncodedItem, control_frame, encode_request
from ._juturna_client import JuturnaItem, JuturnaTransport, encode_juturna_request, probe_protocol
from ._limits import DEFAULT_LIMITS
from ._loop import client_loop
from ._packed import tree_formats
from ._wire.v1 import session_pb2 as spb
from .codec import WireEncoder

if TYPE_CHECKING:
    from ..core.inbox import Inbox
    from ..core.runner import NodeRunner

__all__ = ["Warp"]

log = logging.getLogger(__name__)

#: How long ``warmup`` waits for the server to answer Open: long enough for a
#: model-loading warmup on the server, short enough to fail a pipeline start clearly.
DEFAULT_OPEN_TIMEOUT_S = 30.0
#: A frozen or unreachable server is taken as dead after this much silence; the
#: server's heartbeats come every quarter of it, so one lost frame is not enough.
DEFAULT_KEEPALIVE_S = 4.0
#: Requests in flight by default: hides a LAN round trip at a few thousand messages/s.
DEFAULT_WINDOW = 16
#: How long ``flush`` waits for the server to finish after the last request.
FLUSH_TIMEOUT_S = 60.0
#: How long update waits for the loop to take a request that filled the window (see _send).
HANDOFF_WAIT_S = 0.1
#: Finished requests the delivery thread forwards per wake-up at most (their slots free together).
MAX_DELIVERY_BATCH = 16

_PENDING, _DONE, _FAILED, _TIMEOUT = 0, 1, 2, 3
_FAIL_NAMES = {1: "node error", 2: "deadline exceeded", 3: "invalid message", 4: "cancelled"}


@dataclass(slots=True)
class _Pending:
    seq: int
    #: The request, or the serialized Configure frame of a runtime change.
    item: EncodedItem | JuturnaItem | bytes
    sent_at: float
    deadline: float
    meta_source: Message[Any]
    outputs: list[tuple[str, Any]] = field(default_factory=list)
    state: int = _PENDING
    detail: str = ""
    queue_s: float = 0.0
    compute_s: float = 0.0
    done_at: float = 0.0
    #: For a Configure: the change, as ``prop=value``.
    change: str = ""
    #: Index of the connection (of ``streams``) the request went to.
    conn: int = 0
    #: Failed before it was sent (see Warp._unreachable).
    unsent: bool = False
    #: A request whose value trees were written in MessagePack: re-encoded in the
    #: column form when replayed to a server that does not read it.
    packed: bool = False
    #: The upstream node the request came from (to encode it again).
    origin: str = ""


def _send_then_hand_back(
    transport: Any, send: Any, args: tuple[Any, ...], handed: threading.Lock
) -> None:
    """On the loop: queue the request; ``handed`` is released once it is written."""
    try:
        send(*args)
    finally:
        transport.release_after_write(handed)


class Warp(Node):
    """Runs a node on a Fontus server and forwards messages to it.

    Args:
        target: server address host:port, a list of replicas, or dns:///name:port.
        timeout: seconds a request may take before it is reported as failed; once the server has been unreachable this long, new requests fail at once until it is back.
        window: requests in flight at most; new ones wait while it is full, so backpressure reaches the source (default 16; 1 against a Juturna server, which may run pipelined requests out of order).
        node: the remote node, {mark, configuration} (or just the mark).
        graph: a remote group {nodes: [{name, mark, configuration}], links: [{from, to}], exits: [...]}.
        routes: for a group, which entry node each upstream node feeds {origin: entry}.
        on_error: what a failed request does: skip (count and log), stop the pipeline, or emit an error message.
        compression: compress arrays of 64 KiB and more: none, zstd or lz4.
        open_timeout: seconds to wait for the server when the pipeline starts.
        grpc_host: Juturna form of target (with grpc_port).
        grpc_port: Juturna form of target (with grpc_host).
        remote_config: Juturna form of the node's configuration.
        protocol: fontus, juturna (an upstream 'juturna remotize'), or auto (ask the server); default fontus, or auto for the grpc_host form.
        streams: sessions to open (on different replicas where possible); requests of a stateless node are spread across them, outputs keep their order.
        tls: TLS settings, paths only: {ca, cert, key, server_name}.
        token_env: environment variable holding the bearer token to present.
        keepalive: seconds of server silence after which the session is taken as dead and moved (a frozen or unreachable server); the server sends heartbeats at a quarter of it.
        array_refs: a large array the remote node passes on unchanged comes back as a reference to the request's own array, not its bytes (default true; false sends it back in full, as when measuring the transport).
    """

    mark: ClassVar[str] = "warp"

    def __init__(
        self,
        target: str | list[str] = "",
        timeout: float = 30.0,
        window: int = 0,
        node: dict[str, Any] | str | None = None,
        graph: dict[str, Any] | None = None,
        routes: dict[str, str] | None = None,
        on_error: Literal["skip", "stop", "emit"] = "skip",
        compression: Literal["none", "zstd", "lz4"] = "none",
        open_timeout: float = DEFAULT_OPEN_TIMEOUT_S,
        grpc_host: str = "",
        grpc_port: int = 0,
        remote_config: dict[str, Any] | None = None,
        protocol: Literal["", "fontus", "juturna", "auto"] = "",
        streams: int = 1,
        tls: dict[str, str] | None = None,
        token_env: str = "",
        keepalive: float = DEFAULT_KEEPALIVE_S,
        array_refs: bool = True,
    ) -> None:
        if not target and grpc_host:
            target = f"{grpc_host}:{grpc_port}"
        if not target:
            raise ConfigError("warp: target is required (host:port), or grpc_host and grpc_port")
        if window < 0:
            raise ConfigError(f"warp: window must be >= 1 (or 0 for the default), got {window}")
        self._window_explicit = window > 0
        window = window or DEFAULT_WINDOW
        if timeout <= 0:
            raise ConfigError(f"warp: timeout must be > 0 seconds, got {timeout}")
        if not 0.5 <= keepalive <= 3600:
            raise ConfigError(f"warp: keepalive must be 0.5..3600 seconds, got {keepalive}")
        if not 1 <= streams <= 64:
            raise ConfigError(f"warp: streams must be 1..64, got {streams}")
        self.target = target
        self.timeout = timeout
        self.window = window
        if isinstance(node, str):
            node = {"mark": node}
        self.node_spec = dict(node or {})
        if remote_config:
            self.node_spec.setdefault("configuration", dict(remote_config))
        self.graph = graph
        self.routes = dict(routes or {})
        self.on_error = on_error
        self.compression = CompressionConfig(compression)
        #: Value-tree forms offered to the server for outputs (FONTUS_VALUE_TREES).
        self.tree_formats = tree_formats()
        self.open_timeout = open_timeout
        self.protocol: str = protocol or ("auto" if grpc_host else "fontus")
        self.remote_config = (
            dict(remote_config)
            if remote_config
            else (dict(self.node_spec.get("configuration") or {}) or None)
        )
        self._channel_target = normalise_target(target)
        self.streams = streams
        self.keepalive = keepalive
        self.array_refs = array_refs
        self.tls = dict(tls) if tls else None
        self.token_env = token_env
        self._conns: list[Connection] = []
        self._old_channels: list[Any] = []
        self._credentials: Any = None
        self._channel_options: list[tuple[str, Any]] = []
        self._channel_made_at = 0.0
        self._next_conn = 0
        #: Configure frames sent, per connection, replayed after a reconnect.
        self._config_history: list[tuple[int, int, Any]] = []
        #: Seqs of replayed, already finished Configure frames: their answers are expected.
        self._silent: set[int] = set()
        #: Requests timed out here but not answered yet, by seq: their connection. The
        #: server still counts them in its window, so their slots wait for the answer.
        self._abandoned: dict[int, int] = {}
        # State shared by the node thread, the delivery thread and the client loop.
        # Held directly (``with self._lock``) on the hot paths: a Condition's own
        # ``__enter__``/``__exit__`` are Python calls, two per message more.
        self._lock = threading.RLock()
        self._cond = QuietCondition(self._lock)
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        #: When the delivery thread, waiting on ``_cond``, wakes up by itself to check a
        #: deadline (monotonic; 0.0 while it is not waiting): see ``_send``.
        self._delivery_wakes_at = 0.0
        #: The hop timers' names (this node's name and round_trip, ...), made once.
        self._timer_names: tuple[str, ...] = ()
        self._unsolicited: deque[tuple[str, Any]] = deque()
        #: The window: one place per request or Configure in flight; a thread waiting
        #: for one is woken at the first given back.
        self._slots = Room(window, resume=1)
        #: Where data items arrive on the client loop instead of the node thread (see
        #: LoopFeed); None outside a local pipeline, inactive against a Juturna server.
        self._feed: LoopFeed | None = None
        self._seq = itertools.count(1)
        self._stream: JuturnaTransport | None = None
        self._metadata: tuple[tuple[str, str], ...] = ()
        self._channel: Any = None
        self._ended = threading.Event()
        self._end_error: RemoteError | None = None
        self._fatal: NodeError | None = None
        self._closing = False
        self._delivery: threading.Thread | None = None
        self._session_id = ""
        self.granted_window = window
        self.pack_trees = False  # set once the sessions are open (see _connect)
        #: The last request written with MessagePack trees. ``pack_trees`` only goes
        #: from on to off (a reconnect to a server that does not read them), so every
        #: later seq was written in the column form (see Connection.send).
        self.last_packed_seq = 0
        # Stats.
        self.requests = 0
        self.configures = 0
        self.outputs = 0
        self.failures = 0
        self.timeouts = 0
        self.late = 0
        #: Requests failed without being sent: every session was down for longer than timeout.
        self.unsent = 0
        self._unsent_since_log = 0
        self._unsent_logged_at = 0.0
        self._outage_logged = 0.0  # when the outage last announced began (see _unreachable)
        self.discarded = 0
        self.rtt = LatencyWindow()

    # -- description ---------------------------------------------------------------
    @property
    def where(self) -> str:
        what = self.node_spec.get("mark") or ("group" if self.graph else "hosted node")
        return f"node '{self.name}' ({what} on {self.target})"

    def _open_frame(self) -> bytes:
        frame = spb.ClientFrame()
        op = frame.open
        encoder = WireEncoder()
        if self.graph:
            g = op.graph
            for spec in self.graph.get("nodes", []):
                n = g.nodes.add(name=spec["name"], mark=spec.get("mark", ""))
                encoder.value_map(spec.get("configuration") or {}, n.configuration, "configuration")
            for link in self.graph.get("links", []):
                g.links.add(source=link["from"], target=link["to"])
            g.exits.extend(self.graph.get("exits", []))
        elif self.node_spec:
            n = op.node
            n.name = self.name
            n.mark = self.node_spec.get("mark", "")
            encoder.value_map(
                self.node_spec.get("configuration") or {}, n.configuration, "configuration"
            )
        op.client = f"{self.name}@{threading.get_ident() & 0xFFFF:04x}"
        op.window = self.window
        op.protocol_version = 1
        op.compression = self.compression.algorithm
        op.value_formats.extend(self.tree_formats)
        op.frame_parts = True
        op.frame_tails = True
        op.sized_tails = True
        op.tail_refs = self.array_refs
        op.heartbeat_ms = int(self.keepalive * 1000 / 4)
        return encoder.finish(frame)

    # -- lifecycle -----------------------------------------------------------------
    def warmup(self) -> None:
        loop = client_loop()
        future = loop.submit(self._connect())
        try:
            future.result(timeout=self.open_timeout + 5.0)
        except RemoteError:
            raise
        except TimeoutError:
            raise RemoteTimeout(
                f"{self.where}: no session within {self.open_timeout:.0f}s"
            ) from None
        self._delivery = threading.Thread(
            target=self._deliver_loop, name=f"fontus-warp-{self.name}", daemon=True
        )
        self._delivery.start()
        if self._feed is not None and self.protocol == "fontus":
            self._feed.activate()

    async def _connect(self) -> None:
        credentials: Any = None
        options: list[tuple[str, Any]] = []
        if self.tls or self.token_env:
            from ._security import TLSConfig, channel_credentials, token_metadata

            if self.tls:
                credentials, options = channel_credentials(TLSConfig.from_mapping(self.tls))
            self._metadata = token_metadata(self.token_env) if self.token_env else ()
        self._credentials, self._channel_options = credentials, options
        self._channel = make_channel(self._channel_target, credentials, extra_options=options)
        self._channel_made_at = time.monotonic()
        if self.protocol == "auto":
            self.protocol = await probe_protocol(
                self._channel, self.open_timeout, self.where, self._metadata
            )
            log.info("%s: server speaks the %s protocol", self.where, self.protocol)
        if self.protocol == "juturna":
            if not self._window_explicit and self.window > 1:
                # Juturna's server may process concurrent calls out of order, which a
                # stateful node would notice: one at a time unless asked otherwise.
                for _ in range(self.window - 1):
                    self._slots.acquire()
                self.granted_window = 1
            stream = JuturnaTransport(self._channel, self, self.where, self.timeout, DEFAULT_LIMITS)
            await stream.open(b"", self.open_timeout)
            self._stream = stream
            self._session_id = "juturna"
            return
        self._conns = [
            Connection(self, i, self._channel, self._metadata) for i in range(self.streams)
        ]
        # gRPC's round robin starts each new picker (one per change in the replicas'
        # states) at a random replica, so sessions opened in a row may share one: with a
        # list of replicas, session i first tries replica i through a channel of its own.
        placed = [
            make_channel(replica, credentials, extra_options=options)
            for replica in (replica_targets(self._channel_target) if self.streams > 1 else [])
        ]
        self._old_channels.extend(placed)  # closed in destroy
        try:
            for conn in self._conns:
                await conn.open(
                    self.open_timeout, placed[conn.index % len(placed)] if placed else None
                )
        except BaseException:
            for conn in self._conns:
                conn.cancel()
            raise
        self._session_id = ",".join(conn.session_id for conn in self._conns)
        granted = min(conn.window or self.window for conn in self._conns) * len(self._conns)
        if granted < self.window:
            # The servers granted fewer slots: take the difference out of the semaphore.
            for _ in range(self.window - granted):
                self._slots.acquire()
        self.granted_window = min(granted, self.window)
        # Requests are encoded once, before a session is picked: MessagePack trees only
        # when every session's server reads them.
        self.pack_trees = "msgpack" in self.tree_formats and all(
            "msgpack" in conn.value_formats for conn in self._conns
        )
        log.info(
            "%s: session %s open, window %d", self.where, self._session_id, self.granted_window
        )

    def update(self, message: Message[Any]) -> None:
        # Encode before taking a window slot: a message that cannot be encoded raises
        # without holding one (the window would shrink for good), and with the window
        # full the encoding overlaps the requests in flight.  Only this node's thread
        # takes seqs, so they still increase in the order requests are sent.
        seq = next(self._seq)
        origin = self.origin
        item: EncodedItem | JuturnaItem
        # Read once: a reconnect may turn it off meanwhile (see Connection.send).
        packed = self.pack_trees and self.protocol != "juturna"
        if self.protocol == "juturna":
            item = encode_juturna_request(seq, message, self.name, self.timeout, self.remote_config)
        else:
            item = self._encode(seq, message, origin, packed)
        self._take_slot()
        self._send(self._pending_for(seq, item, message, origin, packed))
        self.requests += 1

    def _pending_for(
        self, seq: int, item: Any, message: Message[Any], origin: str, packed: bool
    ) -> _Pending:
        """Request ``seq``, encoded as ``item``, tracked from now (its slot taken)."""
        pending = _Pending(seq, item, time.perf_counter(), self._deadline(), message)
        if packed:
            pending.packed, pending.origin = True, origin
            self.last_packed_seq = seq
        if len(self._conns) > 1:
            # Spread over the sessions, least loaded first; the tracker restores order.
            pending.conn = self._least_loaded()
        return pending

    def _fontus_item_feed(self, inbox: Inbox, runner: NodeRunner) -> LoopFeed:
        self._feed = LoopFeed(self, inbox, runner)
        return self._feed

    def send_from_loop(self, message: Message[Any], origin: str, feed: LoopFeed) -> bool:
        """What ``update`` does, on the client loop and without waiting (see LoopFeed).

        False when the window is full: the feed keeps the message and calls again
        when a slot frees.  The runner counts it and handles its errors, as it does
        ``update``'s (``NodeRunner.deliver``).
        """
        if not self._slots.acquire(blocking=False):
            return False
        room = feed.room
        if not feed.runner.deliver(message, partial(self._send_taken, origin=origin, room=room)):
            self._free_slots()  # dropped (the node's on_error: stop)
            room.release()
        return True

    def _send_taken(self, message: Message[Any], *, origin: str, room: Room) -> None:
        """Send ``message`` with the slot already taken for it; on any failure the slot
        and the upstream's ``room`` are given back before the error goes on."""
        try:
            self._raise_fatal()
            seq = next(self._seq)
            packed = self.pack_trees
            item = self._encode(seq, message, origin, packed)
        except BaseException:
            self._free_slots()
            room.release()
            raise
        try:
            self._send(self._pending_for(seq, item, message, origin, packed), room)
        except NodeError:
            room.release()  # (_send gave the slot back)
            raise
        self.requests += 1

    def _free_slots(self, count: int = 1) -> None:
        """``count`` window slots are free again; data waiting on the loop may go."""
        self._slots.release(count)
        feed = self._feed
        if feed is not None and feed.items:
            client_loop().call(feed.drain)

    def _encode(self, seq: int, message: Message[Any], origin: str, packed: bool) -> EncodedItem:
        """Request ``seq``: in a group it goes to the entry node ``origin`` feeds."""
        return encode_request(
            seq,
            message,
            timeout_ms=int(self.timeout * 1000),
            target=self.routes.get(origin, "") if self.routes else "",
            origin=origin,
            compression=self.compression,
            pack_trees=packed,
        )

    def _least_loaded(self) -> int:
        loads = [0] * len(self._conns)
        with self._lock:
            for p in self._pending.values():
                loads[p.conn] += 1
        open_ = [i for i, c in enumerate(self._conns) if c.state == "open"] or list(
            range(len(loads))
        )
        self._next_conn = (self._next_conn + 1) % len(loads)
        return min(open_, key=lambda i: (loads[i], (i - self._next_conn) % len(loads)))

    def set_on_config(self, prop: str, value: Any) -> None:
        """Forward a runtime change to the remote node, after every request sent before it.

        It travels as a ``Configure`` frame that takes a window slot and a seq like
        a request; its ``Done`` or ``Failed`` is handled in request order, and a
        failure follows ``on_error``.  In a remote group, ``prop`` may be
        ``member.argument`` to reach a member other than the group's entry.
        Against a Juturna service the change joins the configuration that travels
        with every later request.
        """
        if self.protocol == "juturna":
            self.remote_config = {**(self.remote_config or {}), prop: value}
            self.configures += 1
            return
        node = ""
        if self.graph and "." in prop:
            member, _, rest = prop.partition(".")
            if member in {n.get("name") for n in self.graph.get("nodes", [])}:
                node, prop = member, rest
        change = f"{node + '.' if node else ''}{prop}={value!r}"
        source = Message(ConfigPayload({prop: value}), creator=self.name)
        # Every session has its own node instance: each one gets the change.
        for index in range(max(1, len(self._conns))):
            self._take_slot()
            seq = next(self._seq)
            frame = spb.ClientFrame()
            configure = frame.configure
            configure.seq = seq
            configure.node = node
            encoder = WireEncoder()
            try:
                encoder.value_map({prop: value}, configure.changes, "configure")
            except WireError:
                self._free_slots()
                raise
            data = control_frame(frame, encoder)
            with self._lock:
                self._config_history.append((index, seq, data))
            pending = _Pending(
                seq, data, time.perf_counter(), self._deadline(), source, change=change
            )
            pending.conn = index
            self._send(pending)
        self.configures += 1

    def _take_slot(self) -> None:
        """Wait for a window slot (backpressure); raises once the session or the node failed."""
        self._raise_fatal()
        while not self._slots.acquire(timeout=0.25):
            self._raise_fatal()
            if self._ended.is_set() and self._end_error is not None:
                raise NodeError(self.name, str(self._end_error))

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _unreachable(self) -> str | None:
        """Why a new request would only wait out its timeout, or None.

        When every session has been reconnecting for longer than ``timeout``, a
        request sent now would most likely time out as well: it fails at once
        instead (in order, through ``on_error``), so that a live pipeline keeps
        flowing while the server is away rather than waiting a timeout per window.
        Requests sent before keep waiting for the replay; new ones are sent again
        as soon as a session is back.
        """
        conns = self._conns
        if not conns:
            return None
        for conn in conns:  # on every request: no clock read while a session is open
            if conn.state != "reconnecting":
                return None
        began = max(conn.down_since for conn in conns)
        down = time.monotonic() - began
        if down < self.timeout:
            return None
        last = conns[0].last_error
        if self._outage_logged != began:  # once per outage
            self._outage_logged = began
            log.warning(
                "%s: server unreachable for %.0fs, longer than timeout %.1fs: new requests "
                "fail at once (on_error: %s) until a session is back; still reconnecting (%s)",
                self.where,
                down,
                self.timeout,
                self.on_error,
                last,
            )
        return (
            f"not sent: the server has been unreachable for {down:.0f}s, longer than timeout "
            f"{self.timeout:.1f}s; still reconnecting (last error: {last})"
        )

    def _send(self, pending: _Pending, room: Room | None = None) -> None:
        """Track ``pending`` (its slot already taken) and queue its frame on the stream.

        ``room``: called from the client loop by a LoopFeed, whose upstream gets its
        room back (``room.release()``) once the request is written.
        """
        unreachable = None if pending.change else self._unreachable()
        with self._lock:
            if self._ended.is_set():
                self._free_slots()
                raise NodeError(
                    self.name, str(self._end_error or f"{self.where}: session has ended")
                )
            idle = not self._pending
            self._pending[pending.seq] = pending
            if unreachable is not None:
                # Failed in its turn by the delivery thread, after the requests before it.
                pending.state, pending.detail, pending.unsent = _FAILED, unreachable, True
                self._cond.notify_all()
                if room is not None:
                    room.release()
                return
            if idle and pending.deadline < self._delivery_wakes_at:
                # The delivery thread idles in long waits: wake it to watch this deadline
                # if it would look too late (later requests have later deadlines, so only
                # the first needs this).  Not otherwise: at window 1 every request finds
                # nothing pending, and a wake-up as it is written costs the round trip.
                self._cond.notify_all()
        transport: Any
        if self._conns:
            transport = self._conns[pending.conn]
            args: tuple[Any, ...] = (pending.seq, pending.item)
        else:
            transport, args = self._stream, (pending.item,)
            assert transport is not None
        send = transport.send
        if room is not None:
            send(*args)
            transport.release_after_write(room)
            return
        if not self._slots.full:
            client_loop().call(send, *args)
            return
        # This request fills the window: nothing more can be sent before an answer,
        # so let the loop write it now.  Left running, this thread would keep the GIL
        # for its bookkeeping (returning, statistics, the next inbox read, encoding the
        # next message) while the woken loop waits for it: measured, about 60 µs added
        # to each round trip.  It waits until the write is done (the first gRPC message
        # of its frame), not just started, so that its bookkeeping runs while the
        # request travels and the server works (seventh session: 3-8% more small
        # messages/s at window 1, 4% more 1080p).
        handed = threading.Lock()
        handed.acquire()
        client_loop().call(_send_then_hand_back, transport, send, args, handed)
        handed.acquire(timeout=HANDOFF_WAIT_S)

    def flush(self) -> None:
        """Wait for every request to finish, half-close, and deliver what the server flushes."""
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        with self._lock:
            while (self._pending or self._unsolicited) and not self._ended.is_set():
                if time.monotonic() > deadline:
                    break
                self._cond.wait(0.1)
        if not self._ended.is_set():
            if self._conns:
                for conn in self._conns:
                    client_loop().call(conn.close)
            elif self._stream is not None:
                client_loop().call(self._stream.send, None)
            self._ended.wait(max(0.1, deadline - time.monotonic()))
        with self._lock:
            self._closing = True
            self._cond.notify_all()
        if self._delivery is not None:
            self._delivery.join(timeout=max(1.0, deadline - time.monotonic()))
        self._raise_fatal()

    def destroy(self) -> None:
        with self._lock:
            self._closing = True
            self._cond.notify_all()
        stream, channel, conns = self._stream, self._channel, list(self._conns)
        old_channels = list(self._old_channels)
        if stream is not None or channel is not None:
            loop = client_loop()

            async def close() -> None:
                for conn in conns:
                    conn.cancel()
                if stream is not None:
                    stream.cancel()
                for old in old_channels:
                    await old.close()
                if channel is not None:
                    await channel.close()

            try:
                loop.submit(close()).result(timeout=5.0)
            except Exception as exc:  # noqa: BLE001 - closing must not fail the pipeline's end
                log.debug("%s: closing channel: %s", self.where, exc)

    # -- ResultSink (called on the client loop) ---------------------------------------
    def on_output(self, seq: int, exit_name: str, decode: Any) -> None:
        with self._lock:
            if seq == 0:
                self._unsolicited.append((exit_name, decode))
                self._cond.notify_all()
                return
            pending = self._pending.get(seq)
            if pending is None or pending.state != _PENDING:
                self.late += 1
                return
            pending.outputs.append((exit_name, decode))

    def on_done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        with self._lock:
            pending = self._pending.get(seq)
            if pending is None or pending.state != _PENDING:
                if seq in self._silent:
                    self._silent.discard(seq)
                else:
                    self._late_answer(seq)
                return
            pending.state = _DONE
            pending.queue_s = queue_s
            pending.compute_s = compute_s
            pending.done_at = time.perf_counter()
            self._cond.notify_all()

    def on_failed(self, seq: int, code: int, detail: str) -> None:
        with self._lock:
            pending = self._pending.get(seq)
            if pending is None or pending.state != _PENDING:
                if seq in self._silent:
                    self._silent.discard(seq)
                    log.warning(
                        "%s: replaying a configuration change failed: %s", self.where, detail
                    )
                else:
                    self._late_answer(seq)
                return
            pending.state = _FAILED
            pending.detail = f"{_FAIL_NAMES.get(code, 'failed')}: {detail}"
            self._cond.notify_all()

    def _late_answer(self, seq: int) -> None:
        """The answer to a request already reported (timed out): count it, free its slot."""
        self.late += 1
        if self._abandoned.pop(seq, None) is not None:
            self._free_slots()

    def _server_holds(self, index: int) -> bool:
        """Whether connection ``index`` has a live session, which counts its requests."""
        return not self._conns or self._conns[index].state in ("open", "closing")

    def _release_abandoned(self, index: int | None = None) -> None:
        """A session ended (connection ``index``, or all): it no longer counts those requests."""
        for seq, conn in list(self._abandoned.items()):
            if index is None or conn == index:
                del self._abandoned[seq]
                self._free_slots()

    def request_blob(self, seq: int) -> Any:
        """The last blob request ``seq`` went with, while it waits for its answer (the
        server names it instead of sending the array back: ServerFrame.tail_request)."""
        with self._lock:
            pending = self._pending.get(seq)
            if pending is None or pending.state != _PENDING:
                return None
            item = pending.item
            if type(item) is not EncodedItem or not item.blobs:
                return None
            return item.blobs[-1]

    def on_draining(self, grace_s: float) -> None:
        log.info("%s: server is draining (grace %.1fs)", self.where, grace_s)

    # -- Connection callbacks (client loop) ---------------------------------------------
    @property
    def closing(self) -> bool:
        return self._closing

    def fresh_channel(self, broke_at: float) -> Any:
        """A new channel for reconnecting after a frozen peer (one per incident).

        The old channel is kept open (healthy sessions still use it) and closed in destroy.
        """
        if self._channel_made_at < broke_at:
            self._old_channels.append(self._channel)
            self._channel = make_channel(
                self._channel_target,
                self._credentials,
                extra_options=self._channel_options,
                own_connections=True,
            )
            self._channel_made_at = time.monotonic()
        return self._channel

    def discard_partial(self, index: int) -> int:
        """A stream broke: drop outputs received for its unfinished requests (they are replayed)."""
        count = 0
        with self._lock:
            self._release_abandoned(index)
            for pending in self._pending.values():
                if pending.conn == index and pending.state == _PENDING and pending.outputs:
                    count += len(pending.outputs)
                    pending.outputs.clear()
        return count

    def replay_items(self, index: int, columns: bool = False) -> list[tuple[int, Any]]:
        """What a re-opened session must receive, in seq order: every configuration change
        sent on it (finished ones too: the new node instance needs them) and every
        request without an answer.

        ``columns``: the new session's server does not read MessagePack trees (a
        replica of another version, or without msgpack), so requests written with
        them are encoded again in the column form, from the messages they carry.
        """
        with self._lock:
            items: dict[int, Any] = {}
            for p in self._pending.values():
                if p.conn != index or p.state != _PENDING:
                    continue
                if columns and p.packed and not self._in_columns(p):
                    continue
                items[p.seq] = p.item
            for conn, seq, data in self._config_history:
                if conn == index and seq not in items:
                    items[seq] = data
                    self._silent.add(seq)
        return sorted(items.items())

    def columns_item(self, seq: int, item: Any) -> Any:
        """What to send for request ``seq`` (queued as ``item``) to a server that does not
        read MessagePack trees: encoded again in the column form if it was written with
        them (before the Warp learnt that its new session's server does not read them);
        None if that failed (the request is failed, in its turn)."""
        with self._lock:
            p = self._pending.get(seq)
            if p is None:
                return item
            if p.packed and not self._in_columns(p):
                return None
            return p.item

    def _in_columns(self, p: _Pending) -> bool:
        """Encode request ``p`` again, trees in the column form; False (and ``p``
        failed) if it cannot be.  Called with ``_cond`` held."""
        try:
            p.item = self._encode(p.seq, p.meta_source, p.origin, packed=False)
        except WireError as exc:  # not expected: the column form carries every value
            p.state, p.detail = _FAILED, f"{self.where}: cannot encode it again: {exc}"
            self._cond.notify_all()
            return False
        p.packed = False
        return True

    def connection_closed(self, conn: Connection, error: RemoteError | None) -> None:
        """A session ended for good (closed after flush, refused, or given up)."""
        with self._lock:
            self._release_abandoned(conn.index)
            if error is not None:
                self._end_error = error
                for pending in self._pending.values():
                    if pending.conn == conn.index and pending.state == _PENDING:
                        pending.state = _FAILED
                        pending.detail = str(error)
            if all(c.state == "closed" for c in self._conns):
                self._ended.set()
            self._cond.notify_all()

    def on_end(self, error: RemoteError | None) -> None:
        with self._lock:
            self._release_abandoned()
            self._end_error = error
            if error is not None:
                log.warning("%s: session ended: %s", self.where, error)
                for pending in self._pending.values():
                    if pending.state == _PENDING:
                        pending.state = _FAILED
                        pending.detail = str(error)
            self._ended.set()
            self._cond.notify_all()

    # -- delivery thread ----------------------------------------------------------------
    def _deliver_loop(self) -> None:
        """Forward finished requests in request order, a batch per wake-up.

        Every finished head found in one look at the tracker is taken at once and
        their slots are released together: under load that is one lock, one
        semaphore release and one wake-up of the node thread per batch instead of
        per request (each a GIL hand-off).
        """
        cond, lock = self._cond, self._lock
        while True:
            unsolicited: list[tuple[str, Any]] = []
            heads: list[_Pending] = []
            free = 0  # slots to release after the batch (a held timeout's is freed later)
            with lock:
                while True:
                    if self._unsolicited:
                        unsolicited = list(self._unsolicited)
                        self._unsolicited.clear()
                    while self._pending and len(heads) < MAX_DELIVERY_BATCH:
                        first = next(iter(self._pending.values()))
                        if first.state == _PENDING and time.monotonic() >= first.deadline:
                            first.state = _TIMEOUT
                            first.detail = f"no answer within timeout {self.timeout:.1f}s"
                        if first.state == _PENDING:
                            break
                        head = self._pending.pop(first.seq)
                        heads.append(head)
                        if head.state == _TIMEOUT and self._server_holds(head.conn):
                            self._abandoned[head.seq] = head.conn  # freed by the late answer
                        else:
                            free += 1
                    if unsolicited or heads:
                        break
                    if not self._pending and self._closing:
                        return
                    # Look again at the first deadline, or in 0.5 s at the latest (_send
                    # wakes this thread for a request due sooner than that).
                    now = time.monotonic()
                    wakes_at = now + 0.5
                    if self._pending:
                        first = next(iter(self._pending.values()))
                        wakes_at = max(now, min(wakes_at, first.deadline))
                    self._delivery_wakes_at = wakes_at
                    cond.wait(wakes_at - now)
                    self._delivery_wakes_at = 0.0
            for exit_name, decode in unsolicited:
                self._forward(exit_name, decode, None)
            if heads:
                try:
                    for head in heads:
                        self._finish(head)
                finally:
                    if free:
                        self._free_slots(free)
                    with lock:
                        cond.notify_all()

    def _finish(self, pending: _Pending) -> None:
        if pending.state == _DONE:
            rtt = pending.done_at - pending.sent_at
            self.rtt.add(rtt)
            names = self._timer_names
            if not names:
                names = self._timer_names = tuple(
                    f"{self.name}.{t}" for t in ("round_trip", "server_queue", "server_compute")
                )
            timers = {names[0]: rtt, names[1]: pending.queue_s, names[2]: pending.compute_s}
            for exit_name, decode in pending.outputs:
                self._forward(exit_name, decode, timers)
            return
        if pending.state == _TIMEOUT:
            self.timeouts += 1
        if pending.unsent:
            self.unsent += 1
        self.failures += 1
        what = (
            f"configure {pending.change}"
            if pending.change
            else f"request {pending.seq} (message {pending.meta_source.id})"
        )
        detail = f"{what} failed: {pending.detail}"
        if self.on_error == "emit":
            error = ObjectPayload(
                {
                    "error": pending.detail,
                    "node": self.name,
                    "seq": pending.seq,
                    "message_id": pending.meta_source.id,
                }
            )
            out = pending.meta_source.evolve(payload=error, meta={"fontus.error": True})
            self.transmit(out)
        elif self.on_error == "stop":
            with self._lock:
                if self._fatal is None:
                    self._fatal = NodeError(self.name, detail)
        elif pending.unsent:
            # One line a second while the server is away, not one per message.
            self._unsent_since_log += 1
            now = time.monotonic()
            if now - self._unsent_logged_at >= 1.0:
                more = self._unsent_since_log - 1
                log.warning(
                    "node '%s': %s (on_error: skip%s)",
                    self.name,
                    detail,
                    f"; {more} more like it since the last report" if more else "",
                )
                self._unsent_since_log, self._unsent_logged_at = 0, now
        else:
            log.warning("node '%s': %s (on_error: skip)", self.name, detail)

    def _forward(self, exit_name: str, decode: Any, timers: dict[str, float] | None) -> None:
        if self._fatal is not None:
            # on_error: stop. As with a local node, nothing after the failure goes downstream.
            self.discarded += 1
            return
        try:
            message = decode()
        except Exception as exc:  # noqa: BLE001 - a bad output is counted, never fatal to delivery
            self.failures += 1
            log.warning("node '%s': could not decode an output: %s", self.name, exc)
            return
        # Decoded frozen and seen by nobody else: renewed in place (a new id, the hop
        # timers) and sent as this node's, without the copies passed_on() and
        # transmit() would make of a message received from someone else.
        self.outputs += 1
        self._fontus_send(message._fontus_renew(timers), exit_name if self.graph else None)

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    # -- stats -----------------------------------------------------------------------
    def stats_extra(self) -> dict[str, Any]:
        p50, p99 = self.rtt.quantiles(0.5, 0.99)
        links: list[Any] = [*self._conns, *([self._stream] if self._stream else [])]
        conns = self._conns
        return {
            "target": self.target,
            "session": self._session_id,
            "window": self.granted_window,
            "in_flight": len(self._pending),
            "requests": self.requests,
            "configures": self.configures,
            "outputs": self.outputs,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "late": self.late,
            "unsent": self.unsent,
            "discarded": self.discarded,
            "bytes_out": sum(link.bytes_out for link in links),
            "bytes_in": sum(link.bytes_in for link in links),
            # Arrays that travelled uncopied: requests whose array went as its frame's
            # tail, outputs that came as one, and outputs whose array was the request's
            # own, named and not sent back (decisions 0015-0017).
            "tails_out": sum(c.total("tails_out") for c in conns),
            "tails_in": sum(c.total("tails_in") for c in conns),
            "tail_refs": sum(c.total("tail_refs_in") for c in conns),
            "streams": len(conns) or 1,
            # The form requests' value trees travel in (what the server said it reads).
            "value_trees": "msgpack" if self.pack_trees else "columns",
            "reconnects": sum(c.reconnects for c in conns),
            "replayed": sum(c.replayed for c in conns),
            "failover_s": max((c.failover_s for c in conns), default=0.0),
            "rtt_p50_ms": p50 * 1000,
            "rtt_p99_ms": p99 * 1000,
        }

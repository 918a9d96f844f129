"""``NodeRunner``: runs one node on its own thread, reading its bounded inbox.

This is the local :class:`~fontus.core.node.NodeHost`.  It counts, times and
routes; the node itself only sees ``update`` calls and its own ``transmit``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import NodeConfig
from .errors import NodeError
from .inbox import Inbox, InboxClosed, Item
from .message import Message
from .node import Node, Source
from .payloads import ConfigPayload, ControlPayload
from .stats import NodeStats, NodeStatsSnapshot
from .sync import make_synchroniser

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["EOS", "NodeRunner"]

log = logging.getLogger(__name__)


class _EndOfStream:
    def __repr__(self) -> str:
        return "EOS"


#: Sent by a node to each downstream node when it will send nothing more.
EOS = _EndOfStream()


class NodeRunner:
    """Hosts one node of a local pipeline."""

    def __init__(
        self, pipeline: Pipeline, node: Node, config: NodeConfig, mark: str, origins: list[str]
    ) -> None:
        self.pipeline = pipeline
        self.node = node
        self.config = config
        self.name = config.name
        self.origins = list(origins)
        self.is_source = isinstance(node, Source)
        self.inbox = Inbox(config.inbox.capacity, config.inbox.overflow)
        if config.sync.mode == "passthrough" and config.inbox.overflow == "block":
            # A node may take its data items on another thread (a Warp: the client loop).
            self.inbox.feed = node._fontus_item_feed(self.inbox, self)
        self.sync = make_synchroniser(config.sync, self.origins)
        #: Each message goes to the node as it comes (no synchroniser in between).
        self._passthrough = config.sync.mode == "passthrough"
        self.stats = NodeStats(self.name, mark, node.kind)
        self.downstream: list[NodeRunner] = []
        #: Output port of each downstream link ("" = every message), parallel to ``downstream``.
        self.ports: list[str] = []
        self.thread = threading.Thread(
            target=self._run, name=f"fontus-node-{self.name}", daemon=True
        )
        self._open_origins = set(self.origins)
        self._stopped_by_error = False
        self.warmed = False
        node.attach(self.name, self)

    # -- NodeHost ------------------------------------------------------------
    def emit(self, node: Node, message: Message[Any], port: str | None = None) -> None:
        self.stats.sent += 1
        # Control and config messages are never dropped by a drop_oldest inbox.
        control = isinstance(message.payload, ControlPayload | ConfigPayload)
        for target, link_port in zip(self.downstream, self.ports, strict=True):
            if link_port and link_port != port:
                continue
            try:
                target.inbox.put(Item(self.name, message, control))
            except InboxClosed:
                continue  # that node stopped reading (abort or crash); the others still do

    def stopping(self) -> bool:
        return self.pipeline._stop_requested.is_set()

    def wait(self, seconds: float) -> bool:
        return self.pipeline._stop_requested.wait(seconds)

    # -- lifecycle -----------------------------------------------------------
    def warmup(self) -> None:
        try:
            self.node.warmup()
        except Exception as exc:
            raise NodeError(self.name, f"warmup failed: {type(exc).__name__}: {exc}") from exc
        self.warmed = True

    def snapshot(self) -> NodeStatsSnapshot:
        total = None
        if isinstance(self.node, Source):
            try:
                total = self.node.total()
            except Exception:  # noqa: BLE001 - stats must not fail: total is then unknown
                total = None
        extra_fn = getattr(self.node, "stats_extra", None)
        extra = extra_fn() if callable(extra_fn) else None
        return self.stats.snapshot(
            queue_depth=len(self.inbox),
            queue_capacity=self.inbox.capacity,
            dropped=self.inbox.dropped,
            total=total,
            extra=extra,
        )

    def _run(self) -> None:
        self.stats.start()
        state = "done"
        try:
            if self.is_source:
                self._run_source()
            else:
                self._run_node()
            # Every input has ended: later configure() calls are refused (GraphError), and
            # changes queued before that still reach set_on_config, before flush.
            self.inbox.close()
            self._drain_control()
            if not self._stopped_by_error:
                self._call("flush", self.node.flush)
        except _Abort:
            state = "aborted"
        except Exception as exc:  # noqa: BLE001 - a crash fails the pipeline, naming the node
            state = "failed"
            # Nobody reads this inbox any more: wake producers blocked on it.
            self.inbox.close()
            self.pipeline._node_failed(
                NodeError(self.name, f"crashed: {type(exc).__name__}: {exc}")
            )
        finally:
            self._send_eos()
            try:
                self.node.destroy()
            except Exception as exc:  # noqa: BLE001 - logged: the node is finished anyway
                log.warning(
                    "node '%s': destroy() raised %s: %s", self.name, type(exc).__name__, exc
                )
            self.stats.end(state)
            self.pipeline._node_finished(self)

    def _send_eos(self) -> None:
        for target in self.downstream:
            try:
                target.inbox.put(Item(self.name, EOS, control=True))
            except InboxClosed:
                pass

    def _run_source(self) -> None:
        node = self.node
        assert isinstance(node, Source)
        generator = node.generate()
        while not self.pipeline._stop_requested.is_set():
            self._drain_control()
            t0 = time.perf_counter()
            try:
                item = next(generator)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - user code: handled by on_error
                self._error(exc, None, "generate")
                return
            self.stats.latency.add(time.perf_counter() - t0)
            try:
                node.transmit(item)
            except Exception as exc:  # noqa: BLE001 - user code: handled by on_error
                self._error(exc, None, "transmit")
        close = getattr(generator, "close", None)
        if close is not None:
            close()
        if self.pipeline._aborted:
            raise _Abort

    def _drain_control(self) -> None:
        while True:
            item = self.inbox.get(timeout=0)
            if item is None:
                return
            self._handle(item)

    def _run_node(self) -> None:
        inbox, sync = self.inbox, self.sync
        while self._open_origins:
            if self.pipeline._aborted:
                raise _Abort
            deadline = None if self._passthrough else sync.deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            # Wake up regularly so an abort is noticed even with no traffic.
            item = inbox.get(timeout=0.5 if timeout is None else min(timeout, 0.5))
            if item is None:
                for message in sync.poll(time.monotonic()):
                    self._process(message)
                continue
            self._handle(item)
        for message in sync.flush():
            self._process(message)

    def _handle(self, item: Item) -> None:
        value = item.value
        if value is EOS:
            self._open_origins.discard(item.origin)
            for message in self.sync.origin_ended(item.origin):
                self._process(message)
            return
        if item.control:
            payload = value.payload
            if isinstance(payload, ConfigPayload):
                for prop, new in payload.changes.items():
                    self._call("set_on_config", self.node.set_on_config, prop, new, message=value)
                if self.inbox.feed is not None:
                    self.inbox.feed.handled(item)
            else:
                self.stats.received += 1
                self._process(value)
            return
        self.stats.received += 1
        if self._passthrough:
            self.node._fontus_origin = item.origin
            self._process(value)
            return
        self.node._fontus_origin = ""
        for message in self.sync.push(item.origin, value):
            self._process(message)

    def deliver(self, message: Message[Any], update: Callable[[Message[Any]], None]) -> bool:
        """A data item the node's feed took (see ItemFeed), on the feed's thread: counted,
        timed and its errors handled as the node thread does, with ``update`` in place of
        the node's.  False when it was dropped instead (on_error: stop)."""
        self.stats.received += 1
        return self._process(message, update)

    def _process(
        self, message: Message[Any], update: Callable[[Message[Any]], None] | None = None
    ) -> bool:
        if self._stopped_by_error:
            self.stats.dropped += 1  # on_error: stop — the rest is not processed, only counted
            return False
        t0 = time.perf_counter()
        try:
            (update or self.node.update)(message)
        except Exception as exc:  # noqa: BLE001 - user code: handled by on_error
            self._error(exc, message)
        finally:
            self.stats.latency.add(time.perf_counter() - t0)
        return True

    def _call(self, hook: str, fn: Any, *args: Any, message: Message[Any] | None = None) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - user code: handled by on_error
            self._error(exc, message, hook)

    def _error(
        self, exc: BaseException, message: Message[Any] | None, hook: str = "update"
    ) -> None:
        self.stats.errors += 1
        where = f" on message {message.id}" if message is not None else ""
        if isinstance(exc, NodeError) and exc.node == self.name:
            # The node already named itself (a Warp's failed request, a refused config):
            # say it once.
            detail = f"{hook}(): {exc.detail}{where}"
        else:
            detail = f"{hook}() raised {type(exc).__name__}: {exc}{where}"
        if self.config.on_error == "stop":
            self._stopped_by_error = True
            self.pipeline._node_failed(NodeError(self.name, detail + " (on_error: stop)"))
        else:
            log.error("node '%s': %s (on_error: skip, continuing)", self.name, detail)


class _Abort(Exception):
    """Internal: the pipeline was aborted; leave the loop without draining."""

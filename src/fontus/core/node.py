"""``Node``, ``Source`` and ``Sink``: the classes user code subclasses.

Node code is plain synchronous Python.  The hooks, in the order they run::

    __init__(**arguments)   arguments declared as typed parameters with defaults
    warmup()                load models, open devices
    update(message)         once per input (a Batch message when a synchroniser groups inputs)
    set_on_config(p, v)     runtime reconfiguration, ordered with data
    flush()                 end of stream: transmit what is pending
    destroy()               release resources

A node does not know where it runs: whoever hosts it (the local pipeline
runner, or a remote session on a server) attaches a :class:`NodeHost` that
receives what ``transmit`` sends.  Base classes carry lifecycle only; stats and
tracing attach from outside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .errors import NodeError
from .message import Message
from .payloads import Payload

if TYPE_CHECKING:
    from .inbox import Inbox, ItemFeed
    from .runner import NodeRunner

__all__ = ["Node", "NodeHost", "Sink", "Source"]


class NodeHost(Protocol):
    """What hosts a node: receives its output and tells it when to stop."""

    def emit(self, node: Node, message: Message[Any]) -> None: ...

    def stopping(self) -> bool: ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True early when the host is stopping."""
        ...


class _DetachedHost:
    """Host of a node that nobody runs yet: transmitting is an error that says so."""

    _stop = threading.Event()

    def emit(self, node: Node, message: Message[Any]) -> None:
        raise NodeError(
            node.name,
            "transmit() was called on a node that is not attached to a pipeline or session; "
            "run it through fontus.Pipeline or fontus.testing",
        )

    def stopping(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)


DETACHED = _DetachedHost()


class Node:
    """A processing node: override :meth:`update` and call :meth:`transmit` for each output."""

    kind: ClassVar[str] = "proc"
    #: The name the registry knows this class by; set on registration.
    mark: ClassVar[str] = ""
    #: True when ``update``, ``set_on_config`` and ``flush`` return quickly (well under
    #: a millisecond) and never block or sleep.  ``fontus serve`` then runs the node's
    #: requests on its event loop instead of a worker thread, which saves two thread
    #: hand-offs per request; a call that takes longer than 10 ms moves the session
    #: to its worker thread for good (see docs/writing-nodes.md, "Light nodes").
    light: ClassVar[bool] = False

    _fontus_name: str
    _fontus_host: NodeHost
    _fontus_version: int
    _fontus_lock: threading.Lock
    _fontus_port_versions: dict[str, int]
    _fontus_origin: str

    def __new__(cls, *args: Any, **kwargs: Any) -> Node:
        # Done in __new__ so that subclasses need not call super().__init__().
        self = super().__new__(cls)
        self._fontus_name = cls.mark or cls.__name__
        self._fontus_host = DETACHED
        self._fontus_version = 0
        self._fontus_lock = threading.Lock()
        self._fontus_port_versions = {}
        self._fontus_origin = ""
        return self

    def _fontus_item_feed(self, inbox: Inbox, runner: NodeRunner) -> ItemFeed | None:
        """Internal: an :class:`~fontus.core.inbox.ItemFeed` taking this node's data items
        instead of its thread, or None (every node but a Warp)."""
        return None

    # -- identity -------------------------------------------------------
    @property
    def name(self) -> str:
        """The node's name in its pipeline (or on the server)."""
        return self._fontus_name

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"fontus.node.{self._fontus_name}")

    def attach(self, name: str, host: NodeHost) -> None:
        """Called by whoever runs the node, before ``warmup``."""
        self._fontus_name = name
        self._fontus_host = host

    # -- hooks ------------------------------------------------------------
    def warmup(self) -> None:
        """Load models and open devices; runs once before the first message."""

    def update(self, message: Message[Any]) -> None:
        """Process one input."""
        raise NotImplementedError(
            f"node '{self.name}' ({type(self).__name__}) must define update()"
        )

    def set_on_config(self, prop: str, value: Any) -> None:
        """Apply a runtime configuration change.

        The default sets the attribute of the same name when the node already has
        one (arguments stored as ``self.<name>``); override for anything else.
        """
        if not hasattr(self, prop):
            raise NodeError(
                self.name,
                f"cannot configure {prop!r}: the node has no such attribute; "
                "override set_on_config() to handle it",
            )
        setattr(self, prop, value)

    def flush(self) -> None:
        """End of stream: transmit whatever is pending."""

    def destroy(self) -> None:
        """Release resources; runs once when the pipeline or session ends."""

    # -- output -----------------------------------------------------------
    def transmit(self, item: Message[Any] | Payload, *, port: str | None = None) -> Message[Any]:
        """Send ``item`` downstream and return the (frozen) message that was sent.

        A payload is wrapped in a new message; a message already transmitted by
        someone else (for example the input being passed on) is derived into a
        new one that keeps its payload, meta and timers.  The node's name and a
        per-node sequence number are stamped as ``creator`` and ``version``.

        ``port`` names an output port: the message follows only links of that
        port (and links without one), and is stamped with the port's name and
        its own sequence — how a remote group's Warp speaks for each exit node.
        """
        if isinstance(item, Payload):
            message: Message[Any] = Message(item)
        elif isinstance(item, Message):
            # A received message is passed on as a new one sharing its frozen parts.
            message = item.passed_on() if item.frozen else item
        else:
            raise NodeError(
                self.name,
                f"transmit() takes a Message or a Payload, got {type(item).__name__}",
            )
        return self._fontus_send(message, port)

    def _fontus_send(self, message: Message[Any], port: str | None = None) -> Message[Any]:
        """Stamp ``message`` as this node's, freeze and emit it: ``transmit`` for a message
        this node made and nobody else has seen (a Warp's decoded output)."""
        with self._fontus_lock:
            if port:
                versions = self._fontus_port_versions
                object.__setattr__(message, "creator", port)
                object.__setattr__(message, "version", versions.get(port, 0))
                versions[port] = versions.get(port, 0) + 1
            else:
                object.__setattr__(message, "creator", self._fontus_name)
                object.__setattr__(message, "version", self._fontus_version)
                self._fontus_version += 1
        if not message._frozen:
            message.freeze()
        if port:
            self._fontus_host.emit(self, message, port)  # type: ignore[call-arg]
        else:
            self._fontus_host.emit(self, message)
        return message

    @property
    def origin(self) -> str:
        """The upstream node the message in ``update`` came from ("" when grouped or unknown)."""
        return self._fontus_origin

    @property
    def stopping(self) -> bool:
        """True once the pipeline or session is shutting down; long loops should check it."""
        return self._fontus_host.stopping()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True (early) when the node should stop."""
        return self._fontus_host.wait(seconds)


class Source(Node):
    """A node with no inputs: override :meth:`generate` to yield payloads or messages.

    When the generator ends, end-of-stream flows down the graph.  Use
    ``self.sleep(dt)`` for pacing, so that stopping interrupts the wait.
    """

    kind: ClassVar[str] = "source"

    def generate(self) -> Iterator[Payload | Message[Any]]:
        raise NotImplementedError(
            f"source '{self.name}' ({type(self).__name__}) must define generate()"
        )

    def total(self) -> int | None:
        """How many messages the source will produce, when known (drives the progress bar)."""
        return None

    def update(self, message: Message[Any]) -> None:
        raise NodeError(self.name, "a source has no inputs; link nothing into it")


class Sink(Node):
    """A node with no outputs: override :meth:`update`."""

    kind: ClassVar[str] = "sink"

    def transmit(self, item: Message[Any] | Payload, *, port: str | None = None) -> Message[Any]:
        raise NodeError(self.name, "a sink does not transmit; use a processing node (Node) instead")

"""``HostedGraph``: one node, or a connected group of nodes, run synchronously on one thread.

The server's session worker calls :meth:`process` for each request; a node's
``transmit`` runs its in-group downstream nodes right away (depth first) and
hands outputs of exit nodes to the current request's sink.  So every output
is tagged with the request whose ``update`` produced it — correlation never
depends on message ids — and a group's intermediate messages never leave the
server.  Outputs emitted outside ``process`` (a node's own thread, ``flush``)
are tagged with seq 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...core.message import Message
from ...core.node import Node
from ...core.payloads import ConfigPayload

__all__ = ["HostedGraph", "HostedNode"]

OutputSink = Callable[[int, str, Message[Any]], None]


@dataclass
class HostedNode:
    name: str
    mark: str
    node: Node


class HostedGraph:
    """Runs the nodes of one session (or of all sessions, in shared mode)."""

    def __init__(
        self,
        nodes: Iterable[HostedNode],
        links: Iterable[tuple[str, str]] = (),
        exits: Iterable[str] | None = None,
    ) -> None:
        self.nodes = {h.name: h for h in nodes}
        self.downstream: dict[str, list[str]] = {name: [] for name in self.nodes}
        for source, target in links:
            self.downstream[source].append(target)
        self.exits = (
            set(exits)
            if exits is not None
            else {name for name, targets in self.downstream.items() if not targets}
        )
        self.order = _topological(list(self.nodes), self.downstream)
        self._stop = threading.Event()
        self._sink: OutputSink | None = None
        self._seq = 0
        self._owner: int | None = None
        self._entry: Node | None = None  # the node requests without a target go to
        for hosted in self.nodes.values():
            hosted.node.attach(hosted.name, self)

    # -- NodeHost --------------------------------------------------------------
    def emit(self, node: Node, message: Message[Any]) -> None:
        name = node.name
        on_worker = threading.get_ident() == self._owner
        seq = self._seq if on_worker else 0
        if name in self.exits and self._sink is not None:
            self._sink(seq, name, message)
        if not on_worker:
            return  # a background thread must not run other nodes' code
        for target in self.downstream.get(name, ()):
            self.nodes[target].node.update(message)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)

    # -- driving -----------------------------------------------------------------
    def bind(self, sink: OutputSink) -> None:
        """Where outputs go (the session's result queue)."""
        self._sink = sink

    def warmup(self) -> None:
        for name in self.order:
            self.nodes[name].node.warmup()

    def process(self, seq: int, target: str, message: Message[Any]) -> None:
        """Run ``update`` of ``target`` (the only entry when empty); exceptions propagate."""
        node = self.nodes[target].node if target else self._single_entry()
        self._run(seq, node.update, message)

    def configure(self, seq: int, target: str, changes: ConfigPayload) -> None:
        node = self.nodes[target].node if target else self._single_entry()
        for prop, value in changes.changes.items():
            self._run(seq, node.set_on_config, prop, value)

    def flush(self) -> None:
        for name in self.order:
            self._run(0, self.nodes[name].node.flush)

    def stop(self) -> None:
        """Nodes waiting in ``sleep``/``wait`` return at once; ``destroy`` comes next."""
        self._stop.set()

    def destroy(self) -> list[str]:
        """Destroy every node; returns the errors (a failing destroy must not hide the others)."""
        self._stop.set()
        errors = []
        for name in self.order:
            try:
                self.nodes[name].node.destroy()
            except Exception as exc:  # noqa: BLE001 - reported by the caller
                errors.append(f"node '{name}': destroy() raised {type(exc).__name__}: {exc}")
        return errors

    def _single_entry(self) -> Node:
        entry = self._entry
        if entry is None:
            names = [n for n in self.order if not any(n in d for d in self.downstream.values())]
            entry = self._entry = self.nodes[names[0]].node
        return entry

    def _run(self, seq: int, fn: Callable[..., Any], *args: Any) -> None:
        self._owner = threading.get_ident()
        self._seq = seq
        try:
            fn(*args)
        finally:
            self._seq = 0


def _topological(names: list[str], downstream: dict[str, list[str]]) -> list[str]:
    indegree = dict.fromkeys(names, 0)
    for targets in downstream.values():
        for t in targets:
            indegree[t] += 1
    ready = [n for n in names if indegree[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for t in downstream[n]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return order

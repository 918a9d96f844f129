"""Shared support of the node tests (``test_nodes_*``): drive a node by hand, or run a graph.

``drive(node, inputs)`` hosts one node the way a pipeline does (attach, warmup,
update or generate, flush, destroy) and returns what it transmitted.
``run_graph(nodes, links)`` runs a real pipeline of built-in marks plus
``gather``, a sink that keeps what it receives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from fontus.core import Message, Node, Payload, Pipeline, PipelineResult, Registry, Sink, Source

#: Bound of every pipeline run in the node tests: a broken test fails instead of hanging.
NODE_RUN_TIMEOUT_S = 10.0


class Gather(Sink):
    """Keeps every message it receives (tests only)."""

    mark = "gather"

    def __init__(self) -> None:
        self.messages: list[Message[Any]] = []

    def update(self, message: Message[Any]) -> None:
        self.messages.append(message)


class _Host:
    """A NodeHost that keeps what its node transmits."""

    def __init__(self) -> None:
        self.sent: list[Message[Any]] = []
        self.stop = threading.Event()

    def emit(self, node: Node, message: Message[Any]) -> None:
        self.sent.append(message)

    def stopping(self) -> bool:
        return self.stop.is_set()

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(seconds)


def drive_node(node: Node, inputs: Iterable[Message[Any] | Payload] = ()) -> list[Message[Any]]:
    """Run ``node``'s whole lifecycle on ``inputs`` (frozen, as a pipeline delivers them)."""
    host = _Host()
    node.attach("node", host)
    node.warmup()
    try:
        if isinstance(node, Source):
            for item in node.generate():
                node.transmit(item)
        else:
            for item in inputs:
                message = item if isinstance(item, Message) else Message(item)
                node.update(message.freeze())
        node.flush()
    finally:
        node.destroy()
    return host.sent


def run_pipeline(
    nodes: Sequence[dict[str, Any]],
    links: Sequence[tuple[str, str]] = (),
    timeout: float = NODE_RUN_TIMEOUT_S,
) -> tuple[PipelineResult, Pipeline]:
    """Build and run a pipeline of built-in marks (and ``gather``) to its end or ``timeout``."""
    registry = Registry()
    registry.add(Gather)
    raw = {
        "version": "1",
        "pipeline": {
            "name": "nodes-test",
            "nodes": list(nodes),
            "links": [{"from": a, "to": b} for a, b in links],
        },
    }
    pipeline = Pipeline.from_dict(raw, registry=registry)
    return pipeline.run(timeout=timeout), pipeline


@pytest.fixture
def drive() -> Callable[..., list[Message[Any]]]:
    return drive_node


@pytest.fixture
def run_graph() -> Callable[..., tuple[PipelineResult, Pipeline]]:
    return run_pipeline

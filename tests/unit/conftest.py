"""Shared support of the core unit tests (``test_core_*``): small test nodes and builders.

The core tests never use the built-in marks: every pipeline is built from the
nodes below, registered in a ``Registry(entry_points=False)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from fontus.core import Message, Node, ObjectPayload, Pipeline, Registry, Sink, Source

#: Bound of every run()/wait() in the core tests: a broken test fails instead of hanging.
RUN_TIMEOUT_S = 10.0


class Numbers(Source):
    """Yields ObjectPayload({"n": i}) for i from start.

    Args:
        count: how many messages to produce.
        start: the first value.
        every_ms: pause before each message.
        forever: ignore count and produce until stopped.
    """

    def __init__(
        self, count: int = 5, start: int = 0, every_ms: float = 0.0, forever: bool = False
    ) -> None:
        self.count = count
        self.start = start
        self.every_ms = every_ms
        self.forever = forever

    def generate(self) -> Iterator[ObjectPayload]:
        i = self.start
        while self.forever or i < self.start + self.count:
            if self.every_ms and self.sleep(self.every_ms / 1000.0):
                return
            yield ObjectPayload({"n": i})
            i += 1

    def total(self) -> int | None:
        return None if self.forever else self.count


class Collect(Sink):
    """Keeps every message it receives; records ``(n, gain)`` pairs.

    Args:
        delay_ms: time spent in each update.
        gain: a setting that set_on_config may change.
    """

    def __init__(self, delay_ms: float = 0.0, gain: float = 1.0) -> None:
        self.delay_ms = delay_ms
        self.gain = gain
        self.messages: list[Message[Any]] = []
        self.pairs: list[tuple[Any, float]] = []
        self.flushes = 0
        self.flushed_after = -1
        self.destroyed = 0

    def update(self, message: Message[Any]) -> None:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000.0)
        self.messages.append(message)
        if isinstance(message.payload, ObjectPayload):
            self.pairs.append((message.payload.get("n"), self.gain))

    def flush(self) -> None:
        self.flushes += 1
        self.flushed_after = len(self.messages)

    def destroy(self) -> None:
        self.destroyed += 1

    @property
    def values(self) -> list[Any]:
        return [m.payload.get("n") for m in self.messages if isinstance(m.payload, ObjectPayload)]


class PassOn(Node):
    """Transmits every input unchanged.

    Args:
        fail_on: raise ValueError on the message whose n equals this.
    """

    def __init__(self, fail_on: int = -1) -> None:
        self.fail_on = fail_on
        self.flushes = 0
        self.failed_ids: list[int] = []

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if isinstance(payload, ObjectPayload) and payload.get("n") == self.fail_on:
            self.failed_ids.append(message.id)
            raise ValueError(f"n is {self.fail_on}")
        self.transmit(message)

    def flush(self) -> None:
        self.flushes += 1


def make_registry(*extra: type[Node]) -> Registry:
    registry = Registry(entry_points=False)
    for cls in (Numbers, Collect, PassOn, *extra):
        registry.add(cls)
    return registry


def pipeline_dict(
    nodes: Sequence[dict[str, Any]], links: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "version": "1",
        "pipeline": {
            "name": "test",
            "nodes": list(nodes),
            "links": [{"from": a, "to": b} for a, b in links],
        },
    }


@pytest.fixture
def registry_of() -> Callable[..., Registry]:
    """``registry_of(*extra_node_classes)`` → a registry of the test nodes (and the extras)."""
    return make_registry


@pytest.fixture
def build() -> Callable[..., Pipeline]:
    """``build(nodes, links, *extra_node_classes)`` → a Pipeline on a registry of test nodes.

    ``links`` are ``(from, to)`` pairs.
    """

    def _build(
        nodes: Sequence[dict[str, Any]],
        links: Sequence[tuple[str, str]] = (),
        *extra: type[Node],
    ) -> Pipeline:
        return Pipeline.from_dict(pipeline_dict(nodes, links), registry=make_registry(*extra))

    return _build


def wait_until(predicate: Callable[[], bool], timeout: float = RUN_TIMEOUT_S) -> bool:
    """Poll ``predicate`` every millisecond for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()


@pytest.fixture
def until() -> Callable[..., bool]:
    return wait_until

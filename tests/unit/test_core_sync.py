"""Synchronisers, through real pipelines with two sources."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from fontus.core import Batch, Message, ObjectPayload, Pipeline, Source

Build = Callable[..., Pipeline]

#: Bound of every run()/wait(): a broken test fails instead of hanging.
RUN_TIMEOUT_S = 10.0


class Ticks(Source):
    """Yields n = start .. start+count-1, waiting gap_ms after each."""

    def __init__(self, count: int = 3, start: int = 0, gap_ms: float = 0.0) -> None:
        self.count = count
        self.first = start
        self.gap_ms = gap_ms

    def generate(self) -> Iterator[ObjectPayload]:
        for i in range(self.first, self.first + self.count):
            yield ObjectPayload({"n": i})
            if self.gap_ms and self.sleep(self.gap_ms / 1000.0):
                return


class Gated(Source):
    """Yields ``count`` messages, then waits for ``gate`` before ending."""

    def __init__(self, count: int = 1, start: int = 0) -> None:
        self.count = count
        self.first = start
        self.gate = threading.Event()

    def generate(self) -> Iterator[ObjectPayload]:
        for i in range(self.first, self.first + self.count):
            yield ObjectPayload({"n": i})
        while not self.gate.wait(0.01):
            if self.stopping:
                return


def groups(messages: list[Message[Any]]) -> list[list[tuple[str, int]]]:
    out = []
    for message in messages:
        assert isinstance(message.payload, Batch)
        out.append([(m.creator, m.payload["n"]) for m in message.payload.messages])
    return out


def test_passthrough_delivers_each_message_alone_in_arrival_order(build: Build) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "numbers", "configuration": {"count": 20}},
            {"name": "b", "mark": "numbers", "configuration": {"count": 20, "start": 100}},
            {"name": "sink", "mark": "collect"},
        ],
        [("a", "sink"), ("b", "sink")],
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    sink = pipeline.nodes["sink"]
    assert all(isinstance(m.payload, ObjectPayload) for m in sink.messages)
    from_a = [m.payload["n"] for m in sink.messages if m.creator == "a"]
    from_b = [m.payload["n"] for m in sink.messages if m.creator == "b"]
    assert from_a == list(range(20))
    assert from_b == list(range(100, 120))


def test_zip_groups_one_message_per_origin_in_link_order(build: Build) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "ticks", "configuration": {"count": 3}},
            {"name": "b", "mark": "ticks", "configuration": {"count": 5, "start": 100}},
            {"name": "sink", "mark": "collect", "sync": "zip"},
        ],
        [("b", "sink"), ("a", "sink")],  # b's link first: b's message comes first
        Ticks,
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    assert groups(pipeline.nodes["sink"].messages) == [
        [("b", 100), ("a", 0)],
        [("b", 101), ("a", 1)],
        [("b", 102), ("a", 2)],
        [("b", 103)],  # a ended: what b sends later still arrives, alone
        [("b", 104)],
    ]
    assert result.stats["sink"].received == 8


def test_zip_delivers_partial_groups_at_end_of_stream(build: Build) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "ticks", "configuration": {"count": 2}},
            {"name": "b", "mark": "ticks", "configuration": {"count": 1, "start": 100}},
            {"name": "c", "mark": "ticks", "configuration": {"count": 3, "start": 200}},
            {"name": "sink", "mark": "collect", "sync": {"mode": "zip"}},
        ],
        [("a", "sink"), ("b", "sink"), ("c", "sink")],
        Ticks,
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    assert groups(pipeline.nodes["sink"].messages) == [
        [("a", 0), ("b", 100), ("c", 200)],
        [("a", 1), ("c", 201)],
        [("c", 202)],
    ]


def test_zip_does_not_hold_messages_of_live_origins_after_one_ended(
    build: Build, until: Callable[..., bool]
) -> None:
    pipeline = build(
        [
            {"name": "short", "mark": "ticks", "configuration": {"count": 1}},
            {"name": "long", "mark": "gated", "configuration": {"count": 4, "start": 100}},
            {"name": "sink", "mark": "collect", "sync": "zip"},
        ],
        [("short", "sink"), ("long", "sink")],
        Ticks,
        Gated,
    )
    sink, long = pipeline.nodes["sink"], pipeline.nodes["long"]
    pipeline.start()
    try:
        # 'long' has not ended (it waits for its gate), yet its messages are delivered.
        assert until(lambda: len(sink.messages) == 4)
    finally:
        long.gate.set()
    assert pipeline.wait(RUN_TIMEOUT_S)
    assert groups(sink.messages) == [
        [("short", 0), ("long", 100)],
        [("long", 101)],
        [("long", 102)],
        [("long", 103)],
    ]


def test_window_groups_what_arrives_within_window_ms(build: Build) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "ticks", "configuration": {"count": 3, "gap_ms": 400}},
            {
                "name": "b",
                "mark": "ticks",
                "configuration": {"count": 3, "start": 100, "gap_ms": 400},
            },
            {"name": "sink", "mark": "collect", "sync": {"mode": "window", "window_ms": 150}},
        ],
        [("a", "sink"), ("b", "sink")],
        Ticks,
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    found = [sorted(group) for group in groups(pipeline.nodes["sink"].messages)]
    assert found == [
        [("a", 0), ("b", 100)],
        [("a", 1), ("b", 101)],
        [("a", 2), ("b", 102)],
    ]


def test_window_is_released_on_time_without_further_input(
    build: Build, until: Callable[..., bool]
) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "gated", "configuration": {"count": 2}},
            {"name": "b", "mark": "gated", "configuration": {"count": 1, "start": 100}},
            {"name": "sink", "mark": "collect", "sync": {"mode": "window", "window_ms": 30}},
        ],
        [("a", "sink"), ("b", "sink")],
        Gated,
    )
    sink = pipeline.nodes["sink"]
    pipeline.start()
    try:
        # Both sources are now silent and alive: only the window's timer can release this.
        assert until(lambda: len(sink.messages) == 1)
    finally:
        pipeline.nodes["a"].gate.set()
        pipeline.nodes["b"].gate.set()
    assert pipeline.wait(RUN_TIMEOUT_S)
    assert [sorted(g) for g in groups(sink.messages)] == [[("a", 0), ("a", 1), ("b", 100)]]
    assert sink.flushes == 1


def test_window_pending_messages_are_delivered_at_end_of_stream(build: Build) -> None:
    pipeline = build(
        [
            {"name": "a", "mark": "ticks", "configuration": {"count": 2}},
            {"name": "sink", "mark": "collect", "sync": {"mode": "window", "window_ms": 60000}},
        ],
        [("a", "sink")],
        Ticks,
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok and result.elapsed_s < RUN_TIMEOUT_S / 2
    assert groups(pipeline.nodes["sink"].messages) == [[("a", 0), ("a", 1)]]

"""Bounded inboxes and their overflow policies: alone, and under a slow sink."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fontus.core import ControlPayload, Message, ObjectPayload, Pipeline, Source
from fontus.core.inbox import Inbox, InboxClosed, Item, Room, resume_room

Build = Callable[..., Pipeline]

#: Bound of every run()/wait(): a broken test fails instead of hanging.
RUN_TIMEOUT_S = 10.0


def data(n: int) -> Item:
    return Item("up", n)


def control(n: int) -> Item:
    return Item("up", n, control=True)


def drain(inbox: Inbox) -> list[Any]:
    out = []
    while (item := inbox.get(timeout=0)) is not None:
        out.append(item.value)
    return out


# -- the inbox alone ---------------------------------------------------------------


def test_inbox_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        Inbox(0)
    with pytest.raises(ValueError, match="unknown overflow policy 'drop_newest'"):
        Inbox(1, "drop_newest")


def test_get_returns_none_when_nothing_arrives_in_time() -> None:
    inbox = Inbox(1)
    assert inbox.get(timeout=0) is None
    t0 = time.monotonic()
    assert inbox.get(timeout=0.02) is None
    assert time.monotonic() - t0 >= 0.015


def put_in_background(inbox: Inbox, item: Item) -> tuple[threading.Thread, threading.Event]:
    """Put ``item`` from another thread; the event is set once ``put`` returned."""
    done = threading.Event()

    def produce() -> None:
        inbox.put(item)
        done.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return thread, done


def test_block_makes_the_producer_wait_until_there_is_room() -> None:
    inbox = Inbox(2, "block")
    inbox.put(data(0))
    inbox.put(data(1))
    thread, done = put_in_background(inbox, data(2))
    assert not done.wait(0.05)  # full: the producer waits
    assert inbox.get(timeout=1).value == 0  # type: ignore[union-attr]
    assert done.wait(RUN_TIMEOUT_S)
    assert drain(inbox) == [1, 2]
    assert (inbox.dropped, inbox.high_water) == (0, 2)
    thread.join(RUN_TIMEOUT_S)


def test_a_blocked_producer_resumes_once_half_the_inbox_is_free() -> None:
    inbox = Inbox(4, "block")
    for n in range(4):
        inbox.put(data(n))
    thread, done = put_in_background(inbox, data(4))
    assert not done.wait(0.05)  # full: the producer waits
    assert inbox.get(timeout=1).value == 0  # type: ignore[union-attr]
    # One place free of four: not woken for it (a wake-up per item costs more than
    # the item), the producer goes on waiting...
    assert not done.wait(0.05)
    assert inbox.get(timeout=1).value == 1  # type: ignore[union-attr]
    # ... until half the inbox is free.
    assert done.wait(RUN_TIMEOUT_S)
    thread.join(RUN_TIMEOUT_S)
    assert drain(inbox) == [2, 3, 4]


def test_room_wakes_a_waiting_producer_once_half_is_free_and_never_loses_a_place() -> None:
    assert [resume_room(c) for c in (1, 2, 3, 4, 64)] == [1, 1, 1, 2, 32]
    room = Room(4)
    for _ in range(4):
        room.acquire()
    taken: list[int] = []
    woken = threading.Event()

    def produce() -> None:
        for n in range(3):
            room.acquire()
            taken.append(n)
            woken.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    assert not woken.wait(0.05)
    room.release()
    assert not woken.wait(0.05)  # one place free of four: still waiting
    room.release()
    assert woken.wait(RUN_TIMEOUT_S)  # two: it takes both without waiting again
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while len(taken) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert taken == [0, 1] and room.free == 0
    room.release(4)  # e.g. a closing feed hands every place back
    thread.join(RUN_TIMEOUT_S)
    assert taken == [0, 1, 2] and room.free == 3


def test_a_window_room_takes_at_once_or_for_a_while_and_wakes_at_the_first_place() -> None:
    window = Room(2, resume=1)  # a Warp's window: a waiting thread goes on at the first slot
    assert window.acquire(blocking=False) and window.acquire(blocking=False)
    assert window.full and not window.acquire(blocking=False)
    started = time.monotonic()
    assert not window.acquire(timeout=0.05)  # gives up after the timeout, no place taken
    assert time.monotonic() - started >= 0.05 and window.free == 0
    got = threading.Event()

    def take() -> None:
        if window.acquire(timeout=RUN_TIMEOUT_S):
            got.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    assert not got.wait(0.05)
    window.release()  # one place: enough for a window (resume=1)
    assert got.wait(RUN_TIMEOUT_S)
    thread.join(RUN_TIMEOUT_S)
    assert window.free == 0 and window.full
    window.release(2)
    assert window.free == 2 and not window.full


def test_drop_oldest_drops_the_oldest_data_and_counts() -> None:
    inbox = Inbox(3, "drop_oldest")
    for n in range(7):
        inbox.put(data(n))
    assert inbox.dropped == 4
    assert drain(inbox) == [4, 5, 6]


def test_control_items_are_never_dropped_and_keep_their_place() -> None:
    inbox = Inbox(3, "drop_oldest")
    inbox.put(data(0))
    inbox.put(control("c1"))
    inbox.put(data(1))
    inbox.put(data(2))  # full: drops 0, the oldest data, not c1
    inbox.put(control("c2"))  # control goes in even when full
    inbox.put(data(3))  # drops 1
    assert drain(inbox) == ["c1", 2, "c2", 3]
    assert inbox.dropped == 2


def test_control_items_do_not_wait_on_a_full_blocking_inbox() -> None:
    inbox = Inbox(1, "block")
    inbox.put(data(0))
    inbox.put(control("config"))  # returns at once
    assert drain(inbox) == [0, "config"]


def test_close_wakes_a_blocked_producer() -> None:
    inbox = Inbox(1, "block")
    inbox.put(data(0))
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            inbox.put(data(1))
        except InboxClosed as exc:
            errors.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    time.sleep(0.02)
    inbox.close()
    thread.join(RUN_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(errors) == 1
    with pytest.raises(InboxClosed):
        inbox.put(control("late"))


# -- under a slow sink -------------------------------------------------------------


class Leading(Source):
    """Yields n = 0..count-1 and records, at each yield, how far it is ahead of ``peer``."""

    def __init__(self, count: int = 30) -> None:
        self.count = count
        self.peer: Any = None
        self.leads: list[int] = []

    def generate(self) -> Iterator[ObjectPayload]:
        for i in range(self.count):
            self.leads.append(i - len(self.peer.messages))
            yield ObjectPayload({"n": i})


def slow_sink(capacity: int, overflow: str, delay_ms: float = 3.0) -> dict[str, Any]:
    return {
        "name": "sink",
        "mark": "collect",
        "configuration": {"delay_ms": delay_ms},
        "inbox": {"capacity": capacity, "overflow": overflow},
    }


def test_block_slows_the_producer_and_loses_nothing(build: Build) -> None:
    pipeline = build(
        [{"name": "src", "mark": "leading", "configuration": {"count": 30}}, slow_sink(2, "block")],
        [("src", "sink")],
        Leading,
    )
    src, sink = pipeline.nodes["src"], pipeline.nodes["sink"]
    src.peer = sink
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    assert sink.values == list(range(30))
    assert result.stats["sink"].dropped == 0
    # At most `capacity` messages wait in the inbox and one is being processed.
    assert max(src.leads) <= 2 + 1


def test_drop_oldest_keeps_the_newest_and_counts_drops(build: Build) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "leading", "configuration": {"count": 60}},
            slow_sink(2, "drop_oldest"),
        ],
        [("src", "sink")],
        Leading,
    )
    src, sink = pipeline.nodes["src"], pipeline.nodes["sink"]
    src.peer = sink
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    stats = result.stats["sink"]
    assert stats.dropped > 0
    assert stats.received + stats.dropped == 60
    assert len(sink.values) == stats.received
    assert sink.values == sorted(sink.values)
    assert sink.values[-1] == 59  # the newest is always kept
    assert max(src.leads) > 3  # the producer was never held back


class Mixed(Source):
    """Yields data, with a control message after every fifth."""

    def __init__(self, count: int = 50) -> None:
        self.count = count

    def generate(self) -> Iterator[ObjectPayload | ControlPayload]:
        for i in range(self.count):
            yield ObjectPayload({"n": i})
            if i % 5 == 4:
                yield ControlPayload("tick", {"after": i})


def test_drop_oldest_never_drops_control_messages_and_keeps_their_order(build: Build) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "mixed", "configuration": {"count": 50}},
            slow_sink(2, "drop_oldest"),
        ],
        [("src", "sink")],
        Mixed,
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    sink = pipeline.nodes["sink"]
    ticks = [
        m.payload.data["after"] for m in sink.messages if isinstance(m.payload, ControlPayload)
    ]
    assert ticks == list(range(4, 50, 5))
    assert result.stats["sink"].dropped > 0
    # Every data message delivered came from before its following tick: order is kept.
    last_tick = -1
    for message in sink.messages:
        if isinstance(message.payload, ControlPayload):
            last_tick = message.payload.data["after"]
        else:
            assert message.payload["n"] > last_tick


def test_drop_oldest_never_drops_configuration(build: Build, until: Callable[..., bool]) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "numbers", "configuration": {"forever": True}},
            slow_sink(2, "drop_oldest", delay_ms=2.0),
        ],
        [("src", "sink")],
    )
    sink = pipeline.nodes["sink"]
    pipeline.start()
    try:
        assert until(lambda: pipeline.stats()["sink"].dropped > 10)
        pipeline.configure("sink", "gain", 3.0)  # into a full inbox that is dropping data
        assert until(lambda: sink.gain == 3.0)
    finally:
        pipeline.stop()
        assert pipeline.wait(RUN_TIMEOUT_S)
    assert any(gain == 3.0 for _, gain in sink.pairs)


def test_a_message_is_shared_not_copied_between_downstream_nodes(build: Build) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "numbers", "configuration": {"count": 3}},
            {"name": "s1", "mark": "collect"},
            {"name": "s2", "mark": "collect"},
        ],
        [("src", "s1"), ("src", "s2")],
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    one, two = pipeline.nodes["s1"].messages, pipeline.nodes["s2"].messages
    assert [m.id for m in one] == [m.id for m in two]
    assert all(a is b for a, b in zip(one, two, strict=True))
    assert all(isinstance(m, Message) and m.frozen for m in one)

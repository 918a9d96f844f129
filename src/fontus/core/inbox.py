"""Bounded inboxes: every node reads its input from one, with a chosen overflow policy.

``block`` keeps everything and makes the producer wait (backpressure);
``drop_oldest`` keeps the newest data (live video) and counts what it drops.
Control items (configuration, end-of-stream) are never dropped and keep their
place in the order of data.

A producer that waited for room resumes once half of the inbox is free, not at
the first free place: it then puts a run of items without waiting, instead of
being woken (a context switch and a GIL hand-off, 30-60 us on a virtual
machine) for every item the consumer takes.  Nothing waits longer for it: the
items ahead of a blocked producer's are queued either way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Inbox", "InboxClosed", "Item", "ItemFeed", "QuietCondition", "Room", "resume_room"]


class QuietCondition(threading.Condition):
    """A Condition whose notify and notify_all cost nothing while no thread waits to be woken.

    A Condition's notify runs in Python (ownership check, waiter list); on every
    message's path (inbox puts and gets, a Warp's results) that adds up.  Waits
    and notifies happen with the lock held, and the Condition keeps the waiters
    not notified yet in a list, so that check is exact: a thread already woken
    but not yet running is not woken again by each later notify.
    """

    def notify(self, n: int = 1) -> None:
        if self._waiters:  # type: ignore[attr-defined]
            super().notify(n)

    def notify_all(self) -> None:
        if self._waiters:  # type: ignore[attr-defined]
            super().notify_all()


def resume_room(capacity: int) -> int:
    """Free places at which a producer that waited for room resumes: half the capacity."""
    return max(1, capacity // 2)


class Room:
    """A semaphore for backpressure: ``capacity`` places, and a thread that had to wait
    is woken when ``resume`` places are free (by default ``resume_room(capacity)``, see
    the module; 1 wakes it at the first).

    Taking and giving back a place cost one Python call while nobody waits
    (``threading.Semaphore``'s go through its Condition: several), and waiting
    threads are woken once, when the free places cross up to ``resume``.
    """

    __slots__ = ("_cond", "_lock", "free", "resume")

    def __init__(self, capacity: int, resume: int | None = None) -> None:
        self._lock = threading.Lock()
        self._cond = QuietCondition(self._lock)
        self.free = capacity
        self.resume = resume_room(capacity) if resume is None else resume

    @property
    def full(self) -> bool:
        """No place free (read without the lock: a hint, right or one step behind)."""
        return self.free <= 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a place; False when none is free (``blocking=False``) or ``timeout`` passed."""
        with self._lock:
            if self.free <= 0:
                if not blocking:
                    return False
                deadline = None if timeout is None else time.monotonic() + timeout
                while self.free <= 0:
                    if deadline is None:
                        self._cond.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            self.free -= 1
            return True

    def release(self, n: int = 1) -> None:
        """Give ``n`` places back."""
        with self._lock:
            free = self.free = self.free + n
            # Only when crossing up to ``resume``: a thread waits only at 0 free places,
            # so one woken at the crossing needs no second call while it gets to run.
            if free >= self.resume > free - n:
                self._cond.notify_all()


class InboxClosed(Exception):
    """Internal: the inbox was closed while a producer waited for room."""


@dataclass(slots=True)
class Item:
    """One entry: ``origin`` is the upstream node name; ``control`` items are never dropped."""

    origin: str
    value: Any
    control: bool = False
    enqueued_at: float = 0.0


class ItemFeed(Protocol):
    """Where an inbox's items go instead while ``active``: a node that takes its input on
    another thread than its own (a Warp, on the client event loop).

    The feed keeps the inbox's promises: items stay in order, ``put`` blocks while
    ``capacity`` data items wait (backpressure), control items never wait for room, and
    the items the node's own thread must see (end of stream, configuration changes) come
    back through :meth:`Inbox.put_here`, in their place.  After the node thread handled
    one of those the runner calls :meth:`handled`.
    """

    active: bool

    def put(self, item: Item) -> None: ...
    def handled(self, item: Item) -> None: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...


class Inbox:
    """A bounded FIFO shared by producers (upstream threads) and one consumer (the node thread)."""

    #: Set by the runner for a node that has one (see ItemFeed).
    feed: ItemFeed | None = None

    def __init__(self, capacity: int, overflow: str = "block") -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if overflow not in ("block", "drop_oldest"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self.capacity = capacity
        self.overflow = overflow
        self._items: deque[Item] = deque()
        self._lock = threading.Lock()
        self._not_empty = QuietCondition(self._lock)
        self._not_full = QuietCondition(self._lock)
        self._closed = False
        #: A producer waiting for room is woken when the queue is down to this (see the module).
        self._resume_depth = capacity - resume_room(capacity)
        self.dropped = 0
        self.high_water = 0

    def __len__(self) -> int:
        feed = self.feed
        return len(self._items) + (len(feed) if feed is not None else 0)

    def put(self, item: Item) -> None:
        """Add ``item``; with ``block``, wait while the inbox is full (raises InboxClosed if closed)."""
        feed = self.feed
        if feed is not None and feed.active:
            feed.put(item)
            return
        self.put_here(item)

    def put_here(self, item: Item) -> None:
        """:meth:`put` into this inbox itself, never into its feed."""
        item.enqueued_at = time.perf_counter()
        with self._lock:
            if len(self._items) >= self.capacity and not item.control:
                if self.overflow == "drop_oldest":
                    self._drop_oldest_data()
                else:
                    while len(self._items) >= self.capacity and not self._closed:
                        self._not_full.wait()
            if self._closed:
                raise InboxClosed
            self._items.append(item)
            depth = len(self._items)
            if depth > self.high_water:
                self.high_water = depth
            self._not_empty.notify()

    def count(self, predicate: Callable[[Item], bool]) -> int:
        """How many queued items ``predicate(item)`` is true of."""
        with self._lock:
            return sum(1 for item in self._items if predicate(item))

    def _drop_oldest_data(self) -> None:
        for i, queued in enumerate(self._items):
            if not queued.control:
                del self._items[i]
                self.dropped += 1
                return

    def get(self, timeout: float | None = None) -> Item | None:
        """The next item, or None when ``timeout`` passed with nothing to read."""
        with self._lock:
            if not self._items:
                if timeout is not None and timeout <= 0:
                    return None
                self._not_empty.wait(timeout)
                if not self._items:
                    return None
            item = self._items.popleft()
            if len(self._items) <= self._resume_depth:
                self._not_full.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiting producer; later puts raise InboxClosed."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()
        if self.feed is not None:
            self.feed.close()

"""``LoopFifo``: an unbounded FIFO on one event loop, with a single reading task.

``asyncio.Queue`` does the same with a getter list, a finished-task counter, a
future per get and a method call for every put, get and emptiness test; with
one reader a deque and one future suffice.  It is on every request's path (a
Warp's writer) and every result's (a server session's writer), so the reader
takes what is queued straight from ``items`` and awaits :meth:`get` only when
there is nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["LoopFifo"]

T = TypeVar("T")


class LoopFifo(Generic[T]):
    """Loop thread only.  ``items`` may be read (``popleft``, ``clear``) by the one reader."""

    __slots__ = ("_waiter", "items", "woke")

    def __init__(self) -> None:
        self.items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        #: Set when a put woke the waiting reader; the reader may clear it (see the
        #: server session's ``read``).
        self.woke = False

    def put(self, item: T) -> None:
        self.items.append(item)
        if self._waiter is not None:
            self._wake()

    def put_many(self, items: Iterable[T]) -> None:
        """Put each of ``items``, in order, waking the reader once."""
        self.items.extend(items)
        if self._waiter is not None and self.items:
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
            self.woke = True

    async def get(self) -> T:
        """The next item, waiting while there is none."""
        items = self.items
        while not items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return items.popleft()

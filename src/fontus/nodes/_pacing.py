"""Pacing of real-time sources against a monotonic schedule.

Sleeping a fixed interval per item drifts: every sleep overshoots a little
and the errors add up.  A :class:`Schedule` books each item at the previous
item's due time plus its interval instead, so a source that emits 50 chunks
of 20 ms takes one second of wall clock, however late single wake-ups are.
"""

from __future__ import annotations

import time

from fontus.core.node import Node

__all__ = ["Schedule"]


class Schedule:
    """Due times of a source's items on the monotonic clock.

    The first item is due at once; each following one ``interval`` seconds
    after the previous one was due.  A source that falls behind catches up
    without sleeping rather than shifting the whole schedule.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self._due: float | None = None

    def wait(self, interval: float) -> bool:
        """Wait until the next item is due and book ``interval`` seconds for it.

        An ``interval`` of 0 (as fast as possible) resets the schedule.  Returns
        True when the node should stop instead of producing the item.
        """
        if interval <= 0:
            self._due = None
            return self._node.stopping
        now = time.monotonic()
        if self._due is None:
            self._due = now
        delay = self._due - now
        self._due += interval
        if delay > 0:
            return self._node.sleep(delay)
        return self._node.stopping

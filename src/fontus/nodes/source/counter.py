"""``counter``: a source of numbered object messages."""

from __future__ import annotations

from collections.abc import Iterator

from fontus.core.node import Source
from fontus.core.payloads import ObjectPayload

from .._pacing import Schedule

__all__ = ["Counter"]


class Counter(Source):
    """Emits object messages {"n": i} for i = 0 .. count-1.

    Args:
        count: how many messages to emit (>= 0).
        rate: messages per second, paced on a monotonic schedule; 0 emits as
            fast as downstream accepts.
    """

    mark = "counter"

    def __init__(self, count: int = 10, rate: float = 0.0) -> None:
        if count < 0:
            raise ValueError(f"counter: count must be >= 0, got {count}")
        if rate < 0:
            raise ValueError(f"counter: rate must be >= 0 messages per second, got {rate}")
        self.count = count
        self.rate = rate

    def total(self) -> int:
        return self.count

    def generate(self) -> Iterator[ObjectPayload]:
        schedule = Schedule(self)
        i = 0
        # count and rate may change at run time (set_on_config between items).
        while i < self.count:
            if schedule.wait(1.0 / self.rate if self.rate > 0 else 0.0):
                return
            yield ObjectPayload({"n": i})
            i += 1

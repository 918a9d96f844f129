"""``fail_every``: fails on purpose, to exercise error handling."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import ControlPayload

__all__ = ["FailEvery"]


class FailEvery(Node):
    """Raises RuntimeError on every k-th input and passes the others on.

    Inputs are counted from 1, so with k=3 the 3rd, 6th, 9th... fail.
    Control messages pass on and are not counted.

    Args:
        k: fail every k-th input; 0 never fails.
    """

    mark = "fail_every"
    light = True  # a few microseconds of Python or numpy per call

    def __init__(self, k: int = 0) -> None:
        if k < 0:
            raise ValueError(f"fail_every: k must be >= 0, got {k}")
        self.k = k
        self._count = 0

    def update(self, message: Message[Any]) -> None:
        if isinstance(message.payload, ControlPayload):
            self.transmit(message)
            return
        self._count += 1
        if self.k > 0 and self._count % self.k == 0:
            raise RuntimeError(
                f"fail_every: failing on purpose on input {self._count} (every {self.k})"
            )
        self.transmit(message)

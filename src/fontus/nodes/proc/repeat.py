"""``repeat``: emits each input several times."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import ControlPayload

__all__ = ["Repeat"]


class Repeat(Node):
    """Emits ``times`` copies of each input (0 emits nothing); control messages pass once.

    Args:
        times: copies per input (>= 0).
    """

    mark = "repeat"
    light = True  # a few microseconds of Python or numpy per call

    def __init__(self, times: int = 1) -> None:
        if times < 0:
            raise ValueError(f"repeat: times must be >= 0, got {times}")
        self.times = times

    def update(self, message: Message[Any]) -> None:
        if isinstance(message.payload, ControlPayload):
            self.transmit(message)
            return
        for _ in range(self.times):
            self.transmit(message)

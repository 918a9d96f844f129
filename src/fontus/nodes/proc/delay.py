"""``delay``: holds each input for a while, then passes it on."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Node

__all__ = ["Delay"]


class Delay(Node):
    """Sleeps ``seconds`` per input, then passes it on (a stand-in for slow work).

    When the pipeline stops, the sleep ends early and the input is still passed on.

    Args:
        seconds: how long to hold each input (>= 0).
    """

    mark = "delay"

    def __init__(self, seconds: float = 0.0) -> None:
        if seconds < 0:
            raise ValueError(f"delay: seconds must be >= 0, got {seconds}")
        self.seconds = seconds

    def update(self, message: Message[Any]) -> None:
        if self.seconds > 0:
            self.sleep(self.seconds)
        self.transmit(message)

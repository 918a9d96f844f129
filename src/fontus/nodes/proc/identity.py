"""``identity``: passes every input on unchanged."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Node

__all__ = ["Identity"]


class Identity(Node):
    """Passes every input on unchanged (payload, meta and timers kept)."""

    mark = "identity"
    light = True  # a few microseconds of Python or numpy per call

    def update(self, message: Message[Any]) -> None:
        self.transmit(message)

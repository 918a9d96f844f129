"""``running_sum``: a stateful node that adds up one field of object messages."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import ControlPayload, ObjectPayload

__all__ = ["RunningSum"]


class RunningSum(Node):
    """For each object input, emits its data plus "total", the running sum of ``field``.

    The sum is the node's state: it starts at 0 and a "reset" control message
    sets it back to 0.  An input that is not an object, or whose ``field`` is
    missing or not a number, is an error (the total is unchanged).

    Args:
        field: the numeric field to add up.
    """

    mark = "running_sum"
    light = True  # a few microseconds of Python or numpy per call

    def __init__(self, field: str = "n") -> None:
        self.field = field
        self._total: int | float = 0

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if isinstance(payload, ControlPayload):
            if payload.signal == "reset":
                self._total = 0
            self.transmit(message)
            return
        if not isinstance(payload, ObjectPayload):
            raise TypeError(f"running_sum: expected an object message, got {payload.kind}")
        value = payload.get(self.field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            found = "missing" if self.field not in payload else f"{type(value).__name__} {value!r}"
            raise ValueError(f"running_sum: field {self.field!r} must be a number, got {found}")
        self._total += value
        data = payload.to_dict()
        data["total"] = self._total
        self.transmit(message.evolve(payload=ObjectPayload(data)))

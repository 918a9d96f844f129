"""``null``: a sink that discards everything."""

from __future__ import annotations

from typing import Any

from fontus.core.message import Message
from fontus.core.node import Sink

__all__ = ["NullSink"]


class NullSink(Sink):
    """Discards every message (the pipeline still counts them); useful for benchmarks.

    In YAML, quote the mark (``mark: "null"``): a bare ``null`` is YAML's empty value.
    """

    mark = "null"

    def update(self, message: Message[Any]) -> None:
        pass

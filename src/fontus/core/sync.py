"""Synchronisers: how a node with several inputs sees them.

- ``passthrough`` (default): every message on its own, in arrival order.
- ``zip``: one message from each origin, grouped into a :class:`Batch` (in the
  order the links are declared).  Once an origin has ended and everything it
  sent was grouped, the remaining origins are zipped without it; at end of
  stream, incomplete groups are delivered as smaller batches so nothing is lost.
- ``window``: everything that arrived from any origin within ``window_ms`` of
  the first message of the window, as one :class:`Batch`.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .config import SyncConfig
from .message import Message
from .payloads import Batch

__all__ = ["PassthroughSync", "Synchroniser", "WindowSync", "ZipSync", "make_synchroniser"]


def _batch(messages: list[Message[Any]]) -> Message[Any]:
    return Message(Batch(tuple(messages)))


class Synchroniser:
    """Receives ``(origin, message)`` and returns what the node's ``update`` should see."""

    def push(self, origin: str, message: Message[Any]) -> list[Message[Any]]:
        raise NotImplementedError

    def deadline(self) -> float | None:
        """When (``time.monotonic``) :meth:`poll` has something to release, if ever."""
        return None

    def poll(self, now: float) -> list[Message[Any]]:
        return []

    def origin_ended(self, origin: str) -> list[Message[Any]]:
        return []

    def flush(self) -> list[Message[Any]]:
        return []


class PassthroughSync(Synchroniser):
    def push(self, origin: str, message: Message[Any]) -> list[Message[Any]]:
        return [message]


class ZipSync(Synchroniser):
    def __init__(self, origins: list[str]) -> None:
        self.origins = list(dict.fromkeys(origins))
        self.queues: dict[str, deque[Message[Any]]] = {o: deque() for o in self.origins}
        self.ended: set[str] = set()

    def _groups(self) -> list[Message[Any]]:
        out: list[Message[Any]] = []
        while True:
            # An origin that ended with nothing queued can never complete a group again: zip
            # the others, so their messages are not held (unbounded) until the end of stream.
            live = [o for o in self.origins if self.queues[o] or o not in self.ended]
            if not live or not all(self.queues[o] for o in live):
                return out
            out.append(_batch([self.queues[o].popleft() for o in live]))

    def push(self, origin: str, message: Message[Any]) -> list[Message[Any]]:
        self.queues.setdefault(origin, deque()).append(message)
        return self._groups()

    def origin_ended(self, origin: str) -> list[Message[Any]]:
        self.ended.add(origin)
        return self._groups()

    def flush(self) -> list[Message[Any]]:
        out = []
        while any(self.queues.values()):
            out.append(_batch([q.popleft() for q in self.queues.values() if q]))
        return out


class WindowSync(Synchroniser):
    def __init__(self, window_ms: float) -> None:
        self.window = window_ms / 1000.0
        self.pending: list[Message[Any]] = []
        self.opened_at: float | None = None

    def push(self, origin: str, message: Message[Any]) -> list[Message[Any]]:
        now = time.monotonic()
        out = self.poll(now)
        if not self.pending:
            self.opened_at = now
        self.pending.append(message)
        return out

    def deadline(self) -> float | None:
        return None if self.opened_at is None else self.opened_at + self.window

    def poll(self, now: float) -> list[Message[Any]]:
        if self.opened_at is not None and now >= self.opened_at + self.window:
            return self.flush()
        return []

    def flush(self) -> list[Message[Any]]:
        if not self.pending:
            return []
        batch = _batch(self.pending)
        self.pending = []
        self.opened_at = None
        return [batch]


def make_synchroniser(config: SyncConfig, origins: list[str]) -> Synchroniser:
    if config.mode == "zip" and len(origins) > 1:
        return ZipSync(origins)
    if config.mode == "zip":
        return ZipSync(origins) if origins else PassthroughSync()
    if config.mode == "window":
        return WindowSync(config.window_ms)
    return PassthroughSync()

"""The client event loop: one asyncio loop thread shared by every Warp of the process.

Node threads hand work to it with :func:`client_loop`; this is the only bridge
from node code to gRPC on the client side.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["ClientLoop", "client_loop"]

T = TypeVar("T")


class ClientLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fontus-client-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the loop; returns a concurrent future to wait on from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    @property
    def on_loop(self) -> bool:
        return threading.current_thread() is self.thread


_instance: ClientLoop | None = None
_lock = threading.Lock()


def client_loop() -> ClientLoop:
    global _instance
    with _lock:
        if _instance is None:
            _instance = ClientLoop()
        return _instance

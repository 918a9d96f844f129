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

from ._eventloop import new_event_loop

__all__ = ["ClientLoop", "client_loop"]

T = TypeVar("T")


class ClientLoop:
    def __init__(self) -> None:
        self.loop = new_event_loop()  # uvloop when installed (see _eventloop)
        self._ready = threading.Event()
        # Calls queued by call() that the loop has not started running yet (see call()).
        self._batch: list[tuple[Any, tuple[Any, ...]]] | None = None
        self._batch_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="fontus-client-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the loop; returns a concurrent future to wait on from any thread."""
        with self._batch_lock:
            # Calls made after this must not join a batch that runs before the coroutine starts.
            self._batch = None
            return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon, after every call and submit made before it.

        Calls made while the loop has not yet run the previous ones join them: one
        wake-up of the loop (a syscall and a GIL hand-off) for a burst of requests
        instead of one each.
        """
        with self._batch_lock:
            batch = self._batch
            if batch is not None:
                batch.append((fn, args))
                return
            batch = self._batch = [(fn, args)]
        self.loop.call_soon_threadsafe(self._run_batch, batch)

    def _run_batch(self, batch: list[tuple[Any, tuple[Any, ...]]]) -> None:
        with self._batch_lock:
            if self._batch is batch:
                self._batch = None  # closed: later calls start a new batch
        for fn, args in batch:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported as the loop reports a failing callback
                self.loop.call_exception_handler(
                    {"message": f"exception in client loop call {fn!r}", "exception": exc}
                )

    @property
    def on_loop(self) -> bool:
        return threading.current_thread() is self.thread


_instance: ClientLoop | None = None
_lock = threading.Lock()


def client_loop() -> ClientLoop:
    global _instance
    instance = _instance
    if instance is not None:  # made once, never replaced: no lock needed to read it
        return instance
    with _lock:
        if _instance is None:
            _instance = ClientLoop()
        return _instance

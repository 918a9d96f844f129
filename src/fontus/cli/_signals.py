"""SIGINT/SIGTERM while ``fontus run`` runs: record them, let the run loop act on them.

Handlers only count: calling into the pipeline from a handler could re-enter a
lock the main thread holds at that instant.  The run loop wakes up at least
every refresh period and turns the first signal into a graceful stop and the
second into an abort.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopSignals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: installs SIGINT/SIGTERM handlers (main thread only), restores them on exit."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.last = signal.Signals(signum).name

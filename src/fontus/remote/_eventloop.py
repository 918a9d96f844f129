"""Which asyncio event loop the remote side runs on: uvloop when installed, else asyncio's.

The client loop (shared by every Warp of a process) and ``fontus serve`` both
create their loop here.  uvloop (libuv underneath) makes the cross-thread
hand-offs a remote request crosses on each side cheaper: the node thread
waking the client loop, the server's worker handing results back to its loop
(see docs/performance.md, "uvloop").  It is part of the ``remote`` extra where
it exists (Linux, macOS); elsewhere, or when ``FONTUS_EVENT_LOOP=asyncio``,
asyncio's own loop runs and nothing else changes.

``FONTUS_EVENT_LOOP``: ``auto`` (default: uvloop if importable), ``uvloop``
(required; a clear error when missing) or ``asyncio``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..core.errors import ConfigError
from ._env import env_choice

__all__ = ["ENV", "event_loop_name", "new_event_loop", "run"]

ENV = "FONTUS_EVENT_LOOP"
_CHOICES = ("auto", "uvloop", "asyncio")

T = TypeVar("T")


def _factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    choice = env_choice(ENV, _CHOICES, "use uvloop when installed")
    if choice == "asyncio":
        return "asyncio", asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                f"{ENV}=uvloop but uvloop is not installed: pip install 'fontus[remote]' "
                f"(Linux and macOS), or set {ENV}=asyncio"
            ) from None
        return "asyncio", asyncio.new_event_loop
    return "uvloop", uvloop.new_event_loop


def event_loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`new_event_loop` makes under this environment."""
    return _factory()[0]


def new_event_loop() -> asyncio.AbstractEventLoop:
    return _factory()[1]()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`new_event_loop` makes."""
    try:
        factory = _factory()[1]
    except ConfigError:
        main.close()  # never awaited: say so without a "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)

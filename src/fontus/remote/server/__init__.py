"""The Fontus server: ``fontus serve`` hosts nodes behind gRPC sessions."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from .._eventloop import event_loop_name, run
from ._catalogue import Catalogue, Refusal
from ._config import ServerConfig
from ._heap import tune_heap
from ._server import RemoteServer

__all__ = ["Catalogue", "Refusal", "RemoteServer", "ServerConfig", "run_server"]

log = logging.getLogger(__name__)


def run_server(
    catalogue: Catalogue,
    config: ServerConfig,
    *,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT, then drain; returns the process exit code (0 after a drain)."""
    heap = tune_heap() if config.heap_tuning else "heap tuning off (--no-heap-tuning)"

    async def main() -> int:
        log.info("%s", heap)
        server = RemoteServer(catalogue, config)
        port = await server.start()
        (announce or _print)(
            f"fontus serve: listening on {config.host}:{port} "
            f"({catalogue.hosting}: {', '.join(catalogue.marks())}; {config.sessions} sessions; "
            f"{event_loop_name()} event loop)"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(server.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            (announce or _print)(f"fontus serve: draining (grace {config.grace_s:.1f}s)")
            await server.drain()
            (announce or _print)("fontus serve: stopped")
        waiter.cancel()
        return 0

    return run(main())  # on uvloop when installed (see remote/_eventloop.py)


def _print(line: str) -> None:
    print(line, flush=True)
    if not sys.stdout.isatty():
        sys.stdout.flush()

"""Server threading models: what a hand-off to a worker thread costs a gRPC stream, in one run.

    python benchmarks/server_models.py [--repeats 5] [--count 3000] [--json results.json]

The Fontus server reads and writes its streams on a ``grpc.aio`` event loop
and runs node code on a worker thread, because node code must never block
the loop (docs/decisions/0008).  This benchmark measures what that structure
costs, with no Fontus code at all: three echo servers, each in its own
process, answer the same client (the raw ``grpc.aio`` client of
``remote.py``, on the loop thread Warps use) with the same bytes:

* **aio**: a ``grpc.aio`` echo, the floor ``remote.py`` compares Fontus with;
* **aio + worker**: the same, but every message goes to a worker thread and
  back to the loop before it is echoed (``queue.SimpleQueue`` there,
  ``call_soon_threadsafe`` back), the hand-offs a Fontus server makes;
* **threads**: a synchronous ``grpc.server`` whose handler thread echoes each
  message as it reads it: where node code could run without an event loop
  (one thread per stream).

Window 1 gives the round trip (p50), window 32 the messages/s.  Every cell
is the median of ``--repeats`` interleaved runs; read the ratios, not the
absolute numbers (shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc

from _bench import ChildServer, audio, exit_with_parent, median
from _util import print_table, write_json
from fontus.core import Message
from fontus.remote import encode_message
from fontus.remote._eventloop import run as run_on_fontus_loop
from remote import ECHO_METHOD, ECHO_SERVER_LIFETIME_S, MAX_MESSAGE_BYTES, MAX_RUN_S, run_echo

MODELS = ("aio", "aio + worker", "threads")
WINDOWS = (1, 32)
REPEATS = 5
COUNT = 3000
#: Threads of the synchronous server: one per concurrent stream (the benchmark opens one).
SYNC_THREADS = 4
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def _handler(behaviour: Any) -> Any:
    """The echo method of remote.py (ECHO_METHOD), served by ``behaviour``."""
    service, method = ECHO_METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(
        service, {method: grpc.stream_stream_rpc_method_handler(behaviour)}
    )


def _aio_server(hop: bool) -> None:
    """A grpc.aio echo; with ``hop``, each message visits a worker thread first."""
    jobs: queue.SimpleQueue[tuple[bytes, asyncio.Future[bytes]] | None] = queue.SimpleQueue()

    def worker(loop: asyncio.AbstractEventLoop) -> None:
        while (job := jobs.get()) is not None:
            data, future = job
            loop.call_soon_threadsafe(future.set_result, data)

    async def echo(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        async for data in requests:
            if hop:
                future: asyncio.Future[bytes] = loop.create_future()
                jobs.put((data, future))
                data = await future
            yield data

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=worker, args=(loop,), daemon=True).start()
        server = grpc.aio.server(options=_OPTIONS)
        server.add_generic_rpc_handlers((_handler(echo),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await server.wait_for_termination(ECHO_SERVER_LIFETIME_S)
        jobs.put(None)
        await server.stop(0)

    # The loop fontus serve runs on (uvloop when installed): the floor gets the same.
    run_on_fontus_loop(serve())


def _sync_server() -> None:
    """A synchronous grpc.server: the stream's handler thread echoes what it reads."""

    def echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from requests

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SYNC_THREADS), options=_OPTIONS)
    server.add_generic_rpc_handlers((_handler(echo),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination(ECHO_SERVER_LIFETIME_S)


def server_main(model: str) -> int:
    exit_with_parent()
    if model == "threads":
        _sync_server()
    else:
        _aio_server(hop=model == "aio + worker")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per cell")
    parser.add_argument("--count", type=int, default=COUNT, help="messages per run")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--serve", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return server_main(args.serve)

    data = encode_message(Message(audio(0.020)).freeze())  # 20 ms of audio, as remote.py sends
    servers = {model: ChildServer(__file__, "--serve", model) for model in MODELS}
    p50: dict[str, list[float]] = {m: [] for m in MODELS}
    rate: dict[str, list[float]] = {m: [] for m in MODELS}
    try:
        for r in range(args.repeats):
            print(f"  repeat {r + 1}/{args.repeats}", flush=True)
            for model, server in servers.items():
                p50[model].append(run_echo(server.target, data, args.count, 1, MAX_RUN_S).p50_ms)
                rate[model].append(
                    run_echo(server.target, data, args.count, 32, MAX_RUN_S).msgs_per_s
                )
    finally:
        for server in servers.values():
            server.stop()

    med_p50 = {m: median(v) for m, v in p50.items()}
    med_rate = {m: median(v) for m, v in rate.items()}
    rows = [
        [
            model,
            f"{med_p50[model]:.3f}",
            f"{med_p50[model] / med_p50['aio']:.2f}x",
            f"{med_rate[model]:,.0f}",
            f"{med_rate[model] / med_rate['aio']:.2f}x",
        ]
        for model in MODELS
    ]
    print_table(
        f"echo servers, {len(data):,}-byte messages (median of {args.repeats})",
        ["server", "w1 p50 ms", "vs aio", "w32 msgs/s", "vs aio"],
        rows,
        notes=[
            "aio + worker: each message to a worker thread and back, as a Fontus server does",
            "threads: a synchronous grpc.server, the stream's handler thread echoes",
        ],
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "server_models",
                "bytes": len(data),
                "repeats": args.repeats,
                "count": args.count,
                "p50_ms": p50,
                "msgs_per_s": rate,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

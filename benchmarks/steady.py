"""Steady-state 1080p runs: frames/s, CPU and page faults per frame, both processes.

``remote.py`` measures cells of 150 frames; this runs one payload for longer,
after a warm-up, and reports what each process spent per frame over the steady
part only (CPU of every thread, minor page faults), for A/B runs of one change::

    .venv/bin/python benchmarks/steady.py fontus --frames 450 --window 32 --runs 3
    .venv/bin/python benchmarks/steady.py echo --frames 450 --window 32 --runs 3
    .venv/bin/python benchmarks/steady.py fontus --over-bytes   # the array over bytes

Run old and new code alternately (``PYTHONPATH=old/src`` for the old one) and
compare pairs: on a shared machine one run moves by 10-20%.
"""

from __future__ import annotations

import argparse
import os
import time

import remote as bench
from _bench import Case, bench_registry, image, over_bytes
from fontus.remote import admin
from fontus.testing import LoopbackServer

WARMUP_FRAMES = 40
MAX_RUN_S = 60.0


def minor_faults(pid: int) -> int:
    """Minor page faults of process ``pid`` so far (Linux /proc)."""
    fields = bench.proc_stat(pid)
    if fields is None:
        raise SystemExit(f"steady.py: cannot read /proc/{pid}/stat (it needs Linux's /proc)")
    return int(fields[7])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("fontus", "echo"))
    parser.add_argument("--frames", type=int, default=450, help="frames per run (after warm-up)")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument(
        "--array-refs",
        action="store_true",
        help="let the server name the array instead of sending it back (Warp array_refs)",
    )
    parser.add_argument(
        "--over-bytes",
        action="store_true",
        help="make the source's array over a bytes object (as numpy.frombuffer over frames "
        "read from a pipe, or an array read from a received frame): it can go uncopied",
    )
    args = parser.parse_args()
    payload = image(args.height, args.width)
    if args.over_bytes:
        payload = over_bytes(payload)
    # The bytes remote.py's echo sends for this payload, and their size.
    data, size = bench.encoded_size(payload)
    server: bench.EchoServer | LoopbackServer
    if args.mode == "echo":
        server = bench.EchoServer()
    else:
        server = LoopbackServer(["--allow", "identity"]).start()
    assert server.process is not None
    pid = server.process.pid
    registry = bench_registry()

    def run(count: int) -> bench.Cell:
        if args.mode == "echo":
            return bench.run_echo(server.target, data, count, args.window, MAX_RUN_S)
        case = Case("frame", payload, count)
        return bench.run_fontus(
            case, registry, server.target, args.window, size, MAX_RUN_S, args.array_refs
        )

    try:
        run(WARMUP_FRAMES)
        for _ in range(args.runs):
            faults = (minor_faults(os.getpid()), minor_faults(pid))
            cpu = (bench.own_cpu_s(), bench.child_cpu_s(pid) or 0.0)
            started = time.perf_counter()
            cell = run(args.frames)
            wall = time.perf_counter() - started
            cpu_client = (bench.own_cpu_s() - cpu[0]) * 1e3 / args.frames
            cpu_server = ((bench.child_cpu_s(pid) or 0.0) - cpu[1]) * 1e3 / args.frames
            faults_client = (minor_faults(os.getpid()) - faults[0]) / args.frames
            faults_server = (minor_faults(pid) - faults[1]) / args.frames
            print(
                f"{args.mode} w{args.window}: {cell.msgs_per_s:.1f} frames/s  "
                f"CPU/frame client {cpu_client:.2f} ms, server {cpu_server:.2f} ms  "
                f"faults/frame client {faults_client:.0f}, server {faults_server:.0f}  "
                f"({wall:.1f} s)",
                flush=True,
            )
        if args.mode == "fontus":
            rows = admin.server_stats(server.target).nodes
            outputs = sum(n["outputs"] for n in rows)
            tails = sum(n["tails"] for n in rows)
            refs = sum(n["tail_refs"] for n in rows)
            print(
                f"outputs sent as their request frame's tail: {tails}, named (array_refs): "
                f"{refs}, of {outputs} (warm-up too)",
                flush=True,
            )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Python calls per message, per thread, in both processes of a remote hop.

Runs ``bench_source → identity (remote, window N) → bench_sink`` against a
``fontus serve`` started under the same profile hook, and counts every Python
function call and every call into C (``sys.setprofile`` on every thread, the
client loop's included) per message.  Where time per message is spread thinly
over many small steps, as on a remote hop's client at window 32, the count
says which steps there are and how many; a sampling profiler does not see
them one by one.  The hook slows everything several times over: read the
counts, not the rates.  A warm-up run comes first; the counted run follows.

    .venv/bin/python benchmarks/calls.py --payload "object 20 keys" --window 32
    PYTHONPATH=old/src .venv/bin/python benchmarks/calls.py ...   # the code before a change
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import remote as bench
from _bench import bench_registry
from fontus.testing import LoopbackServer

#: How long the profiled server may take to listen, and to write its counts.
SERVER_WAIT_S = 30.0
#: A counted run stops producing after this long, whatever ``--count`` says.
MAX_RUN_S = 120.0
#: Counts are keyed by thread name, file (shortened) and function.
Key = tuple[str, str, str]


class Counter:
    """Calls per (thread, file, function), from a ``sys.setprofile`` hook."""

    def __init__(self) -> None:
        self.counts: collections.Counter[Key] = collections.Counter()

    def hook(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            where = code.co_filename.split("site-packages/")[-1].split("src/")[-1]
            self.counts[(threading.current_thread().name, where, code.co_name)] += 1
        elif event == "c_call":
            name = getattr(arg, "__qualname__", None) or str(arg)
            self.counts[(threading.current_thread().name, "C", name)] += 1

    def install(self) -> None:
        threading.setprofile(self.hook)
        sys.setprofile(self.hook)

    def uninstall(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)

    def rows(self) -> list[tuple[str, str, str, int]]:
        # A snapshot first: the hook may count calls (new keys) while this iterates.
        snapshot = list(self.counts.items())
        return [(t, f, n, c) for (t, f, n), c in snapshot]


# -- the profiled server (a subprocess) ---------------------------------------------
def serve_main(dump: str, argv: list[str]) -> int:
    """The ``fontus`` command line ``argv`` under the hook; SIGUSR1 clears the counts,
    SIGUSR2 writes them to ``dump``."""
    counter = Counter()

    def clear(*_: Any) -> None:
        counter.counts.clear()

    def write(*_: Any) -> None:
        Path(dump).write_text(json.dumps(counter.rows()))

    signal.signal(signal.SIGUSR1, clear)
    signal.signal(signal.SIGUSR2, write)
    counter.install()
    from fontus.cli import main as fontus_main

    return fontus_main(argv)


def profiled_server(dump: Path) -> LoopbackServer:
    """``fontus serve --allow identity`` on 127.0.0.1, run by this script under the hook."""
    launcher = [sys.executable, __file__, "--serve", str(dump)]
    return LoopbackServer(["--allow", "identity"], launcher=launcher).start(SERVER_WAIT_S)


def server_counts(server: LoopbackServer, dump: Path) -> list[tuple[str, str, str, int]]:
    """Ask the profiled server for its counts (SIGUSR2) and read them."""
    dump.unlink(missing_ok=True)
    server.signal(signal.SIGUSR2)
    deadline = time.monotonic() + SERVER_WAIT_S
    while time.monotonic() < deadline:
        if dump.exists():
            try:
                return [tuple(row) for row in json.loads(dump.read_text())]  # type: ignore[misc]
            except json.JSONDecodeError:
                pass  # still being written
        time.sleep(0.1)
    raise SystemExit(
        "calls.py: the profiled fontus serve did not write its counts:\n" + server.log()
    )


# -- the report ------------------------------------------------------------------------
def report(title: str, rows: list[tuple[str, str, str, int]], messages: int, top: int) -> None:
    per_thread: collections.Counter[str] = collections.Counter()
    for thread, _, _, count in rows:
        per_thread[thread] += count
    print(f"\n{title}: Python calls per message, by thread ({messages:,} messages)")
    for thread, count in per_thread.most_common():
        if count / messages >= 0.1:
            print(f"  {count / messages:8.1f}  {thread}")
    print(f"  {sum(per_thread.values()) / messages:8.1f}  all threads")
    print(f"\n{title}: the {top} most frequent calls (per message; 'C' for calls into C)")
    for thread, where, name, count in sorted(rows, key=lambda r: -r[3])[:top]:
        print(f"  {count / messages:6.2f}  {thread[:24]:24s}  {where}:{name}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve_main(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    names = [case.name for case in bench.cases(quick=True)]
    parser.add_argument("--payload", default="object 20 keys", choices=names)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--count", type=int, default=5000, help="messages in the counted run")
    parser.add_argument("--top", type=int, default=40, help="most frequent calls to list")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 200_000:
        parser.error("--count must be between 1 and 200000")
    case = next(c for c in bench.cases(quick=False) if c.name == args.payload)
    case = bench.Case(case.name, case.payload, args.count)
    registry = bench_registry()
    with tempfile.TemporaryDirectory(prefix="fontus-calls-") as tmp:
        dump = Path(tmp) / "server-counts.json"
        server = profiled_server(dump)
        try:
            bench.run_fontus(case, registry, server.target, args.window, 1, MAX_RUN_S)  # warm-up
            counter = Counter()
            server.signal(signal.SIGUSR1)
            time.sleep(0.3)  # the server's loop thread runs the handler between two bytecodes
            counter.install()
            # The client loop runs already (the warm-up started it): hook it from inside.
            from fontus.remote._loop import client_loop

            client_loop().loop.call_soon_threadsafe(sys.setprofile, counter.hook)
            time.sleep(0.2)
            try:
                cell = bench.run_fontus(case, registry, server.target, args.window, 1, MAX_RUN_S)
            finally:
                counter.uninstall()
                client_loop().loop.call_soon_threadsafe(sys.setprofile, None)
                time.sleep(0.2)
            server_rows = server_counts(server, dump)
        finally:
            server.stop()
    print(
        f"{case.name}, window {args.window}: {cell.messages:,} messages "
        f"({cell.msgs_per_s:,.0f} msgs/s under the hook)"
    )
    report("client (pipeline process)", counter.rows(), cell.messages, args.top)
    report("server (fontus serve)", server_rows, cell.messages, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

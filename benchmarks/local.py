"""Local pipeline benchmark: per-hop latency and messages/s through chains of identity nodes.

    python benchmarks/local.py [--json results.json] [--repeats 3] [--quick]

Each row is a real ``fontus.Pipeline``: a stamping source, N ``identity``
nodes, a sink that discards (and times) what it receives, every node on its
own thread behind a bounded inbox.  A chain of N identity nodes has N + 1
*hops* (inbox hand-offs between threads).

* **msgs/s**: the source produces as fast as the pipeline accepts
  (backpressure paces it); messages received / (last arrival - first stamp).
* **per-hop latency**: the source waits for the sink to receive each message
  before producing the next (one message in flight, no queueing); the sink's
  arrival time minus the source's ``perf_counter`` stamp, divided by the hops.
  p50 and p99 over the run.

Payloads: 20 ms of 16 kHz float32 mono audio, and a 720p rgb24 frame.  Local
hops pass references, so the payload size should not matter; that it does not
is part of what the table shows.  The machine may be shared: each number is the
median of ``--repeats`` runs, and all configurations run interleaved in one
process so that noise hits them alike.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _bench import audio, bench_registry, image, median, pct, run_pipeline
from _util import print_table, write_json
from fontus.core import Payload, Registry

#: Messages per run: enough for a stable p99 (the top 1% is 10-30 samples), bounded
#: in time too, so a slow machine still finishes.
FLAT_OUT_MESSAGES = 10_000
LOCKSTEP_MESSAGES = 2000
MAX_RUN_S = 15.0
REPEATS = 5
CHAINS = (1, 4, 8)


def payloads() -> dict[str, Payload]:
    return {"audio 20 ms": audio(0.020), "image 720p": image(720, 1280)}


def chain(n: int) -> list[dict[str, Any]]:
    return [{"name": f"id{i}", "mark": "identity"} for i in range(1, n + 1)]


def measure_once(
    payload: Payload, n: int, registry: Registry, flat: int, lockstep: int
) -> dict[str, float]:
    hops = n + 1
    fast = run_pipeline(
        chain(n), payload, count=flat, max_s=MAX_RUN_S, lockstep=False, registry=registry
    )
    step = run_pipeline(
        chain(n), payload, count=lockstep, max_s=MAX_RUN_S, lockstep=True, registry=registry
    )
    lat = step.latencies
    return {
        "msgs_per_s": fast.rate,
        "received": fast.received,
        "e2e_p50_us": pct(lat, 0.5) * 1e6,
        "e2e_p99_us": pct(lat, 0.99) * 1e6,
        "hop_p50_us": pct(lat, 0.5) * 1e6 / hops,
        "hop_p99_us": pct(lat, 0.99) * 1e6 / hops,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per configuration")
    parser.add_argument(
        "--chains",
        default=",".join(map(str, CHAINS)),
        help="identity nodes per chain, comma-separated (default %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer messages)")
    args = parser.parse_args(argv)
    chains = [int(c) for c in args.chains.split(",") if c.strip()]
    flat, step = (300, 100) if args.quick else (FLAT_OUT_MESSAGES, LOCKSTEP_MESSAGES)
    repeats = 1 if args.quick else args.repeats

    registry = bench_registry()
    cases = payloads()
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    started = time.monotonic()
    # Interleaved: every configuration once per repeat, so slow moments hit all of them.
    for _ in range(repeats):
        for name, payload in cases.items():
            for n in chains:
                runs.setdefault((name, n), []).append(
                    measure_once(payload, n, registry, flat, step)
                )

    results = []
    for (name, n), samples in runs.items():
        rates = [s["msgs_per_s"] for s in samples]
        row: dict[str, Any] = {"payload": name, "identity_nodes": n, "hops": n + 1}
        for key in samples[0]:
            row[key] = median([s[key] for s in samples])
        row["msgs_per_s_spread"] = (max(rates) - min(rates)) / row["msgs_per_s"]
        row["repeats"] = samples
        results.append(row)

    rows = [
        [
            r["payload"],
            r["identity_nodes"],
            r["hops"],
            f"{r['msgs_per_s']:,.0f}{' ~' if r['msgs_per_s_spread'] > 0.25 else ''}",
            f"{r['hop_p50_us']:,.0f}",
            f"{r['hop_p99_us']:,.0f}",
            f"{r['e2e_p50_us']:,.0f}",
            f"{r['e2e_p99_us']:,.0f}",
        ]
        for r in results
    ]
    print_table(
        f"fontus local pipelines: median of {repeats} runs",
        [
            "payload",
            "nodes",
            "hops",
            "msgs/s",
            "hop p50 µs",
            "hop p99 µs",
            "e2e p50 µs",
            "e2e p99 µs",
        ],
        rows,
        notes=[
            f"nodes: identity nodes in the chain; hops = nodes + 1 (thread hand-offs); "
            f"msgs/s: source flat out, {flat:,} messages per run",
            f"hop = (sink - source time) / hops and e2e = sink - source time, with one message "
            f"in flight, {step:,} per run",
            "~ marks a noisy median (runs spread over 25%)",
            f"total {time.monotonic() - started:.0f} s",
        ],
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "local",
                "flat_out_messages": flat,
                "lockstep_messages": step,
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

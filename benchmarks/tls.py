"""TLS benchmark: what TLS (and mutual TLS with a bearer token) costs a remote node, in one run.

    python benchmarks/tls.py [--json results.json] [--repeats 3] [--quick]

``source → identity (remote, window 1 or 32) → sink`` through a real Warp
against three ``fontus serve`` processes on 127.0.0.1 (:class:`LoopbackServer`),
side by side:

* **plain**: plaintext (the loopback default);
* **tls**: server certificate, the client trusting a CA made for the run (trustme);
* **mtls+token**: mutual TLS, and a bearer token checked on the session.

Payloads: 20 ms of 16 kHz audio (small messages: per-message overhead) and a
720p rgb24 frame (2.7 MB: encryption throughput).  Messages/s are measured
with the source as fast as the window allows; p50 is the Warp's round trip
(request sent → its Done received), so at window 32 it includes waiting behind
the other 31.  The ratio is secure / plain (msgs/s: higher is better; p50:
lower is better).  Each cell is the median of ``--repeats`` runs, interleaved
so that a noisy moment hits every column; every run is bounded in messages and
seconds.  Needs the dev extra (trustme).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trustme

from _bench import Case, audio, bench_registry, image, median, run_pipeline
from _util import print_table, write_json
from fontus.core import Registry
from fontus.testing import LoopbackServer

REPEATS = 3
WINDOWS = (32, 1)
MODES = ("plain", "tls", "mtls+token")
#: Bound of each run: it ends after this many seconds even if not every message was sent.
MAX_RUN_S = 15.0
#: The environment variable the Warp reads its token from (set in this process only).
TOKEN_ENV = "FONTUS_BENCH_TOKEN"


def cases(quick: bool) -> list[Case]:
    small, large = (300, 30) if quick else (3000, 300)
    return [
        Case("audio 20 ms", audio(0.020), small),
        Case("image 720p", image(720, 1280), large),
    ]


@dataclass
class Cell:
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    messages: int


@dataclass(frozen=True)
class Security:
    """Server flags and the Warp's ``remote`` keys of one mode."""

    server_args: tuple[str, ...]
    remote: dict[str, Any]
    env: dict[str, str]


def make_security(folder: Path) -> dict[str, Security]:
    ca = trustme.CA(organization_name="Fontus benchmark CA")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    files: dict[str, str] = {"ca": str(folder / "ca.pem")}
    for name, identity in (("server", "127.0.0.1"), ("client", "client.bench.test")):
        cert = ca.issue_cert(identity, "localhost") if name == "server" else ca.issue_cert(identity)
        chain = folder / f"{name}.pem"
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(folder / f"{name}.key"))
        files[name], files[f"{name}_key"] = str(chain), str(folder / f"{name}.key")
    token = os.urandom(24).hex()
    server_tls = ("--tls-cert", files["server"], "--tls-key", files["server_key"])
    return {
        "plain": Security((), {}, {}),
        "tls": Security(server_tls, {"tls": {"ca": files["ca"]}}, {}),
        "mtls+token": Security(
            (*server_tls, "--tls-client-ca", files["ca"], "--token-env", "FONTUS_SERVER_TOKENS"),
            {
                "tls": {"ca": files["ca"], "cert": files["client"], "key": files["client_key"]},
                "token_env": TOKEN_ENV,
            },
            {"FONTUS_SERVER_TOKENS": token, TOKEN_ENV: token},
        ),
    }


def run_cell(
    case: Case, registry: Registry, target: str, window: int, remote: dict[str, Any], max_s: float
) -> Cell:
    count = case.count if window > 1 else max(20, case.count // 4)
    middle = [
        {
            "name": "node",
            "mark": "identity",
            "remote": {"target": target, "window": window, "timeout": 60.0, **remote},
        }
    ]
    run = run_pipeline(
        middle, case.payload, count=count, max_s=max_s, lockstep=False, registry=registry
    )
    if run.state != "done" or run.received != run.produced:
        raise RuntimeError(
            f"{case.name} w{window}: run {run.state}, {run.received} of {run.produced} arrived"
        )
    warp = run.extra.get("node", {})
    return Cell(
        msgs_per_s=run.rate,
        p50_ms=float(warp.get("rtt_p50_ms", 0.0)),
        p99_ms=float(warp.get("rtt_p99_ms", 0.0)),
        messages=run.received,
    )


def measure(
    chosen: list[Case], security: dict[str, Security], repeats: int, max_s: float
) -> dict[tuple[str, int, str], list[Cell]]:
    registry = bench_registry()
    runs: dict[tuple[str, int, str], list[Cell]] = {}
    servers: dict[str, LoopbackServer] = {}
    try:
        for mode in MODES:
            sec = security[mode]
            servers[mode] = LoopbackServer(["--allow", "identity", *sec.server_args], env=sec.env)
            servers[mode].start()
            os.environ.update(sec.env)  # the Warp reads its token from this process's env
        for r in range(repeats):
            for case in chosen:
                for window in WINDOWS:
                    for mode in MODES:
                        print(
                            f"  repeat {r + 1}/{repeats}: {case.name}, w{window}, {mode}",
                            flush=True,
                        )
                        cell = run_cell(
                            case,
                            registry,
                            servers[mode].target,
                            window,
                            security[mode].remote,
                            max_s,
                        )
                        runs.setdefault((case.name, window, mode), []).append(cell)
    finally:
        for server in servers.values():
            server.stop()
    return runs


def summarise(cells: list[Cell]) -> Cell:
    return Cell(
        msgs_per_s=median([c.msgs_per_s for c in cells]),
        p50_ms=median([c.p50_ms for c in cells]),
        p99_ms=median([c.p99_ms for c in cells]),
        messages=int(median([c.messages for c in cells])),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per cell")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few messages)")
    args = parser.parse_args(argv)
    chosen = cases(args.quick)
    repeats = 1 if args.quick else args.repeats
    max_s = 5.0 if args.quick else MAX_RUN_S

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fontus-tls-bench-") as folder:
        runs = measure(chosen, make_security(Path(folder)), repeats, max_s)
    elapsed = time.monotonic() - started
    med = {key: summarise(cells) for key, cells in runs.items()}

    rows = []
    ratios: dict[str, dict[str, float]] = {}
    for case in chosen:
        for window in WINDOWS:
            plain = med[(case.name, window, "plain")]
            row = [case.name, f"w{window}"]
            for mode in MODES:
                cell = med[(case.name, window, mode)]
                row.append(f"{cell.msgs_per_s:,.0f} / {cell.p50_ms:.2f}")
            for mode in MODES[1:]:
                cell = med[(case.name, window, mode)]
                rate = cell.msgs_per_s / plain.msgs_per_s if plain.msgs_per_s else 0.0
                p50 = cell.p50_ms / plain.p50_ms if plain.p50_ms else 0.0
                ratios[f"{case.name} w{window} {mode}"] = {"msgs_per_s": rate, "p50_ms": p50}
                row.append(f"{rate:.2f}x / {p50:.2f}x")
            rows.append(row)
    print_table(
        f"TLS overhead: msgs/s / round-trip p50 ms (median of {repeats})",
        [
            "payload",
            "window",
            *MODES,
            *(f"{m} vs plain" for m in MODES[1:]),
        ],
        rows,
        notes=[
            "ratios: msgs/s (higher is better, 1.00x = no cost) / p50 (lower is better)",
            f"total {elapsed:.0f} s",
        ],
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "tls",
                "repeats": repeats,
                "counts": {c.name: c.count for c in chosen},
                "median": {f"{n} w{w} {m}": asdict(c) for (n, w, m), c in med.items()},
                "runs": {
                    f"{n} w{w} {m}": [asdict(c) for c in cells] for (n, w, m), cells in runs.items()
                },
                "ratios": ratios,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

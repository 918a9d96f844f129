#!/usr/bin/env python3
"""`make demo`: the main job of Fontus in one command.

1. starts a real `fontus serve` on a free loopback port (the embedded default),
2. runs examples/remote/audio.yaml with `fontus run`, whose processing nodes are
   remote: the live table shows each Warp's round trip to the server,
3. asks the server for its stats, then stops it (SIGTERM: a graceful drain).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from fontus.testing import LoopbackServer

    os.chdir(ROOT)
    print(
        "== starting a loopback server: fontus serve --allow gain,energy_vad,identity", flush=True
    )
    server = LoopbackServer(["--allow", "gain,energy_vad,identity"]).start()
    print(f"   {server.log().splitlines()[-1]}", flush=True)
    env = {**os.environ, "FONTUS_REMOTE": server.target}
    try:
        print(
            f"\n== fontus run examples/remote/audio.yaml  (FONTUS_REMOTE={server.target})",
            flush=True,
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "fontus",
                "run",
                "examples/remote/audio.yaml",
                "--timeout",
                "60",
            ],
            env=env,
            timeout=120,
        )
        print(f"\n== fontus remote stats {server.target}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "fontus", "remote", "stats", server.target], timeout=30
        )
    finally:
        print("\n== stopping the server (SIGTERM: drain, then exit)", flush=True)
        code = server.stop()
        for line in server.log().splitlines()[-2:]:
            print(f"   {line}")
        print(f"   server exit code {code}")
    for path in ("out/remote_audio_segments.jsonl", "out/remote_audio_chunks.jsonl"):
        lines = Path(path).read_text().count("\n") if Path(path).exists() else 0
        print(f"   {path}: {lines} lines")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())

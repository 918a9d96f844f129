"""The Fontus client of the live interop tests: runs a pipeline file and reports on its Warps.

Runs in Fontus's own venv, inside the test's private network namespace::

    python fontus_client.py PIPELINE.json TIMEOUT_S
    stdout: {"state": ..., "error": ..., "warps": {name: {"protocol": ..., **stats}}}

Outputs are whatever the pipeline's sinks write (the tests use ``jsonl``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fontus.core import FontusError, Pipeline
from fontus.remote.warp import Warp


def main() -> int:
    path, timeout = sys.argv[1], float(sys.argv[2])
    pipeline = Pipeline.from_file(path)
    report: dict[str, Any] = {}
    try:
        result = pipeline.run(timeout=timeout)
        report["state"], report["error"] = result.state, str(result.error or "")
    except FontusError as exc:  # a warmup failure (e.g. the server refused the session)
        report["state"], report["error"] = "failed", str(exc)
    report["warps"] = {
        name: {"protocol": node.protocol, **node.stats_extra()}
        for name, node in pipeline.nodes.items()
        if isinstance(node, Warp)
    }
    json.dump(report, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

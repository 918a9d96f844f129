"""Shared helpers of the benchmarks: robust timing, a results table, JSON output.

Benchmarks run on shared, noisy machines, so every number is a median: each
*repeat* times enough iterations to last ``min_time`` seconds, and the median
of the repeats is reported (with the spread, so noise is visible).  Nothing
here knows what is being measured.

::

    from _util import measure, measure_all, print_table, write_json

    t = measure(lambda: encode(x))
    ts = measure_all({"a": lambda: encode(a), "b": lambda: encode(b)})  # interleaved
    print_table("codec", ["payload", "µs"], [["audio", f"{t.us:.1f}"]])
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

__all__ = ["Timing", "environment", "measure", "measure_all", "print_table", "write_json"]

#: Default repeats per measurement; the median of these is reported.
REPEATS = 7
#: Each repeat runs at least this long, so timer resolution and one-off hiccups do not count.
MIN_TIME_S = 0.05


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median over repeats, with the fastest and slowest repeat."""

    median_s: float
    min_s: float
    max_s: float
    iterations: int
    repeats: int

    @property
    def us(self) -> float:
        """Median microseconds per call."""
        return self.median_s * 1e6

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median: how noisy the measurement was."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s else 0.0


def _iterations_for(fn: Callable[[], Any], min_time: float) -> int:
    """Like ``timeit.Timer.autorange``: 1, 2, 5, 10, 20, 50... until a batch lasts ``min_time``."""
    n = 1
    while True:
        for factor in (1, 2, 5):
            count = n * factor
            start = time.perf_counter()
            for _ in range(count):
                fn()
            if time.perf_counter() - start >= min_time:
                return count
        n *= 10


def measure(
    fn: Callable[[], Any], *, repeats: int = REPEATS, min_time: float = MIN_TIME_S
) -> Timing:
    """Time ``fn()``; garbage collection is paused inside each repeat, as in ``timeit``."""
    return measure_all({"fn": fn}, repeats=repeats, min_time=min_time)["fn"]


def measure_all(
    fns: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = REPEATS,
    min_time: float = MIN_TIME_S,
) -> dict[str, Timing]:
    """Time several functions with their repeats interleaved (round-robin).

    On a shared machine, load comes in bursts lasting seconds; measuring one
    function at a time lets a burst spoil all of its repeats.  Interleaving
    spreads each function's repeats over the whole run, so the median of each
    is robust to a burst.
    """
    iterations = {}
    for name, fn in fns.items():
        fn()  # warm caches and lazy imports
        iterations[name] = _iterations_for(fn, min_time)
    per_call: dict[str, list[float]] = {name: [] for name in fns}
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                count = iterations[name]
                gc.collect()
                gc.disable()
                start = time.perf_counter()
                for _ in range(count):
                    fn()
                per_call[name].append((time.perf_counter() - start) / count)
                if enabled:
                    gc.enable()
    finally:
        if enabled:
            gc.enable()
    return {
        name: Timing(
            median_s=statistics.median(times),
            min_s=min(times),
            max_s=max(times),
            iterations=iterations[name],
            repeats=repeats,
        )
        for name, times in per_call.items()
    }


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    notes: Sequence[str] = (),
) -> None:
    """Print ``rows`` under ``columns``: with rich when it is installed, plain text otherwise."""
    cells = [[str(cell) for cell in row] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        print(title)
        print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for row in cells:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    else:
        table = Table(title=title, title_justify="left")
        for i, column in enumerate(columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in cells:
            table.add_row(*row)
        # Piped output has no terminal width: give it room rather than wrap every cell.
        Console(width=None if sys.stdout.isatty() else 200).print(table)
    for note in notes:
        print(note)


def environment() -> dict[str, Any]:
    """What the numbers depend on: interpreter, libraries, machine and its load."""
    import numpy

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    return info


def write_json(path: str | Path, results: dict[str, Any]) -> None:
    """Write ``results`` (plus the environment) as indented JSON.

    Timings and other dataclasses become objects, numpy scalars numbers.
    """

    def default(value: Any) -> Any:
        if isinstance(value, Timing):
            return {**asdict(value), "us": value.us}
        if is_dataclass(value) and not isinstance(value, type):
            return asdict(value)
        if hasattr(value, "item"):  # numpy scalars
            return value.item()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    payload = {"environment": environment(), **results}
    Path(path).write_text(json.dumps(payload, indent=2, default=default) + "\n")

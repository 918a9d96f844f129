"""Per-node counters and latency quantiles, read without stopping the node.

Counters are plain ints updated by the node's own thread (single writer);
readers take a consistent-enough snapshot.  Latencies keep the last
``LATENCY_SAMPLES`` values, so quantiles describe recent behaviour.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LATENCY_SAMPLES", "LatencyWindow", "NodeStats", "NodeStatsSnapshot", "quantile"]

#: Samples kept per latency window: enough for a stable p99 (about 40 samples above it).
LATENCY_SAMPLES = 4096


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class LatencyWindow:
    """The most recent latency samples, in seconds."""

    def __init__(self, size: int = LATENCY_SAMPLES) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)  # deque.append is atomic

    def quantiles(self, *qs: float) -> tuple[float, ...]:
        with self._lock:
            values = sorted(self._samples)
        return tuple(quantile(values, q) for q in qs)

    def __len__(self) -> int:
        return len(self._samples)


@dataclass(frozen=True)
class NodeStatsSnapshot:
    name: str
    mark: str
    kind: str
    received: int
    sent: int
    errors: int
    dropped: int
    queue_depth: int
    queue_capacity: int
    p50_ms: float
    p99_ms: float
    rate: float  # messages processed per second since start
    elapsed_s: float
    state: str
    total: int | None = None
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class NodeStats:
    """Live counters of one node."""

    def __init__(self, name: str, mark: str, kind: str) -> None:
        self.name = name
        self.mark = mark
        self.kind = kind
        self.received = 0
        self.sent = 0
        self.errors = 0
        self.dropped = 0
        self.latency = LatencyWindow()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.state = "created"

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.state = "running"

    def end(self, state: str = "done") -> None:
        self.ended_at = time.monotonic()
        self.state = state

    def snapshot(
        self,
        queue_depth: int = 0,
        queue_capacity: int = 0,
        dropped: int = 0,
        total: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> NodeStatsSnapshot:
        p50, p99 = self.latency.quantiles(0.5, 0.99)
        if self.started_at is None:
            elapsed = 0.0
        else:
            elapsed = (self.ended_at or time.monotonic()) - self.started_at
        work = self.sent if self.kind == "source" else self.received
        return NodeStatsSnapshot(
            name=self.name,
            mark=self.mark,
            kind=self.kind,
            received=self.received,
            sent=self.sent,
            errors=self.errors,
            dropped=self.dropped + dropped,
            queue_depth=queue_depth,
            queue_capacity=queue_capacity,
            p50_ms=p50 * 1000.0,
            p99_ms=p99 * 1000.0,
            rate=work / elapsed if elapsed > 0 else 0.0,
            elapsed_s=elapsed,
            state=self.state,
            total=total,
            extra=extra,
        )

"""Counters of one session, shared by the Fontus and Juturna protocol sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.stats import LatencyWindow

__all__ = ["SessionStats"]


@dataclass
class SessionStats:
    requests: int = 0
    outputs: int = 0
    failures: int = 0
    deadline_missed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    #: Outputs sent back as the tail of their result frame (the request frame they came in).
    tails: int = 0
    #: Outputs whose array was the client's own request's, named instead of sent back.
    tail_refs: int = 0
    latency: LatencyWindow = field(default_factory=LatencyWindow)

    def record(self, compute_s: float, failed: bool, outputs: int = 0) -> None:
        self.latency.add(compute_s)
        self.outputs += outputs
        if failed:
            self.failures += 1

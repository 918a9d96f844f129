"""Shipped test harness: run nodes and pipelines locally and behind a real loopback server."""

from ._harness import Comparison, RunOutput, compare_node, compare_pipeline, run_node, run_pipeline
from ._server import LoopbackServer

__all__ = [
    "Comparison",
    "LoopbackServer",
    "RunOutput",
    "compare_node",
    "compare_pipeline",
    "run_node",
    "run_pipeline",
]

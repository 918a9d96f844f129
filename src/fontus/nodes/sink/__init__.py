"""Built-in sinks."""

from .jsonl import JsonlSink
from .null import NullSink
from .wav import WavSink

__all__ = ["JsonlSink", "NullSink", "WavSink"]

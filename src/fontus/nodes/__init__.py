"""Built-in nodes, registered through the ``fontus.nodes`` entry points like any plugin.

``message_record`` is the deterministic JSON form of a message written by the
``jsonl`` sink, shared with tests and tools.
"""

from ._records import message_record, payload_record, value_record
from .proc import (
    Delay,
    EnergyVad,
    FailEvery,
    Gain,
    Grayscale,
    Identity,
    Repeat,
    RunningSum,
)
from .sink import JsonlSink, NullSink, WavSink
from .source import Counter, JsonlFile, Sine, TestPattern, WavFile

#: The marks of the built-in processing nodes, in the order the docs list them.
PROCESSOR_MARKS = tuple(
    cls.mark for cls in (Identity, Repeat, Delay, Gain, EnergyVad, RunningSum, FailEvery, Grayscale)
)

__all__ = [
    "PROCESSOR_MARKS",
    "Counter",
    "Delay",
    "EnergyVad",
    "FailEvery",
    "Gain",
    "Grayscale",
    "Identity",
    "JsonlFile",
    "JsonlSink",
    "NullSink",
    "Repeat",
    "RunningSum",
    "Sine",
    "TestPattern",
    "WavFile",
    "WavSink",
    "message_record",
    "payload_record",
    "value_record",
]

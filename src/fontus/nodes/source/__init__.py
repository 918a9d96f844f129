"""Built-in sources."""

from .counter import Counter
from .jsonl_file import JsonlFile
from .sine import Sine
from .test_pattern import TestPattern
from .wav_file import WavFile

__all__ = ["Counter", "JsonlFile", "Sine", "TestPattern", "WavFile"]

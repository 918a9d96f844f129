"""``sine``: a deterministic sine tone in audio chunks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import numpy as np

from fontus.core.node import Source
from fontus.core.payloads import AudioPayload

from .._audio import audio_format
from .._pacing import Schedule

__all__ = ["AMPLITUDE", "Sine"]

#: Peak amplitude as a fraction of full scale (-6 dBFS), so a gain of up to 2 does not clip.
AMPLITUDE = 0.5

SampleType = Literal["float32", "float64", "int16", "int32"]


class Sine(Source):
    """A sine tone at half full scale, in chunks whose phase continues from one to the next.

    The same signal is written to every channel: shape ``(samples,)`` for mono,
    ``(samples, channels)`` otherwise.  Integer types are scaled to their full
    range; ``start`` and ``end`` are the chunk's seconds since the first sample.

    Args:
        frequency: tone frequency in Hz.
        sampling_rate: samples per second.
        channels: number of channels (>= 1).
        chunk_ms: length of one chunk in milliseconds (the last one may be shorter).
        duration_s: total length in seconds.
        dtype: sample type: float32, float64, int16 or int32.
        realtime: pace chunks at the speed of real audio instead of as fast as possible.
    """

    mark = "sine"

    def __init__(
        self,
        frequency: float = 440.0,
        sampling_rate: int = 16000,
        channels: int = 1,
        chunk_ms: float = 20.0,
        duration_s: float = 1.0,
        dtype: SampleType = "float32",
        realtime: bool = False,
    ) -> None:
        if sampling_rate <= 0:
            raise ValueError(f"sine: sampling_rate must be > 0, got {sampling_rate}")
        if channels < 1:
            raise ValueError(f"sine: channels must be >= 1, got {channels}")
        if duration_s < 0:
            raise ValueError(f"sine: duration_s must be >= 0, got {duration_s}")
        if round(sampling_rate * chunk_ms / 1000.0) < 1:
            raise ValueError(
                f"sine: chunk_ms={chunk_ms} holds no sample at {sampling_rate} Hz; make it longer"
            )
        if dtype not in ("float32", "float64", "int16", "int32"):
            raise ValueError(f"sine: dtype must be float32, float64, int16 or int32, got {dtype!r}")
        self.frequency = frequency
        self.sampling_rate = sampling_rate
        self.channels = channels
        self.chunk_ms = chunk_ms
        self.duration_s = duration_s
        self.dtype = dtype
        self.realtime = realtime

    def _chunk_samples(self) -> int:
        return max(1, round(self.sampling_rate * self.chunk_ms / 1000.0))

    def _total_samples(self) -> int:
        return round(self.duration_s * self.sampling_rate)

    def total(self) -> int:
        return math.ceil(self._total_samples() / self._chunk_samples())

    def generate(self) -> Iterator[AudioPayload]:
        rate, total = self.sampling_rate, self._total_samples()
        dtype = np.dtype(self.dtype)
        fmt = audio_format(dtype)
        scale = AMPLITUDE * (1.0 if dtype.kind == "f" else float(np.iinfo(dtype).max))
        schedule = Schedule(self)
        first = 0
        while first < total:
            size = min(self._chunk_samples(), total - first)
            if schedule.wait(size / rate if self.realtime else 0.0):
                return
            index = np.arange(first, first + size, dtype=np.float64)
            # Phase from the absolute sample index keeps chunks continuous and exact.
            cycles = np.mod(index * (self.frequency / rate), 1.0)
            wave = np.sin(2.0 * np.pi * cycles) * scale
            samples = np.rint(wave).astype(dtype) if dtype.kind == "i" else wave.astype(dtype)
            if self.channels > 1:
                samples = np.repeat(samples[:, None], self.channels, axis=1)
            yield AudioPayload(
                samples,
                sampling_rate=rate,
                channels=self.channels,
                audio_format=fmt,
                start=first / rate,
                end=(first + size) / rate,
            )
            first += size

"""``energy_vad``: speech segments from the energy of audio chunks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import AudioPayload, ControlPayload, ObjectPayload

from .._audio import to_unit_float

__all__ = ["EnergyVad", "rms_dbfs"]

#: Level reported for digital silence, instead of -inf (which JSON cannot hold).
SILENCE_DB = -200.0


class EnergyVad(Node):
    """Emits a segment {"start", "end", "duration", "peak_db"} for each stretch of speech.

    A chunk is speech when its RMS level (dBFS over all channels; float
    samples in [-1, 1], integers normalised to their full scale) is above
    ``threshold_db``.  A segment runs from the start of its first speech chunk
    to the end of its last one and is emitted once a non-speech chunk follows,
    if it lasted at least ``min_speech_ms``; ``peak_db`` is its loudest chunk.
    At end of stream (or on a "flush" control message) a segment still open is
    emitted under the same rule; a "reset" control message drops it.  Times are
    the chunks' ``start``/``end``, or seconds of audio seen when those are unset.

    Args:
        threshold_db: level in dBFS above which a chunk counts as speech.
        min_speech_ms: shortest segment to report, in milliseconds.
    """

    mark = "energy_vad"
    light = True  # a few microseconds of Python or numpy per call

    def __init__(self, threshold_db: float = -40.0, min_speech_ms: float = 100.0) -> None:
        if min_speech_ms < 0:
            raise ValueError(f"energy_vad: min_speech_ms must be >= 0, got {min_speech_ms}")
        self.threshold_db = threshold_db
        self.min_speech_ms = min_speech_ms
        self._clock = 0.0
        self._reset()

    def _reset(self) -> None:
        self._start: float | None = None
        self._end = 0.0
        self._peak = SILENCE_DB
        self._last: Message[Any] | None = None

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if isinstance(payload, ControlPayload):
            if payload.signal == "flush":
                self.flush()
            elif payload.signal == "reset":
                self._reset()
            self.transmit(message)
            return
        if not isinstance(payload, AudioPayload):
            raise TypeError(f"energy_vad: expected an audio message, got {payload.kind}")
        if payload.end > payload.start:
            start, end = payload.start, payload.end
        else:
            start, end = self._clock, self._clock + payload.duration
        self._clock = end
        level = rms_dbfs(payload.audio)
        if level > self.threshold_db:
            if self._start is None:
                self._start = start
            self._end = end
            self._peak = max(self._peak, level)
            self._last = message
        elif self._start is not None:
            self._close()

    def flush(self) -> None:
        if self._start is not None:
            self._close()

    def _close(self) -> None:
        assert self._start is not None and self._last is not None
        start, end, peak, last = self._start, self._end, self._peak, self._last
        self._reset()
        if (end - start) * 1000.0 + 1e-9 < self.min_speech_ms:
            return
        segment = {
            "start": round(start, 6),
            "end": round(end, 6),
            "duration": round(end - start, 6),
            "peak_db": round(peak, 2),
        }
        self.transmit(last.evolve(payload=ObjectPayload(segment)))


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level of ``audio`` in dB relative to full scale (``SILENCE_DB`` for silence)."""
    if audio.size == 0:
        return SILENCE_DB
    samples = to_unit_float(audio)
    rms = math.sqrt(float(np.mean(np.square(samples))))
    if rms <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 20.0 * math.log10(rms))

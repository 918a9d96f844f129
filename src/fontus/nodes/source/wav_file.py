"""``wav_file``: audio chunks read from a PCM WAV file."""

from __future__ import annotations

import math
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fontus.core.node import Source
from fontus.core.payloads import AudioPayload

from .._audio import audio_format
from .._pacing import Schedule

__all__ = ["WavFile", "decode_pcm"]


class WavFile(Source):
    """Reads a PCM WAV file (stdlib ``wave``) and emits it in audio chunks.

    Channels are kept (shape ``(samples, channels)`` when there are several).
    8- and 16-bit files give int16 samples (8-bit is re-centred and scaled up),
    24- and 32-bit files give int32 (24-bit is scaled up to the full range).
    ``start`` and ``end`` are seconds since the file's first sample.  A
    missing or unreadable file fails the pipeline when it is built.

    Args:
        path: the WAV file; a relative path resolves against the working folder.
        chunk_ms: length of one chunk in milliseconds (the last one may be shorter).
        realtime: pace chunks at the speed of real audio instead of as fast as possible.
    """

    mark = "wav_file"

    def __init__(self, path: str | Path, chunk_ms: float = 20.0, realtime: bool = False) -> None:
        self.path = Path(path)
        self.chunk_ms = chunk_ms
        self.realtime = realtime
        if not self.path.is_file():
            raise FileNotFoundError(
                f"wav_file: no such file '{self.path}' (resolved to {self.path.absolute()}); "
                "check the path"
            )
        try:
            with wave.open(str(self.path), "rb") as reader:
                self._channels = reader.getnchannels()
                self._width = reader.getsampwidth()
                self._rate = reader.getframerate()
                self._frames = reader.getnframes()
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"wav_file: '{self.path}' is not a PCM WAV file: {exc}") from None
        if self._width not in (1, 2, 3, 4):
            raise ValueError(
                f"wav_file: '{self.path}' has {8 * self._width}-bit samples; "
                "only 8, 16, 24 and 32-bit PCM are supported"
            )
        if self._chunk_frames() < 1:
            raise ValueError(
                f"wav_file: chunk_ms={chunk_ms} holds no sample at {self._rate} Hz; make it longer"
            )

    def _chunk_frames(self) -> int:
        return round(self._rate * self.chunk_ms / 1000.0)

    def total(self) -> int:
        return math.ceil(self._frames / max(1, self._chunk_frames()))

    def generate(self) -> Iterator[AudioPayload]:
        schedule = Schedule(self)
        first = 0
        with wave.open(str(self.path), "rb") as reader:
            while True:
                data = reader.readframes(max(1, self._chunk_frames()))
                if not data:
                    return
                samples = decode_pcm(data, self._width, self._channels)
                size = samples.shape[0]
                if schedule.wait(size / self._rate if self.realtime else 0.0):
                    return
                yield AudioPayload(
                    samples,
                    sampling_rate=self._rate,
                    channels=self._channels,
                    audio_format=audio_format(samples.dtype),
                    start=first / self._rate,
                    end=(first + size) / self._rate,
                )
                first += size


def decode_pcm(data: bytes, width: int, channels: int) -> np.ndarray:
    """Little-endian PCM bytes of ``width`` bytes per sample as int16 or int32 samples."""
    if width == 1:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
    elif width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        padded[:, 1:] = raw  # the low byte stays 0: 24-bit values scaled to 32-bit range
        samples = padded.view("<i4").reshape(-1).astype(np.int32)
    elif width == 4:
        samples = np.frombuffer(data, dtype="<i4").astype(np.int32)
    else:
        raise ValueError(f"unsupported sample width: {width} bytes")
    return samples.reshape(-1, channels) if channels > 1 else samples

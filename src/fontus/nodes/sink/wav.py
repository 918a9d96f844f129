"""``wav``: a sink that writes received audio to a WAV file."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from fontus.core.message import Message
from fontus.core.node import Sink
from fontus.core.payloads import AudioPayload, ControlPayload

__all__ = ["WavSink", "encode_pcm"]


class WavSink(Sink):
    """Appends every audio chunk it receives to a PCM WAV file (stdlib ``wave``).

    int16, int32 and uint8 samples are written as 16-, 32- and 8-bit PCM; float
    samples are clipped to [-1, 1] and written as 16-bit PCM.  The first chunk
    fixes the sampling rate, channels and sample type; a chunk that differs is
    an error.  Non-audio messages are an error; control messages are ignored.
    Parent folders are created; the file is complete once the pipeline ends.

    Args:
        path: the output file (overwritten); a relative path resolves against the working folder.
    """

    mark = "wav"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: wave.Wave_write | None = None
        self._format: tuple[int, int, np.dtype] | None = None

    def warmup(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if isinstance(payload, ControlPayload):
            return
        if not isinstance(payload, AudioPayload):
            raise TypeError(f"wav: expected an audio message, got {payload.kind}")
        pcm = encode_pcm(payload.audio)
        fmt = (payload.sampling_rate, payload.channels, pcm.dtype)
        if self._writer is None:
            writer = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in destroy()
            writer.setnchannels(payload.channels)
            writer.setsampwidth(pcm.dtype.itemsize)
            writer.setframerate(payload.sampling_rate)
            self._writer, self._format = writer, fmt
        elif fmt != self._format:
            raise ValueError(
                f"wav: '{self.path}' was started as {_describe(self._format)}; "
                f"cannot append {_describe(fmt)}"
            )
        self._writer.writeframes(pcm.tobytes())

    def destroy(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif not self.path.exists():
            self.logger.warning("wav: no audio received; '%s' was not written", self.path)


def _describe(fmt: tuple[int, int, np.dtype] | None) -> str:
    if fmt is None:
        return "nothing"
    rate, channels, dtype = fmt
    return f"{rate} Hz, {channels} channel(s), {8 * dtype.itemsize}-bit"


def encode_pcm(audio: np.ndarray) -> np.ndarray:
    """Samples as a little-endian PCM array: floats clipped and scaled to int16."""
    if audio.dtype.kind == "f":
        scaled = np.rint(np.clip(audio, -1.0, 1.0) * 32767.0)
        return scaled.astype("<i2")
    if audio.dtype.name in ("int16", "int32", "uint8"):
        return audio.astype(audio.dtype.newbyteorder("<"), copy=False)
    raise ValueError(
        f"wav: cannot write samples of type {audio.dtype}; use int16, int32, uint8 or float"
    )

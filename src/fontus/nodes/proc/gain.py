"""``gain``: scales audio samples."""

from __future__ import annotations

from typing import Any

import numpy as np

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import AudioPayload

__all__ = ["Gain", "apply_gain"]


class Gain(Node):
    """Multiplies audio samples by ``factor``, keeping their type; other messages pass unchanged.

    Integer samples are rounded and clipped to their type's range; float
    samples are not clipped.

    Args:
        factor: the multiplier (1.0 leaves audio unchanged, 0.5 is about -6 dB).
    """

    mark = "gain"
    light = True  # a few microseconds of Python or numpy per call

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if not isinstance(payload, AudioPayload):
            self.transmit(message)
            return
        scaled = apply_gain(payload.audio, self.factor)
        self.transmit(message.evolve(payload=payload.replace(audio=scaled)))


def apply_gain(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio * factor`` in ``audio``'s dtype (integers rounded and clipped)."""
    if audio.dtype.kind == "f":
        return np.multiply(audio, factor, dtype=audio.dtype)
    info = np.iinfo(audio.dtype)
    scaled = np.rint(audio.astype(np.float64) * factor)
    np.clip(scaled, info.min, info.max, out=scaled)
    return scaled.astype(audio.dtype)

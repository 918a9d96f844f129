"""Sample formats shared by the audio nodes."""

from __future__ import annotations

import numpy as np

__all__ = ["audio_format", "full_scale", "to_unit_float"]

_FORMATS = {
    "float32": "pcm_f32le",
    "float64": "pcm_f64le",
    "int16": "pcm_s16le",
    "int32": "pcm_s32le",
    "uint8": "pcm_u8",
}


def audio_format(dtype: np.dtype | str) -> str:
    """The ``audio_format`` name of samples of ``dtype`` (``"pcm_s16le"`` for int16)."""
    return _FORMATS.get(np.dtype(dtype).name, "")


def full_scale(dtype: np.dtype) -> float:
    """The amplitude that maps to 1.0: 32768 for int16, 1.0 for floats."""
    if dtype.kind == "f":
        return 1.0
    if dtype.kind == "u":
        return float(2 ** (8 * dtype.itemsize - 1))
    return float(-np.iinfo(dtype).min)


def to_unit_float(audio: np.ndarray) -> np.ndarray:
    """Samples as float64 in [-1, 1]: ints are divided by their full scale, unsigned centred."""
    if audio.dtype.kind == "f":
        return audio.astype(np.float64, copy=False)
    scale = full_scale(audio.dtype)
    samples = audio.astype(np.float64)
    if audio.dtype.kind == "u":
        samples -= scale
    return samples / scale

"""``grayscale``: colour images to 8-bit luma."""

from __future__ import annotations

from typing import Any

import numpy as np

from fontus.core.message import Message
from fontus.core.node import Node
from fontus.core.payloads import ControlPayload, ImagePayload

__all__ = ["Grayscale", "luma"]

#: ITU-R BT.601 luma weights of R, G and B, in thousandths (they sum to 1000).
_WEIGHTS = {"rgb24": (299, 587, 114), "bgr24": (114, 587, 299)}


class Grayscale(Node):
    """Turns rgb24 (or bgr24) images into gray8 with ITU-R BT.601 luma.

    Y = 0.299 R + 0.587 G + 0.114 B, rounded to uint8; the output has depth 1
    and the input's timestamp.  gray8 images pass unchanged; any other pixel
    format is an error.
    """

    mark = "grayscale"

    def update(self, message: Message[Any]) -> None:
        payload = message.payload
        if isinstance(payload, ControlPayload):
            self.transmit(message)
            return
        if not isinstance(payload, ImagePayload):
            raise TypeError(f"grayscale: expected an image message, got {payload.kind}")
        if payload.pixel_format == "gray8":
            self.transmit(message)
            return
        if payload.pixel_format not in _WEIGHTS or payload.image.dtype != np.uint8:
            raise ValueError(
                f"grayscale: cannot convert pixel_format {payload.pixel_format!r} "
                f"({payload.image.dtype}); expected uint8 rgb24, bgr24 or gray8"
            )
        gray = luma(payload.image, _WEIGHTS[payload.pixel_format])
        out = ImagePayload(
            gray,
            width=payload.width,
            height=payload.height,
            depth=1,
            pixel_format="gray8",
            timestamp=payload.timestamp,
        )
        self.transmit(message.evolve(payload=out))


def luma(image: np.ndarray, weights: tuple[int, int, int] = (299, 587, 114)) -> np.ndarray:
    """Weighted sum of the three channels of a uint8 ``(h, w, 3)`` image, rounded, as uint8."""
    # Fixed-point in uint32 (max 255 * 1000): exact round-half-up of the BT.601 sum,
    # where float arithmetic misrounds values that end in .5; per plane to stay fast.
    total = image[..., 0].astype(np.uint32) * weights[0]
    total += image[..., 1].astype(np.uint32) * weights[1]
    total += image[..., 2].astype(np.uint32) * weights[2]
    total += 500
    total //= 1000
    return total.astype(np.uint8)

"""``test_pattern``: deterministic moving colour bars for image pipelines."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fontus.core.node import Source
from fontus.core.payloads import ImagePayload

from .._pacing import Schedule

__all__ = ["TestPattern"]

#: Eight 75% colour bars (white, yellow, cyan, green, magenta, red, blue, black).
BARS = np.array(
    [
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
        [16, 16, 16],
    ],
    dtype=np.uint8,
)


class TestPattern(Source):
    """Moving colour bars over a scrolling gray ramp, as rgb24 frames.

    Frame ``i`` is a pure function of ``i`` and the size: the bars (top three
    quarters) move right by width/64 pixels per frame and the ramp (bottom
    quarter) brightens by 4 levels per frame, so frames differ from each other
    and equal frames mean equal indices.  ``timestamp`` is ``i / fps``.

    Args:
        width: frame width in pixels (>= 1).
        height: frame height in pixels (>= 1).
        frames: how many frames to emit.
        fps: frames per second: sets timestamps, and the pace when realtime.
        realtime: pace frames at fps instead of as fast as possible.
    """

    # Not a pytest test class, despite the name.
    __test__ = False
    mark = "test_pattern"

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        frames: int = 30,
        fps: float = 30.0,
        realtime: bool = False,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"test_pattern: width and height must be >= 1, got {width}x{height}")
        if frames < 0:
            raise ValueError(f"test_pattern: frames must be >= 0, got {frames}")
        if fps <= 0:
            raise ValueError(f"test_pattern: fps must be > 0, got {fps}")
        self.width = width
        self.height = height
        self.frames = frames
        self.fps = fps
        self.realtime = realtime

    def total(self) -> int:
        return self.frames

    def generate(self) -> Iterator[ImagePayload]:
        schedule = Schedule(self)
        for i in range(self.frames):
            if schedule.wait(1.0 / self.fps if self.realtime else 0.0):
                return
            yield ImagePayload(
                render(i, self.width, self.height),
                width=self.width,
                height=self.height,
                depth=3,
                pixel_format="rgb24",
                timestamp=i / self.fps,
            )


def render(index: int, width: int, height: int) -> np.ndarray:
    """Frame ``index`` of the pattern as a ``(height, width, 3)`` uint8 array."""
    columns = np.arange(width)
    bars = BARS[(columns * len(BARS)) // width]
    shift = (index * max(1, width // 64)) % width
    bars = np.roll(bars, shift, axis=0)
    ramp = ((columns * 256) // width + 4 * index) % 256
    image = np.empty((height, width, 3), dtype=np.uint8)
    split = (height * 3) // 4
    image[:split] = bars[None, :, :]
    image[split:] = ramp.astype(np.uint8)[None, :, None]
    return image

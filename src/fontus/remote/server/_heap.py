"""Keep large frame buffers in the heap of ``fontus serve`` (glibc's malloc only).

A server handling video receives each frame as one bytes object of several MB
and builds each output frame as another. glibc's malloc hands blocks that large
out of fresh ``mmap`` regions, or trims them off the top of the heap when they
are freed, so every frame costs thousands of page faults to map its memory
again: measured on 1080p round trips, about 2,600-3,100 faults and 5-7 ms per
frame on the server, more than the rest of the hop together (see
docs/performance.md, "Large frames and the heap"). Raising the mmap threshold
to its maximum (32 MiB on 64-bit, above a 4K rgb24 frame) and the trim threshold
to 256 MiB lets freed frames be reused in place: a handful of faults per frame.

The price is that the server keeps up to 256 MiB of freed memory for reuse
instead of returning it at once. ``fontus serve --no-heap-tuning`` leaves
malloc alone, and so does any ``MALLOC_*_`` tunable in the environment (the
operator's own choice). Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_heap"]

#: glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024
# mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's own environment tunables: when the operator set one, we leave malloc alone.
_GLIBC_ENV = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)


def tune_heap() -> str:
    """Apply the thresholds above where they can apply; returns what was done, for the log."""
    if not sys.platform.startswith("linux"):
        return "heap tuning skipped: not Linux"
    given = [name for name in _GLIBC_ENV if name in os.environ]
    if given:
        return f"heap tuning skipped: {', '.join(given)} set in the environment"
    if platform.libc_ver()[0] != "glibc":
        return "heap tuning skipped: the C library is not glibc"
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if not (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    ):
        return "heap tuning skipped: mallopt refused the thresholds"
    return (
        f"heap tuned for large frames: mmap threshold {MMAP_THRESHOLD >> 20} MiB, "
        f"trim threshold {TRIM_THRESHOLD >> 20} MiB (--no-heap-tuning turns it off)"
    )

"""Limits every decoder enforces, so hostile or broken input never costs unbounded memory."""

from __future__ import annotations

from dataclasses import dataclass

from ..core._values import INT64_MAX, INT64_MIN
from ..core.errors import ConfigError

__all__ = ["DEFAULT_LIMITS", "INT64_MAX", "INT64_MIN", "WireLimits"]


@dataclass(frozen=True)
class WireLimits:
    """Bounds applied while decoding.

    Defaults follow the 100 MiB message size both Fontus and Juturna allow:
    nothing decoded may be larger than one message could be.
    """

    #: Largest number of elements in one array (2**27 = a 4K RGBA video frame x 8).
    max_array_elements: int = 1 << 27
    #: Largest decoded (decompressed) size of one array or byte string.
    max_array_bytes: int = 100 * 1024 * 1024
    #: Deepest nesting of containers (batches, maps, lists) around any value, counted
    #: together.  Protobuf parsers refuse messages nested over 100 levels and one Fontus
    #: level costs up to three of them inside a session frame, so above about 28 the
    #: parser, not this limit, would refuse deep input, with a vaguer message.
    max_depth: int = 24
    #: Most blobs one packet or frame may carry.
    max_blobs: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_array_elements", "max_array_bytes", "max_depth", "max_blobs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"WireLimits.{name} must be an int >= 1, got {value!r}")


DEFAULT_LIMITS = WireLimits()

"""Blobs: large binary data carried at the end of a top-level packet or frame.

Encoding appends each blob as a repeated ``bytes`` field (number 15) after the
serialized head, so the array data is copied once, by the final join.
Decoding scans the top-level fields and hands out zero-copy memoryviews of the
received bytes; only the small head goes through the protobuf parser.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import WireError
from ._limits import WireLimits

__all__ = ["BLOB_FIELD", "BlobWriter", "join_with_blobs", "split_blobs"]

BLOB_FIELD = 15
_BLOB_TAG = bytes([(BLOB_FIELD << 3) | 2])


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


class BlobWriter:
    """Collects buffers while a head message is being filled; ``add`` returns the index."""

    __slots__ = ("buffers", "size", "sizes")

    def __init__(self) -> None:
        self.buffers: list[Any] = []
        self.sizes: list[int] = []
        self.size = 0

    def add(self, buffer: Any, nbytes: int | None = None) -> int:
        """Keep ``buffer`` (no copy); pass ``nbytes`` when known, to skip measuring it."""
        if nbytes is None:
            nbytes = memoryview(buffer).nbytes
        self.buffers.append(buffer)
        self.sizes.append(nbytes)
        self.size += nbytes
        return len(self.buffers) - 1


def join_with_blobs(head: bytes, blobs: BlobWriter) -> bytes:
    if not blobs.buffers:
        return head
    parts: list[Any] = [head]
    for buffer, nbytes in zip(blobs.buffers, blobs.sizes, strict=True):
        parts.append(_BLOB_TAG)
        parts.append(_varint(nbytes))
        parts.append(buffer)
    return b"".join(parts)


def _read_varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated data: a varint runs past the end of the frame")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("malformed data: a varint is longer than 10 bytes")


def split_blobs(
    data: bytes | memoryview, limits: WireLimits
) -> tuple[bytes | memoryview, list[memoryview]]:
    """Separate the top-level blob fields from the head; returns ``(head, blobs)``."""
    end = len(data)
    view = memoryview(data)
    blobs: list[memoryview] = []
    ranges: list[tuple[int, int]] = []
    pos = 0
    while pos < end:
        start = pos
        tag = data[pos]
        if tag < 0x80:  # one-byte tag: fields 1-15, the only ones Fontus's frames use
            pos += 1
        else:
            tag, pos = _read_varint(data, pos, end)
        field, wire_type = tag >> 3, tag & 7
        if field == 0:
            raise WireError("malformed data: field number 0 at the top level")
        if wire_type == 2:
            # Lengths under 16 KiB take one or two bytes: read those inline.
            if pos + 1 < end and data[pos] < 0x80:
                length = data[pos]
                pos += 1
            elif pos + 2 < end and data[pos + 1] < 0x80:
                length = (data[pos] & 0x7F) | (data[pos + 1] << 7)
                pos += 2
            else:
                length, pos = _read_varint(data, pos, end)
            if field == BLOB_FIELD:
                if pos + length > end:
                    raise WireError(
                        f"truncated data: blob {len(blobs)} declares {length} bytes but only {end - pos} remain"
                    )
                if len(blobs) >= limits.max_blobs:
                    raise WireError(f"too many blobs: more than {limits.max_blobs} in one frame")
                blobs.append(view[pos : pos + length])
                pos += length
                continue
            pos += length
        elif wire_type == 0:
            _, pos = _read_varint(data, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"malformed data: wire type {wire_type} for top-level field {field}")
        if pos > end:
            raise WireError(f"truncated data: top-level field {field} runs past the end")
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], pos)
        else:
            ranges.append((start, pos))
    if not blobs:
        return data, blobs
    if len(ranges) == 1:
        head = data[ranges[0][0] : ranges[0][1]]
    else:
        head = b"".join(view[a:b] for a, b in ranges)
    return head, blobs

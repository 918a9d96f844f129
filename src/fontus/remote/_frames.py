"""Session frames: requests and results encoded one by one, then coalesced.

A request is encoded on the thread that produced it (the Warp's node thread),
a result on the server's worker thread; the event loop only joins the
already-encoded heads into one frame.  Each item's blob numbers are relative
to its ``blob_base``, which the join appends to the item's head (a protobuf
field may appear anywhere; the last value wins), so no re-encoding is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.message import Message
from ._arrays import NO_COMPRESSION, CompressionConfig
from ._blobs import _BLOB_TAG, _varint
from ._limits import DEFAULT_LIMITS, WireLimits
from ._wire.v1 import session_pb2 as spb
from .codec import WireDecoder, WireEncoder

__all__ = [
    "EncodedItem",
    "decode_frame",
    "encode_done",
    "encode_failed",
    "encode_output",
    "encode_request",
    "join_requests",
    "join_results",
]

_REQUESTS_TAG = bytes([(2 << 3) | 2])  # ClientFrame.requests
_RESULTS_TAG = bytes([(2 << 3) | 2])  # ServerFrame.results
_ITEM_TAG = bytes([(1 << 3) | 2])  # Requests.items / Results.items
_REQUEST_BASE_TAG = bytes([6 << 3])  # Request.blob_base (varint)
_RESULT_BASE_TAG = bytes([5 << 3])  # Result.blob_base (varint)


@dataclass(slots=True)
class EncodedItem:
    """One request or result: its serialized head and the blobs its arrays refer to."""

    seq: int
    head: bytes
    blobs: list[Any]
    size: int
    #: True for Done and Failed: the request is finished.
    final: bool = False


def _item(seq: int, head: Any, encoder: WireEncoder | None) -> EncodedItem:
    data = head.SerializeToString()
    if encoder is None:
        return EncodedItem(seq, data, [], len(data))
    return EncodedItem(seq, data, encoder.blobs.buffers, len(data) + encoder.blobs.size)


def encode_request(
    seq: int,
    message: Message[Any],
    *,
    timeout_ms: int = 0,
    target: str = "",
    origin: str = "",
    compression: CompressionConfig = NO_COMPRESSION,
    pack_trees: bool = False,
) -> EncodedItem:
    encoder = WireEncoder(compression, pack_trees)
    request = spb.Request(seq=seq, timeout_ms=timeout_ms, target=target, origin=origin)
    encoder.message(message, request.message)
    return _item(seq, request, encoder)


def encode_output(
    seq: int,
    message: Message[Any],
    exit_name: str = "",
    compression: CompressionConfig = NO_COMPRESSION,
    pack_trees: bool = False,
) -> EncodedItem:
    encoder = WireEncoder(compression, pack_trees)
    result = spb.Result(seq=seq)
    result.output.exit = exit_name
    encoder.message(message, result.output.message)
    return _item(seq, result, encoder)


def encode_done(seq: int, queue_s: float, compute_s: float, outputs: int) -> EncodedItem:
    result = spb.Result(seq=seq)
    done = result.done
    done.queue_s = queue_s
    done.compute_s = compute_s
    done.outputs = outputs
    item = _item(seq, result, None)
    item.final = True
    return item


def encode_failed(seq: int, code: Any, detail: str) -> EncodedItem:
    result = spb.Result(seq=seq)
    result.failed.code = code
    result.failed.detail = detail
    item = _item(seq, result, None)
    item.final = True
    return item


def _join(items: list[EncodedItem], outer_tag: bytes, base_tag: bytes) -> bytes:
    parts: list[Any] = []
    blob_parts: list[Any] = []
    base = 0
    inner_size = 0
    for item in items:
        head = item.head
        if item.blobs:
            if base:
                head = head + base_tag + _varint(base)
            for buffer in item.blobs:
                n = memoryview(buffer).nbytes
                blob_parts.append(_BLOB_TAG)
                blob_parts.append(_varint(n))
                blob_parts.append(buffer)
            base += len(item.blobs)
        prefix = _ITEM_TAG + _varint(len(head))
        parts.append(prefix)
        parts.append(head)
        inner_size += len(prefix) + len(head)
    return b"".join([outer_tag, _varint(inner_size), *parts, *blob_parts])


def join_requests(items: list[EncodedItem]) -> bytes:
    """One ``ClientFrame`` carrying every request in ``items``."""
    return _join(items, _REQUESTS_TAG, _REQUEST_BASE_TAG)


def join_results(items: list[EncodedItem]) -> bytes:
    """One ``ServerFrame`` carrying every result in ``items``."""
    return _join(items, _RESULTS_TAG, _RESULT_BASE_TAG)


def decode_frame(data: bytes, head: Any, limits: WireLimits = DEFAULT_LIMITS) -> WireDecoder:
    """Parse a ClientFrame or ServerFrame into ``head``; returns the decoder holding its blobs."""
    return WireDecoder.parse(data, head, limits)


def item_decoder(decoder: WireDecoder, base: int) -> WireDecoder:
    """A decoder whose blob numbers start at ``base`` (an item's ``blob_base``)."""
    if base == 0:
        return decoder
    return WireDecoder(decoder.blobs[base:], decoder.limits)


def control_frame(frame: Any, encoder: WireEncoder | None = None) -> bytes:
    """Serialize a frame built with protobuf objects (Open, Opened, Configure, Close, Draining)."""
    return (encoder or WireEncoder()).finish(frame)

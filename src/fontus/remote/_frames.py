"""Session frames: requests and results encoded one by one, then coalesced.

A request is encoded on the thread that produced it (the Warp's node thread),
a result on the server's worker thread; the event loop only joins the
already-encoded heads into one frame.  Each item's blob numbers are relative
to its ``blob_base``, which the join appends to the item's head (a protobuf
field may appear anywhere; the last value wins), so no re-encoding is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ..core.errors import WireError
from ..core.message import Message
from ._arrays import NO_COMPRESSION, CompressionConfig
from ._blobs import _BLOB_TAG, _read_varint, _varint, split_blobs
from ._limits import DEFAULT_LIMITS, WireLimits
from ._wire.v1 import session_pb2 as spb
from .codec import WireDecoder, WireEncoder

__all__ = [
    "PART_BYTES",
    "TAIL_MIN_BYTES",
    "EncodedItem",
    "PartAssembler",
    "PartsTooLarge",
    "add_request_blob",
    "add_sized_tail",
    "add_tail",
    "attach_request_tail",
    "attach_tail",
    "decode_frame",
    "encode_done",
    "encode_failed",
    "encode_output",
    "encode_request",
    "join_requests",
    "join_results",
    "requests_in_parts",
    "requests_with_tail",
    "results_in_parts",
    "results_with_tail",
    "same_memory",
]

_REQUESTS_TAG = bytes([(2 << 3) | 2])  # ClientFrame.requests
_RESULTS_TAG = bytes([(2 << 3) | 2])  # ServerFrame.results
_ITEM_TAG = bytes([(1 << 3) | 2])  # Requests.items / Results.items
_REQUEST_BASE_TAG = bytes([6 << 3])  # Request.blob_base (varint)
_RESULT_BASE_TAG = bytes([5 << 3])  # Result.blob_base (varint)
_TAIL_SKIP_TAG = bytes([12 << 3])  # ServerFrame.tail_skip (varint)
_TAIL_REQUEST_TAG = bytes([11 << 3])  # ServerFrame.tail_request (varint)
_CLIENT_TAIL_SIZE_TAG = bytes([12 << 3])  # ClientFrame.tail_size (varint)
_SERVER_TAIL_SIZE_TAG = bytes([10 << 3])  # ServerFrame.tail_size (varint)


@dataclass(slots=True)
class EncodedItem:
    """One request or result: its serialized head and the blobs its arrays refer to."""

    seq: int
    head: bytes
    blobs: list[Any]
    size: int
    #: True for Done and Failed: the request is finished.
    final: bool = False
    #: A ``bytes`` object whose end is this item's last blob, which then travels as
    #: the tail of its frame instead of being copied into it: a request frame or tail
    #: as received (a result), or whatever the array was made over (a request).
    tail: bytes | None = None
    #: Bytes of ``tail`` before that blob's field: the receiver skips them
    #: (``ServerFrame.tail_skip``; zero when the tail goes by size).
    tail_skip: int = 0
    #: The blob's size: the receiver reads the tail's last ``tail_size`` bytes
    #: (``ClientFrame.tail_size`` / ``ServerFrame.tail_size``).
    tail_size: int = 0
    #: Nonzero (with ``tail`` None): the seq of the request this item answers, whose
    #: own last blob this item's last blob is; it goes back as that reference
    #: (``ServerFrame.tail_request``), numbered as a tail's blob, and is not sent.
    tail_request: int = 0

    @property
    def has_tail(self) -> bool:
        """Whether this item's last blob travels as its frame's tail, sent or named."""
        return self.tail is not None or self.tail_request != 0


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
    return b"".join(_pieces(items, outer_tag, base_tag)[0])


def _pieces(
    items: list[EncodedItem],
    outer_tag: bytes,
    base_tag: bytes,
    tailed: EncodedItem | None = None,
    size_tag: bytes = _SERVER_TAIL_SIZE_TAG,
) -> tuple[list[Any], int]:
    """The buffers whose concatenation is the frame carrying ``items``, and its size.

    With ``tailed`` (one of ``items``), that item's last blob is left out: it travels
    in the frame's tail, whose blobs are numbered after the frame's own, so the
    item's other blobs come last here and its ``blob_base`` is set to match; the
    frame's ``tail_skip`` goes between the results and the blobs (its head stays one
    range for the receiver's blob split).  A tail sent by size (``tail_size``, field
    ``size_tag``) or by reference (``tail_request``) puts that field there instead.
    """
    parts: list[Any] = []
    blob_parts: list[Any] = []
    last: list[Any] = []  # the tailed item's blobs but the last one
    base = 0
    tail_base = sum(len(i.blobs) for i in items if i is not tailed) if tailed else 0
    inner_size = blob_size = 0
    for item in items:
        head = item.head
        if item.blobs:
            blobs = item.blobs
            into = blob_parts
            item_base = base
            if item is tailed:
                blobs = blobs[:-1]
                into = last
                item_base = tail_base
            else:
                base += len(blobs)
            if item_base:
                head = head + base_tag + _varint(item_base)
            for buffer in blobs:
                n = memoryview(buffer).nbytes
                length = _varint(n)
                into.append(_BLOB_TAG)
                into.append(length)
                into.append(buffer)
                blob_size += len(_BLOB_TAG) + len(length) + n
        prefix = _ITEM_TAG + _varint(len(head))
        parts.append(prefix)
        parts.append(head)
        inner_size += len(prefix) + len(head)
    outer = outer_tag + _varint(inner_size)
    if tailed is None:
        skip = b""
    elif tailed.tail_request:
        skip = _TAIL_REQUEST_TAG + _varint(tailed.tail_request)
    elif tailed.tail_size:
        skip = size_tag + _varint(tailed.tail_size)
    else:
        skip = _TAIL_SKIP_TAG + _varint(tailed.tail_skip)
    size = len(outer) + inner_size + len(skip) + blob_size
    return [outer, *parts, skip, *blob_parts, *last], size


#: A large output whose last array is the end of the request frame it came in (an
#: array a node passed on unchanged, or a view of its end) is sent back in a frame
#: whose tail is that request frame, as it was received: the server copies nothing,
#: where joining the array into a frame would copy all of it (decision 0015).  Only
#: for arrays of at least this size: below it the copy costs less than the second
#: gRPC message.
TAIL_MIN_BYTES = 512 * 1024
#: Most bytes of a request frame sent again in front of the array it ends with (the
#: other requests and arrays of a coalesced frame): a larger skip costs the network
#: more than the copy it saves.  An eighth of the array is allowed as well.
TAIL_MAX_SKIP = 64 * 1024


def _address(buffer: Any) -> int:
    address: int = np.frombuffer(buffer, np.uint8).__array_interface__["data"][0]
    return address


def same_memory(buffer: Any, other: Any) -> bool:
    """Whether two contiguous buffers are the very same memory (start and size)."""
    return bool(
        memoryview(buffer).nbytes == memoryview(other).nbytes
        and _address(buffer) == _address(other)
    )


def _tail_of(buffer: Any) -> tuple[bytes, int] | None:
    """The ``bytes`` object ``buffer`` is the end of, and where in it ``buffer`` starts.

    ``buffer`` is a blob as an encoder keeps it: a contiguous array, a memoryview or
    ``bytes``.  Whatever views it goes through, it must be the very memory at the end
    of that object; a copy, a slice short of the end or memory a numpy array owns
    (a frame assembled from parts, an array a node made) has no such object.
    """
    owner = buffer
    while type(owner) is np.ndarray:
        owner = owner.base
    if type(owner) is memoryview:
        owner = owner.obj
    if type(owner) is not bytes:
        return None
    start = _address(buffer) - _address(owner) if owner is not buffer else 0
    if start < 0 or start + memoryview(buffer).nbytes != len(owner):
        return None
    return owner, start


def _large_tail(item: EncodedItem) -> tuple[bytes, int, int] | None:
    """For an item whose last blob is TAIL_MIN_BYTES or more and the end of a ``bytes``
    object: that object, where in it the blob starts, and the blob's size."""
    if not item.blobs:
        return None
    buffer = item.blobs[-1]
    n = memoryview(buffer).nbytes
    if n < TAIL_MIN_BYTES:
        return None
    found = _tail_of(buffer)
    return None if found is None else (found[0], found[1], n)


def _skip_allowed(skip: int, n: int) -> bool:
    return skip <= max(TAIL_MAX_SKIP, n // 8)


def _attach_sized(item: EncodedItem, found: tuple[bytes, int, int]) -> bool:
    """Give ``item`` the tail ``_large_tail`` found, sent by size, unless too much of
    that object comes before the blob (it travels too, unread)."""
    owner, start, n = found
    if not _skip_allowed(start, n):
        return False
    item.tail, item.tail_size = owner, n
    return True


def attach_tail(item: EncodedItem, frames: Mapping[int, bytes], *, sized: bool = False) -> bool:
    """Send ``item``'s last blob as the tail of its frame when it ends a received frame.

    The blob must be the very memory at the end of a request frame or tail (``bytes``,
    as gRPC handed it over), one of ``frames`` (by id): the session's own, whose bytes
    are the client's, skip included.  An array a node made, a copy, a compressed
    array or a frame assembled from parts never qualifies.  ``sized`` (the client
    reads ``ServerFrame.tail_size``): nothing more is needed.  Otherwise the blob
    must be preceded there by its blob field's tag and length: then the frame from
    that tag on is a ``blobs`` field holding exactly the blob (``tail_skip``).  True
    when the item got its tail.
    """
    found = _large_tail(item)
    if found is None:
        return False
    frame, start, n = found
    if frames.get(id(frame)) is not frame:
        return False
    if sized:
        return _attach_sized(item, found)
    prefix = _BLOB_TAG + _varint(n)
    skip = start - len(prefix)
    if skip <= 0 or not _skip_allowed(skip, n) or frame[skip:start] != prefix:
        return False
    item.tail = frame
    item.tail_skip = skip
    return True


def attach_request_tail(item: EncodedItem) -> bool:
    """Send a request's last blob as the tail of its frame when it is the end of a ``bytes``.

    Such an array (read from a received frame, made with ``numpy.frombuffer`` over
    bytes read from a pipe or a file, a compressed array) then goes to gRPC as it
    is, where joining it into the frame would copy all of it.  The bytes before it
    in that object (at most ``TAIL_MAX_SKIP`` or an eighth of the array) travel
    too and are not read.  True when the item got its tail.
    """
    found = _large_tail(item)
    return found is not None and _attach_sized(item, found)


def requests_with_tail(items: list[EncodedItem], tailed: EncodedItem) -> tuple[bytes, bytes]:
    """The ``ClientFrame`` carrying ``items``, the last of which is ``tailed``: a message
    and its tail (``ClientFrame.tail_size``)."""
    pieces, _ = _pieces(items, _REQUESTS_TAG, _REQUEST_BASE_TAG, tailed, _CLIENT_TAIL_SIZE_TAG)
    return b"".join(pieces), cast(bytes, tailed.tail)


def results_with_tail(items: list[EncodedItem], tailed: EncodedItem) -> tuple[bytes, ...]:
    """The ``ServerFrame`` carrying ``items``: a message and its tail, ``tailed``'s request
    frame; only the message when the tail goes by reference (``tail_request``)."""
    pieces, _ = _pieces(items, _RESULTS_TAG, _RESULT_BASE_TAG, tailed)
    if tailed.tail_request:
        return (b"".join(pieces),)
    return b"".join(pieces), cast(bytes, tailed.tail)


def add_tail(decoder: WireDecoder, tail: bytes, skip: int) -> WireDecoder:
    """``decoder`` of a frame with ``tail_skip`` = ``skip``, given the tail that followed it."""
    if skip > len(tail):
        raise WireError(f"tail_skip {skip} is beyond the {len(tail)} bytes of the frame's tail")
    try:
        head, blobs = split_blobs(memoryview(tail)[skip:], decoder.limits)
    except WireError as exc:
        raise WireError(f"the tail of a frame, after its tail_skip of {skip}: {exc}") from None
    if len(head):
        raise WireError(
            f"a frame's tail holds {len(head)} bytes of fields other than blobs after its "
            f"tail_skip of {skip}"
        )
    if not blobs:
        raise WireError("a frame's tail holds no blob")
    return _with_blobs(decoder, blobs, "and its tail")


def add_sized_tail(decoder: WireDecoder, tail: bytes, size: int) -> WireDecoder:
    """``decoder`` of a frame with ``tail_size`` = ``size``, given the tail that followed it:
    the tail's last ``size`` bytes are the frame's last blob, read in place."""
    if size > len(tail):
        raise WireError(f"tail_size {size} is beyond the {len(tail)} bytes of the frame's tail")
    view = memoryview(tail)
    return _with_blobs(decoder, [view[len(view) - size :]], "and its tail")


def add_request_blob(decoder: WireDecoder, blob: Any, seq: int) -> WireDecoder:
    """``decoder`` of a frame with ``tail_request`` = ``seq``, given that request's last blob.

    ``blob`` is the buffer the client sent as its request's last array (None: the
    client no longer holds request ``seq``, whose outputs are then late and never
    decoded; an array read from the empty stand-in would say so).  Arrays read from
    it share it, read-only, as arrays read from a received frame share the frame.
    """
    view = memoryview(b"") if blob is None else memoryview(blob).cast("B").toreadonly()
    return _with_blobs(decoder, [view], f"with request {seq}'s")


def _with_blobs(decoder: WireDecoder, blobs: list[memoryview], what: str) -> WireDecoder:
    """``decoder`` with ``blobs`` numbered after its own, within the frame's blob limit."""
    total = len(decoder.blobs) + len(blobs)
    if total > decoder.limits.max_blobs:
        raise WireError(f"too many blobs: {total} in one frame {what}, over the limit")
    return WireDecoder(decoder.blobs + blobs, decoder.limits)


#: A frame at least this large travels in parts of this size (the last one smaller)
#: when its reader asked for parts: the sender copies part k+1 into gRPC while the
#: receiver's side already takes part k, two processes working at once (decision 0012).
PART_BYTES = 2 * 1024 * 1024
_PART_MORE = bytes([13 << 3, 1])  # ClientFrame / ServerFrame.part_more = true
_PART_TAG = bytes([(14 << 3) | 2])  # .part


def requests_in_parts(items: list[EncodedItem]) -> Iterator[bytes]:
    """The ``ClientFrame`` carrying ``items``: one message, or parts when it is large.

    Parts are joined one at a time, as the caller takes them: each is copied while
    the one before travels.
    """
    return _in_parts(*_pieces(items, _REQUESTS_TAG, _REQUEST_BASE_TAG))


def results_in_parts(items: list[EncodedItem]) -> Iterator[bytes]:
    """The ``ServerFrame`` carrying ``items``: one message, or parts when it is large."""
    return _in_parts(*_pieces(items, _RESULTS_TAG, _RESULT_BASE_TAG))


def _in_parts(pieces: list[Any], total: int) -> Iterator[bytes]:
    if total < PART_BYTES:
        yield b"".join(pieces)
        return
    chunk: list[Any] = []
    size = done = 0
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view.nbytes:
            take = min(view.nbytes, PART_BYTES - size)
            chunk.append(view[:take])
            view = view[take:]
            size += take
            if size == PART_BYTES:
                done += size
                yield _part(chunk, size, more=done < total)
                chunk, size = [], 0
    if size:
        yield _part(chunk, size, more=False)


def _part(chunk: list[Any], size: int, *, more: bool) -> bytes:
    return b"".join([_PART_MORE if more else b"", _PART_TAG, _varint(size), *chunk])


def _parts(count: int) -> str:
    return "1 part" if count == 1 else f"{count} parts"


class PartsTooLarge(WireError):
    """A frame sent in parts grew past the receiver's message limit."""


class PartAssembler:
    """Collects the parts of a frame sent in parts; whole frames pass through.

    Each part is copied into the frame's buffer as it arrives, while the next one
    is still on its way, so the last part's copy is all that remains once it is
    in (a join of every part after the last would copy the whole frame then, on
    the round trip's path).  The buffer is sized for the previous frame in parts
    of the stream (a video's frames are alike); a first frame, or one larger than
    the one before, is joined at the end instead.
    """

    __slots__ = ("buffer", "count", "expect", "limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        #: Largest frame accepted, in bytes (the message limit applies to the whole).
        self.limit = limit
        #: Parts not copied into ``buffer`` (a first frame, or one outgrowing the buffer).
        self.parts: list[memoryview] = []
        self.size = 0
        #: Parts of the frame received so far.
        self.count = 0
        #: The frame being assembled, when its size could be foreseen.
        self.buffer: np.ndarray[Any, Any] | None = None
        #: The size of the previous frame in parts: the next one's buffer.
        self.expect = 0

    def add(self, data: bytes) -> bytes | memoryview | None:
        """The frame ``data`` completes (``data`` itself when whole), or None while parts are due.

        A frame assembled in place comes back as a memoryview of a read-only array,
        which the decoder reads in place (see ``WireDecoder.parse``).
        """
        first = data[:1]
        if first != _PART_MORE[:1] and first != _PART_TAG:
            if self.count:
                raise WireError(
                    f"a whole frame arrived after {_parts(self.count)} of another "
                    "(a frame in parts must end with a part without part_more)"
                )
            return data
        more = first == _PART_MORE[:1]
        pos = 2 if more else 0
        if (more and data[1:2] != _PART_MORE[1:]) or data[pos : pos + 1] != _PART_TAG:
            raise WireError("malformed frame part: expected part_more then part, nothing else")
        length, pos = _read_varint(data, pos + 1, len(data))
        if pos + length != len(data):
            raise WireError(
                f"malformed frame part: declares {length} bytes, carries {len(data) - pos}"
            )
        start, end = self.size, self.size + length
        if end > self.limit:
            self._reset()
            raise PartsTooLarge(
                f"a frame in parts grew past {end} bytes, over the limit of {self.limit}"
            )
        chunk = memoryview(data)[pos:]
        if not start and more and self.expect > length:
            self.buffer = np.empty(self.expect, np.uint8)  # not zeroed: filled below
        buffer = self.buffer
        if buffer is not None and end <= buffer.size:
            buffer[start:end] = np.frombuffer(chunk, np.uint8)
        else:
            if buffer is not None:  # larger than foreseen: join what is here with the rest
                self.parts.append(buffer[:start].data)
                self.buffer = None
            self.parts.append(chunk)
        self.size = end
        self.count += 1
        if more:
            return None
        whole: bytes | memoryview
        if buffer is None or self.parts:
            whole = b"".join(self.parts)
        elif end * 2 >= buffer.size:
            buffer.flags.writeable = False  # the frame's arrays will share it
            whole = buffer[:end].data
        else:  # far smaller than foreseen: do not keep the rest of the buffer alive
            whole = buffer[:end].tobytes()
        self.expect = end
        self._reset()
        return whole

    def incomplete(self) -> str | None:
        """What is missing of a frame begun in parts and not finished (None: nothing)."""
        if self.count:
            return f"a frame in parts incomplete after {_parts(self.count)}"
        return None

    def _reset(self) -> None:
        self.parts, self.size, self.count, self.buffer = [], 0, 0, None


def join_requests(items: list[EncodedItem]) -> bytes:
    """One ``ClientFrame`` carrying every request in ``items``."""
    return _join(items, _REQUESTS_TAG, _REQUEST_BASE_TAG)


def join_results(items: list[EncodedItem]) -> bytes:
    """One ``ServerFrame`` carrying every result in ``items``."""
    return _join(items, _RESULTS_TAG, _RESULT_BASE_TAG)


def decode_frame(
    data: bytes | memoryview, head: Any, limits: WireLimits = DEFAULT_LIMITS
) -> WireDecoder:
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

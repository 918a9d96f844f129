"""Large frames in parts (``remote/_frames.py``, decision 0012).

A frame of at least PART_BYTES travels as several gRPC messages, each a
``part`` of its bytes (all but the last with ``part_more``); the receiver's
PartAssembler gives back the exact frame once the last part is in. These tests
split real request and result frames at every awkward size and feed the
assembler broken sequences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fontus.core import ImagePayload, Message, ObjectPayload, WireError
from fontus.remote._frames import (
    PART_BYTES,
    PartAssembler,
    PartsTooLarge,
    decode_frame,
    encode_output,
    encode_request,
    item_decoder,
    join_requests,
    join_results,
    requests_in_parts,
    results_in_parts,
)
from fontus.remote._wire.v1 import session_pb2 as spb

LIMIT = 64 * 1024 * 1024


def image(nbytes: int) -> Message[object]:
    """A one-row gray image of ``nbytes`` bytes (a blob of exactly that size)."""
    pixels = (np.arange(nbytes, dtype=np.uint32) % 251).astype(np.uint8).reshape(1, nbytes, 1)
    return Message(ImagePayload.from_array(pixels)).freeze()


def assemble(parts: list[bytes]) -> bytes:
    assembler = PartAssembler(LIMIT)
    out = [assembler.add(p) for p in parts]
    assert all(o is None for o in out[:-1]), "a frame came out before its last part"
    assert out[-1] is not None
    return out[-1]


@pytest.mark.parametrize(
    "blob",
    [1000, PART_BYTES - 200, PART_BYTES, 2 * PART_BYTES - 57, 2 * PART_BYTES, 5 * PART_BYTES + 3],
    ids=["small", "just under", "one part of blob", "two parts", "exact multiple", "six parts"],
)
def test_request_frames_in_parts_assemble_to_the_whole_frame(blob: int) -> None:
    items = [
        encode_request(1, Message(ObjectPayload({"before": 1}))),
        encode_request(2, image(blob)),
        encode_request(3, image(300)),
    ]
    whole = join_requests(items)
    parts = list(requests_in_parts(items))
    if len(whole) < PART_BYTES:
        assert parts == [whole]
        return
    assert len(parts) == -(-len(whole) // PART_BYTES) or len(parts) == len(whole) // PART_BYTES
    assert all(p[:2] == b"\x68\x01" for p in parts[:-1]) and parts[-1][:1] == b"\x72"
    assert assemble(parts) == whole
    frame = spb.ClientFrame()
    decoder = decode_frame(assemble(parts), frame)
    got = [item_decoder(decoder, r.blob_base).message(r.message) for r in frame.requests.items]
    assert [m.payload.image.nbytes for m in got[1:]] == [blob, 300]


def test_result_frames_in_parts_assemble_to_the_whole_frame() -> None:
    items = [encode_output(7, image(3 * PART_BYTES + 11)), encode_output(8, image(5))]
    whole = join_results(items)
    parts = list(results_in_parts(items))
    assert len(parts) == 4
    assert assemble(parts) == whole


def test_a_part_is_a_plain_protobuf_message() -> None:
    items = [encode_request(1, image(PART_BYTES + 10))]
    parts = list(requests_in_parts(items))
    first, last = spb.ClientFrame.FromString(parts[0]), spb.ClientFrame.FromString(parts[-1])
    assert first.part_more and len(first.part) == PART_BYTES and first.WhichOneof("kind") is None
    assert not last.part_more and first.part + last.part == join_requests(items)


def test_whole_frames_pass_through_the_assembler() -> None:
    frame = join_requests([encode_request(1, Message(ObjectPayload({"a": 1})))])
    assert PartAssembler(LIMIT).add(frame) is frame


def test_a_whole_frame_inside_a_part_sequence_is_refused() -> None:
    parts = list(requests_in_parts([encode_request(1, image(PART_BYTES * 2))]))
    assembler = PartAssembler(LIMIT)
    assembler.add(parts[0])
    whole = join_requests([encode_request(2, Message(ObjectPayload({"a": 1})))])
    with pytest.raises(WireError, match=r"^a whole frame arrived after 1 part of another"):
        assembler.add(whole)


def test_an_unfinished_frame_in_parts_is_reported() -> None:
    parts = list(requests_in_parts([encode_request(1, image(PART_BYTES * 2))]))
    assembler = PartAssembler(LIMIT)
    assert assembler.incomplete() is None
    assembler.add(parts[0])
    assert assembler.incomplete() == "a frame in parts incomplete after 1 part"
    assembler.add(parts[1])
    assembler.add(parts[2])
    assert assembler.incomplete() is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x68\x00\x72\x01x", r"^malformed frame part: expected part_more then part"),
        (b"\x68\x01\x0a\x01x", r"^malformed frame part: expected part_more then part"),
        (b"\x72\x05abc", r"^malformed frame part: declares 5 bytes, carries 3$"),
        (b"\x72\x01abc", r"^malformed frame part: declares 1 bytes, carries 3$"),
        (b"\x72\xff", r"^truncated data: a varint runs past the end"),
    ],
    ids=["part_more false", "no part after part_more", "short", "long", "truncated length"],
)
def test_malformed_parts_are_refused(data: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        PartAssembler(LIMIT).add(data)


def test_parts_past_the_limit_are_refused_before_joining() -> None:
    parts = list(requests_in_parts([encode_request(1, image(PART_BYTES * 3))]))
    assembler = PartAssembler(PART_BYTES * 2)
    assembler.add(parts[0])
    assembler.add(parts[1])
    with pytest.raises(
        PartsTooLarge, match=r"^a frame in parts grew past \d+ bytes, over the limit"
    ):
        assembler.add(parts[2])


def _frames(blob: int, seq: int = 1) -> tuple[bytes, list[bytes]]:
    items = [encode_request(seq, image(blob))]
    return join_requests(items), list(requests_in_parts(items))


def _feed(assembler: PartAssembler, parts: list[bytes]) -> bytes | memoryview:
    out = [assembler.add(p) for p in parts]
    assert all(o is None for o in out[:-1])
    assert out[-1] is not None
    return out[-1]


def test_a_frame_like_the_one_before_is_assembled_in_place_as_parts_arrive() -> None:
    assembler = PartAssembler(LIMIT)
    first_whole, first_parts = _frames(3 * PART_BYTES + 99)
    first = _feed(assembler, first_parts)
    assert isinstance(first, bytes) and first == first_whole  # nothing to foresee it by
    whole, parts = _frames(3 * PART_BYTES + 99, seq=2)
    assembler.add(parts[0])
    # The first part is already in the frame's buffer, before the rest arrives.
    assert assembler.buffer is not None and assembler.parts == []
    assert bytes(assembler.buffer[: assembler.size]) == whole[: assembler.size]
    for part in parts[1:-1]:
        assembler.add(part)
    got = assembler.add(parts[-1])
    assert isinstance(got, memoryview) and got.readonly and got == whole
    # Decoded arrays share the assembled buffer, read-only like arrays read from bytes.
    frame = spb.ClientFrame()
    decoder = decode_frame(got, frame)
    array = decoder.message(frame.requests.items[0].message).payload.image
    assert not array.flags.writeable and np.shares_memory(array, np.frombuffer(got, np.uint8))


@pytest.mark.parametrize(
    ("blob", "kind"),
    [(4 * PART_BYTES, bytes), (2 * PART_BYTES - 300, memoryview), (PART_BYTES + 5, bytes)],
    ids=["larger: joined", "a little smaller: in place", "far smaller: copied out"],
)
def test_frames_unlike_the_one_before_come_out_whole(blob: int, kind: type) -> None:
    assembler = PartAssembler(LIMIT)
    _feed(assembler, _frames(3 * PART_BYTES)[1])
    whole, parts = _frames(blob, seq=2)
    got = _feed(assembler, parts)
    assert type(got) is kind and got == whole
    # The assembler is ready for the next frame, sized by this one.
    assert assembler.expect == len(got) and assembler.size == 0 and assembler.buffer is None
    again, parts = _frames(blob, seq=3)
    assert _feed(assembler, parts) == again


def test_a_frame_over_the_limit_leaves_the_assembler_empty() -> None:
    assembler = PartAssembler(PART_BYTES * 3)
    _feed(assembler, _frames(2 * PART_BYTES)[1])
    parts = _frames(PART_BYTES * 4, seq=2)[1]
    with pytest.raises(PartsTooLarge):
        for part in parts:
            assembler.add(part)
    assert assembler.size == 0 and assembler.count == 0 and assembler.buffer is None


@pytest.mark.parametrize(
    "view",
    [memoryview, lambda b: memoryview(b).toreadonly()],
    ids=["writable view", "read-only view of a writable buffer"],
)
def test_a_buffer_that_can_change_is_copied_before_decoding(view: Any) -> None:
    data = bytearray(join_requests([encode_request(1, image(1000))]))
    frame = spb.ClientFrame()
    decoder = decode_frame(view(data), frame)
    array = decoder.message(frame.requests.items[0].message).payload.image
    before = array.copy()
    data[-1000:] = bytes(1000)  # the caller reuses its buffer: the decoded array keeps its data
    assert np.array_equal(array, before) and array.any()

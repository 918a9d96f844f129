"""Result frames with a tail (``remote/_frames.py``, decision 0015).

A server hands back an array it received and a node passed on without copying
it: the result frame's message ends with ``tail_skip``, and the next gRPC
message is the request frame as it arrived, whose bytes from ``tail_skip`` on
are the array's blob field. These tests decode real request frames, encode
their outputs as the server does, and check when a tail is attached, that the
blob numbering of a mixed frame holds, and that a broken tail is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fontus.core import ImagePayload, Message, ObjectPayload, VideoPayload, WireError
from fontus.remote._arrays import CompressionConfig, available_compressions
from fontus.remote._blobs import _BLOB_TAG, _varint
from fontus.remote._frames import (
    TAIL_MIN_BYTES,
    EncodedItem,
    PartAssembler,
    add_tail,
    attach_tail,
    decode_frame,
    encode_done,
    encode_output,
    encode_request,
    item_decoder,
    join_requests,
    requests_in_parts,
    results_with_tail,
)
from fontus.remote._wire.v1 import session_pb2 as spb


def pixels(nbytes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, nbytes, 1), dtype=np.uint8)


def received(items: list[EncodedItem]) -> tuple[bytes, list[Message[Any]]]:
    """The request frame carrying ``items`` and its messages as the server decodes them."""
    data = join_requests(items)
    frame = spb.ClientFrame()
    decoder = decode_frame(data, frame)
    return data, [
        item_decoder(decoder, r.blob_base).message(r.message) for r in frame.requests.items
    ]


def own(*frames: bytes) -> dict[int, bytes]:
    """The session's request frames, as the server keeps them for attach_tail."""
    return {id(f): f for f in frames}


def decode_results(message: bytes, tail: bytes | None) -> list[tuple[int, str, Any]]:
    """(seq, kind, decoded output or None) of each result of a frame and its tail."""
    frame = spb.ServerFrame()
    decoder = decode_frame(message, frame)
    if tail is not None:
        assert frame.tail_skip > 0
        decoder = add_tail(decoder, tail, frame.tail_skip)
    else:
        assert frame.tail_skip == 0
    out = []
    for r in frame.results.items:
        kind = r.WhichOneof("kind")
        value = (
            item_decoder(decoder, r.blob_base).message(r.output.message)
            if kind == "output"
            else None
        )
        out.append((r.seq, kind, value))
    return out


def test_an_array_passed_on_goes_back_as_the_tail_of_its_request_frame() -> None:
    image = pixels(TAIL_MIN_BYTES + 17)
    data, (message,) = received([encode_request(1, Message(ImagePayload.from_array(image)))])
    item = encode_output(1, message)
    # Only a frame the session received (the server keeps its own, by id).
    assert not attach_tail(item, own())
    assert not attach_tail(item, own(join_requests([encode_request(1, message)])))
    assert item.tail is None
    assert attach_tail(item, own(data))
    assert item.tail is data  # the very bytes received: nothing copied
    # Everything before the blob field is skipped; what is left is that field alone.
    tag = _BLOB_TAG + _varint(image.nbytes)
    assert data[item.tail_skip :] == tag + image.tobytes()
    message_bytes, tail = results_with_tail([item, encode_done(1, 0.0, 0.001, 1)], item)
    assert tail is data
    assert len(message_bytes) < 200  # heads only: the array is not in it
    (seq, kind, out), done = decode_results(message_bytes, tail)
    assert (seq, kind, done[:2]) == (1, "output", (1, "done"))
    assert np.array_equal(out.payload.image, image)
    assert out.payload.image.base is tail or out.payload.image.base.obj is tail  # a view


def test_blob_numbers_hold_with_other_arrays_before_and_after_the_tail() -> None:
    # One frame: a small image output, then a video whose second frame is the tail
    # (its first frame stays in the message), then another image.  The tailed item's
    # own blobs are numbered last, so that its last one is the tail's first.
    small = pixels(1000, 1)
    first, last = pixels(3000, 2), pixels(TAIL_MIN_BYTES, 3)
    video = VideoPayload(
        (ImagePayload.from_array(first), ImagePayload.from_array(last)), frames_per_second=25.0
    )
    data, (message,) = received([encode_request(2, Message(video))])
    items = [
        encode_output(1, Message(ImagePayload.from_array(small))),
        encode_output(2, message),
        encode_output(3, Message(ImagePayload.from_array(pixels(500, 4)))),
    ]
    assert attach_tail(items[1], own(data))
    message_bytes, tail = results_with_tail(items, items[1])
    got = decode_results(message_bytes, tail)
    assert [g[:2] for g in got] == [(1, "output"), (2, "output"), (3, "output")]
    assert np.array_equal(got[0][2].payload.image, small)
    frames = got[1][2].payload.frames
    assert np.array_equal(frames[0].image, first) and np.array_equal(frames[1].image, last)
    assert got[1][2].payload.frames_per_second == 25.0
    assert np.array_equal(got[2][2].payload.image, pixels(500, 4))


def test_arrays_that_are_not_the_end_of_a_received_frame_get_no_tail() -> None:
    image = pixels(TAIL_MIN_BYTES * 2)
    data, (message,) = received([encode_request(1, Message(ImagePayload.from_array(image)))])
    received_image = message.payload.image
    small_data, (small,) = received(
        [encode_request(1, Message(ImagePayload.from_array(pixels(1000))))]
    )
    frames = own(data, small_data)
    cases = {
        "an array the node made": Message(ImagePayload.from_array(image.copy())),
        "a copy of the received one": Message(ImagePayload.from_array(received_image.copy())),
        "the start of the received one": Message(
            ImagePayload.from_array(received_image[:, : TAIL_MIN_BYTES + 1])
        ),
        "a small array at the end of its frame": small,
        "no array at all": Message(ObjectPayload({"a": 1})),
    }
    for name, out in cases.items():
        item = encode_output(1, out)
        assert not attach_tail(item, frames), name
        assert item.tail is None and item.tail_skip == 0, name
    # The end of the received array is the end of the frame, but not a blob field.
    end = Message(ImagePayload.from_array(received_image[:, 1:]))
    assert not attach_tail(encode_output(1, end), frames)
    assert attach_tail(encode_output(1, message), frames)  # what does qualify


def test_a_frame_assembled_from_parts_or_a_compressed_output_gets_no_tail() -> None:
    image = pixels(3 * 1024 * 1024)
    parts = list(requests_in_parts([encode_request(1, Message(ImagePayload.from_array(image)))]))
    assert len(parts) > 1
    assembler = PartAssembler(1 << 30)
    assembler.expect = sum(len(p) for p in parts)  # assembled in place, as from the 2nd frame on
    whole = [assembler.add(p) for p in parts][-1]
    assert type(whole) is memoryview  # a view of the assembler's buffer
    frame = spb.ClientFrame()
    decoder = decode_frame(whole, frame)
    message = decoder.message(frame.requests.items[0].message)
    # gRPC sends bytes, not this buffer
    assert not attach_tail(encode_output(1, message), own(*parts))
    if "zstd" in available_compressions():
        plain_data, (plain,) = received(
            [encode_request(1, Message(ImagePayload.from_array(image)))]
        )
        zeros = Message(ImagePayload.from_array(np.zeros_like(image)))
        zero_data, (zero,) = received([encode_request(1, zeros)])
        frames = own(plain_data, zero_data)
        packed = encode_output(1, zero, compression=CompressionConfig("zstd"))
        assert not attach_tail(packed, frames)
        assert attach_tail(encode_output(1, plain), frames)


def test_a_long_skip_sends_no_tail() -> None:
    # A coalesced frame whose last request's array comes after a large one: sending the
    # whole frame back again would cost the network more than the copy saves.
    big = Message(ImagePayload.from_array(pixels(TAIL_MIN_BYTES * 2, 5)))
    last = Message(ImagePayload.from_array(pixels(TAIL_MIN_BYTES, 6)))
    data, (_, message) = received([encode_request(1, big), encode_request(2, last)])
    assert not attach_tail(encode_output(2, message), own(data))
    # A small request before it is fine.
    note = Message(ObjectPayload({"note": "x" * 1000}))
    data, (_, message) = received([encode_request(1, note), encode_request(2, last)])
    assert attach_tail(encode_output(2, message), own(data))


def test_a_broken_tail_is_refused_with_a_precise_error() -> None:
    image = pixels(TAIL_MIN_BYTES)
    data, (message,) = received([encode_request(1, Message(ImagePayload.from_array(image)))])
    item = encode_output(1, message)
    assert attach_tail(item, own(data))
    message_bytes, _ = results_with_tail([item], item)
    frame = spb.ServerFrame()
    decoder = decode_frame(message_bytes, frame)
    skip = frame.tail_skip
    with pytest.raises(WireError, match=r"tail_skip \d+ is beyond the 10 bytes"):
        add_tail(decoder, b"0123456789", skip)
    with pytest.raises(WireError, match="fields other than blobs after its tail_skip"):
        add_tail(decoder, data, 0)  # the request head too
    # After the skip, a tag of wire type 7, which no protobuf field has (skipping into a
    # real request head would read timestamps and ids: not the same bytes every run).
    with pytest.raises(
        WireError,
        match="tail of a frame, after its tail_skip of 3: malformed data: wire type 7 "
        "for top-level field 1",
    ):
        add_tail(decoder, b"abc\x0f", 3)
    with pytest.raises(WireError, match="holds no blob"):
        add_tail(decoder, data, len(data))
    with pytest.raises(WireError, match=r"after its tail_skip of \d+: truncated data: blob 0"):
        add_tail(decoder, data[:-1], skip)

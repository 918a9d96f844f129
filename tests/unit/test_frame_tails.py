"""Result frames with a tail (``remote/_frames.py``, decision 0015).

A server hands back an array it received and a node passed on without copying
it: the result frame's message ends with ``tail_skip``, and the next gRPC
message is the request frame as it arrived, whose bytes from ``tail_skip`` on
are the array's blob field. These tests decode real request frames, encode
their outputs as the server does, and check when a tail is attached, that the
blob numbering of a mixed frame holds, and that a broken tail is refused.

Tails by reference (decision 0016), the second half: when the array is the one
of the very request answered, the result frame says ``tail_request`` = that
request's seq instead, and the client puts its own last blob of that request
where the tail's blob would have been.

Tails by size (decision 0017), the last part: a client sends a request array
that already is the end of a ``bytes`` object (made over bytes read from a
pipe, or read from a received frame) as its frame's tail, ``ClientFrame.tail_size``
saying how many of the tail's last bytes are the blob; a server hands such an
array back the same way (``ServerFrame.tail_size``), blob field or not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fontus.core import (
    BytesPayload,
    ImagePayload,
    Message,
    ObjectPayload,
    VideoPayload,
    WireError,
)
from fontus.remote._arrays import CompressionConfig, available_compressions
from fontus.remote._blobs import _BLOB_TAG, _varint
from fontus.remote._frames import (
    TAIL_MAX_SKIP,
    TAIL_MIN_BYTES,
    EncodedItem,
    PartAssembler,
    add_request_blob,
    add_sized_tail,
    add_tail,
    attach_request_tail,
    attach_tail,
    decode_frame,
    encode_done,
    encode_output,
    encode_request,
    item_decoder,
    join_requests,
    requests_in_parts,
    requests_with_tail,
    results_with_tail,
    same_memory,
)
from fontus.remote._limits import WireLimits
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.codec import WireDecoder


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


# -- tails by reference (decision 0016) ----------------------------------------------
def client_side(message_bytes: bytes, own_blob: Any) -> tuple[Any, list[Message[Any]]]:
    """The result frame and its outputs, as the Warp decodes them with its request's blob."""
    frame = spb.ServerFrame()
    decoder = decode_frame(message_bytes, frame)
    assert frame.tail_skip == 0
    decoder = add_request_blob(decoder, own_blob, frame.tail_request)
    outputs = [
        item_decoder(decoder, r.blob_base).message(r.output.message)
        for r in frame.results.items
        if r.WhichOneof("kind") == "output"
    ]
    return frame, outputs


def test_an_array_of_the_request_answered_goes_back_as_its_seq_only() -> None:
    image = pixels(TAIL_MIN_BYTES + 5)
    request = encode_request(7, Message(ImagePayload.from_array(image)))
    data, (message,) = received([request])
    item = encode_output(7, message)
    # What the server registered for request 7: its frame's last blob.
    assert same_memory(item.blobs[-1], memoryview(data)[-image.nbytes :])
    item.tail_request = 7
    parts = results_with_tail([item, encode_done(7, 0.0, 0.001, 1)], item)
    assert len(parts) == 1  # no tail message follows
    assert len(parts[0]) < 200  # heads only
    frame, (out,) = client_side(parts[0], request.blobs[-1])
    assert frame.tail_request == 7
    # The client's own array comes back: the same memory, read-only.
    assert np.array_equal(out.payload.image, image)
    assert np.shares_memory(out.payload.image, image)
    assert not out.payload.image.flags.writeable


def test_the_named_blob_is_numbered_after_the_frame_s_own() -> None:
    # A video whose first frame travels and whose second is the client's own (named),
    # between two outputs with arrays of their own.
    first, last = pixels(3000, 2), pixels(TAIL_MIN_BYTES, 3)
    video = VideoPayload(
        (ImagePayload.from_array(first), ImagePayload.from_array(last)), frames_per_second=25.0
    )
    request = encode_request(2, Message(video))
    _, (message,) = received([request])
    items = [
        encode_output(1, Message(ImagePayload.from_array(pixels(1000, 1)))),
        encode_output(2, message),
        encode_output(3, Message(ImagePayload.from_array(pixels(500, 4)))),
    ]
    items[1].tail_request = 2
    (data,) = results_with_tail(items, items[1])
    assert len(data) < 3000 + 1000 + 500 + 400  # the large frame is not in it
    _, (one, two, three) = client_side(data, request.blobs[-1])
    assert np.array_equal(one.payload.image, pixels(1000, 1))
    assert np.array_equal(two.payload.frames[0].image, first)
    assert np.array_equal(two.payload.frames[1].image, last)
    assert np.shares_memory(two.payload.frames[1].image, last)
    assert np.array_equal(three.payload.image, pixels(500, 4))


def test_a_request_the_client_no_longer_holds_reads_as_an_empty_stand_in() -> None:
    # A request that timed out on the client: its late outputs are dropped undecoded;
    # decoding one anyway says what is wrong instead of reading other memory.
    image = pixels(TAIL_MIN_BYTES)
    request = encode_request(3, Message(ImagePayload.from_array(image)))
    _, (message,) = received([request])
    item = encode_output(3, message)
    item.tail_request = 3
    (data,) = results_with_tail([item], item)
    with pytest.raises(WireError, match=r"0 bytes do not match"):
        client_side(data, None)


def test_a_named_blob_counts_against_the_blob_limit() -> None:
    decoder = WireDecoder([memoryview(b"a")], WireLimits(max_blobs=1))
    with pytest.raises(WireError, match="too many blobs: 2 in one frame with request 9's"):
        add_request_blob(decoder, b"x", 9)
    assert len(add_request_blob(WireDecoder([], WireLimits(max_blobs=1)), b"x", 9).blobs) == 1


def test_same_memory_needs_the_same_start_and_size() -> None:
    image = pixels(4096)
    assert same_memory(image, image)
    assert same_memory(image, memoryview(image).cast("B"))
    assert not same_memory(image, image.copy())
    assert not same_memory(image, image[:, :4095])  # same start, shorter
    assert not same_memory(image[:, 1:], image[:, :4095])  # same size, later start


# -- tails by size (decision 0017) ---------------------------------------------------
def over_bytes(nbytes: int, seed: int = 0, before: bytes = b"") -> tuple[bytes, np.ndarray]:
    """An image array made over a ``bytes`` object (``before`` its first bytes), as a
    source reading raw frames from a pipe makes it, and that object."""
    raw = before + pixels(nbytes, seed).tobytes()
    return raw, np.frombuffer(raw, np.uint8)[len(before) :].reshape(1, nbytes, 1)


def server_side(message: bytes, tail: bytes) -> tuple[Any, list[Message[Any]]]:
    """The request frame and its messages, as the server decodes a frame and its tail."""
    frame = spb.ClientFrame()
    decoder = add_sized_tail(decode_frame(message, frame), tail, frame.tail_size)
    messages = [item_decoder(decoder, r.blob_base).message(r.message) for r in frame.requests.items]
    return frame, messages


def test_a_request_array_over_bytes_goes_as_its_frame_s_tail_uncopied() -> None:
    raw, image = over_bytes(TAIL_MIN_BYTES + 3, 1)
    small = encode_request(1, Message(ImagePayload.from_array(pixels(2000, 2))))
    item = encode_request(2, Message(ImagePayload.from_array(image), meta={"k": "v"}))
    assert attach_request_tail(item)
    assert item.tail is raw and item.tail_size == image.nbytes
    message, tail = requests_with_tail([small, item], item)
    assert tail is raw  # the very bytes: nothing copied
    assert len(message) < 2000 + 400  # the small request's array, heads, not the large one
    frame, (one, two) = server_side(message, tail)
    assert frame.tail_size == image.nbytes
    assert np.array_equal(one.payload.image, pixels(2000, 2))
    assert np.array_equal(two.payload.image, image) and two.meta["k"] == "v"
    assert np.shares_memory(two.payload.image, np.frombuffer(raw, np.uint8))
    assert not two.payload.image.flags.writeable


def test_a_tailed_request_s_other_arrays_are_numbered_before_its_tail() -> None:
    # A video whose second frame is over bytes: its first travels in the message.
    first = pixels(3000, 3)
    _, last = over_bytes(TAIL_MIN_BYTES, 4)
    video = VideoPayload(
        (ImagePayload.from_array(first), ImagePayload.from_array(last)), frames_per_second=30.0
    )
    before = encode_request(1, Message(ImagePayload.from_array(pixels(700, 5))))
    item = encode_request(2, Message(video))
    assert attach_request_tail(item)
    _, (one, two) = server_side(*requests_with_tail([before, item], item))
    assert np.array_equal(one.payload.image, pixels(700, 5))
    assert np.array_equal(two.payload.frames[0].image, first)
    assert np.array_equal(two.payload.frames[1].image, last)
    assert two.payload.frames_per_second == 30.0


def test_request_arrays_that_are_not_the_end_of_a_bytes_get_no_tail() -> None:
    raw, image = over_bytes(TAIL_MIN_BYTES * 2, 6)
    cases = {
        "an array numpy made": pixels(TAIL_MIN_BYTES * 2, 6),
        "a copy of one over bytes": image.copy(),
        "the start of one over bytes": image[:, :-1],
        "a small array over bytes": over_bytes(TAIL_MIN_BYTES - 1, 7)[1],
        # Sending the bytes before it again would cost more than the copy saves.
        "one far from the start of its bytes": over_bytes(
            TAIL_MIN_BYTES, 8, before=bytes(TAIL_MAX_SKIP + 1)
        )[1],
    }
    for name, array in cases.items():
        item = encode_request(1, Message(ImagePayload.from_array(array)))
        assert not attach_request_tail(item), name
        assert item.tail is None and item.tail_size == 0, name
    assert not attach_request_tail(encode_request(1, Message(ObjectPayload({"a": 1}))))
    # The end of one over bytes, the rest of the bytes before it: it goes, and the
    # receiver reads only the array.
    end = image[:, 100:]
    item = encode_request(1, Message(ImagePayload.from_array(end)))
    assert attach_request_tail(item) and item.tail is raw and item.tail_size == end.nbytes
    _, (message,) = server_side(*requests_with_tail([item], item))
    assert np.array_equal(message.payload.image, end)


def test_large_bytes_and_compressed_arrays_are_bytes_objects_of_their_own() -> None:
    blob = bytes(range(256)) * (TAIL_MIN_BYTES // 256)
    item = encode_request(1, Message(BytesPayload(blob)))
    assert attach_request_tail(item) and item.tail is blob
    _, (message,) = server_side(*requests_with_tail([item], item))
    assert message.payload.cnt == blob
    if "zstd" in available_compressions():
        # A compressed array is the compressor's bytes: it goes as they are.  Half
        # noise, half zeros: it compresses to about 1 MiB.
        half = pixels(1024 * 1024, 11)
        image = np.concatenate([half, np.zeros_like(half)], axis=1)
        packed = encode_request(
            2, Message(ImagePayload.from_array(image)), compression=CompressionConfig("zstd")
        )
        size = memoryview(packed.blobs[-1]).nbytes
        assert TAIL_MIN_BYTES <= size < image.nbytes
        assert attach_request_tail(packed) and type(packed.tail) is bytes
        _, (unpacked,) = server_side(*requests_with_tail([packed], packed))
        assert np.array_equal(unpacked.payload.image, image)


def test_an_array_read_from_a_received_frame_goes_on_as_a_tail() -> None:
    # A Warp's output sent on to the next remote node: its array is the end of the
    # result frame received, preceded there by that frame's heads (the skip).
    image = pixels(TAIL_MIN_BYTES, 9)
    data, (message,) = received([encode_request(1, Message(ImagePayload.from_array(image)))])
    item = encode_request(5, message)
    assert attach_request_tail(item) and item.tail is data
    _, (again,) = server_side(*requests_with_tail([item], item))
    assert np.array_equal(again.payload.image, image)


def test_the_server_hands_a_request_tail_back_by_size() -> None:
    raw, image = over_bytes(TAIL_MIN_BYTES, 10)
    request = encode_request(4, Message(ImagePayload.from_array(image)))
    assert attach_request_tail(request)
    message, tail = requests_with_tail([request], request)
    _, (received_message,) = server_side(message, tail)
    item = encode_output(4, received_message)
    # Only the session's own tail; and no blob field precedes the array in it, so a
    # client reading tail_skip only cannot take it.
    assert not attach_tail(item, own(), sized=True)
    assert not attach_tail(item, own(tail), sized=False)
    assert item.tail is None
    assert attach_tail(item, own(tail), sized=True)
    assert item.tail is raw and item.tail_size == image.nbytes and item.tail_skip == 0
    result, back = results_with_tail([item, encode_done(4, 0.0, 0.001, 1)], item)
    assert back is raw and len(result) < 200
    frame = spb.ServerFrame()
    decoder = add_sized_tail(decode_frame(result, frame), back, frame.tail_size)
    assert (frame.tail_size, frame.tail_skip, frame.tail_request) == (image.nbytes, 0, 0)
    out = item_decoder(decoder, frame.results.items[0].blob_base).message(
        frame.results.items[0].output.message
    )
    assert np.array_equal(out.payload.image, image)
    # A request frame's array, preceded by its blob field, goes by size too.
    data, (message2,) = received([encode_request(1, Message(ImagePayload.from_array(image)))])
    sized = encode_output(1, message2)
    assert attach_tail(sized, own(data), sized=True) and sized.tail is data
    assert sized.tail_size == image.nbytes


def test_a_broken_sized_tail_is_refused_with_a_precise_error() -> None:
    decoder = WireDecoder([], WireLimits(max_blobs=1))
    with pytest.raises(WireError, match="tail_size 11 is beyond the 10 bytes of the frame's tail"):
        add_sized_tail(decoder, b"0123456789", 11)
    full = WireDecoder([memoryview(b"a")], WireLimits(max_blobs=1))
    with pytest.raises(WireError, match="too many blobs: 2 in one frame and its tail"):
        add_sized_tail(full, b"0123456789", 4)
    (blob,) = add_sized_tail(decoder, b"0123456789", 4).blobs
    assert bytes(blob) == b"6789"

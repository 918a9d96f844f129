"""Tails by reference (``remote/_frames.py``, decision 0016).

When a node passes on the array of the very request it answers, the server does
not send it back: the result frame says ``tail_request`` = that request's seq,
and the client puts its own last blob of that request where the tail's blob
would have been.  These tests encode real request and result frames as both
sides do and check the numbering, the stand-in for a request the client no
longer holds, and the memory check the server makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fontus.core import ImagePayload, Message, VideoPayload, WireError
from fontus.remote._frames import (
    TAIL_MIN_BYTES,
    add_request_blob,
    decode_frame,
    encode_done,
    encode_output,
    encode_request,
    item_decoder,
    join_requests,
    results_with_tail,
    same_memory,
)
from fontus.remote._limits import WireLimits
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.codec import WireDecoder


def pixels(nbytes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, nbytes, 1), dtype=np.uint8)


def server_side(request: Any) -> tuple[Any, Message[Any]]:
    """The request frame's decoder and the message, as the server decodes them."""
    frame = spb.ClientFrame()
    decoder = decode_frame(join_requests([request]), frame)
    (r,) = frame.requests.items
    return decoder, item_decoder(decoder, r.blob_base).message(r.message)


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
    decoder, message = server_side(request)
    item = encode_output(7, message)
    assert same_memory(item.blobs[-1], decoder.blobs[-1])
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
    _, message = server_side(request)
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
    _, message = server_side(request)
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

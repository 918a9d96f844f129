"""Large frames in parts (decision 0012) against a real ``fontus serve``.

A client that says ``frame_parts`` in its Open gets a large result frame that
finishes the last request in flight as parts; one that does not gets every
frame whole; requests in parts are read either way. A Warp uses parts both
ways by default, and what its node emits is what the node emits locally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from fontus.core import ImagePayload, Message, Pipeline
from fontus.remote._frames import (
    PART_BYTES,
    encode_request,
    requests_in_parts,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer, compare_node

pytestmark = pytest.mark.timeout(60)

SESSION = "/fontus.v1.Remote/Session"
#: The ``raw_session`` fixture: a raw Session stream's messages as received.
RawSession = Callable[[str, list[bytes]], list[bytes]]
#: The ``result_frames`` and ``outputs`` fixtures: a raw session's result frames
#: (parts assembled, tails added) with their decoders and tails, and their outputs.
ResultFrames = Callable[[list[bytes]], Iterator[tuple[Any, Any, bytes | None]]]
Outputs = Callable[[list[bytes]], list[Message[Any]]]
#: Bound of one raw session here (a few 5 MB frames on loopback take milliseconds).
SESSION_TIMEOUT_S = 20.0
#: A frame of about 2.5 parts.
FRAME_PIXELS = (PART_BYTES * 5 // 2) // 3


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["--allow", "identity"]) as s:
        yield s


def frame_image(seed: int) -> ImagePayload:
    rng = np.random.default_rng(seed)
    return ImagePayload.from_array(rng.integers(0, 256, (1, FRAME_PIXELS, 3), dtype=np.uint8))


@pytest.mark.parametrize("frame_parts", [True, False], ids=["client reads parts", "whole frames"])
def test_a_request_in_parts_comes_back_in_the_form_the_client_asked_for(
    server: LoopbackServer,
    frame_parts: bool,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    outputs: Outputs,
) -> None:
    images = [frame_image(1), frame_image(2)]
    requests = [
        part
        for seq, img in enumerate(images, 1)
        for part in requests_in_parts([encode_request(seq, Message(img))])
    ]
    assert len(requests) == 6 and requests[0][:2] == b"\x68\x01"  # three parts each
    received = raw_session(
        server.target, [open_frame("parts-test", frame_parts=frame_parts), *requests]
    )
    opened = spb.ServerFrame.FromString(received[0]).opened
    assert opened.frame_parts  # the server reads parts
    large = [m for m in received[1:] if len(m) > PART_BYTES // 2]
    if frame_parts:
        # The frame that answers the last request in flight goes in parts (a frame
        # sent while other requests are still on the way goes whole: decision 0012).
        assert large[-1][:1] == b"\x72" and large[-2][:2] == b"\x68\x01"
    else:
        assert len(large) == 2 and all(m[:1] == b"\x12" for m in large)  # ServerFrame.results
    got = outputs(received[1:])
    assert [
        np.array_equal(m.payload.image, img.image) for m, img in zip(got, images, strict=True)
    ] == [
        True,
        True,
    ]


def test_large_frames_through_a_warp_equal_the_local_run(server: LoopbackServer) -> None:
    inputs = [frame_image(seed) for seed in range(4)]
    comparison = compare_node("identity", inputs=inputs, server=server)
    assert len(comparison.remote.messages) == 4
    assert comparison.equal, comparison.diff()


def test_a_warp_sends_and_receives_parts(
    server: LoopbackServer, run_frames: Callable[..., Pipeline]
) -> None:
    # 1080p test-pattern frames (6.2 MB) at window 1: the Warp's session writes them in
    # parts (the server said it reads them) and the frames arrive whole and in order.
    pipeline = run_frames(server.target, 1, 5, SESSION_TIMEOUT_S)
    stream = pipeline.nodes["node"]._conns[0].stream
    assert stream.parts_out is True
    got = [m.payload.image.shape for m in pipeline.nodes["out"].messages]
    assert got == [(1080, 1920, 3)] * 5


@pytest.mark.parametrize("frame_parts", [True, False], ids=["in parts", "whole"])
def test_the_done_of_a_large_output_comes_in_the_outputs_frame(
    server: LoopbackServer,
    frame_parts: bool,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
) -> None:
    # A large output leaves the worker ahead of its Done (HOLD_OUTPUT_BYTES) and fills a
    # frame past MAX_COALESCE_BYTES; its Done still rides in that frame, so the Warp can
    # deliver the output when the frame is in rather than after a frame more.
    requests = [
        part
        for seq in (1, 2)
        for part in requests_in_parts([encode_request(seq, Message(frame_image(seq)))])
    ]
    received = raw_session(
        server.target, [open_frame("done-test", frame_parts=frame_parts, window=2), *requests]
    )
    kinds = [
        [(r.seq, r.WhichOneof("kind")) for r in frame.results.items]
        for frame, _, _ in result_frames(received[1:])
    ]
    assert kinds == [
        [(1, "output"), (1, "done")],
        [(2, "output"), (2, "done")],
    ]


def test_a_half_close_in_the_middle_of_a_frame_in_parts_ends_that_session_only(
    server: LoopbackServer,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    outputs: Outputs,
) -> None:
    # Two of a frame's three parts, then the client's half-close: the frame cannot be
    # run, and dropping it silently would lose a request without a word.
    parts = list(requests_in_parts([encode_request(1, Message(frame_image(7)))]))
    assert len(parts) == 3
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(server.target, options=options) as channel:
        frames = [open_frame("half-close", frame_parts=True), *parts[:2]]
        call = channel.stream_stream(SESSION)(iter(frames), timeout=SESSION_TIMEOUT_S)
        with pytest.raises(grpc.RpcError):
            list(call)
        assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the client half-closed with a frame in parts incomplete after 2 parts" in (
            call.details() or ""
        )
    # The server is unharmed: the whole frame, sent again, comes back.
    received = raw_session(server.target, [open_frame("again", frame_parts=True), *parts])
    (got,) = outputs(received[1:])
    assert np.array_equal(got.payload.image, frame_image(7).image)

"""Result frames with a tail (decision 0015) against a real ``fontus serve``.

A client that says ``frame_tails`` in its Open gets an array its node passed on
back without the server copying it: a result frame whose message ends with
``tail_skip``, then the request frame exactly as the client sent it. A client
that does not say it gets whole frames, and so does an output the node made
itself. A Warp asks for tails; what its node emits is what it emits locally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from fontus.core import ImagePayload, Message, Pipeline
from fontus.remote import admin
from fontus.remote._frames import (
    TAIL_MIN_BYTES,
    add_tail,
    decode_frame,
    encode_request,
    item_decoder,
    join_requests,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer, compare_node

pytestmark = pytest.mark.timeout(60)

SESSION = "/fontus.v1.Remote/Session"
#: Bound of one raw session here (a few 1 MB frames on loopback take milliseconds).
SESSION_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["--allow", "identity,gain,grayscale"]) as s:
        yield s


def frame_image(seed: int, pixels: int = TAIL_MIN_BYTES // 3 + 1000) -> ImagePayload:
    rng = np.random.default_rng(seed)
    return ImagePayload.from_array(rng.integers(0, 256, (1, pixels, 3), dtype=np.uint8))


def raw_session(target: str, frames: list[bytes]) -> list[bytes]:
    """Send ``frames`` (then half-close); every message the server sent, as received."""
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.stream_stream(SESSION)(iter(frames), timeout=SESSION_TIMEOUT_S)
        received = list(call)
        assert call.code() == grpc.StatusCode.OK, call.details()
    return received


def results(messages: list[bytes]) -> Iterator[tuple[Any, Any, bytes | None]]:
    """Each result frame of a session with its decoder and its tail (None: whole)."""
    pending: tuple[Any, Any] | None = None
    for data in messages:
        if pending is not None:
            frame, decoder = pending
            pending = None
            yield frame, add_tail(decoder, data, frame.tail_skip), data
            continue
        frame = spb.ServerFrame()
        decoder = decode_frame(data, frame)
        if frame.tail_skip:
            pending = frame, decoder
        elif frame.WhichOneof("kind") == "results":
            yield frame, decoder, None
    assert pending is None, "the stream ended before a frame's tail"


def outputs(messages: list[bytes]) -> list[Message[Any]]:
    return [
        item_decoder(decoder, r.blob_base).message(r.output.message)
        for frame, decoder, _ in results(messages)
        for r in frame.results.items
        if r.WhichOneof("kind") == "output"
    ]


@pytest.mark.parametrize("frame_tails", [True, False], ids=["client reads tails", "whole frames"])
def test_an_image_passed_on_comes_back_as_its_own_request_frame(
    server: LoopbackServer, frame_tails: bool, open_frame: Callable[..., bytes]
) -> None:
    images = [frame_image(seed) for seed in range(4)]
    requests = [
        join_requests([encode_request(seq, Message(img))]) for seq, img in enumerate(images, 1)
    ]
    received = raw_session(
        server.target, [open_frame("tails-test", frame_tails=frame_tails, window=4), *requests]
    )
    got = outputs(received[1:])
    assert [
        np.array_equal(m.payload.image, img.image) for m, img in zip(got, images, strict=True)
    ] == [True] * 4
    tails = [tail for _, _, tail in results(received[1:]) if tail is not None]
    if frame_tails:
        # Each output's frame is followed by the very bytes of its request frame; the
        # frame's own message carries the heads (the Done rides along) and no array.
        assert tails == requests
        heads = [m for m in received[1:] if m not in requests]
        assert all(len(m) < 1000 for m in heads)
        outputs_of_tails = [
            [r.seq for r in f.results.items if r.WhichOneof("kind") == "output"]
            for f, _, tail in results(received[1:])
            if tail is not None
        ]
        assert outputs_of_tails == [[1], [2], [3], [4]]
    else:
        assert tails == []
        assert not any(m in requests for m in received[1:])


def test_an_image_the_node_made_and_a_small_one_come_back_whole(
    server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    color = frame_image(9)
    small = frame_image(10, pixels=1000)
    made = raw_session(
        server.target,
        [
            open_frame("made", name="gray", mark="grayscale", frame_tails=True),
            join_requests([encode_request(1, Message(color))]),
        ],
    )
    passed = raw_session(
        server.target,
        [open_frame("small", frame_tails=True), join_requests([encode_request(1, Message(small))])],
    )
    assert [tail for _, _, tail in results(made[1:])] == [None]
    assert [tail for _, _, tail in results(passed[1:])] == [None]
    (gray,) = outputs(made[1:])
    assert gray.payload.image.shape[:2] == color.image.shape[:2]
    (same,) = outputs(passed[1:])
    assert np.array_equal(same.payload.image, small.image)


def test_a_warp_receives_tails_and_emits_what_the_node_emits_locally(
    server: LoopbackServer, build_pipeline: Callable[..., Pipeline]
) -> None:
    inputs = [frame_image(seed) for seed in range(6)]
    comparison = compare_node("identity", inputs=inputs, server=server)
    assert len(comparison.remote.messages) == 6
    assert comparison.equal, comparison.diff()
    # 1080p test-pattern frames at window 8: frames coalesced and in parts or not, every
    # output comes back as a tail, in order, and the server counts them.
    pipeline = build_pipeline(
        [
            {
                "name": "cam",
                "mark": "test_pattern",
                "configuration": {"width": 1920, "height": 1080, "frames": 12},
            },
            {
                "name": "node",
                "mark": "identity",
                "remote": {"target": server.target, "window": 8},
            },
            {"name": "out", "mark": "collect"},
        ],
        [("cam", "node"), ("node", "out")],
        run_for=SESSION_TIMEOUT_S,
    )
    stream = pipeline.nodes["node"]._conns[0].stream
    messages = pipeline.nodes["out"].messages
    assert [m.payload.image.shape for m in messages] == [(1080, 1920, 3)] * 12
    # A request sent alone goes in parts (decision 0012) and comes back whole: only the
    # ones written while others were in flight can come back as tails.
    assert 0 < stream.tails_in <= 12
    stats = admin.server_stats(server.target)
    rows = [n for n in stats.nodes if n["client"].startswith("node@")]
    assert sum(n["tails"] for n in rows) >= stream.tails_in

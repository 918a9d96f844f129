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

import numpy as np
import pytest

from fontus.core import ImagePayload, Message, Pipeline
from fontus.remote import admin
from fontus.remote._frames import (
    TAIL_MIN_BYTES,
    EncodedItem,
    encode_request,
    join_requests,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.codec import WireEncoder
from fontus.testing import LoopbackServer, compare_node

pytestmark = pytest.mark.timeout(60)

#: The ``raw_session`` fixture: a raw Session stream's messages as received.
RawSession = Callable[[str, list[bytes]], list[bytes]]
#: The ``result_frames`` and ``outputs`` fixtures: a raw session's result frames
#: (parts assembled, tails added) with their decoders and tails, and their outputs.
ResultFrames = Callable[[list[bytes]], Iterator[tuple[Any, Any, bytes | None]]]
Outputs = Callable[[list[bytes]], list[Message[Any]]]
#: Bound of a pipeline's run here (a dozen 1080p frames on loopback take well under 1 s).
SESSION_TIMEOUT_S = 20.0
#: A node that emits, for each input, the image it was given before (by any session:
#: run with --sessions shared, one instance serves every session).
LATEST = """
from fontus.core import ImagePayload, Node


class Latest(Node):
    mark = "latest"

    def __init__(self) -> None:
        self.held = None

    def update(self, message) -> None:
        if self.held is not None:
            self.transmit(ImagePayload.from_array(self.held))
        self.held = message.payload.image
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["--allow", "identity,gain,grayscale"]) as s:
        yield s


def frame_image(seed: int, pixels: int = TAIL_MIN_BYTES // 3 + 1000) -> ImagePayload:
    rng = np.random.default_rng(seed)
    return ImagePayload.from_array(rng.integers(0, 256, (1, pixels, 3), dtype=np.uint8))


@pytest.mark.parametrize("frame_tails", [True, False], ids=["client reads tails", "whole frames"])
def test_an_image_passed_on_comes_back_as_its_own_request_frame(
    server: LoopbackServer,
    frame_tails: bool,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
    outputs: Outputs,
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
    tails = [tail for _, _, tail in result_frames(received[1:]) if tail is not None]
    if frame_tails:
        # Each output's frame is followed by the very bytes of its request frame; the
        # frame's own message carries the heads (the Done rides along) and no array.
        assert tails == requests
        heads = [m for m in received[1:] if m not in requests]
        assert all(len(m) < 1000 for m in heads)
        outputs_of_tails = [
            [r.seq for r in f.results.items if r.WhichOneof("kind") == "output"]
            for f, _, tail in result_frames(received[1:])
            if tail is not None
        ]
        assert outputs_of_tails == [[1], [2], [3], [4]]
    else:
        assert tails == []
        assert not any(m in requests for m in received[1:])


def test_an_image_the_node_made_and_a_small_one_come_back_whole(
    server: LoopbackServer,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
    outputs: Outputs,
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
    assert [tail for _, _, tail in result_frames(made[1:])] == [None]
    assert [tail for _, _, tail in result_frames(passed[1:])] == [None]
    (gray,) = outputs(made[1:])
    assert gray.payload.image.shape[:2] == color.image.shape[:2]
    (same,) = outputs(passed[1:])
    assert np.array_equal(same.payload.image, small.image)


def test_a_warp_receives_tails_and_emits_what_the_node_emits_locally(
    server: LoopbackServer, run_frames: Callable[..., Pipeline]
) -> None:
    inputs = [frame_image(seed) for seed in range(6)]
    comparison = compare_node("identity", inputs=inputs, server=server)
    assert len(comparison.remote.messages) == 6
    assert comparison.equal, comparison.diff()
    # 1080p test-pattern frames at window 8, with array_refs off (with it on they are
    # named, not sent back: test_array_refs.py): frames coalesced and in parts or not,
    # every output comes back as a tail, in order, and the server counts them.
    pipeline = run_frames(server.target, 8, 12, SESSION_TIMEOUT_S, array_refs=False)
    stream = pipeline.nodes["node"]._conns[0].stream
    messages = pipeline.nodes["out"].messages
    assert [m.payload.image.shape for m in messages] == [(1080, 1920, 3)] * 12
    # A request sent alone goes in parts (decision 0012) and comes back whole: only the
    # ones written while others were in flight can come back as tails.
    assert 0 < stream.tails_in <= 12
    stats = admin.server_stats(server.target)
    rows = [n for n in stats.nodes if n["client"].startswith("node@")]
    assert sum(n["tails"] for n in rows) >= stream.tails_in


@pytest.fixture(scope="module")
def shared_latest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    plugins = tmp_path_factory.mktemp("tail-plugins")
    (plugins / "latest.py").write_text(LATEST, encoding="utf-8")
    with LoopbackServer(
        ["--plugins", str(plugins), "--allow", "latest", "--sessions", "shared"]
    ) as s:
        yield s


def test_an_image_of_another_session_never_goes_back_as_a_tail(
    shared_latest: LoopbackServer,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
    outputs: Outputs,
) -> None:
    # One shared instance: session A's image comes out in session B's answer.  A's
    # request frame holds A's own head (here its origin field), so it must not travel
    # to B as B's tail: B gets the image in a whole frame, and none of A's bytes.
    image = frame_image(21)
    request = spb.Request(seq=1, origin="session-A-private-origin")
    WireEncoder().message(Message(image), request.message)
    a_frame = join_requests([EncodedItem(1, request.SerializeToString(), [image.image], 0)])
    assert b"session-A-private-origin" in a_frame
    first = raw_session(
        shared_latest.target,
        [open_frame("a", name="latest", mark="latest", frame_tails=True), a_frame],
    )
    assert outputs(first[1:]) == []  # nothing held before it
    b_frame = join_requests([encode_request(1, Message(frame_image(22)))])
    # B and C read tails by reference as well: never one for an image not their own.
    second = raw_session(
        shared_latest.target,
        [open_frame("b", name="latest", mark="latest", frame_tails=True, tail_refs=True), b_frame],
    )
    (got,) = outputs(second[1:])
    assert np.array_equal(got.payload.image, image.image)
    assert [tail for _, _, tail in result_frames(second[1:])] == [None]
    assert not any(b"session-A-private-origin" in m for m in second)
    # B's image comes out in session C's answer: C sent equal bytes, but not that frame.
    third = raw_session(
        shared_latest.target,
        [open_frame("c", name="latest", mark="latest", frame_tails=True, tail_refs=True), b_frame],
    )
    assert [tail for _, _, tail in result_frames(third[1:])] == [None]

"""Tails by reference (decision 0016) against a real ``fontus serve``.

A client that says ``tail_refs`` in its Open gets an array its node passed on,
of the very request answered, back as that request's seq only
(``ServerFrame.tail_request``): nothing of the array travels back, and the
client reads its own array in its place.  An array the node made, an array of
another request, and a request that does not own its frame's last blob go back
as before.  A Warp asks for it unless ``array_refs`` is off; its outputs are
what the node emits locally, the very arrays it sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from fontus.core import ImagePayload, Message, ObjectPayload, Pipeline
from fontus.remote import admin
from fontus.remote._frames import (
    PART_BYTES,
    TAIL_MIN_BYTES,
    EncodedItem,
    PartAssembler,
    add_request_blob,
    add_tail,
    decode_frame,
    encode_request,
    item_decoder,
    join_requests,
    requests_in_parts,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer, compare_node, run_node

pytestmark = pytest.mark.timeout(60)

RawSession = Callable[[str, list[bytes]], list[bytes]]
SESSION_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["--allow", "identity,grayscale,delay"]) as s:
        yield s


def frame_image(seed: int, pixels: int = TAIL_MIN_BYTES // 3 + 1000) -> ImagePayload:
    rng = np.random.default_rng(seed)
    return ImagePayload.from_array(rng.integers(0, 256, (1, pixels, 3), dtype=np.uint8))


def read_results(
    messages: list[bytes], requests: dict[int, EncodedItem]
) -> list[tuple[int, int, Message[Any]]]:
    """(seq, the frame's tail_request, output) of each output in a session's messages,
    read as a Warp reads them: parts assembled, tails added, named blobs taken from
    ``requests`` (the client's own, by seq)."""
    assembler = PartAssembler(1 << 30)
    pending: tuple[Any, Any] | None = None
    out = []
    for data in messages:
        if pending is not None:
            frame, decoder = pending
            pending = None
            decoder = add_tail(decoder, data, frame.tail_skip)
        else:
            whole = assembler.add(data)
            if whole is None:
                continue
            frame = spb.ServerFrame()
            decoder = decode_frame(whole, frame)
            if frame.tail_skip:
                pending = frame, decoder
                continue
            if frame.tail_request:
                own = requests[frame.tail_request]
                decoder = add_request_blob(decoder, own.blobs[-1], frame.tail_request)
        if frame.WhichOneof("kind") != "results":
            continue
        for r in frame.results.items:
            if r.WhichOneof("kind") == "output":
                message = item_decoder(decoder, r.blob_base).message(r.output.message)
                out.append((r.seq, frame.tail_request, message))
    assert pending is None
    return out


def session_rows(target: str, client: str) -> list[dict[str, Any]]:
    return [n for n in admin.server_stats(target).nodes if n["client"] == client]


def test_an_image_of_the_request_answered_goes_back_as_its_seq(
    server: LoopbackServer, open_frame: Callable[..., bytes], raw_session: RawSession
) -> None:
    # Three requests, each in a frame of its own: whole, and in parts (a frame sent
    # alone, decision 0012).  Every output names its request; the server sends a few
    # hundred bytes per answer instead of the array.
    requests = {
        1: encode_request(1, Message(frame_image(1))),
        2: encode_request(2, Message(frame_image(2, pixels=PART_BYTES // 3 + 1000))),
        3: encode_request(3, Message(frame_image(3))),
    }
    frames = [
        join_requests([requests[1]]),
        *requests_in_parts([requests[2]]),
        join_requests([requests[3]]),
    ]
    assert len(frames) > 3  # request 2 went in parts
    opened = open_frame("refs", frame_parts=True, frame_tails=True, tail_refs=True)
    received = raw_session(server.target, [opened, *frames])
    got = read_results(received[1:], requests)
    assert [(seq, named) for seq, named, _ in got] == [(1, 1), (2, 2), (3, 3)]
    for seq, _, message in got:
        sent = requests[seq].blobs[-1]
        assert np.array_equal(message.payload.image, sent)
        assert np.shares_memory(message.payload.image, sent)  # the client's own array
    assert sum(len(m) for m in received) < 3 * 1024
    (row,) = session_rows(server.target, "refs")
    assert (row["tail_refs"], row["tails"]) == (3, 0)


def test_without_tail_refs_the_same_requests_come_back_in_full(
    server: LoopbackServer, open_frame: Callable[..., bytes], raw_session: RawSession
) -> None:
    requests = {1: encode_request(1, Message(frame_image(4)))}
    opened = open_frame("no-refs", frame_tails=True)
    received = raw_session(server.target, [opened, join_requests([requests[1]])])
    ((seq, named, message),) = read_results(received[1:], requests)
    assert (seq, named) == (1, 0)
    assert np.array_equal(message.payload.image, requests[1].blobs[-1])
    assert not np.shares_memory(message.payload.image, requests[1].blobs[-1])
    assert sum(len(m) for m in received) > TAIL_MIN_BYTES
    (row,) = session_rows(server.target, "no-refs")
    assert (row["tail_refs"], row["tails"]) == (0, 1)


def test_an_image_the_node_made_is_sent_in_full(
    server: LoopbackServer, open_frame: Callable[..., bytes], raw_session: RawSession
) -> None:
    requests = {1: encode_request(1, Message(frame_image(5)))}
    opened = open_frame("made", name="gray", mark="grayscale", frame_tails=True, tail_refs=True)
    received = raw_session(server.target, [opened, join_requests([requests[1]])])
    ((_, named, message),) = read_results(received[1:], requests)
    assert named == 0
    image = requests[1].blobs[-1]
    assert message.payload.image.shape[:2] == image.shape[:2]
    assert not np.shares_memory(message.payload.image, image)
    (row,) = session_rows(server.target, "made")
    assert row["tail_refs"] == 0


def test_only_the_request_owning_its_frame_s_last_blob_is_named(
    server: LoopbackServer, open_frame: Callable[..., bytes], raw_session: RawSession
) -> None:
    # Frame 1: a large image, then a request without arrays: the frame's last blob is
    # not the last request's, so the image goes back in full.  Frame 2: a small image,
    # then a large one: the large one's blobs come after the other's (blob_base > 0),
    # so it is named; the small one's output is an ordinary array.
    requests = {
        1: encode_request(1, Message(frame_image(6))),
        2: encode_request(2, Message(ObjectPayload({"note": "no arrays"}))),
        3: encode_request(3, Message(frame_image(7, pixels=1000))),
        4: encode_request(4, Message(frame_image(8))),
    }
    frames = [join_requests([requests[1], requests[2]]), join_requests([requests[3], requests[4]])]
    opened = open_frame("mixed", frame_tails=True, tail_refs=True)
    received = raw_session(server.target, [opened, *frames])
    got = {seq: (named, message) for seq, named, message in read_results(received[1:], requests)}
    assert sorted(got) == [1, 2, 3, 4]
    assert got[1][0] == 0 and got[4][0] == 4
    assert got[2][1].payload == ObjectPayload({"note": "no arrays"})
    for seq in (1, 3, 4):
        assert np.array_equal(got[seq][1].payload.image, requests[seq].blobs[-1])
    assert np.shares_memory(got[4][1].payload.image, requests[4].blobs[-1])
    assert not np.shares_memory(got[1][1].payload.image, requests[1].blobs[-1])


def test_a_warp_gets_its_own_arrays_back_as_a_local_node_gives_them(
    server: LoopbackServer, run_frames: Callable[..., Pipeline]
) -> None:
    # Locally, identity passes the very array on; remotely, with array_refs on (the
    # default), the output's array is the input's memory as well, read-only.
    inputs = [frame_image(seed) for seed in range(10, 14)]
    comparison = compare_node("identity", inputs=inputs, server=server)
    assert comparison.equal, comparison.diff()
    outputs = comparison.remote.messages
    assert len(outputs) == 4
    for sent, message in zip(inputs, outputs, strict=True):
        assert np.shares_memory(message.payload.image, sent.image)
        assert not message.payload.image.flags.writeable
    # 1080p at window 8: every output named, none sent back; a few hundred bytes each.
    pipeline = run_frames(server.target, 8, 12, SESSION_TIMEOUT_S)
    warp = pipeline.nodes["node"]
    stream = warp._conns[0].stream
    assert [m.payload.image.shape for m in pipeline.nodes["out"].messages] == [(1080, 1920, 3)] * 12
    assert (stream.tail_refs_in, stream.tails_in) == (12, 0)
    assert warp.stats_extra()["bytes_in"] < 12 * 1024
    # array_refs off: the arrays come back in full.
    full = run_frames(server.target, 8, 12, SESSION_TIMEOUT_S, array_refs=False)
    assert full.nodes["node"]._conns[0].stream.tail_refs_in == 0
    assert full.nodes["node"].stats_extra()["bytes_in"] > 12 * 1920 * 1080 * 3


def test_a_late_answer_naming_a_request_the_warp_gave_up_on_is_dropped(
    server: LoopbackServer,
) -> None:
    # The node takes 0.3 s and the Warp waits 0.1 s: the first request runs and its
    # output, naming it, arrives after the Warp gave it up (the others miss their
    # deadline on the server).  The late output is counted and dropped; the session
    # goes on: no reconnect, and the pipeline ends normally.
    inputs = [frame_image(seed) for seed in range(20, 23)]
    remote = {"target": server.target, "window": 4, "timeout": 0.1}
    run = run_node("delay", {"seconds": 0.3}, inputs=inputs, remote=remote)
    assert run.result.state == "done", run.result
    assert len(run.messages) == 0
    extra = run.result.stats["node"].extra
    assert extra is not None
    assert extra["timeouts"] == 3 and extra["late"] >= 3
    assert extra["reconnects"] == 0
    rows = [n for n in admin.server_stats(server.target).nodes if n["session"] == extra["session"]]
    assert [n["tail_refs"] for n in rows] == [1]

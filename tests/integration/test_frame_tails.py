"""Result frames with a tail (decision 0015) against a real ``fontus serve``.

A client that says ``frame_tails`` in its Open gets an array its node passed on
back without the server copying it: a result frame whose message ends with
``tail_skip``, then the request frame exactly as the client sent it. A client
that does not say it gets whole frames, and so does an output the node made
itself. A Warp asks for tails; what its node emits is what it emits locally.

A client that says ``tail_refs`` gets an array of the very request answered
back as that request's seq only (decision 0016; see the second half).

A client whose array already is the end of a ``bytes`` sends it as its request
frame's tail (``ClientFrame.tail_size``, decision 0017; the last part), and a
client that says ``sized_tails`` gets such arrays back the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from fontus.core import ImagePayload, Message, ObjectPayload, Pipeline
from fontus.remote import admin
from fontus.remote._frames import (
    PART_BYTES,
    TAIL_MIN_BYTES,
    EncodedItem,
    attach_request_tail,
    control_frame,
    encode_request,
    item_decoder,
    join_requests,
    requests_in_parts,
    requests_with_tail,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.codec import WireEncoder
from fontus.testing import LoopbackServer, compare_node, run_node

pytestmark = pytest.mark.timeout(60)

#: The ``raw_session`` fixture: a raw Session stream's messages as received.
RawSession = Callable[[str, list[bytes]], list[bytes]]
#: The ``result_frames`` and ``outputs`` fixtures: a raw session's result frames
#: (parts assembled, tails added) with their decoders and tails, and their outputs.
ResultFrames = Callable[..., Iterator[tuple[Any, Any, bytes | None]]]
Outputs = Callable[..., list[Message[Any]]]
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
    with LoopbackServer(["--allow", "identity,gain,grayscale,delay"]) as s:
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

    # B and C read tails by reference and by size as well: never one for an image not
    # their own.
    def latest_session(client: str) -> list[bytes]:
        opened = open_frame(
            client, name="latest", mark="latest", frame_tails=True, tail_refs=True, sized_tails=True
        )
        return raw_session(shared_latest.target, [opened, b_frame])

    second = latest_session("b")
    (got,) = outputs(second[1:])
    assert np.array_equal(got.payload.image, image.image)
    assert [tail for _, _, tail in result_frames(second[1:])] == [None]
    assert not any(b"session-A-private-origin" in m for m in second)
    # B's image comes out in session C's answer: C sent equal bytes, but not that frame.
    third = latest_session("c")
    assert [tail for _, _, tail in result_frames(third[1:])] == [None]


# -- tails by reference (decision 0016) ---------------------------------------------
# A client that says tail_refs gets an array its node passed on, of the very request
# answered, back as that request's seq only (ServerFrame.tail_request): nothing of the
# array travels back, and the client reads its own array in its place.  An array the
# node made, an array of another request, and a request that does not own its frame's
# last blob go back as before.  A Warp asks for it unless array_refs is off.
#: The ``named_session`` fixture: (client, requests by seq, frames or None, Open flags)
#: -> (every message the server sent, (seq, its frame's tail_request, output) of each
#: output, named blobs read from the requests).
NamedSession = Callable[..., tuple[list[bytes], list[tuple[int, int, Message[Any]]]]]


@pytest.fixture
def named_session(
    server: LoopbackServer,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
) -> NamedSession:
    """A raw session to ``server`` sending ``frames`` (by default each request in a frame
    of its own) after an Open with ``flags``; what came back, and its outputs."""

    def run(
        client: str,
        requests: dict[int, EncodedItem],
        frames: list[bytes] | None = None,
        **flags: Any,
    ) -> tuple[list[bytes], list[tuple[int, int, Message[Any]]]]:
        if frames is None:
            frames = [join_requests([r]) for r in requests.values()]
        received = raw_session(server.target, [open_frame(client, **flags), *frames])
        got = [
            (
                r.seq,
                frame.tail_request,
                item_decoder(decoder, r.blob_base).message(r.output.message),
            )
            for frame, decoder, _ in result_frames(received[1:], requests)
            for r in frame.results.items
            if r.WhichOneof("kind") == "output"
        ]
        return received, got

    return run


def session_rows(target: str, client: str) -> list[dict[str, Any]]:
    return [n for n in admin.server_stats(target).nodes if n["client"] == client]


def test_an_image_of_the_request_answered_goes_back_as_its_seq(
    server: LoopbackServer, named_session: NamedSession
) -> None:
    # Three requests, each in a frame of its own: whole, and in parts (a frame sent
    # alone, decision 0012).  Every output names its request; the server sends a few
    # hundred bytes per answer instead of the array.  The client reads no tails
    # (frame_tails off): naming needs only tail_refs.
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
    received, got = named_session("refs", requests, frames, frame_parts=True, tail_refs=True)
    assert [(seq, named) for seq, named, _ in got] == [(1, 1), (2, 2), (3, 3)]
    for seq, _, message in got:
        sent = requests[seq].blobs[-1]
        assert np.array_equal(message.payload.image, sent)
        assert np.shares_memory(message.payload.image, sent)  # the client's own array
    assert sum(len(m) for m in received) < 3 * 1024
    (row,) = session_rows(server.target, "refs")
    assert (row["tail_refs"], row["tails"]) == (3, 0)


def test_without_tail_refs_the_same_requests_come_back_in_full(
    server: LoopbackServer, named_session: NamedSession
) -> None:
    requests = {1: encode_request(1, Message(frame_image(4)))}
    received, ((seq, named, message),) = named_session("no-refs", requests, frame_tails=True)
    assert (seq, named) == (1, 0)
    assert np.array_equal(message.payload.image, requests[1].blobs[-1])
    assert not np.shares_memory(message.payload.image, requests[1].blobs[-1])
    assert sum(len(m) for m in received) > TAIL_MIN_BYTES
    (row,) = session_rows(server.target, "no-refs")
    assert (row["tail_refs"], row["tails"]) == (0, 1)


def test_an_image_the_node_made_is_sent_in_full(
    server: LoopbackServer, named_session: NamedSession
) -> None:
    requests = {1: encode_request(1, Message(frame_image(5)))}
    _, ((_, named, message),) = named_session(
        "made-named", requests, name="gray", mark="grayscale", frame_tails=True, tail_refs=True
    )
    assert named == 0
    image = requests[1].blobs[-1]
    assert message.payload.image.shape[:2] == image.shape[:2]
    assert not np.shares_memory(message.payload.image, image)
    (row,) = session_rows(server.target, "made-named")
    assert row["tail_refs"] == 0


def test_only_the_request_owning_its_frame_s_last_blob_is_named(
    named_session: NamedSession,
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
    _, named = named_session("mixed", requests, frames, frame_tails=True, tail_refs=True)
    got = {seq: (by, message) for seq, by, message in named}
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


# -- tails by size (decision 0017) --------------------------------------------------
# A request whose last array is the end of a bytes object goes as a message and that
# object (ClientFrame.tail_size): the client copies nothing.  A client that says
# sized_tails gets it back the same way: the server copies nothing either.
def over_bytes(seed: int, before: bytes = b"") -> tuple[bytes, ImagePayload]:
    """An image over a bytes object (``before`` its first bytes), and that object."""
    image = frame_image(seed).image
    raw = before + image.tobytes()
    array = np.frombuffer(raw, np.uint8)[len(before) :].reshape(image.shape)
    return raw, ImagePayload.from_array(array)


def tailed_request(seq: int, payload: ImagePayload) -> tuple[bytes, bytes]:
    item = encode_request(seq, Message(payload))
    assert attach_request_tail(item)
    return requests_with_tail([item], item)


@pytest.mark.parametrize("sized", [True, False], ids=["client reads sized tails", "not"])
def test_a_request_tail_is_read_and_handed_back_uncopied(
    server: LoopbackServer,
    sized: bool,
    open_frame: Callable[..., bytes],
    raw_session: RawSession,
    result_frames: ResultFrames,
) -> None:
    # Three requests over bytes, one with 1000 bytes before its array (sent, not read).
    sent = [over_bytes(30), over_bytes(31, before=b"x" * 1000), over_bytes(32)]
    client = f"sized-{sized}"
    messages = [open_frame(client, frame_tails=True, sized_tails=sized, window=4)]
    for seq, (_, payload) in enumerate(sent, 1):
        messages.extend(tailed_request(seq, payload))
    received = raw_session(server.target, messages)
    frames = list(result_frames(received[1:]))
    got = [
        item_decoder(decoder, r.blob_base).message(r.output.message)
        for frame, decoder, _ in frames
        for r in frame.results.items
        if r.WhichOneof("kind") == "output"
    ]
    assert len(got) == 3
    for message, (_, payload) in zip(got, sent, strict=True):
        assert np.array_equal(message.payload.image, payload.image)
    (row,) = session_rows(server.target, client)
    assert row["requests"] == 3
    tails = [tail for _, _, tail in frames if tail is not None]
    if sized:
        # Each comes back as the very bytes it went in, the bytes before it included.
        assert tails == [raw for raw, _ in sent]
        assert [f.tail_size for f, _, t in frames if t is not None] == [sent[0][1].image.nbytes] * 3
        assert row["tails"] == 3
    else:
        # A client that reads tail_skip only: no blob field precedes these arrays in
        # their tails, so they come back in whole frames.
        assert tails == [] and row["tails"] == 0


def test_a_request_tail_after_a_request_without_arrays_is_named(
    named_session: NamedSession,
) -> None:
    # The request before has no arrays, so the tailed request's blob_base is 0; its tail
    # is still its own (a tail always is the last request's): its answer names it.
    note = encode_request(1, Message(ObjectPayload({"note": "no arrays"})))
    image = encode_request(2, Message(over_bytes(34)[1]))
    assert attach_request_tail(image)
    received, got = named_session(
        "tail-named",
        {1: note, 2: image},
        list(requests_with_tail([note, image], image)),
        frame_tails=True,
        sized_tails=True,
        tail_refs=True,
    )
    assert [seq for seq, _, _ in got] == [1, 2]
    assert got[0][2].payload == ObjectPayload({"note": "no arrays"})
    assert got[1][1] == 2  # its frame names request 2
    assert np.shares_memory(got[1][2].payload.image, image.blobs[-1])
    assert sum(len(m) for m in received) < 2048  # nothing of the image came back


def test_a_broken_request_tail_ends_its_session_only(
    server: LoopbackServer, open_frame: Callable[..., bytes], raw_session: RawSession
) -> None:
    payload = over_bytes(33)[1]
    message, tail = tailed_request(1, payload)
    configure = spb.ClientFrame()
    configure.configure.seq = 1
    configure.tail_size = 5
    cases = {
        "a tail shorter than its size": (
            [message, tail[:100]],
            f"malformed frame: tail_size {payload.image.nbytes} is beyond the 100 bytes of "
            "the frame's tail",
        ),
        "tail_size on a Configure": (
            [control_frame(configure)],
            "malformed frame: tail_size on a configure frame; only a frame carrying "
            "requests may have a tail",
        ),
        "no tail before half-close": (
            [message],
            "the client half-closed with a frame whose tail (tail_size) never came",
        ),
    }
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    for name, (frames, error) in cases.items():
        with grpc.insecure_channel(server.target, options=options) as channel:
            call = channel.stream_stream("/fontus.v1.Remote/Session")(
                iter([open_frame(f"broken-{len(frames)}"), *frames]), timeout=SESSION_TIMEOUT_S
            )
            with pytest.raises(grpc.RpcError) as info:
                list(call)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert error in info.value.details(), (name, info.value.details())
    # The server goes on: a good session right after.
    received = raw_session(server.target, [open_frame("after-broken"), message, tail])
    assert len(received) > 1


def run_raw_frames(
    build: Callable[..., Pipeline],
    targets: list[str],
    size: tuple[int, int],
    window: int,
    array_refs: bool = False,
) -> tuple[Pipeline, list[Any]]:
    """12 frames over bytes through a chain of remote identities (one per target, named
    ``hop0``, ``hop1``...); the pipeline, run, and each hop's stream.  Checks that every
    frame arrives whole and in order."""
    width, height = size
    hops = [f"hop{i}" for i in range(len(targets))]
    remote = {"window": window, "array_refs": array_refs}
    nodes = [
        {
            "name": "cam",
            "mark": "raw_frames",
            "configuration": {"width": width, "height": height, "frames": RAW_FRAMES},
        },
        *(
            {"name": hop, "mark": "identity", "remote": {**remote, "target": target}}
            for hop, target in zip(hops, targets, strict=True)
        ),
        {"name": "out", "mark": "collect"},
    ]
    chain = ["cam", *hops, "out"]
    pipeline = build(nodes, list(itertools.pairwise(chain)), run_for=SESSION_TIMEOUT_S)
    got = pipeline.nodes["out"].messages
    assert len(got) == RAW_FRAMES
    for i, message in enumerate(got):
        image = message.payload.image
        assert image.shape == (height, width, 3)
        assert int(image[0, 0, 0]) == i and int(image[-1, -1, -1]) == (width * 3 - 1 + i) % 256
    return pipeline, [pipeline.nodes[hop]._conns[0].stream for hop in hops]


#: Frames of a raw_frames run.
RAW_FRAMES = 12


def test_a_warp_sends_arrays_over_bytes_and_forwards_what_it_received_uncopied(
    server: LoopbackServer,
    catalogue_server: LoopbackServer,
    build_pipeline: Callable[..., Pipeline],
) -> None:
    # 720p frames over bytes through a remote identity at window 8 (array_refs off, so
    # they come back): every request goes as its frame's tail, the first one too (sent
    # alone: two parts would gain less than the copy costs), and every answer comes
    # back as one.  Then a second remote identity on another server: what the first
    # Warp emits is the end of a frame it received, so it goes on uncopied too.
    targets = [server.target, catalogue_server.target]
    pipeline, (a, b) = run_raw_frames(build_pipeline, targets, (1280, 720), 8)
    assert (a.tails_out, a.tails_in) == (RAW_FRAMES, RAW_FRAMES)
    assert (b.tails_out, b.tails_in) == (RAW_FRAMES, RAW_FRAMES)
    # The Warps' stats (and their metrics) say so.
    for hop in ("hop0", "hop1"):
        extra = pipeline.nodes[hop].stats_extra()
        assert (extra["tails_out"], extra["tails_in"], extra["tail_refs"]) == (12, 12, 0)
    # With array_refs on (the default), at window 1: the requests still go as tails,
    # and every answer names its request: nothing of the arrays comes back.
    _, (a,) = run_raw_frames(build_pipeline, targets[:1], (1280, 720), 1, array_refs=True)
    assert (a.tails_out, a.tail_refs_in, a.tails_in) == (RAW_FRAMES, RAW_FRAMES, 0)


def test_a_large_frame_sent_alone_goes_in_parts_even_over_bytes(
    server: LoopbackServer, build_pipeline: Callable[..., Pipeline]
) -> None:
    # 1080p at window 1: every frame travels alone and takes three parts or more, whose
    # copies overlap with the travel of the part before; that shortens the round trip
    # more than the saved copy (stream.PARTS_OVER_TAIL_BYTES).  The server assembles
    # most of them in a buffer of its own, no bytes object, so most answers come back
    # whole (a first frame is joined into bytes and may come back as a tail).
    _, (a,) = run_raw_frames(build_pipeline, [server.target], (1920, 1080), 1)
    assert a.tails_out == 0 and a.tails_in < RAW_FRAMES
    session = a.opened.session_id
    (row,) = [n for n in admin.server_stats(server.target).nodes if n["session"] == session]
    assert row["requests"] == RAW_FRAMES and row["tails"] == a.tails_in

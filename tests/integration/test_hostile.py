"""Hostile input against real ``fontus serve`` processes, on a raw gRPC channel.

Frames are built by hand (generated classes, plus a helper that lays out
blobs) and sent as bytes on ``/fontus.v1.Remote/Session``.  Every case gets a
precise status and a detail naming the problem; a bad message inside a
request fails that request only (``Failed{FAIL_INVALID_MESSAGE}``) and the
session goes on.  Throughout, a well-behaved session opened first keeps
streaming and finishes exactly, the server stays up, and its threads and
memory stay bounded.  ``docs/limits.md`` lists the same cases.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from fontus.core.message import Message
from fontus.core.payloads import BytesPayload, ObjectPayload
from fontus.remote import admin
from fontus.remote._frames import decode_frame, encode_request, item_decoder, join_requests
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.remote.codec import WireEncoder
from fontus.testing import LoopbackServer

SESSION = "/fontus.v1.Remote/Session"
#: Bound of one hostile session: each ends in milliseconds; 10 s only catches a hang.
SESSION_TIMEOUT_S = 10.0
#: How long the healthy session may go without a Done before it counts as harmed.
PROGRESS_TIMEOUT_S = 5.0
#: Limits of the main server: small, so that each case costs little to build.
MAX_WINDOW = 4
MAX_MESSAGE_MB = 2
MAX_ELEMENTS = 1_000_000
MAX_DEPTH = 8
MAIN_ARGS = [
    "--allow",
    "identity,delay,gain",
    "--max-sessions",
    "16",
    "--max-window",
    str(MAX_WINDOW),
    "--max-message-mb",
    str(MAX_MESSAGE_MB),
    "--max-array-elements",
    str(MAX_ELEMENTS),
    "--max-depth",
    str(MAX_DEPTH),
]
#: Threads of the pool that builds nodes for Opens (asyncio's default executor): it
#: grows on demand up to this size and keeps its threads.
BUILD_POOL_THREADS = min(32, (os.cpu_count() or 1) + 4)
#: Growth of the server's resident memory allowed across the floods: generous, and
#: still far below what the floods would cost if the server buffered them.
RSS_GROWTH_BOUND_MB = 200


# -- frames, by hand --------------------------------------------------------------------
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def blob_field(data: bytes, declared: int | None = None) -> bytes:
    """One ``blobs`` entry (field 15) as the frame layer appends it; ``declared`` may lie."""
    return bytes([(15 << 3) | 2]) + varint(len(data) if declared is None else declared) + data


def open_frame(
    mark: str = "identity",
    *,
    window: int = MAX_WINDOW,
    configuration: dict[str, Any] | None = None,
    compression: str = "",
    value_formats: Iterable[str] = (),
) -> bytes:
    frame = spb.ClientFrame()
    op = frame.open
    op.client = "hostile-test"
    op.window = window
    op.protocol_version = 1
    op.compression = compression
    op.value_formats.extend(value_formats)
    if mark:
        op.node.name = mark
        op.node.mark = mark
        op.node.configuration.SetInParent()
        WireEncoder().value_map(configuration or {}, op.node.configuration, "configuration")
    return frame.SerializeToString()


def good_request(seq: int, payload: Any = None) -> bytes:
    message = Message(payload if payload is not None else ObjectPayload({"i": seq}))
    return join_requests([encode_request(seq, message)])


def raw_request(
    seq: int, fill: Callable[[Any], None], *blobs: bytes, blob_base: int = 0, target: str = ""
) -> bytes:
    """A one-request frame whose message ``fill`` writes field by field, then ``blobs``."""
    frame = spb.ClientFrame()
    item = frame.requests.items.add(seq=seq, blob_base=blob_base, target=target)
    fill(item.message)
    return frame.SerializeToString() + b"".join(blob_field(b) for b in blobs)


def audio(
    dtype: str,
    shape: Iterable[int],
    *,
    blob: int | None = None,
    inline: bytes | None = None,
    compression: int = 0,
    raw_size: int = 0,
) -> Callable[[Any], None]:
    def fill(message: Any) -> None:
        payload = message.payload.audio
        payload.sampling_rate = 16000
        payload.channels = 1
        array = payload.audio
        array.dtype = dtype
        array.shape.extend(shape)
        if blob is not None:
            array.blob = blob
        if inline is not None:
            array.inline = inline
        array.compression = compression  # type: ignore[assignment]
        array.raw_size = raw_size

    return fill


def nested_lists(lists: int) -> Callable[[Any], None]:
    """An object payload ``{"x": [[...[1]...]]}``: one map and ``lists`` lists deep."""

    def fill(message: Any) -> None:
        data = message.payload.object.data
        data.kinds = b"m" + b"l" * lists + b"i"
        data.keys.append("x")
        data.ints.extend([1] * (lists + 2))  # the map's length, each list's, the int

    return fill


def packed_tree(raw: bytes) -> Callable[[Any], None]:
    """An object payload whose value tree is the MessagePack document ``raw``."""

    def fill(message: Any) -> None:
        message.payload.object.data.msgpack = raw

    return fill


def nested_batches(levels: int) -> Callable[[Any], None]:
    def fill(message: Any) -> None:
        for _ in range(levels):
            message = message.payload.batch.messages.add()
        message.payload.bytes.inline = b"x"

    return fill


def configure_frame(seq: int) -> bytes:
    frame = spb.ClientFrame()
    frame.configure.seq = seq
    WireEncoder().value_map({"factor": 2.0}, frame.configure.changes, "changes")
    return frame.SerializeToString()


# -- sessions on a raw channel ------------------------------------------------------------
@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    frames: list[tuple[Any, Any]] = field(default_factory=list)

    def results(self) -> list[tuple[int, str, int, str]]:
        """``(seq, kind, fail code, detail)`` of every result, in order."""
        out = []
        for frame, _ in self.frames:
            if frame.WhichOneof("kind") == "results":
                for r in frame.results.items:
                    kind = r.WhichOneof("kind")
                    out.append((r.seq, kind, r.failed.code, r.failed.detail))
        return out

    def outputs(self) -> list[Message[Any]]:
        return [
            item_decoder(decoder, r.blob_base).message(r.output.message)
            for frame, decoder in self.frames
            if frame.WhichOneof("kind") == "results"
            for r in frame.results.items
            if r.WhichOneof("kind") == "output"
        ]


def parse(data: bytes) -> tuple[Any, Any]:
    frame = spb.ServerFrame()
    return frame, decode_frame(data, frame)


def channel(target: str) -> grpc.Channel:
    # The client may send more than the server accepts: the server must say no, not the client.
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return grpc.insecure_channel(target, options=options)


def session(target: str, frames: Iterable[bytes], timeout: float = SESSION_TIMEOUT_S) -> Outcome:
    """Send ``frames``, half-close, and collect everything until the status."""
    with channel(target) as ch:
        call = ch.stream_stream(SESSION)(iter(frames), timeout=timeout)
        received: list[tuple[Any, Any]] = []
        try:
            for data in call:
                received.append(parse(data))
        except grpc.RpcError as exc:
            return Outcome(exc.code(), exc.details() or "", received)
        return Outcome(call.code(), call.details() or "", received)


class HeldSession:
    """A session kept open (its request stream waits) until :meth:`release`."""

    def __init__(self, target: str, first: bytes, after: Iterable[bytes] = ()) -> None:
        self._release = threading.Event()
        self.first = first
        self.after = list(after)
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self._channel = channel(target)
        self.call = self._channel.stream_stream(SESSION)(self._frames(), timeout=30.0)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _frames(self) -> Iterator[bytes]:
        yield self.first
        yield from self.after
        self._release.wait(30.0)

    def _read(self) -> None:
        try:
            for data in self.call:
                if parse(data)[0].WhichOneof("kind") == "opened":
                    self.opened.set()
            self.code = self.call.code()
        except grpc.RpcError as exc:
            self.code = exc.code()
            self.details = exc.details() or ""
        finally:
            self.ended.set()

    def wait(self, timeout: float = SESSION_TIMEOUT_S) -> bool:
        """True once the session is open or has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened.is_set() or self.ended.is_set():
                return True
            time.sleep(0.01)
        return False

    def cancel(self) -> None:
        """Disconnect abruptly, mid-stream."""
        self.call.cancel()
        self._release.set()
        self._thread.join(SESSION_TIMEOUT_S)
        self._channel.close()

    def release(self) -> None:
        self._release.set()
        self._thread.join(SESSION_TIMEOUT_S)
        self._channel.close()


class HealthySession:
    """A well-behaved client streaming numbered objects through ``identity``."""

    def __init__(self, target: str, window: int = 2, pace_s: float = 0.01) -> None:
        self.window = window
        self.pace_s = pace_s
        self.room = threading.Semaphore(window)
        self.stop = threading.Event()
        self.sent = 0
        self.outputs: list[tuple[int, Any]] = []
        self.done: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self._channel = channel(target)
        self.call = self._channel.stream_stream(SESSION)(self._frames(), timeout=120.0)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _frames(self) -> Iterator[bytes]:
        yield open_frame("identity", window=self.window)
        while not self.stop.is_set():
            if not self.room.acquire(timeout=0.05):
                continue
            self.sent += 1
            yield good_request(self.sent)
            time.sleep(self.pace_s)

    def _read(self) -> None:
        try:
            for data in self.call:
                frame, decoder = parse(data)
                if frame.WhichOneof("kind") != "results":
                    continue
                for r in frame.results.items:
                    kind = r.WhichOneof("kind")
                    if kind == "output":
                        message = item_decoder(decoder, r.blob_base).message(r.output.message)
                        self.outputs.append((r.seq, message.payload["i"]))
                    elif kind == "done":
                        self.done.append(r.seq)
                        self.room.release()
                    else:
                        self.failed.append((r.seq, r.failed.detail))
                        self.room.release()
            self.code = self.call.code()
        except grpc.RpcError as exc:
            self.code = exc.code()
            self.details = exc.details() or ""

    def assert_progressing(self) -> None:
        """New requests complete after whatever happened so far."""
        before = len(self.done)
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while len(self.done) < before + 3:
            assert self.code is None, f"healthy session ended: {self.code} {self.details}"
            assert time.monotonic() < deadline, "healthy session made no progress"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(SESSION_TIMEOUT_S)
        self._channel.close()


# -- the servers ----------------------------------------------------------------------------
@dataclass
class Main:
    server: LoopbackServer
    healthy: HealthySession

    @property
    def target(self) -> str:
        return self.server.target

    def assert_unharmed(self) -> None:
        """The healthy session still streams, and the server still answers Describe."""
        self.healthy.assert_progressing()
        assert "identity" in [m.mark for m in admin.describe(self.target).marks]


@pytest.fixture(scope="module")
def main() -> Iterator[Main]:
    with LoopbackServer(MAIN_ARGS) as server:
        healthy = HealthySession(server.target)
        try:
            yield Main(server, healthy)
        finally:
            healthy.finish()


def status_of(pid: int) -> dict[str, str]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    return int(status_of(pid)[key].split()[0]) / 1024


def threads(pid: int) -> int:
    return int(status_of(pid)["Threads"])


def drain_quietly(call: Any) -> None:
    """Read a call's responses until it ends (here: by being cancelled)."""
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- frames that end the session ----------------------------------------------------------
OVERSIZED = good_request(1, BytesPayload(b"x" * (MAX_MESSAGE_MB * 1024 * 1024)))


def part(size: int, *, more: bool) -> bytes:
    """A hand-made frame part of ``size`` bytes (ClientFrame.part, with part_more if ``more``)."""
    return (b"\x68\x01" if more else b"") + b"\x72" + varint(size) + b"\0" * size


STREAM_ENDING = {
    "a frame in parts past --max-message-mb": (
        [
            open_frame(),
            part(1 << 20, more=True),
            part(1 << 20, more=True),
            part(1 << 20, more=False),
        ],
        "RESOURCE_EXHAUSTED",
        f"a frame in parts grew past 3145728 bytes, over the limit of {MAX_MESSAGE_MB << 20}",
    ),
    "a whole frame inside a frame in parts": (
        [open_frame(), part(3, more=True), good_request(1)],
        "INVALID_ARGUMENT",
        "malformed frame: a whole frame arrived after 1 part of another",
    ),
    "a part shorter than it declares": (
        [open_frame(), b"\x72\x05abc"],
        "INVALID_ARGUMENT",
        "malformed frame: malformed frame part: declares 5 bytes, carries 3",
    ),
    "garbage first frame": (
        [b"\x0f\x00garbage"],
        "INVALID_ARGUMENT",
        "malformed Open frame: malformed data: wire type 7 for top-level field 1",
    ),
    "garbage after Open": (
        [open_frame(), b"\xff\xff\xff"],
        "INVALID_ARGUMENT",
        "malformed frame: truncated data: a varint runs past the end of the frame",
    ),
    "truncated blob": (
        [
            open_frame(),
            raw_request(1, audio("<f4", [4], blob=0)) + blob_field(b"\0" * 10, declared=1000),
        ],
        "INVALID_ARGUMENT",
        "malformed frame: truncated data: blob 0 declares 1000 bytes but only 10 remain",
    ),
    "too many blobs": (
        [open_frame(), raw_request(1, audio("<f4", [0])) + blob_field(b"") * 4097],
        "INVALID_ARGUMENT",
        "malformed frame: too many blobs: more than 4096 in one frame",
    ),
    "request before Open": (
        [good_request(1)],
        "FAILED_PRECONDITION",
        "the first frame of a session must be Open",
    ),
    "second Open": (
        [open_frame(), open_frame()],
        "FAILED_PRECONDITION",
        "Open was sent twice on one session",
    ),
    "frame with no kind": (
        [open_frame(), spb.ClientFrame().SerializeToString()],
        "INVALID_ARGUMENT",
        "frame has no kind set",
    ),
    "reused sequence number": (
        [open_frame(), good_request(1), good_request(1)],
        "INVALID_ARGUMENT",
        "sequence number 1 is not above the previous one (1)",
    ),
    "out-of-order sequence number": (
        [open_frame(), good_request(5), good_request(3)],
        "INVALID_ARGUMENT",
        "sequence number 3 is not above the previous one (5)",
    ),
    "sequence number 0": (
        [open_frame(), good_request(0)],
        "INVALID_ARGUMENT",
        "sequence number 0 is not above the previous one (0)",
    ),
    "Configure reusing a request's seq": (
        [open_frame("gain"), good_request(2), configure_frame(2)],
        "INVALID_ARGUMENT",
        "sequence number 2 is not above the previous one (2)",
    ),
    "nesting beyond what protobuf parses": (
        [open_frame(), raw_request(1, nested_batches(120))],
        "INVALID_ARGUMENT",
        "malformed frame: malformed ClientFrame:",
    ),
    "flood beyond the window, frame by frame": (
        [
            open_frame("delay", configuration={"seconds": 5.0}),
            *(good_request(s) for s in range(1, 50)),
        ],
        "RESOURCE_EXHAUSTED",
        f"window exceeded: {MAX_WINDOW} requests in flight and the granted window is {MAX_WINDOW}",
    ),
    "flood beyond the window, in one frame": (
        [
            open_frame("delay", configuration={"seconds": 5.0}),
            join_requests(
                [encode_request(s, Message(ObjectPayload({"i": s}))) for s in range(1, 50)]
            ),
        ],
        "RESOURCE_EXHAUSTED",
        f"window exceeded: {MAX_WINDOW} requests in flight and the granted window is {MAX_WINDOW}",
    ),
    "message over the max message size": (
        [open_frame(), OVERSIZED],
        "RESOURCE_EXHAUSTED",
        f"Received message larger than max ({len(OVERSIZED)} vs. {MAX_MESSAGE_MB * 1024 * 1024})",
    ),
}


@pytest.mark.parametrize("case", list(STREAM_ENDING))
def test_a_protocol_violation_ends_only_its_session_with_a_precise_status(
    main: Main, case: str
) -> None:
    frames, code, detail = STREAM_ENDING[case]
    outcome = session(main.target, frames)
    assert outcome.code.name == code, outcome
    assert detail in outcome.details, outcome.details
    main.assert_unharmed()


# -- Opens that are refused -------------------------------------------------------------
OPEN_REFUSED = {
    "unknown mark": (
        open_frame("no_such_mark"),
        "PERMISSION_DENIED",
        "mark 'no_such_mark' is not allowed on this server; allowed: identity, delay, gain",
    ),
    "unknown argument": (
        open_frame("gain", configuration={"factr": 2.0}),
        "INVALID_ARGUMENT",
        "node 'gain': unknown argument 'factr' for mark 'gain'",
    ),
    "argument of the wrong type": (
        open_frame("delay", configuration={"seconds": "soon"}),
        "INVALID_ARGUMENT",
        "node 'delay': argument 'seconds' must be float, got str 'soon'",
    ),
    "argument the node refuses": (
        open_frame("delay", configuration={"seconds": -1.0}),
        "INVALID_ARGUMENT",
        "node 'delay' (mark 'delay') could not be built: ValueError: delay: seconds must be >= 0",
    ),
    "configuration nested deeper than the limit": (
        open_frame("gain", configuration={"factor": [[[[[[[[[1]]]]]]]]]}),
        "INVALID_ARGUMENT",
        f"values nested deeper than {MAX_DEPTH}",
    ),
    "no node and no graph": (
        open_frame(""),
        "INVALID_ARGUMENT",
        "Open names no node or graph",
    ),
    "unknown compression": (
        open_frame(compression="brotli"),
        "INVALID_ARGUMENT",
        "compression 'brotli' is not available on this server",
    ),
}


@pytest.mark.parametrize("case", list(OPEN_REFUSED))
def test_a_refused_open_ends_with_a_status_naming_the_problem(main: Main, case: str) -> None:
    frame, code, detail = OPEN_REFUSED[case]
    outcome = session(main.target, [frame])
    assert outcome.code.name == code, outcome
    assert detail in outcome.details, outcome.details
    assert outcome.frames == []
    main.assert_unharmed()


def test_a_graph_over_the_node_limit_is_refused(main: Main) -> None:
    frame = spb.ClientFrame()
    graph = frame.open.graph
    for i in range(300):
        graph.nodes.add(name=f"n{i}", mark="identity")
    outcome = session(main.target, [frame.SerializeToString()])
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "graph has 300 nodes, over the limit of 256" in outcome.details
    main.assert_unharmed()


def test_an_oversized_window_request_is_granted_the_cap(main: Main) -> None:
    outcome = session(main.target, [open_frame(window=1_000_000)])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.frames[0][0].opened.window == MAX_WINDOW


# -- bad messages inside a request: that request fails, the session goes on ----------------
def zstd_frame(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


REQUEST_FAILED = {
    "blob index out of range": (
        raw_request(1, audio("<f4", [4], blob=3), b"\0" * 16),
        "audio.audio: refers to blob 3 but the frame carries 1",
    ),
    "blob_base beyond the frame's blobs": (
        raw_request(1, audio("<f4", [4], blob=0), b"\0" * 16, blob_base=7),
        "request blob_base 7 is beyond the 1 blobs its frame carries",
    ),
    "shape beyond the element cap": (
        raw_request(1, audio("<f4", [2000, 2000])),
        f"audio.audio: shape (2000, 2000) has 4000000 elements, over the limit of {MAX_ELEMENTS}",
    ),
    "shape x dtype larger than the data": (
        raw_request(1, audio("<f4", [100], blob=0), b"\0" * 16),
        "audio.audio: 16 bytes do not match dtype <f4 x shape (100,) = 400 bytes",
    ),
    "negative dimension": (
        raw_request(1, audio("<f4", [4, -4])),
        "audio.audio: shape (4, -4) has a negative dimension",
    ),
    "object dtype": (
        raw_request(1, audio("O", [1], inline=b"\0" * 8)),
        "audio.audio: dtype 'O' is an object dtype; objects never travel",
    ),
    "unknown dtype": (
        raw_request(1, audio("<q9", [1], inline=b"\0" * 8)),
        "audio.audio: unknown dtype '<q9'",
    ),
    "structured dtype": (
        raw_request(1, audio("[('a', '<f4')]", [1], inline=b"\0" * 4)),
        "is not a plain dtype string like '<f4'",
    ),
    "unknown compression code": (
        raw_request(1, audio("<f4", [4], blob=0, compression=9, raw_size=16), b"\0" * 16),
        "audio.audio: unknown compression code 9",
    ),
    "compressed size that lies": (
        raw_request(
            1,
            audio("<f4", [4], blob=0, compression=1, raw_size=1 << 30),
            zstd_frame(b"\0" * 16),
        ),
        "audio.audio: raw_size 1073741824 does not equal dtype x shape = 16 bytes",
    ),
    "corrupt compressed data": (
        raw_request(1, audio("<f4", [4], blob=0, compression=1, raw_size=16), b"not zstd"),
        "audio.audio: zstd data is corrupt",
    ),
    "values nested deeper than the limit": (
        raw_request(1, nested_lists(MAX_DEPTH)),
        f"values nested deeper than {MAX_DEPTH}",
    ),
    "MessagePack tree nested deeper than the limit": (
        raw_request(1, packed_tree(b"\x81\xa1x" * (MAX_DEPTH + 1) + b"\x01")),
        f"payload{'.x' * MAX_DEPTH}: values nested deeper than {MAX_DEPTH}",
    ),
    "MessagePack tree with a duplicate key": (
        raw_request(1, packed_tree(b"\x82\xa1a\x01\xa1a\x02")),
        "payload: key 'a' appears twice in a map",
    ),
    "MessagePack tree that is truncated": (
        raw_request(1, packed_tree(b"\x82\xa1a\x01")),
        "payload: malformed MessagePack value tree: Unpack failed: incomplete input",
    ),
    "MessagePack tree with an ext type": (
        raw_request(1, packed_tree(b"\x81\xa1a\xd4\x05\x00")),
        "payload: MessagePack ext type 5 is not part of a value tree",
    ),
    "batches nested deeper than the limit": (
        raw_request(1, nested_batches(MAX_DEPTH + 1)),
        f"batch: messages nested deeper than {MAX_DEPTH}",
    ),
    "no payload": (
        raw_request(1, lambda message: None),
        "payload: no payload kind set",
    ),
    "unknown request target": (
        raw_request(1, lambda message: message.payload.bytes.SetInParent(), target="ghost"),
        "request target 'ghost' is not a node of this session; its nodes: identity",
    ),
}


@pytest.mark.parametrize("case", list(REQUEST_FAILED))
def test_a_bad_message_fails_only_its_request_and_the_session_goes_on(
    main: Main, case: str
) -> None:
    bad, detail = REQUEST_FAILED[case]
    outcome = session(main.target, [open_frame(), bad, good_request(2)])
    assert outcome.code == grpc.StatusCode.OK, outcome
    results = outcome.results()
    assert results[0][:3] == (1, "failed", spb.FAIL_INVALID_MESSAGE), results
    assert detail in results[0][3], results[0][3]
    assert [r[:2] for r in results[1:]] == [(2, "output"), (2, "done")]
    assert outcome.outputs()[0].payload["i"] == 2
    main.assert_unharmed()


@pytest.mark.parametrize("client_reads", [(), ("msgpack",)], ids=["columns only", "msgpack"])
def test_value_trees_travel_in_the_forms_each_side_said_it_reads(
    main: Main, client_reads: tuple[str, ...]
) -> None:
    obj = {"i": 7, "label": "cat", "box": [0.5, 1.5], "meta": {"ok": True}}
    packed = join_requests([encode_request(1, Message(ObjectPayload(obj)), pack_trees=True)])
    columns = join_requests([encode_request(2, Message(ObjectPayload(obj)))])
    outcome = session(main.target, [open_frame(value_formats=client_reads), packed, columns])
    assert outcome.code == grpc.StatusCode.OK, outcome
    opened = outcome.frames[0][0]
    assert list(opened.opened.value_formats) == ["msgpack"]  # the server reads both forms
    trees = [
        r.output.message.payload.object.data
        for frame, _ in outcome.frames
        if frame.WhichOneof("kind") == "results"
        for r in frame.results.items
        if r.WhichOneof("kind") == "output"
    ]
    assert len(trees) == 2
    # identity forwards the tree it received: the MessagePack one goes back as it came
    # only to a client that reads it; the column one is copied (every reader reads it).
    assert bool(trees[0].msgpack) is bool(client_reads)
    assert bool(trees[0].kinds) is not bool(client_reads)
    assert trees[1].kinds and not trees[1].msgpack
    assert [m.payload.to_dict() for m in outcome.outputs()] == [obj, obj]
    main.assert_unharmed()


def test_a_configure_naming_an_unknown_node_fails_only_that_configure(main: Main) -> None:
    frame = spb.ClientFrame()
    frame.configure.seq = 1
    frame.configure.node = "ghost"
    WireEncoder().value_map({"factor": 2.0}, frame.configure.changes, "changes")
    outcome = session(main.target, [open_frame("gain"), frame.SerializeToString()])
    assert outcome.code == grpc.StatusCode.OK
    assert outcome.results() == [
        (
            1,
            "failed",
            spb.FAIL_INVALID_MESSAGE,
            "configure target 'ghost' is not a node of this session; its nodes: gain",
        )
    ]
    main.assert_unharmed()


# -- disconnects, sessions, threads and memory --------------------------------------------
def test_an_abrupt_disconnect_frees_the_session_its_thread_and_nodes(main: Main) -> None:
    pid = main.server.process.pid  # type: ignore[union-attr]

    def hold(seconds: float, requests: int) -> list[HeldSession]:
        held = [
            HeldSession(
                main.target,
                open_frame("delay", configuration={"seconds": seconds}),
                [good_request(s) for s in range(1, requests + 1)],
            )
            for _ in range(4)
        ]
        for h in held:
            assert h.wait() and h.opened.is_set()
        return held

    held = hold(30.0, MAX_WINDOW)
    with_workers = threads(pid)
    for h in held:
        h.cancel()
    # Only the healthy session is left, and the four workers (each asleep in delay's
    # update, with requests queued behind) are gone long before one 30 s sleep ends.
    wait_for(lambda: admin.server_stats(main.target).active_sessions == 1, 5.0, "1 session")
    wait_for(lambda: threads(pid) <= with_workers - 4, 5.0, "the 4 worker threads to stop")
    main.assert_unharmed()


def test_more_sessions_than_the_limit_are_refused_even_when_opened_at_once() -> None:
    with LoopbackServer(["--node", "identity", "--max-sessions", "3"]) as server:
        held = [HeldSession(server.target, open_frame("identity")) for _ in range(8)]
        for h in held:
            assert h.wait()
        opened = [h for h in held if h.opened.is_set()]
        refused = [h for h in held if not h.opened.is_set()]
        assert len(opened) == 3
        for h in refused:
            assert h.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "server has its --max-sessions limit of 3 sessions open" in h.details
        assert admin.server_stats(server.target).active_sessions == 3
        one_more = session(server.target, [open_frame("identity")])
        assert one_more.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        for h in opened:
            h.release()
            assert h.code == grpc.StatusCode.OK
        wait_for(lambda: admin.server_stats(server.target).active_sessions == 0, 5.0, "0")
        again = session(server.target, [open_frame("identity"), good_request(1)])
        assert again.code == grpc.StatusCode.OK
        assert [r[:2] for r in again.results()] == [(1, "output"), (1, "done")]
        # A mark the fixed-node server does not host:
        other = session(server.target, [open_frame("gain")])
        assert other.code == grpc.StatusCode.NOT_FOUND
        assert "this server hosts mark 'identity' only; 'gain' was asked for" in other.details


def test_a_stream_that_never_sends_open_is_ended_after_the_open_timeout() -> None:
    with LoopbackServer(["--node", "identity", "--open-timeout", "0.5"]) as server:
        release = threading.Event()

        def silent() -> Iterator[bytes]:
            release.wait(10.0)  # sends nothing: a slowloris
            return
            yield b""

        with channel(server.target) as ch:
            started = time.monotonic()
            call = ch.stream_stream(SESSION)(silent(), timeout=10.0)
            with pytest.raises(grpc.RpcError) as info:
                list(call)
            elapsed = time.monotonic() - started
            release.set()
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "no Open frame within 0.5s of starting the stream" in (info.value.details() or "")
        assert elapsed < 5.0
        # The server is unharmed: a proper session still works.
        again = session(server.target, [open_frame("identity"), good_request(1)])
        assert again.code == grpc.StatusCode.OK


def test_floods_leave_memory_and_threads_bounded() -> None:
    args = ["--allow", "identity,delay", "--max-message-mb", "8", "--max-window", "64"]
    with LoopbackServer(args) as server:
        pid = server.process.pid  # type: ignore[union-attr]
        warm = session(server.target, [open_frame(), good_request(1)])
        assert warm.code == grpc.StatusCode.OK
        base_rss = rss_mb(pid)
        base_threads = threads(pid)

        # 1. One session floods 60 requests of 6 MB at a slow node (360 MB if buffered):
        #    the server stops reading while its unfinished requests hold too many bytes,
        #    so flow control pushes back on the client.
        big = BytesPayload(b"\0" * (6 << 20))
        sent = [0]

        def flood() -> Iterator[bytes]:
            yield open_frame("delay", window=64, configuration={"seconds": 0.5})
            for seq in range(1, 61):
                yield good_request(seq, big)
                sent[0] = seq

        with channel(server.target) as ch:
            call = ch.stream_stream(SESSION)(flood(), timeout=30.0)
            reader = threading.Thread(target=drain_quietly, args=(call,), daemon=True)
            reader.start()
            time.sleep(2.0)
            assert sent[0] < 40, f"the server read {sent[0]} of 60 frames: no backpressure"
            peak = rss_mb(pid, "VmHWM")
            call.cancel()
            reader.join(SESSION_TIMEOUT_S)
        # (What the server had read when the peak was taken says, on a failure, whether
        # more frames got in or the same frames cost more.)
        assert peak - base_rss < RSS_GROWTH_BOUND_MB, {
            "base_mb": base_rss,
            "peak_mb": peak,
            "frames_taken_by_the_client_channel": sent[0],
        }

        # 2. Many sessions flood past the window or leave unread outputs, then vanish.
        payload = BytesPayload(b"\1" * (1 << 20))
        for i in range(40):
            if i % 2:
                frames = [open_frame(), *(good_request(s, payload) for s in range(1, 70))]
                session(server.target, frames)
            else:
                h = HeldSession(
                    server.target,
                    open_frame("delay", window=8, configuration={"seconds": 0.01}),
                    [good_request(s, payload) for s in range(1, 9)],
                )
                h.wait()
                h.cancel()
        wait_for(lambda: admin.server_stats(server.target).active_sessions == 0, 5.0, "0")
        # Beyond the server's own threads only the pool building nodes may have grown.
        bound = base_threads + BUILD_POOL_THREADS
        wait_for(lambda: threads(pid) <= bound, 5.0, f"at most {bound} threads")
        assert rss_mb(pid) - base_rss < RSS_GROWTH_BOUND_MB
        again = session(server.target, [open_frame(), good_request(1)])
        assert again.code == grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-depth", "29"], "--max-depth must be 1..28, got 29"),
        (["--max-array-elements", "0"], "argument --max-array-elements: must be >= 1, got '0'"),
        (["--max-message-mb", "-1"], "argument --max-message-mb: must be >= 1, got '-1'"),
    ],
)
def test_serve_refuses_a_limit_out_of_range(flags: list[str], message: str) -> None:
    with pytest.raises(RuntimeError, match="exited with code 2") as refused:
        LoopbackServer(["--allow", "identity", *flags]).start()
    assert message in str(refused.value)


def test_serve_defaults_are_the_documented_ones() -> None:
    with LoopbackServer(["--allow", "identity"]) as server:
        description = admin.describe(server.target)
    assert description.max_window == 256
    assert description.max_message_bytes == 100 * 1024 * 1024
    assert description.max_sessions == 64


def test_the_healthy_session_finished_exactly_and_the_log_is_clean(main: Main) -> None:
    healthy = main.healthy
    main.assert_unharmed()
    healthy.finish()
    assert healthy.code == grpc.StatusCode.OK, healthy.details
    assert healthy.failed == []
    seqs = list(range(1, healthy.sent + 1))
    assert healthy.done == seqs
    assert healthy.outputs == [(s, s) for s in seqs]
    wait_for(lambda: admin.server_stats(main.target).active_sessions == 0, 5.0, "0 sessions")
    log = main.server.log()
    assert not re.search(r"Traceback|Unexpected error|Exception in callback|ERROR", log), log

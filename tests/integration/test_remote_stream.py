"""``RemoteStream`` against a real ``fontus serve``: the hand-over of a request's write.

A Warp whose request fills the window waits in ``update`` until the client loop
has written that request (``RemoteStream.release_after_write``), so that it
does not keep the GIL while the loop needs it.  These tests drive a stream on
the shared client loop, as a Warp does, and check when the lock is released,
and how many queued requests the writer coalesces into one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
import pytest

from fontus.core import AudioPayload, Message
from fontus.remote._channel import make_channel
from fontus.remote._frames import TAIL_MIN_BYTES, encode_request
from fontus.remote._limits import DEFAULT_LIMITS
from fontus.remote._loop import client_loop
from fontus.remote._stream import RemoteStream
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer

#: Bound of each wait in these tests (the loopback answers in about a millisecond).
WAIT_S = 5.0


class Results:
    """The ResultSink a Warp would be: records what the stream hands over."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.ended: list[Any] = []

    def on_output(self, seq: int, exit_name: str, decode: Any) -> None:
        pass

    def on_done(self, seq: int, queue_s: float, compute_s: float, outputs: int) -> None:
        self.done.append(seq)

    def on_failed(self, seq: int, code: int, detail: str) -> None:
        raise AssertionError(f"request {seq} failed: {detail}")

    def on_draining(self, grace_s: float) -> None:
        pass

    def request_blob(self, seq: int) -> Any:
        return None

    def on_end(self, error: Any) -> None:
        self.ended.append(error)


@contextlib.asynccontextmanager
async def open_stream(
    target: str, open_frame: Callable[..., bytes], window: int = 4
) -> AsyncIterator[tuple[RemoteStream, Results]]:
    """A session to node ``n`` (identity) on ``target``, cancelled and closed at the end."""
    channel = make_channel(target)
    results = Results()
    stream = RemoteStream(channel, results, "stream-test", DEFAULT_LIMITS)
    try:
        await stream.open(open_frame("stream-test", name="n", window=window), WAIT_S)
        yield stream, results
    finally:
        stream.cancel()
        await channel.close()


async def hand_over(target: str, queued: bool, open_frame: Callable[..., bytes]) -> dict[str, Any]:
    async with open_stream(target, open_frame) as (stream, results):
        written: list[int] = []
        write = stream.call.write

        async def recording_write(data: bytes) -> None:
            await write(data)
            written.append(len(data))

        stream.call.write = recording_write  # the real write, recorded once done
        message = Message(AudioPayload(np.zeros(320, dtype=np.float32), 16000)).freeze()
        if queued:
            stream.send(encode_request(1, message))
        handed = threading.Lock()
        handed.acquire()
        stream.release_after_write(handed)
        held_at_once = handed.locked()
        bytes_at_release = writes_done_at_release = -1
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while handed.locked() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0)
        if not handed.locked():
            bytes_at_release = stream.bytes_out
            writes_done_at_release = len(written)
        while queued and not results.done and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        return {
            "held_at_once": held_at_once,
            "released": not handed.locked(),
            "bytes_at_release": bytes_at_release,
            "writes_done_at_release": writes_done_at_release,
            "done": list(results.done),
        }


def test_the_lock_is_released_when_the_queued_request_is_written(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    hand = hand_over(catalogue_server.target, queued=True, open_frame=open_frame)
    seen = client_loop().submit(hand).result(30)
    # Not at once: the writer has not taken the request yet ...
    assert seen["held_at_once"] is True
    # ... and not while the write is under way: once it is done, so that the node
    # thread's bookkeeping runs while the request travels.
    assert seen["released"] is True
    assert seen["bytes_at_release"] > 0
    assert seen["writes_done_at_release"] == 1
    assert seen["done"] == [1]


async def behind_a_write(target: str, open_frame: Callable[..., bytes]) -> dict[str, Any]:
    """Request 2 and its lock are handed over while request 1's write is held back."""
    async with open_stream(target, open_frame) as (stream, results):
        write = stream.call.write
        gate = asyncio.Event()
        locked_after_write: list[bool] = []
        handed = threading.Lock()
        handed.acquire()

        async def gated_write(data: bytes) -> None:
            if not locked_after_write:
                await gate.wait()  # the first write is under way until the gate opens
            await write(data)
            locked_after_write.append(handed.locked())

        stream.call.write = gated_write  # the real write, held back once
        message = Message(AudioPayload(np.zeros(320, dtype=np.float32), 16000)).freeze()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        stream.send(encode_request(1, message))
        while stream.queue.items and loop.time() < deadline:
            await asyncio.sleep(0)  # until the writer has taken request 1
        stream.send(encode_request(2, message))
        stream.release_after_write(handed)
        gate.set()
        while handed.locked() and loop.time() < deadline:
            await asyncio.sleep(0)
        while len(results.done) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.001)
        return {
            "locked_after_write": locked_after_write,
            "released": not handed.locked(),
            "done": list(results.done),
        }


def test_a_lock_waits_for_its_own_request_not_the_write_under_way(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    # Request 1 was being written when request 2 filled the window: the end of request
    # 1's write must not hand the node thread back; request 2's must.
    seen = client_loop().submit(behind_a_write(catalogue_server.target, open_frame)).result(30)
    assert seen["locked_after_write"] == [True, True]
    assert seen["released"] is True
    assert seen["done"] == [1, 2]


def test_with_nothing_queued_the_lock_is_released_at_once(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    # Nothing to write (a reconnecting session dropped the request): nobody may wait.
    hand = hand_over(catalogue_server.target, queued=False, open_frame=open_frame)
    seen = client_loop().submit(hand).result(30)
    assert seen["held_at_once"] is False
    assert seen["bytes_at_release"] == 0 and seen["writes_done_at_release"] == 0


async def frames_of_queued(
    target: str,
    window: int,
    open_frame: Callable[..., bytes],
    messages: list[Message[Any]] | None = None,
) -> list[int]:
    """Queue ``window`` requests (of ``messages``) at once; the number of requests in each frame written."""
    sizes: list[int] = []
    async with open_stream(target, open_frame, window) as (stream, results):
        write = stream.call.write

        async def counting_write(data: bytes) -> None:
            sizes.append(len(spb.ClientFrame.FromString(data).requests.items))
            await write(data)

        stream.call.write = counting_write  # the real write, counted
        message = Message(AudioPayload(np.zeros(320, dtype=np.float32), 16000)).freeze()
        for seq in range(1, window + 1):
            stream.send(encode_request(seq, messages[seq - 1] if messages else message))
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while len(results.done) < window and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        assert results.done == list(range(1, window + 1))
        return sizes


def test_a_frame_carries_at_most_half_of_the_window(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    # 32 requests queued at once go as two frames of 16, not one of 32: with two frames
    # in flight the server works on one while the client writes the next.
    frames = frames_of_queued(catalogue_server.target, 32, open_frame)
    assert client_loop().submit(frames).result(30) == [16, 16]


def test_a_small_window_still_coalesces_up_to_eight(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    frames = frames_of_queued(catalogue_server.target, 4, open_frame)
    assert client_loop().submit(frames).result(30) == [4]


def test_a_large_request_ends_its_frame(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    # A request of TAIL_MIN_BYTES or more is the last of its frame, so that the server
    # can send its array back as the frame's tail (decision 0015); small ones before it
    # still ride along.
    small = Message(AudioPayload(np.zeros(320, dtype=np.float32), 16000)).freeze()
    large = Message(AudioPayload(np.zeros(TAIL_MIN_BYTES // 4, dtype=np.float32), 16000)).freeze()
    queued = [small, small, large, small, large, large]
    frames = frames_of_queued(catalogue_server.target, 6, open_frame, queued)
    assert client_loop().submit(frames).result(30) == [3, 2, 1]


#: A ServerFrame with results and tail_skip 5: its tail is the next message.
_TAILED = b"\x12\x00\x60\x05"
#: A ServerFrame with results and tail_size 5: its last blob ends the next message.
_SIZED = b"\x12\x00\x50\x05"


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (
            [b"\x68\x01\x72\x03abc"],  # part_more, then a part of 3 bytes
            "the server ended the stream with a frame in parts incomplete after 1 part",
        ),
        ([_TAILED], "the server ended the stream before the tail of its last frame"),
        (
            [_TAILED, b"12345\x0a\x01x"],  # a tail whose bytes after the skip are not blobs
            "malformed result frame: a frame's tail holds 3 bytes of fields other than "
            "blobs after its tail_skip of 5",
        ),
        (
            [_TAILED, b"1234"],
            "malformed result frame: tail_skip 5 is beyond the 4 bytes of the frame's tail",
        ),
        (
            [_TAILED + b"\x58\x01"],  # tail_skip 5 and tail_request 1 (decision 0016)
            "malformed result frame: a frame has more than one of tail_skip, tail_size and "
            "tail_request",
        ),
        ([_SIZED], "the server ended the stream before the tail of its last frame"),
        (
            [_SIZED, b"1234"],
            "malformed result frame: tail_size 5 is beyond the 4 bytes of the frame's tail",
        ),
        (
            [_TAILED + b"\x50\x05"],  # tail_skip 5 and tail_size 5 (decision 0017)
            "malformed result frame: a frame has more than one of tail_skip, tail_size and "
            "tail_request",
        ),
    ],
    ids=[
        "part then end",
        "tail due then end",
        "tail not blobs",
        "tail too short",
        "skip and request",
        "sized tail due then end",
        "sized tail too short",
        "skip and size",
    ],
)
def test_a_server_ending_its_stream_in_the_middle_of_a_frame_is_an_error(
    open_frame: Callable[..., bytes], messages: list[bytes], error: str
) -> None:
    # A peer that ends the stream with OK after one part of a frame, or before or with a
    # broken tail (Fontus's server never does): the client reports the lost frame
    # instead of a clean end.
    def session(requests: Any, context: grpc.ServicerContext) -> Any:
        next(requests)  # the Open
        opened = spb.ServerFrame()
        opened.opened.window = 1
        opened.opened.frame_parts = True
        yield opened.SerializeToString()
        yield from messages
        # and the server's side ends here, status OK

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(
        "fontus.v1.Remote", {"Session": grpc.stream_stream_rpc_method_handler(session)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:

        async def run() -> list[Any]:
            async with open_stream(f"127.0.0.1:{port}", open_frame) as (_, results):
                deadline = asyncio.get_running_loop().time() + WAIT_S
                while not results.ended and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
                return list(results.ended)

        ended = client_loop().submit(run()).result(30)
    finally:
        server.stop(0)
    assert [str(e) for e in ended] == [f"stream-test: {error}"]

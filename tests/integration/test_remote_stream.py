"""``RemoteStream`` against a real ``fontus serve``: the hand-over of a request's write.

A Warp whose request fills the window waits in ``update`` until the client loop
starts writing that request (``RemoteStream.release_when_writing``), so that it
does not keep the GIL while the loop needs it.  These tests drive a stream on
the shared client loop, as a Warp does, and check when the lock is released.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from fontus.core import AudioPayload, Message
from fontus.remote._channel import make_channel
from fontus.remote._frames import encode_request
from fontus.remote._limits import DEFAULT_LIMITS
from fontus.remote._loop import client_loop
from fontus.remote._stream import RemoteStream
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

    def on_end(self, error: Any) -> None:
        self.ended.append(error)


async def hand_over(target: str, queued: bool, open_frame: Callable[..., bytes]) -> dict[str, Any]:
    channel = make_channel(target)
    results = Results()
    stream = RemoteStream(channel, results, "stream-test", DEFAULT_LIMITS)
    try:
        await stream.open(open_frame("stream-test", name="n"), WAIT_S)
        message = Message(AudioPayload(np.zeros(320, dtype=np.float32), 16000)).freeze()
        if queued:
            stream.send(encode_request(1, message))
        handed = threading.Lock()
        handed.acquire()
        stream.release_when_writing(handed)
        held_at_once = handed.locked()
        bytes_at_release = -1
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while handed.locked() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0)
        if not handed.locked():
            bytes_at_release = stream.bytes_out
        while queued and not results.done and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        return {
            "held_at_once": held_at_once,
            "released": not handed.locked(),
            "bytes_at_release": bytes_at_release,
            "done": list(results.done),
        }
    finally:
        stream.cancel()
        await channel.close()


def test_the_lock_is_released_when_the_queued_request_is_written(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    hand = hand_over(catalogue_server.target, queued=True, open_frame=open_frame)
    seen = client_loop().submit(hand).result(30)
    # Not at once: the writer has not taken the request yet ...
    assert seen["held_at_once"] is True
    # ... but as it starts writing it, its frame already counted in bytes_out.
    assert seen["released"] is True
    assert seen["bytes_at_release"] > 0
    assert seen["done"] == [1]


def test_with_nothing_queued_the_lock_is_released_at_once(
    catalogue_server: LoopbackServer, open_frame: Callable[..., bytes]
) -> None:
    # Nothing to write (a reconnecting session dropped the request): nobody may wait.
    hand = hand_over(catalogue_server.target, queued=False, open_frame=open_frame)
    seen = client_loop().submit(hand).result(30)
    assert seen["held_at_once"] is False
    assert seen["bytes_at_release"] == 0

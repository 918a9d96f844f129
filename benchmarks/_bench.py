"""Pipeline helpers shared by ``local.py`` and ``remote.py``: payloads, a stamping
source, a timing sink, and one bounded pipeline run.

The source stamps ``time.perf_counter()`` into each message's timers
(``bench.t0``); the sink, in the same process, reads it back on arrival.  Two
ways to drive a pipeline:

* **flat out** (``lockstep=False``): the source produces as fast as the
  pipeline lets it (inboxes block, so backpressure paces it); the sink's
  arrivals over the wall time give messages/s.  Latency measured this way is
  mostly queueing, so it is not what we report as latency.
* **lockstep** (``lockstep=True``): the source waits until the sink received
  the previous message before producing the next, so exactly one message is in
  flight and sink - source time is the pure cost of the hops.

Every run is bounded in messages and in seconds.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fontus.core import (
    AudioPayload,
    ImagePayload,
    Message,
    ObjectPayload,
    Payload,
    Pipeline,
    Registry,
    Sink,
    Source,
)

__all__ = [
    "STAMP",
    "Case",
    "ChildServer",
    "RunResult",
    "StampSink",
    "StampSource",
    "audio",
    "bench_registry",
    "exit_with_parent",
    "image",
    "median",
    "pct",
    "run_pipeline",
    "twenty_keys",
]

#: Timer name the source stamps (perf_counter seconds) and the sink reads back.
STAMP = "bench.t0"
#: A lockstep source waits at most this long for the sink's acknowledgement of
#: one message before going on (a lost message must not hang the benchmark).
LOCKSTEP_WAIT_S = 5.0
#: Latency samples of the first messages of a run are dropped: thread start-up
#: and first-use costs (connections, caches) are not the steady state.
WARMUP_MESSAGES = 10


@dataclass(frozen=True)
class Case:
    """One payload of a pipeline benchmark, and how many messages a run sends."""

    name: str
    payload: Payload
    count: int


# -- payloads ---------------------------------------------------------------------
def audio(seconds: float, rate: int = 16000) -> AudioPayload:
    """Mono float32 audio of ``seconds`` at ``rate`` Hz (uniform noise)."""
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1, 1, round(seconds * rate)).astype(np.float32)
    return AudioPayload(samples, rate)


def image(height: int, width: int) -> ImagePayload:
    """An rgb24 frame (a gradient: the content does not matter without compression)."""
    rows = np.arange(height, dtype=np.uint16)[:, None, None]
    cols = np.arange(width, dtype=np.uint16)[None, :, None]
    chans = np.arange(3, dtype=np.uint16)[None, None, :]
    frame = ((rows + 2 * cols + 85 * chans) % 256).astype(np.uint8)
    return ImagePayload.from_array(frame)


def over_bytes(payload: ImagePayload) -> ImagePayload:
    """The same frame, its array a read-only view of a ``bytes`` object: as a source
    reading raw frames from a pipe makes it with ``numpy.frombuffer``, and as a Warp's
    outputs are (views of the frames received)."""
    array = np.frombuffer(payload.image.tobytes(), np.uint8).reshape(payload.image.shape)
    return replace(payload, image=array)


def twenty_keys() -> ObjectPayload:
    """An object of 20 keys of mixed JSON-like types (like a detector's or ASR's result)."""
    values: list[Any] = [
        1,
        -42,
        2**40,
        0.5,
        3.14159,
        -1e-9,
        True,
        False,
        None,
        "speech",
        "en-US",
        "a longer string of text, like a transcript line",
        [1, 2, 3],
        ["a", "b"],
        {"start": 0.0, "end": 1.2},
        {"label": "cat", "score": 0.98},
        b"\x00\x01\x02\x03",
        16000,
        "model-v3",
        [0.1, 0.2, 0.3, 0.4],
    ]
    return ObjectPayload({f"key_{i:02d}": v for i, v in enumerate(values)})


# -- nodes ------------------------------------------------------------------------
class StampSink(Sink):
    """Records, for each message, perf_counter() on arrival minus its ``bench.t0`` timer."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.first_t0 = 0.0
        self.last_arrival = 0.0
        self.ack = threading.Event()
        #: Set ``ack`` for each message: only a lockstep source waits for it (an
        #: Event's set() is six Python calls, charged to the pipeline otherwise).
        self.signal = False

    def update(self, message: Message[Any]) -> None:
        now = time.perf_counter()
        t0 = message.timers.get(STAMP, now)
        if not self.latencies:
            self.first_t0 = t0
        self.latencies.append(now - t0)
        self.last_arrival = now
        if self.signal:
            self.ack.set()


class StampSource(Source):
    """Yields ``count`` messages of one payload (set on the instance), each stamped with perf_counter.

    Args:
        count: how many messages at most.
        max_s: stop producing after this many seconds even if count is not reached.
        lockstep: wait for the sink to receive each message before producing the next.
    """

    def __init__(self, count: int = 100, max_s: float = 10.0, lockstep: bool = False) -> None:
        self.count = count
        self.max_s = max_s
        self.lockstep = lockstep
        self.payload: Payload | None = None
        self.sink: StampSink | None = None
        self.produced = 0
        self.lost = 0

    def generate(self) -> Iterator[Message[Any]]:
        payload, sink = self.payload, self.sink
        assert payload is not None and sink is not None, "set .payload and .sink before running"
        deadline = time.perf_counter() + self.max_s
        for i in range(self.count):
            if self.lockstep and i:
                if not sink.ack.wait(LOCKSTEP_WAIT_S):
                    self.lost += 1
                sink.ack.clear()
            now = time.perf_counter()
            if now > deadline or self.stopping:
                return
            self.produced += 1
            yield Message(payload, timers={STAMP: now})

    def total(self) -> int | None:
        return self.count


def bench_registry() -> Registry:
    """The installed marks (identity, warp, ...) plus the stamping source and sink."""
    registry = Registry()
    registry.add(StampSource, "bench_source")
    registry.add(StampSink, "bench_sink")
    return registry


# -- running ----------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """One bounded pipeline run, seen from the sink."""

    received: int
    produced: int
    wall_s: float
    #: Source-to-sink seconds per message, without the first WARMUP_MESSAGES.
    latencies: list[float]
    #: ``extra`` stats of each node that has them (Warps: rtt quantiles, bytes).
    extra: dict[str, dict[str, Any]]
    state: str

    @property
    def rate(self) -> float:
        """Messages received per second, from the first stamp to the last arrival."""
        return self.received / self.wall_s if self.wall_s > 0 else 0.0


def run_pipeline(
    middle: Sequence[dict[str, Any]],
    payload: Payload,
    *,
    count: int,
    max_s: float,
    lockstep: bool,
    registry: Registry,
    name: str = "bench",
) -> RunResult:
    """Run ``source → middle[0] → ... → middle[-1] → sink`` once; ``middle`` are node dicts."""
    nodes = [
        {
            "name": "src",
            "mark": "bench_source",
            "configuration": {"count": count, "max_s": max_s, "lockstep": lockstep},
        },
        *middle,
        {"name": "sink", "mark": "bench_sink"},
    ]
    names = [n["name"] for n in nodes]
    raw = {
        "version": "1",
        "pipeline": {
            "name": name,
            "nodes": nodes,
            "links": [{"from": a, "to": b} for a, b in itertools.pairwise(names)],
        },
    }
    pipeline = Pipeline.from_dict(raw, registry=registry)
    source, sink = pipeline.nodes["src"], pipeline.nodes["sink"]
    assert isinstance(source, StampSource) and isinstance(sink, StampSink)
    source.payload = payload
    source.sink = sink
    sink.signal = lockstep
    # The source stops on its own after max_s; the rest is draining what is in flight.
    result = pipeline.run(timeout=max_s + 30.0)
    extra = {n: s.extra for n, s in result.stats.items() if s.extra}
    return RunResult(
        received=len(sink.latencies),
        produced=source.produced,
        wall_s=sink.last_arrival - sink.first_t0 if sink.latencies else 0.0,
        latencies=sink.latencies[WARMUP_MESSAGES:] or sink.latencies,
        extra=extra,
        state=result.state,
    )


# -- statistics -------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile ``q`` (0..1) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


# -- servers in child processes ------------------------------------------------------
class ChildServer:
    """A benchmark's server in a child process: ``python SCRIPT ARGS...``.

    The child prints ``listening on HOST:PORT`` first and serves until its stdin
    closes (see :func:`exit_with_parent`); ``target`` is that address.
    """

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # bounded: the child prints this first, or dies
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"{' '.join(args)} server did not start: {line!r}")
        self.target = line.split()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)


def exit_with_parent() -> None:
    """In a ChildServer: exit as soon as the parent closes our stdin or dies."""

    def watch() -> None:
        sys.stdin.read()  # returns at end of file
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()

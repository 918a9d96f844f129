"""Real ``fontus serve`` processes on 127.0.0.1, shared by the remote integration tests.

Starting a server costs about a second, so the servers are session-scoped and
reused: ``catalogue_server`` allows every built-in processor with isolated
sessions, ``shared_server`` hosts ``running_sum`` with ``--sessions shared``,
``node_server`` hosts one fixed ``gain`` (Juturna's shape).  A test that must
stop or signal its server (drain on SIGTERM) starts its own.

Helpers, as fixtures of the same names (test modules cannot import a
conftest): ``fontus`` runs the command line, ``fontus_many`` runs several
commands at once, ``write_pipeline`` writes a pipeline file, ``build_pipeline``
builds an in-process pipeline whose ``collect`` sinks keep what they receive
(``pipeline.nodes[name].messages``) and whose ``raw_frames`` sources make
their arrays over ``bytes`` (with ``run_for=S`` it is also run to its
end, which must be ``done`` within S seconds), ``open_frame`` serializes the
Open of a raw session to one node, ``listening`` starts a ``fontus`` command
that listens (``remotize``).  Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from fontus.core import ImagePayload, Message, Pipeline, Registry, Sink, Source
from fontus.nodes import PROCESSOR_MARKS
from fontus.remote._frames import (
    EncodedItem,
    PartAssembler,
    add_request_blob,
    add_sized_tail,
    add_tail,
    control_frame,
    decode_frame,
    item_decoder,
)
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer

FONTUS = [sys.executable, "-m", "fontus"]
#: Every built-in processing mark: what the catalogue server allows.
PROCESSORS = PROCESSOR_MARKS
#: Bound on one CLI command: they take about half a second; 60 s only covers a loaded machine.
COMMAND_TIMEOUT_S = 60.0
#: How long a started process gets to print its "listening on" line.
LISTEN_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


# -- the command line -------------------------------------------------------------


def _fontus(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fontus ARGS`` to its end (bounded) and capture its output."""
    return subprocess.run(
        [*FONTUS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


def _fontus_many(
    *commands: Sequence[str | Path], timeout: float = COMMAND_TIMEOUT_S
) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``fontus`` commands at the same time; wait for all of them (bounded)."""
    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(
            [*FONTUS, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in commands
    ]
    deadline = time.monotonic() + timeout
    done = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return done


def _write_pipeline(
    path: Path,
    nodes: list[dict[str, Any]],
    links: Sequence[tuple[str, str]],
    *,
    name: str = "remote-test",
) -> Path:
    """A pipeline file at ``path`` (YAML)."""
    body = {
        "version": "1",
        "pipeline": {
            "name": name,
            "nodes": nodes,
            "links": [{"from": a, "to": b} for a, b in links],
        },
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


class ListeningProcess:
    """A ``fontus`` command that listens on 127.0.0.1 (``remotize``); knows its port and log."""

    def __init__(self, *args: str | Path) -> None:
        self.process = subprocess.Popen(
            [*FONTUS, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(LISTEN_TIMEOUT_S) or not self.port:
            self.process.kill()
            self.process.wait(10)
            raise RuntimeError(f"fontus {args} did not listen:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                self._listening.set()
        self._listening.set()  # exited: the waiter sees port 0 and reports the log

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> int:
        """SIGTERM (a graceful drain), wait for the exit, and for the last lines of output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(10)
        return code


# -- in-process pipelines ---------------------------------------------------------


class Collect(Sink):
    """Keeps every message it receives (tests only)."""

    mark = "collect"

    def __init__(self) -> None:
        self.messages: list[Message[Any]] = []

    def update(self, message: Message[Any]) -> None:
        self.messages.append(message)


class RawFrames(Source):
    """``frames`` rgb24 frames, each array made over a ``bytes`` object with
    ``numpy.frombuffer`` as a source reading raw video from a pipe makes it (tests only)."""

    mark = "raw_frames"

    def __init__(self, width: int = 64, height: int = 48, frames: int = 3) -> None:
        self.width, self.height, self.frames = width, height, frames

    def generate(self) -> Iterator[ImagePayload]:
        row = np.arange(self.width * 3, dtype=np.uint8)
        for i in range(self.frames):
            data = (np.tile(row, self.height) + i).astype(np.uint8).tobytes()
            shape = (self.height, self.width, 3)
            yield ImagePayload.from_array(np.frombuffer(data, np.uint8).reshape(shape))


def _build_pipeline(
    nodes: list[dict[str, Any]],
    links: Sequence[tuple[str, str]],
    *,
    name: str = "remote-test",
    run_for: float | None = None,
) -> Pipeline:
    """An in-process pipeline of built-in marks plus ``collect``; run to a ``done`` end
    within ``run_for`` seconds when given."""
    registry = Registry()
    registry.add(Collect)
    registry.add(RawFrames)
    raw = {
        "version": "1",
        "pipeline": {
            "name": name,
            "nodes": nodes,
            "links": [{"from": a, "to": b} for a, b in links],
        },
    }
    pipeline = Pipeline.from_dict(raw, registry=registry)
    if run_for is not None:
        pipeline.start()
        assert pipeline.wait(run_for), f"pipeline still {pipeline.state} after {run_for}s"
        assert pipeline.state == "done", pipeline.errors
    return pipeline


def _open_frame(
    client: str,
    *,
    name: str = "identity",
    mark: str = "identity",
    frame_parts: bool = False,
    frame_tails: bool = False,
    tail_refs: bool = False,
    sized_tails: bool = False,
    window: int = 4,
) -> bytes:
    """The Open frame of a raw session to one ``mark`` node."""
    frame = spb.ClientFrame()
    op = frame.open
    op.client = client
    op.window = window
    op.protocol_version = 1
    op.node.name = name
    op.node.mark = mark
    op.frame_parts = frame_parts
    op.frame_tails = frame_tails
    op.tail_refs = tail_refs
    op.sized_tails = sized_tails
    return control_frame(frame)


@pytest.fixture(scope="session")
def fontus() -> Callable[..., subprocess.CompletedProcess[str]]:
    return _fontus


@pytest.fixture(scope="session")
def fontus_many() -> Callable[..., list[subprocess.CompletedProcess[str]]]:
    return _fontus_many


@pytest.fixture(scope="session")
def write_pipeline() -> Callable[..., Path]:
    return _write_pipeline


@pytest.fixture(scope="session")
def build_pipeline() -> Callable[..., Pipeline]:
    return _build_pipeline


def _run_frames(
    target: str, window: int, frames: int, run_for: float = 20.0, array_refs: bool = True
) -> Pipeline:
    """Run ``frames`` 1080p test-pattern frames through a remote identity at ``window``
    into a ``collect`` sink (node ``out``); the Warp is node ``node``."""
    return _build_pipeline(
        [
            {
                "name": "cam",
                "mark": "test_pattern",
                "configuration": {"width": 1920, "height": 1080, "frames": frames},
            },
            {
                "name": "node",
                "mark": "identity",
                "remote": {"target": target, "window": window, "array_refs": array_refs},
            },
            {"name": "out", "mark": "collect"},
        ],
        [("cam", "node"), ("node", "out")],
        run_for=run_for,
    )


@pytest.fixture(scope="session")
def run_frames() -> Callable[..., Pipeline]:
    return _run_frames


@pytest.fixture(scope="session")
def open_frame() -> Callable[..., bytes]:
    return _open_frame


#: Bound of one raw session (a few frames of some MB on loopback take milliseconds).
RAW_SESSION_TIMEOUT_S = 20.0


def _raw_session(target: str, frames: list[bytes]) -> list[bytes]:
    """Send ``frames`` on a raw Session stream (then half-close); every message the
    server sent, as received; the stream must end with OK."""
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.stream_stream("/fontus.v1.Remote/Session")(
            iter(frames), timeout=RAW_SESSION_TIMEOUT_S
        )
        received = list(call)
        assert call.code() == grpc.StatusCode.OK, call.details()
    return received


@pytest.fixture(scope="session")
def raw_session() -> Callable[[str, list[bytes]], list[bytes]]:
    return _raw_session


@pytest.fixture
def listening() -> Iterator[Callable[..., ListeningProcess]]:
    """Starts ``fontus ARGS`` that listen; each is stopped (SIGTERM) after the test."""
    started: list[ListeningProcess] = []

    def start(*args: str | Path) -> ListeningProcess:
        started.append(ListeningProcess(*args))
        return started[-1]

    yield start
    for process in started:
        process.stop()


# -- servers ----------------------------------------------------------------------


def _serve(*args: str) -> Iterator[LoopbackServer]:
    server = LoopbackServer(list(args)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def catalogue_server() -> Iterator[LoopbackServer]:
    """``fontus serve --allow <every built-in processor>``, isolated sessions."""
    yield from _serve("--allow", ",".join(PROCESSORS))


@pytest.fixture(scope="session")
def shared_server() -> Iterator[LoopbackServer]:
    """``fontus serve --allow running_sum --sessions shared``: one instance for every session."""
    yield from _serve("--allow", "running_sum", "--sessions", "shared")


#: The fixed node of ``node_server`` (and of the ``remotize`` test).
NODE_SERVER_FACTOR = 0.5


@pytest.fixture(scope="session")
def gain_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gain-config") / "gain.json"
    path.write_text(f'{{"factor": {NODE_SERVER_FACTOR}}}', encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def node_server(gain_config: Path) -> Iterator[LoopbackServer]:
    """``fontus serve --node gain --config FILE`` (factor 0.5): Juturna's one-node shape."""
    yield from _serve("--node", "gain", "--config", str(gain_config))


# -- reading a raw Session stream's result frames, as a Fontus client does ------------
# Parts assembled (decision 0012), tails added (decisions 0015, 0017), named tails read
# with the client's own requests (decision 0016): tests of any see each result frame once,
# with its decoder and its tail (None: none sent).
def _result_frames(
    messages: list[bytes], requests: Mapping[int, EncodedItem] | None = None
) -> Iterator[tuple[Any, Any, bytes | None]]:
    """Each result frame of a session's messages, with its decoder and its tail.

    ``requests``: the client's requests by seq, for frames that name one
    (``tail_request``); without them such a frame fails the test.
    """
    assembler = PartAssembler(1 << 30)
    pending: tuple[Any, Any] | None = None
    for data in messages:
        if pending is not None:
            frame, decoder = pending
            pending = None
            if frame.tail_size:
                yield frame, add_sized_tail(decoder, data, frame.tail_size), data
            else:
                yield frame, add_tail(decoder, data, frame.tail_skip), data
            continue
        whole = assembler.add(data)
        if whole is None:
            continue
        frame = spb.ServerFrame()
        decoder = decode_frame(whole, frame)
        if frame.tail_request:
            assert requests is not None, "a frame names a request: pass the client's requests"
            own = requests[frame.tail_request].blobs[-1]
            decoder = add_request_blob(decoder, own, frame.tail_request)
        if frame.tail_skip or frame.tail_size:
            pending = frame, decoder
        elif frame.WhichOneof("kind") == "results":
            yield frame, decoder, None
    assert pending is None, "the stream ended before a frame's tail"
    assert assembler.incomplete() is None, "the stream ended in the middle of a frame in parts"


def _outputs(
    messages: list[bytes], requests: Mapping[int, EncodedItem] | None = None
) -> list[Message[Any]]:
    """The output messages of a session's result frames."""
    return [
        item_decoder(decoder, r.blob_base).message(r.output.message)
        for frame, decoder, _ in _result_frames(messages, requests)
        for r in frame.results.items
        if r.WhichOneof("kind") == "output"
    ]


@pytest.fixture(scope="session")
def result_frames() -> Callable[..., Iterator[tuple[Any, Any, bytes | None]]]:
    return _result_frames


@pytest.fixture(scope="session")
def outputs() -> Callable[..., list[Message[Any]]]:
    return _outputs

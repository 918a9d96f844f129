"""Value trees in their MessagePack form (decision 0010), against real ``fontus serve`` processes.

A Warp and a server each say in Open / Opened which tree forms they read;
MessagePack travels only towards a side that said so, and a node's outputs are
the same whichever form carried its inputs: the same as running it locally.
``FONTUS_VALUE_TREES=columns`` on either side keeps that side's offer empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fontus.core import ConfigError, Message, ObjectPayload, Pipeline
from fontus.remote._wire.v1 import session_pb2 as spb
from fontus.testing import LoopbackServer, compare_node

pytestmark = pytest.mark.timeout(60)

Build = Callable[..., Pipeline]
#: Bound on one pipeline run here: each takes well under a second.
RUN_TIMEOUT_S = 30.0
COUNT = 40
#: How long the server's log may take to show a session's line.
LOG_WAIT_S = 5.0


def records() -> list[Message[Any]]:
    """Objects of every kind a tree holds (arrays aside), with meta, as an ASR or detector emits."""
    out = []
    for i in range(COUNT):
        data = {
            "n": i,
            "big": 2**62 - i,
            "score": i / 7,
            "ok": i % 2 == 0,
            "none": None,
            "text": f"zażółć gęślą jaźń {i}",
            "raw": bytes([i, 255 - i]),
            "words": [{"w": "hello", "start": 0.1 * i, "conf": [0.9, 0.8]}, {"w": "there"}],
            "empty": {},
            "nothing": [],
        }
        out.append(Message(ObjectPayload(data), meta={"source": "mic", "chunk": i}))
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["-v", "--allow", "identity,running_sum"]) as s:
        yield s


@pytest.fixture(scope="module")
def columns_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(
        ["--allow", "identity,running_sum"], env={"FONTUS_VALUE_TREES": "columns"}
    ) as s:
        yield s


def warp_of(build: Build, server: LoopbackServer) -> tuple[Pipeline, Any]:
    """counter -> running_sum (remote) -> collect, started and run to its end."""
    pipeline = build(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": COUNT}},
            {"name": "sum", "mark": "running_sum", "remote": server.target},
            {"name": "out", "mark": "collect"},
        ],
        [("src", "sum"), ("sum", "out")],
        run_for=RUN_TIMEOUT_S,
    )
    return pipeline, pipeline.nodes["sum"]


def opened_lines(server: LoopbackServer) -> list[str]:
    """The server's log lines of sessions opened by the Warp named ``sum``."""
    return [line for line in list(server.output) if " opened by sum@" in line]


def last_opened(server: LoopbackServer, before: int) -> str:
    """The line of the session opened after ``before`` such lines (the log is read by a thread)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while len(lines := opened_lines(server)) <= before:
        assert time.monotonic() < deadline, "the server logged no session opened by 'sum'"
        time.sleep(0.02)
    return lines[-1]


def totals(pipeline: Pipeline) -> list[Any]:
    return [m.payload.to_dict() for m in pipeline.nodes["out"].messages]


def test_objects_through_a_server_in_msgpack_equal_the_local_run(server: LoopbackServer) -> None:
    comparison = compare_node("identity", inputs=records(), server=server)
    assert len(comparison.remote.messages) == COUNT
    assert comparison.equal, comparison.diff()
    first = comparison.remote.messages[0]
    assert type(first.payload["raw"]) is bytes and type(first.payload["big"]) is int
    assert first.meta["chunk"] == 0


def test_a_warp_writes_msgpack_trees_when_its_server_reads_them(
    server: LoopbackServer, build_pipeline: Build
) -> None:
    before = len(opened_lines(server))
    pipeline, warp = warp_of(build_pipeline, server)
    assert warp.pack_trees is True and warp.stats_extra()["value_trees"] == "msgpack"
    assert totals(pipeline)[-1]["total"] == sum(range(COUNT))
    assert last_opened(server, before).endswith("outputs' value trees as MessagePack")


def test_a_server_offering_only_columns_gets_columns_and_the_same_outputs(
    server: LoopbackServer, columns_server: LoopbackServer, build_pipeline: Build
) -> None:
    pipeline, warp = warp_of(build_pipeline, columns_server)
    assert warp.pack_trees is False and warp.stats_extra()["value_trees"] == "columns"
    reference, _ = warp_of(build_pipeline, server)
    assert totals(pipeline) == totals(reference)
    comparison = compare_node("identity", inputs=records(), server=columns_server)
    assert comparison.equal, comparison.diff()


def test_a_client_set_to_columns_offers_nothing_and_gets_the_same_outputs(
    server: LoopbackServer, build_pipeline: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FONTUS_VALUE_TREES", "columns")
    before = len(opened_lines(server))
    pipeline, warp = warp_of(build_pipeline, server)
    assert warp.pack_trees is False and warp.tree_formats == ()
    frame = spb.ClientFrame.FromString(warp._open_frame())
    assert list(frame.open.value_formats) == []
    assert last_opened(server, before).endswith("outputs' value trees as columns")
    monkeypatch.delenv("FONTUS_VALUE_TREES")
    reference, _ = warp_of(build_pipeline, server)
    assert totals(pipeline) == totals(reference)


def test_an_unknown_value_trees_setting_fails_the_pipeline_at_build(
    server: LoopbackServer, build_pipeline: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FONTUS_VALUE_TREES", "json")
    with pytest.raises(ConfigError, match=r"FONTUS_VALUE_TREES='json' is not one of auto, msgpack"):
        warp_of(build_pipeline, server)

"""Light nodes on the server's event loop (decision 0009), against real ``fontus serve`` processes.

A session whose nodes are all declared ``light`` runs on the loop; one call far
over the budget, or three over it, move it to its worker thread for good, order
and outputs unchanged (one slow call alone does not);
``--no-inline`` and nodes not declared light keep the worker thread.  The
servers run with ``-v`` so that their session lines say where work ran.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fontus.core import Pipeline
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

Build = Callable[..., Pipeline]
#: Bound on one pipeline run here: each takes well under a second.
RUN_TIMEOUT_S = 30.0
#: How long the server gets to log a session's end after the client's pipeline ended.
LOG_WAIT_S = 5.0
COUNT = 12

HICCUP = """
import time
from fontus.core import Node


class Hiccup(Node):
    \"\"\"Declared light, but its update sleeps slow_s at the inputs numbered in slow_at.\"\"\"

    mark = "hiccup"
    light = True

    def __init__(self, slow_at: list = (3,), slow_s: float = 0.08) -> None:
        self.slow_at, self.slow_s, self.seen = list(slow_at), slow_s, 0

    def update(self, message) -> None:
        self.seen += 1
        if self.seen in self.slow_at:
            time.sleep(self.slow_s)
        self.transmit(message)
"""


LEDGER = """
import time
from fontus.core import Node, ObjectPayload


class Ledger(Node):
    \"\"\"Declared light; numbers its calls, and takes 20 ms on a padded input.\"\"\"

    mark = "ledger"
    light = True

    def __init__(self) -> None:
        self.calls = 0

    def update(self, message) -> None:
        data = message.payload.data
        if data["pad"]:
            time.sleep(0.02)
        self.transmit(ObjectPayload({"n": data["n"], "call": self.calls, "pad": len(data["pad"])}))
        self.calls += 1
"""


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("light-plugins")
    (folder / "hiccup.py").write_text(HICCUP, encoding="utf-8")
    (folder / "ledger.py").write_text(LEDGER, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def server(plugins: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(
        ["-v", "--plugins", str(plugins), "--allow", "hiccup,ledger,gain,delay,running_sum"]
    ) as s:
        yield s


@pytest.fixture(scope="module")
def no_inline_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(["-v", "--no-inline", "--allow", "running_sum"]) as s:
        yield s


def run_remote(build: Build, server: LoopbackServer, node: dict[str, Any]) -> list[Any]:
    """counter(COUNT) -> node (remote on ``server``) -> collect; the payloads collected."""
    name = node["name"]
    pipeline = build(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": COUNT}},
            {**node, "remote": server.target},
            {"name": "out", "mark": "collect"},
        ],
        [("src", name), (name, "out")],
        run_for=RUN_TIMEOUT_S,
    )
    return [m.payload for m in pipeline.nodes["out"].messages]


def session_lines(server: LoopbackServer, session_of: str) -> list[str]:
    """The server's log lines about the session opened by node ``session_of``, once it ended."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = list(server.output)
        opened = [line for line in lines if f"opened by {session_of}@" in line]
        if opened:
            sid = re.search(r"session (\S+) opened", opened[-1])
            assert sid is not None
            mine = [line for line in lines if f"session {sid.group(1)} " in line]
            if any(" ended: " in line for line in mine) or time.monotonic() > deadline:
                return mine
        elif time.monotonic() > deadline:
            return []
        time.sleep(0.02)


def test_a_light_node_runs_on_the_event_loop(server: LoopbackServer, build_pipeline: Build) -> None:
    payloads = run_remote(build_pipeline, server, {"mark": "gain", "name": "light"})
    assert [p.data["n"] for p in payloads] == list(range(COUNT))
    lines = session_lines(server, "light")
    assert any("light: on the event loop" in line for line in lines), lines
    assert not any("moves to its worker thread" in line for line in lines), lines


def test_a_node_not_declared_light_runs_on_its_worker_thread(
    server: LoopbackServer, build_pipeline: Build
) -> None:
    node = {"mark": "delay", "name": "heavy", "configuration": {"seconds": 0.001}}
    payloads = run_remote(build_pipeline, server, node)
    assert [p.data["n"] for p in payloads] == list(range(COUNT))
    lines = session_lines(server, "heavy")
    assert any("on a worker thread" in line for line in lines), lines


@pytest.mark.parametrize(
    ("name", "slow_at", "slow_s", "why"),
    [
        ("long", [3], 0.08, "over the 50 ms a node declared light may take once"),
        ("often", [3, 5, 7], 0.02, "3 calls within 100 over the 10 ms budget"),
    ],
    ids=["one call over 50 ms", "three calls over 10 ms"],
)
def test_a_light_node_over_the_budget_moves_to_its_worker_thread_losing_nothing(
    server: LoopbackServer,
    build_pipeline: Build,
    name: str,
    slow_at: list[int],
    slow_s: float,
    why: str,
) -> None:
    config = {"slow_at": slow_at, "slow_s": slow_s}
    node = {"mark": "hiccup", "name": name, "configuration": config}
    payloads = run_remote(build_pipeline, server, node)
    # Every input answered, in order, before and after the move.
    assert [p.data["n"] for p in payloads] == list(range(COUNT))
    lines = session_lines(server, name)
    assert any("light: on the event loop" in line for line in lines), lines
    moved = [line for line in lines if "moves to its worker thread" in line]
    assert len(moved) == 1, lines  # once: later calls run on the worker
    assert "WARNING" in moved[0] and why in moved[0], moved
    assert f"nodes: {name} (hiccup)" in moved[0]
    # The calls over the budget before the move were counted, not acted on.
    assert len([line for line in lines if "budget of a light node" in line]) == len(slow_at) - 1
    assert f"{COUNT} requests, {COUNT} outputs, 0 failures" in lines[-1], lines


def test_one_slow_call_of_a_light_node_leaves_it_on_the_loop(
    server: LoopbackServer, build_pipeline: Build
) -> None:
    # A call preempted or caught by a garbage collection on a busy machine takes longer
    # than the budget once in a while: the session keeps the loop.
    config = {"slow_at": [3], "slow_s": 0.02}
    node = {"mark": "hiccup", "name": "once", "configuration": config}
    payloads = run_remote(build_pipeline, server, node)
    assert [p.data["n"] for p in payloads] == list(range(COUNT))
    lines = session_lines(server, "once")
    strikes = [line for line in lines if "over the 10 ms budget of a light node" in line]
    assert len(strikes) == 1 and "3 such calls within 100 move it off the loop" in strikes[0]
    assert not any("moves to its worker thread" in line for line in lines), lines


def test_no_inline_keeps_light_nodes_on_their_worker_thread_with_the_same_outputs(
    server: LoopbackServer, no_inline_server: LoopbackServer, build_pipeline: Build
) -> None:
    on_loop = run_remote(build_pipeline, server, {"mark": "running_sum", "name": "s_loop"})
    on_worker = run_remote(
        build_pipeline, no_inline_server, {"mark": "running_sum", "name": "s_worker"}
    )
    totals = [sum(range(i + 1)) for i in range(COUNT)]
    assert [p.data["total"] for p in on_loop] == totals
    assert on_worker == on_loop
    assert any("light: on the event loop" in line for line in session_lines(server, "s_loop"))
    lines = session_lines(no_inline_server, "s_worker")
    assert any("on a worker thread" in line for line in lines), lines
    assert not any("event loop" in line for line in lines if "opened by" in line), lines


def test_large_requests_of_a_light_session_go_to_its_worker_in_order(
    server: LoopbackServer, build_pipeline: Build, tmp_path: Path
) -> None:
    # Every third line carries 300 kB (over INLINE_MAX_BYTES): it runs on the worker
    # (20 ms).  With window 2 the next, small request arrives meanwhile, alone in its
    # frame; it must wait for it there, not overtake it on the loop: the node numbers
    # its calls, so call == n only in order.
    lines = [{"n": i, "pad": "x" * 300_000 if i % 3 == 1 else ""} for i in range(24)]
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    pipeline = build_pipeline(
        [
            {"name": "src", "mark": "jsonl_file", "configuration": {"path": str(source)}},
            {"name": "mixed", "mark": "ledger", "remote": {"target": server.target, "window": 2}},
            {"name": "out", "mark": "collect"},
        ],
        [("src", "mixed"), ("mixed", "out")],
        run_for=RUN_TIMEOUT_S,
    )
    out = [m.payload.data for m in pipeline.nodes["out"].messages]
    assert [d["n"] for d in out] == list(range(24))
    assert [d["call"] for d in out] == list(range(24))
    assert [d["pad"] for d in out] == [len(line["pad"]) for line in lines]
    session = session_lines(server, "mixed")
    assert any("light: on the event loop" in line for line in session), session
    assert not any("moves to its worker thread" in line for line in session), session

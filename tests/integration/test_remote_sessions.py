"""Sessions against real servers: isolation and sharing, the window, deadlines, configure, drain."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fontus.core import Pipeline
from fontus.remote.admin import server_stats
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

#: Bound on one pipeline run here: each takes well under two seconds.
RUN_TIMEOUT_S = 30.0
#: How often a running pipeline's stats are sampled.
SAMPLE_S = 0.002

Build = Callable[..., Pipeline]


def totals(path: Path) -> list[Any]:
    return [json.loads(line)["payload"]["total"] for line in path.read_text().splitlines()]


def run_until_done(pipeline: Pipeline, sample: Callable[[], None] | None = None) -> None:
    """Start ``pipeline`` and wait for its end (bounded), calling ``sample`` meanwhile."""
    pipeline.start()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not pipeline.wait(SAMPLE_S):
        if sample is not None:
            sample()
        assert time.monotonic() < deadline, (
            f"pipeline still {pipeline.state} after {RUN_TIMEOUT_S}s"
        )
    if sample is not None:
        sample()


def through_remote(
    target: str, count: int, node: dict[str, Any], window: int, inbox: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """``counter (count) → node (remote, window, inbox) → collect``: nodes and links."""
    name = node["name"]
    nodes = [
        {"name": "src", "mark": "counter", "configuration": {"count": count}},
        {**node, "remote": {"target": target, "window": window}, "inbox": inbox},
        {"name": "out", "mark": "collect"},
    ]
    return nodes, [("src", name), (name, "out")]


# -- isolated and shared sessions ----------------------------------------------------

#: Three pipelines of COUNT paced messages each, so that their sessions overlap.
COUNT, RATE = 20, 50.0


def three_running_sums(
    folder: Path,
    target: str,
    write_pipeline: Callable[..., Path],
    fontus_many: Callable[..., list[subprocess.CompletedProcess[str]]],
) -> list[Path]:
    """Runs three ``counter -> running_sum (remote) -> jsonl`` pipelines at the same time."""
    outputs = [folder / f"out{i}.jsonl" for i in range(3)]
    files = [
        write_pipeline(
            folder / f"p{i}.yaml",
            [
                {"name": "src", "mark": "counter", "configuration": {"count": COUNT, "rate": RATE}},
                # The same name and configuration everywhere: a shared server keys on them.
                {"name": "sum", "mark": "running_sum", "remote": target},
                {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
            ],
            [("src", "sum"), ("sum", "out")],
            name=f"p{i}",
        )
        for i, out in enumerate(outputs)
    ]
    for done in fontus_many(*(["run", "-q", f] for f in files)):
        assert done.returncode == 0, done.stderr
    return outputs


def test_isolated_sessions_give_each_pipeline_its_own_running_total(
    catalogue_server: LoopbackServer,
    tmp_path: Path,
    write_pipeline: Callable[..., Path],
    fontus_many: Callable[..., list[subprocess.CompletedProcess[str]]],
) -> None:
    outputs = three_running_sums(tmp_path, catalogue_server.target, write_pipeline, fontus_many)
    for out in outputs:
        assert totals(out) == list(accumulate(range(COUNT)))


def test_shared_sessions_make_one_running_total_across_pipelines(
    shared_server: LoopbackServer,
    tmp_path: Path,
    write_pipeline: Callable[..., Path],
    fontus_many: Callable[..., list[subprocess.CompletedProcess[str]]],
) -> None:
    outputs = three_running_sums(tmp_path, shared_server.target, write_pipeline, fontus_many)
    per_pipeline = [totals(out) for out in outputs]
    for seen in per_pipeline:
        assert len(seen) == COUNT
        assert seen == sorted(seen)  # each pipeline sees the shared total grow
    # All totals together are one sequence: sorted, their steps are exactly the inputs
    # of all three pipelines, whatever the interleaving was.
    everything = sorted(t for seen in per_pipeline for t in seen)
    # (This test is the only user of the shared server: its total starts at 0.)
    steps = [b - a for a, b in pairwise([0, *everything])]
    assert Counter(steps) == Counter(list(range(COUNT)) * 3)
    assert everything[-1] == 3 * sum(range(COUNT))


# -- the window: backpressure --------------------------------------------------------


def test_an_abort_frees_a_source_waiting_for_room_in_a_warps_feed(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    # A Warp takes its data on the client loop (LoopFeed): a source it holds back waits
    # for room there, and an abort must release it as a full inbox would.
    slow = {"name": "slow", "mark": "delay", "configuration": {"seconds": 0.05}}
    pipeline = build_pipeline(
        *through_remote(catalogue_server.target, 500, slow, window=1, inbox={"capacity": 2})
    )
    pipeline.start()
    warp = pipeline.nodes["slow"]
    assert warp._feed is not None and warp._feed.active
    deadline = time.monotonic() + RUN_TIMEOUT_S
    depths = []
    while len(pipeline.nodes["out"].messages) < 3:
        assert time.monotonic() < deadline, "no output from the slow node"
        depths.append(pipeline.stats()["slow"].queue_depth)
        time.sleep(SAMPLE_S)
    assert max(depths) <= 2, f"queue depth went up to {max(depths)} with a capacity of 2"
    assert max(depths) == 2  # the source did wait for room
    started = time.monotonic()
    pipeline.stop(graceful=False)
    assert pipeline.wait(10.0), f"pipeline still {pipeline.state} 10 s after an abort"
    assert time.monotonic() - started < 5.0
    result = pipeline.result()
    assert result.stats["src"].sent < 500  # stopped, not run to the end


def test_two_upstreams_share_a_warps_feed_and_every_message_arrives(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    # Two source threads put into one Warp's feed at once, through an inbox of 2.
    count = 200
    pipeline = build_pipeline(
        [
            {"name": "a", "mark": "counter", "configuration": {"count": count}},
            {"name": "b", "mark": "counter", "configuration": {"count": count}},
            {
                "name": "ident",
                "mark": "identity",
                "remote": {"target": catalogue_server.target, "window": 4},
                "inbox": {"capacity": 2},
            },
            {"name": "out", "mark": "collect"},
        ],
        [("a", "ident"), ("b", "ident"), ("ident", "out")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error
    assert pipeline.nodes["ident"]._feed.active
    by_origin = Counter(m.payload["n"] for m in pipeline.nodes["out"].messages)
    assert by_origin == Counter(list(range(count)) * 2)
    stats = result.stats["ident"]
    assert stats.received == 2 * count and stats.sent == 2 * count


def test_a_warp_with_a_dropping_inbox_runs_update_on_its_node_thread(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    # drop_oldest is the runner's work on the node thread: no feed for this Warp.
    count = 300
    slow = {"name": "slow", "mark": "delay", "configuration": {"seconds": 0.001}}
    inbox = {"capacity": 2, "overflow": "drop_oldest"}
    pipeline = build_pipeline(
        *through_remote(catalogue_server.target, count, slow, window=1, inbox=inbox)
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error
    assert pipeline.nodes["slow"]._feed is None
    seen = [m.payload["n"] for m in pipeline.nodes["out"].messages]
    stats = result.stats["slow"]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # in order, none twice
    assert seen[-1] == count - 1  # the newest is kept
    assert stats.dropped == count - len(seen) > 0


def test_slow_remote_node_keeps_the_window_and_slows_the_source(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    count, seconds, window = 30, 0.02, 2
    slow = {"name": "slow", "mark": "delay", "configuration": {"seconds": seconds}}
    # A small inbox too, or the source would only fill 64 slots before slowing.
    pipeline = build_pipeline(
        *through_remote(catalogue_server.target, count, slow, window=window, inbox={"capacity": 2})
    )
    in_flight: list[int] = []

    def sample() -> None:
        extra = pipeline.stats()["slow"].extra
        assert extra is not None
        in_flight.append(extra["in_flight"])

    run_until_done(pipeline, sample)
    result = pipeline.result()
    assert result.state == "done", result.error
    stats = result.stats
    extra = stats["slow"].extra
    assert extra is not None
    assert extra["window"] == window
    assert extra["requests"] == count and extra["failures"] == 0
    assert max(in_flight) <= window, f"in_flight went up to {max(in_flight)}"
    assert max(in_flight) == window  # the window did fill: the bound was exercised
    assert [m.payload["n"] for m in pipeline.nodes["out"].messages] == list(range(count))
    # The source can run ahead of the server by the inbox, the window and one blocked
    # update() at most: it cannot finish before the server did most of the work.
    ahead = 2 + window + 1
    assert stats["src"].elapsed_s >= (count - ahead - 1) * seconds * 0.9
    assert stats["src"].rate <= 1.5 / seconds, f"source ran at {stats['src'].rate:.0f} msg/s"


# -- deadlines -----------------------------------------------------------------------


def every_request_timed_out(
    build_pipeline: Build, target: str, *, count: int, seconds: float, window: int, timeout: float
) -> dict[str, Any]:
    """Run ``count`` inputs through a remote ``delay`` of ``seconds`` with ``timeout``
    (on_error: emit), check that every one timed out and came out as an error message in
    input order, and return the Warp's stats."""
    pipeline = build_pipeline(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": count}},
            {
                "name": "slow",
                "mark": "delay",
                "configuration": {"seconds": seconds},
                "remote": {
                    "target": target,
                    "window": window,
                    "timeout": timeout,
                    "on_error": "emit",
                },
            },
            {"name": "out", "mark": "collect"},
        ],
        [("src", "slow"), ("slow", "out")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error
    extra = result.stats["slow"].extra
    assert extra is not None
    assert extra["requests"] == count
    assert extra["failures"] == extra["timeouts"] == count and extra["outputs"] == 0
    # on_error: emit: one error message per failed input, in input order, naming the node.
    received = pipeline.nodes["out"].messages
    assert [m.payload["seq"] for m in received] == list(range(1, count + 1))
    for message in received:
        assert message.meta["fontus.error"] is True
        assert message.payload["node"] == "slow"
        assert message.payload["error"]
    return extra


def test_request_whose_deadline_passes_before_its_turn_fails_without_running(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    # Each input takes 0.3 s on the server and may take 0.1 s.  The first one runs and
    # comes back late; the three queued behind it miss their deadline and never run.
    # Their late answers free the window (the server counts a request until it answers
    # it), the next two go, the first of them runs, the other misses its deadline.
    count = 6
    extra = every_request_timed_out(
        build_pipeline, catalogue_server.target, count=count, seconds=0.3, window=4, timeout=0.1
    )
    assert extra["late"] >= count  # answers that came after the client gave up are counted
    # The server ran update() for two inputs at most: the others failed without running.
    session = next(
        n for n in server_stats(catalogue_server.target).nodes if n["session"] == extra["session"]
    )
    assert session["requests"] == count
    assert session["outputs"] <= 2


def test_a_deadline_is_watched_from_the_moment_a_request_is_sent_after_an_idle_spell(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    # A Warp's delivery thread, with nothing in flight, waits up to 0.5 s before it looks
    # again; a request whose deadline comes sooner must still time out on time.  Each
    # input takes 0.25 s on the server and may take 0.05 s: the next one is sent when the
    # late answer frees the window, 0.2 s after the last timeout, and its answer arrives
    # 0.45 s after it, before that 0.5 s wait ends.  Looked at only then, it would count
    # as answered, not as timed out.
    every_request_timed_out(
        build_pipeline, catalogue_server.target, count=4, seconds=0.25, window=1, timeout=0.05
    )


# -- configure -----------------------------------------------------------------------


def sine_gain_jsonl(
    out: Path, remote: str | None, *, gains: tuple[str, ...] = ("g",)
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = [
        {"name": "src", "mark": "sine", "configuration": {"duration_s": 0.2, "dtype": "float32"}}
    ]
    for name in gains:
        node: dict[str, Any] = {"name": name, "mark": "gain", "configuration": {"factor": 1.0}}
        if remote:
            node["remote"] = remote
        nodes.append(node)
    nodes.append({"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}})
    return nodes


def test_configure_before_the_first_message_gives_the_same_output_as_local(
    catalogue_server: LoopbackServer, build_pipeline: Build, tmp_path: Path
) -> None:
    outputs = {}
    for where, remote in (("local", None), ("remote", catalogue_server.target)):
        out = tmp_path / f"{where}.jsonl"
        pipeline = build_pipeline(sine_gain_jsonl(out, remote), [("src", "g"), ("g", "out")])
        pipeline.configure("g", "factor", 0.25)  # queued before any data: applied first
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
        assert result.state == "done", result.error
        outputs[where] = out.read_bytes()
        if remote:
            extra = result.stats["g"].extra
            assert extra is not None
            assert extra["configures"] == 1 and extra["failures"] == 0
    unconfigured = tmp_path / "unconfigured.jsonl"
    build_pipeline(sine_gain_jsonl(unconfigured, None), [("src", "g"), ("g", "out")]).run(
        timeout=RUN_TIMEOUT_S
    )
    assert outputs["remote"] == outputs["local"]
    assert outputs["local"] != unconfigured.read_bytes()  # the change did something


def test_configure_reaches_a_member_of_a_remote_group(
    catalogue_server: LoopbackServer, build_pipeline: Build, tmp_path: Path
) -> None:
    links = [("src", "g1"), ("g1", "g2"), ("g2", "out")]
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local = build_pipeline(sine_gain_jsonl(local_out, None, gains=("g1", "g2")), links)
    local.configure("g2", "factor", 0.5)
    assert local.run(timeout=RUN_TIMEOUT_S).state == "done"
    remote = build_pipeline(
        sine_gain_jsonl(remote_out, catalogue_server.target, gains=("g1", "g2")), links
    )
    remote.configure("g1+g2", "g2.factor", 0.5)  # the group's Warp, member.argument
    result = remote.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error
    assert remote_out.read_bytes() == local_out.read_bytes()


def test_configure_mid_stream_applies_after_every_earlier_message(
    catalogue_server: LoopbackServer, build_pipeline: Build
) -> None:
    count = 60  # 10 ms chunks in real time: the change comes early, with room to spare
    pipeline = build_pipeline(
        [
            {
                "name": "src",
                "mark": "sine",
                "configuration": {
                    "duration_s": count * 0.01,
                    "chunk_ms": 10,
                    "dtype": "float32",
                    "realtime": True,
                },
            },
            {
                "name": "g",
                "mark": "gain",
                "configuration": {"factor": 1.0},
                "remote": catalogue_server.target,
            },
            {"name": "inputs", "mark": "collect"},
            {"name": "outputs", "mark": "collect"},
        ],
        [("src", "g"), ("src", "inputs"), ("g", "outputs")],
    )
    received_before = -1

    def sample() -> None:
        nonlocal received_before
        if received_before < 0 and pipeline.stats()["g"].received >= count // 4:
            # Every message the Warp received so far is ahead of the change in its inbox.
            received_before = pipeline.stats()["g"].received
            pipeline.configure("g", "factor", 0.5)

    run_until_done(pipeline, sample)
    result = pipeline.result()
    assert result.state == "done", result.error
    assert received_before > 0
    inputs = [m.payload.audio for m in pipeline.nodes["inputs"].messages]
    outputs = [m.payload.audio for m in pipeline.nodes["outputs"].messages]
    assert len(inputs) == len(outputs) == count
    # Outputs are unchanged up to some k, then all halved: the change took one place in
    # the stream, and that place is after every message received before configure().
    factors = []
    for before, after in zip(inputs, outputs, strict=True):
        if np.array_equal(after, before):
            factors.append(1.0)
        else:
            assert np.array_equal(after, before * np.float32(0.5))
            factors.append(0.5)
    k = factors.index(0.5)
    assert factors == [1.0] * k + [0.5] * (count - k)
    assert k >= received_before
    extra = result.stats["g"].extra
    assert extra is not None
    assert extra["configures"] == 1 and extra["failures"] == 0


def test_configure_the_remote_node_refuses_is_a_counted_failure(
    catalogue_server: LoopbackServer, build_pipeline: Build, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    pipeline = build_pipeline(
        sine_gain_jsonl(out, catalogue_server.target), [("src", "g"), ("g", "out")]
    )
    pipeline.configure("g", "no_such_argument", 1)
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error  # on_error: skip
    extra = result.stats["g"].extra
    assert extra is not None
    assert extra["failures"] == 1
    assert extra["outputs"] == result.stats["src"].sent  # every message still went through


# -- drain on SIGTERM ----------------------------------------------------------------


def test_sigterm_finishes_received_work_then_exits_0_and_the_client_does_not_hang(
    build_pipeline: Build,
) -> None:
    count, window = 16, 4
    with LoopbackServer(["--allow", "delay"]) as server:
        pipeline = build_pipeline(
            [
                {"name": "src", "mark": "counter", "configuration": {"count": count}},
                {
                    "name": "slow",
                    "mark": "delay",
                    "configuration": {"seconds": 0.05},
                    # Requests the server never answers fail after 1 s, while the Warp
                    # tries to reconnect to the server that has gone.
                    "remote": {"target": server.target, "window": window, "timeout": 1.0},
                },
                {"name": "out", "mark": "collect"},
            ],
            [("src", "slow"), ("slow", "out")],
        )
        at_signal: dict[str, Any] = {}

        def sample() -> None:
            extra = pipeline.stats()["slow"].extra
            assert extra is not None
            if not at_signal and extra["outputs"] >= 3 and extra["in_flight"] == window:
                at_signal.update(extra)
                server.signal(signal.SIGTERM)

        began = time.monotonic()
        run_until_done(pipeline, sample)
        elapsed = time.monotonic() - began
        assert at_signal, "the stream never reached the state the test signals in"
        code = server.process.wait(RUN_TIMEOUT_S) if server.process else None
        assert code == 0
        wait_for_log(server, "stopped")
        assert "draining" in server.log()
    result = pipeline.result()
    stats = result.stats["slow"]
    extra = stats.extra
    assert extra is not None
    # What the server had received when the signal came completed: at most the one
    # request sent in the instant of the signal may not have reached it.
    assert extra["outputs"] >= at_signal["outputs"] + at_signal["in_flight"] - 1
    # The rest is reported, never dropped silently: failed requests, or update() errors
    # for inputs that came after the session ended.
    assert extra["outputs"] + extra["failures"] == extra["requests"]
    assert extra["requests"] + stats.errors == count
    assert extra["outputs"] < count
    assert len(pipeline.nodes["out"].messages) == extra["outputs"]
    assert elapsed < 20.0


def wait_for_log(server: LoopbackServer, text: str, timeout: float = 5.0) -> None:
    """The server's output reader may lag its exit by a moment."""
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not in the server log:\n{server.log()}"
        time.sleep(0.02)

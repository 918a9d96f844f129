"""Errors with remote nodes: a node failing mid-stream under each ``on_error``, and start failures.

Start failures run through ``fontus run``: the pipeline must fail before any
message flows, exit 1, and print one useful line naming the node, the server
and the cause (never a traceback).
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fontus.core import ObjectPayload, Pipeline
from fontus.testing import LoopbackServer, run_node

pytestmark = pytest.mark.timeout(60)

#: Bound on one pipeline run here: each takes well under a second.
RUN_TIMEOUT_S = 30.0
COUNT, K = 10, 3
#: Values of the inputs fail_every k=3 fails on: the 3rd, 6th and 9th (n counts from 0).
FAILING = [n for n in range(COUNT) if (n + 1) % K == 0]

Fontus = Callable[..., subprocess.CompletedProcess[str]]


def fail_every_nodes(out: Path, remote: Any = None, **node: Any) -> list[dict[str, Any]]:
    """counter -> fe (fail_every k=3, remote when given) -> out (jsonl at ``out``)."""
    fail: dict[str, Any] = {"name": "fe", "mark": "fail_every", "configuration": {"k": K}, **node}
    if remote is not None:
        fail["remote"] = remote
    return [
        {"name": "src", "mark": "counter", "configuration": {"count": COUNT}},
        fail,
        {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
    ]


LINKS = [("src", "fe"), ("fe", "out")]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- a node failing mid-stream -------------------------------------------------------


def test_on_error_skip_counts_failures_and_the_other_messages_arrive(
    catalogue_server: LoopbackServer, build_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local = build_pipeline(fail_every_nodes(local_out), LINKS).run(timeout=RUN_TIMEOUT_S)
    remote = build_pipeline(fail_every_nodes(remote_out, catalogue_server.target), LINKS).run(
        timeout=RUN_TIMEOUT_S
    )
    assert local.state == remote.state == "done"
    assert local.stats["fe"].errors == len(FAILING)
    extra = remote.stats["fe"].extra
    assert extra is not None
    assert extra["failures"] == len(FAILING) and extra["outputs"] == COUNT - len(FAILING)
    assert [r["payload"]["n"] for r in records(remote_out)] == [
        n for n in range(COUNT) if n not in FAILING
    ]
    assert remote_out.read_bytes() == local_out.read_bytes()


def test_on_error_emit_puts_an_error_record_in_place_of_each_failed_message(
    catalogue_server: LoopbackServer, build_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    remote = {"target": catalogue_server.target, "on_error": "emit"}
    result = build_pipeline(fail_every_nodes(out, remote), LINKS).run(timeout=RUN_TIMEOUT_S)
    assert result.state == "done", result.error
    lines = records(out)
    assert len(lines) == COUNT  # one record per input: its output, or its error
    for n, record in enumerate(lines):
        assert record["creator"] == "fe"
        if n in FAILING:
            assert record["meta"] == {"fontus.error": True}
            assert record["payload"]["node"] == "fe"
            assert f"failing on purpose on input {n + 1}" in record["payload"]["error"]
        else:
            assert record["payload"] == {"n": n}


@pytest.mark.parametrize("form", ["remote.on_error", "node on_error"])
def test_on_error_stop_fails_the_cli_run_naming_the_node_like_a_local_node(
    catalogue_server: LoopbackServer,
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    tmp_path: Path,
    form: str,
) -> None:
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    local = write_pipeline(
        tmp_path / "local.yaml", fail_every_nodes(local_out, on_error="stop"), LINKS
    )
    remote_nodes = (
        fail_every_nodes(remote_out, {"target": catalogue_server.target, "on_error": "stop"})
        if form == "remote.on_error"
        else fail_every_nodes(remote_out, catalogue_server.target, on_error="stop")
    )
    remote = write_pipeline(tmp_path / "remote.yaml", remote_nodes, LINKS)
    local_run, remote_run = fontus("run", "-q", local), fontus("run", "-q", remote)
    assert local_run.returncode == 1, local_run.stderr
    assert remote_run.returncode == 1, remote_run.stderr
    assert "node 'fe'" in remote_run.stderr
    assert "failing on purpose on input 3" in remote_run.stderr
    assert "Traceback" not in remote_run.stderr
    # Nothing after the failing message goes downstream, as with the local node.
    assert remote_out.read_bytes() == local_out.read_bytes()
    assert [r["payload"]["n"] for r in records(remote_out)] == [0, 1]


# -- failures at start -----------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: bound (so nobody else takes it), never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def start_failure(
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    folder: Path,
    node: dict[str, Any],
) -> str:
    """Runs counter -> node -> jsonl; asserts it fails at start, returns its stderr."""
    out = folder / "out.jsonl"
    path = write_pipeline(
        folder / "p.yaml",
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 3}},
            node,
            {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
        ],
        [("src", node["name"]), (node["name"], "out")],
    )
    done = fontus("run", path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # Failed at warmup (warmups run in parallel, so the sink may have opened its file).
    assert not out.exists() or out.read_text() == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_asking_for_a_mark_the_catalogue_does_not_allow_fails_at_start(
    catalogue_server: LoopbackServer,
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    tmp_path: Path,
) -> None:
    message = start_failure(
        fontus,
        write_pipeline,
        tmp_path,
        {"name": "asr", "mark": "whisper_large", "remote": catalogue_server.target},
    )
    assert "node 'asr'" in message
    assert catalogue_server.target in message
    assert "mark 'whisper_large' is not allowed on this server" in message
    assert "running_sum" in message  # lists what is allowed


def test_asking_a_one_node_server_for_another_mark_fails_with_not_found(
    node_server: LoopbackServer,
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    tmp_path: Path,
) -> None:
    message = start_failure(
        fontus,
        write_pipeline,
        tmp_path,
        {"name": "pass", "mark": "identity", "remote": node_server.target},
    )
    assert "node 'pass'" in message
    assert node_server.target in message
    assert "NOT_FOUND" in message
    assert "hosts mark 'gain' only" in message


def test_an_argument_the_remote_node_does_not_declare_fails_at_start_with_a_suggestion(
    catalogue_server: LoopbackServer,
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    tmp_path: Path,
) -> None:
    message = start_failure(
        fontus,
        write_pipeline,
        tmp_path,
        {
            "name": "g",
            "mark": "gain",
            "configuration": {"facter": 2.0},
            "remote": catalogue_server.target,
        },
    )
    assert "node 'g'" in message
    assert catalogue_server.target in message
    assert "INVALID_ARGUMENT" in message
    assert "unknown argument 'facter'" in message and "did you mean 'factor'" in message


def test_a_server_that_is_not_there_fails_at_start_saying_so(
    closed_port: int,
    fontus: Fontus,
    write_pipeline: Callable[..., Path],
    tmp_path: Path,
) -> None:
    target = f"127.0.0.1:{closed_port}"
    message = start_failure(
        fontus,
        write_pipeline,
        tmp_path,
        # A short open_timeout: the default waits 30 s for a server that may be starting.
        {"name": "g", "mark": "gain", "remote": {"target": target, "open_timeout": 1.0}},
    )
    assert "node 'g'" in message
    assert target in message
    assert "server unavailable" in message
    assert "is 'fontus serve' running there" in message


def test_a_message_that_cannot_be_encoded_fails_alone_and_keeps_the_window(
    catalogue_server: LoopbackServer,
) -> None:
    # An int beyond int64 is a fine local value but cannot travel: the Warp's update
    # raises for that message only. With a window of 1, a slot taken before encoding
    # and never given back would stall every later message.
    inputs = [ObjectPayload({"n": 1}), ObjectPayload({"n": 2**70}), ObjectPayload({"n": 3})]
    remote = {"target": catalogue_server.target, "window": 1, "timeout": 10.0}
    run = run_node("identity", inputs=inputs, remote=remote, timeout=RUN_TIMEOUT_S)
    assert run.result.state == "done", run.result
    assert [m.payload["n"] for m in run.messages] == [1, 3]
    stats = run.result.stats["node"]
    assert stats.errors == 1, stats

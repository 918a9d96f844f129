"""A node behind a real server writes the same ``jsonl`` file as the node run locally.

Each case is one pipeline file run twice with ``fontus run``: as written, and
with ``remote: <server>`` on the processing nodes; the output path is given
with ``--set``.  The two files must be equal byte for byte.
"""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

#: A remote run of a few messages takes a few milliseconds (process start aside); a
#: request waiting for its 30 s default timeout would show far above this bound.
PROMPT_END_S = 5.0
_DONE_AFTER = re.compile(r"done after ([\d.]+) s")

SOURCES: dict[str, dict[str, Any]] = {
    "counter": {"count": 12},
    "sine": {"duration_s": 0.3, "chunk_ms": 20, "dtype": "int16"},
    "test_pattern": {"width": 48, "height": 32, "frames": 4},
}

# (processor mark, its configuration, source mark)
CASES = [
    ("identity", {}, "counter"),
    ("repeat", {"times": 2}, "counter"),
    ("delay", {"seconds": 0.002}, "counter"),
    ("gain", {"factor": 0.5}, "sine"),
    ("energy_vad", {"threshold_db": -30.0, "min_speech_ms": 40.0}, "sine"),
    ("running_sum", {"field": "n"}, "counter"),
    ("fail_every", {"k": 0}, "counter"),
    ("grayscale", {}, "test_pattern"),
]


Compare = Callable[..., dict[str, tuple[bytes, bytes]]]


@pytest.fixture
def local_and_remote(
    tmp_path: Path,
    fontus_many: Callable[..., list[subprocess.CompletedProcess[str]]],
    write_pipeline: Callable[..., Path],
) -> Compare:
    """Runs a pipeline plain and with ``remote: target`` on some nodes, both at once.

    ``compare(nodes, links, remote=[names], target=..., sinks=[names])`` returns,
    per jsonl sink, the bytes of its file in the plain run and in the remote run.
    """

    def compare(
        nodes: list[dict[str, Any]],
        links: list[tuple[str, str]],
        *,
        remote: list[str],
        target: str,
        sinks: tuple[str, ...] = ("out",),
    ) -> dict[str, tuple[bytes, bytes]]:
        plain = write_pipeline(tmp_path / "plain.yaml", nodes, links)
        switched = copy.deepcopy(nodes)
        for node in switched:
            if node["name"] in remote:
                node["remote"] = target
        remoted = write_pipeline(tmp_path / "remote.yaml", switched, links)

        def run_args(path: Path, tag: str) -> list[str | Path]:
            args: list[str | Path] = ["run", path]
            for sink in sinks:
                args += ["--set", f"{sink}.path={tmp_path / f'{sink}-{tag}.jsonl'}"]
            return args

        local_run, remote_run = fontus_many(run_args(plain, "local"), run_args(remoted, "remote"))
        assert local_run.returncode == 0, local_run.stderr
        assert remote_run.returncode == 0, remote_run.stderr
        assert target in remote_run.stdout  # the summary shows the remote hop: it went remote
        done_after = _DONE_AFTER.search(remote_run.stdout)
        assert done_after, remote_run.stdout
        assert float(done_after.group(1)) < PROMPT_END_S, remote_run.stdout
        return {
            sink: (
                (tmp_path / f"{sink}-local.jsonl").read_bytes(),
                (tmp_path / f"{sink}-remote.jsonl").read_bytes(),
            )
            for sink in sinks
        }

    return compare


def chain(source: str, procs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """source -> procs... -> out (jsonl)."""
    nodes = [
        {"name": "src", "type": "source", "mark": source, "configuration": SOURCES[source]},
        *procs,
        {"name": "out", "type": "sink", "mark": "jsonl", "configuration": {"path": "unset"}},
    ]
    names = [n["name"] for n in nodes]
    return nodes, list(itertools.pairwise(names))


@pytest.mark.parametrize(("mark", "configuration", "source"), CASES, ids=[c[0] for c in CASES])
def test_builtin_processor_gives_the_same_jsonl_local_and_remote(
    catalogue_server: LoopbackServer,
    local_and_remote: Compare,
    mark: str,
    configuration: dict[str, Any],
    source: str,
) -> None:
    nodes, links = chain(source, [{"name": "proc", "mark": mark, "configuration": configuration}])
    files = local_and_remote(nodes, links, remote=["proc"], target=catalogue_server.target)
    local, remote = files["out"]
    assert local, f"{mark}: the local run wrote nothing; the case proves nothing"
    assert remote == local


@pytest.mark.parametrize("times", [0, 1, 5])
def test_repeat_emits_exactly_times_copies_remotely_and_ends_promptly(
    catalogue_server: LoopbackServer, local_and_remote: Compare, times: int
) -> None:
    repeat = {"name": "rep", "mark": "repeat", "configuration": {"times": times}}
    nodes, links = chain("counter", [repeat])
    files = local_and_remote(nodes, links, remote=["rep"], target=catalogue_server.target)
    local, remote = files["out"]
    assert remote == local
    assert remote.count(b"\n") == times * SOURCES["counter"]["count"]


def test_remote_group_of_three_nodes_gives_the_same_output_as_local(
    catalogue_server: LoopbackServer, local_and_remote: Compare
) -> None:
    nodes, links = chain(
        "counter",
        [
            {"name": "rep", "mark": "repeat", "configuration": {"times": 3}},
            {"name": "sum", "mark": "running_sum", "configuration": {"field": "n"}},
            {"name": "last", "mark": "identity"},
        ],
    )
    files = local_and_remote(
        nodes, links, remote=["rep", "sum", "last"], target=catalogue_server.target
    )
    local, remote = files["out"]
    assert local.count(b"\n") == 3 * SOURCES["counter"]["count"]
    assert remote == local


def test_remote_group_with_two_exits_feeds_each_sink_its_own_stream(
    catalogue_server: LoopbackServer, local_and_remote: Compare
) -> None:
    #          ┌─> twice (repeat 2) ──> copies
    # src ─> entry
    #          └─> sum (running_sum) ──> totals        entry, twice and sum on one server
    nodes = [
        {"name": "src", "type": "source", "mark": "counter", "configuration": SOURCES["counter"]},
        {"name": "entry", "mark": "identity"},
        {"name": "twice", "mark": "repeat", "configuration": {"times": 2}},
        {"name": "sum", "mark": "running_sum", "configuration": {"field": "n"}},
        {"name": "copies", "type": "sink", "mark": "jsonl", "configuration": {"path": "unset"}},
        {"name": "totals", "type": "sink", "mark": "jsonl", "configuration": {"path": "unset"}},
    ]
    links = [
        ("src", "entry"),
        ("entry", "twice"),
        ("entry", "sum"),
        ("twice", "copies"),
        ("sum", "totals"),
    ]
    files = local_and_remote(
        nodes,
        links,
        remote=["entry", "twice", "sum"],
        target=catalogue_server.target,
        sinks=("copies", "totals"),
    )
    count = SOURCES["counter"]["count"]
    local_copies, remote_copies = files["copies"]
    local_totals, remote_totals = files["totals"]
    assert local_copies.count(b"\n") == 2 * count
    assert local_totals.count(b"\n") == count
    assert remote_copies == local_copies
    assert remote_totals == local_totals

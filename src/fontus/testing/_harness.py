"""Run a node or a pipeline on given inputs, locally and behind a real loopback server, and compare.

::

    from fontus.testing import compare_node
    comparison = compare_node("gain", {"factor": 0.5}, inputs=[AudioPayload(...), ...])
    assert comparison.equal, comparison.diff()

Outputs are compared as records (``fontus.nodes.records``): creator, version,
kind, payload (arrays by dtype, shape and SHA-256) and meta — what a message
means, not when it was made.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.message import Message
from ..core.node import Sink, Source
from ..core.payloads import Payload
from ..core.pipeline import Pipeline, PipelineResult
from ..core.registry import Registry, default_registry
from ..nodes._records import message_record
from ._server import LoopbackServer

__all__ = [
    "Comparison",
    "RunOutput",
    "compare_node",
    "compare_pipeline",
    "run_node",
    "run_pipeline",
]

#: Bound on a harness run; a stuck node fails the test instead of hanging it.
RUN_TIMEOUT_S = 60.0


class _Feed(Source):
    """Emits the given inputs (the harness's source)."""

    mark = "fontus_testing_feed"

    def __init__(self, key: str = "") -> None:
        self.key = key

    def generate(self) -> Iterator[Payload | Message[Any]]:
        yield from _FEEDS[self.key]

    def total(self) -> int | None:
        return len(_FEEDS[self.key])


class _Collect(Sink):
    """Keeps what it receives (the harness's sink)."""

    mark = "fontus_testing_collect"

    def __init__(self, key: str = "") -> None:
        self.key = key

    def update(self, message: Message[Any]) -> None:
        _COLLECTED[self.key].append(message)


_FEEDS: dict[str, list[Any]] = {}
_COLLECTED: dict[str, list[Message[Any]]] = {}
_counter = iter(range(1, 1 << 62))
_lock = threading.Lock()


def _registry() -> Registry:
    registry = default_registry()
    if "fontus_testing_feed" not in registry.marks():
        registry.add(_Feed)
        registry.add(_Collect)
    return registry


@dataclass(frozen=True)
class RunOutput:
    messages: tuple[Message[Any], ...]
    result: PipelineResult

    @property
    def records(self) -> list[dict[str, Any]]:
        return [message_record(m) for m in self.messages]


def run_node(
    mark: str,
    configuration: Mapping[str, Any] | None = None,
    inputs: Sequence[Payload | Message[Any]] = (),
    *,
    remote: str | Mapping[str, Any] | None = None,
    name: str = "node",
    timeout: float = RUN_TIMEOUT_S,
) -> RunOutput:
    """Run ``mark`` on ``inputs`` (locally, or behind ``remote``) and return what it emitted."""
    node: dict[str, Any] = {"name": name, "mark": mark, "configuration": dict(configuration or {})}
    if remote is not None:
        node["remote"] = remote
    return run_pipeline([node], [], inputs=inputs, feeds=[name], collects=[name], timeout=timeout)


def run_pipeline(
    nodes: Sequence[Mapping[str, Any]],
    links: Sequence[tuple[str, str]],
    *,
    inputs: Sequence[Payload | Message[Any]] = (),
    feeds: Sequence[str] = (),
    collects: Sequence[str] = (),
    timeout: float = RUN_TIMEOUT_S,
) -> RunOutput:
    """Run ``nodes``; ``inputs`` are fed to every node in ``feeds``; outputs of ``collects`` gathered."""
    registry = _registry()
    with _lock:
        key = f"run{next(_counter)}"
    _FEEDS[key] = list(inputs)
    _COLLECTED[key] = []
    all_nodes = [dict(n) for n in nodes]
    all_links = [{"from": a, "to": b} for a, b in links]
    if feeds:
        all_nodes.append(
            {"name": "_feed", "mark": "fontus_testing_feed", "configuration": {"key": key}}
        )
        all_links += [{"from": "_feed", "to": f} for f in feeds]
    if collects:
        all_nodes.append(
            {"name": "_collect", "mark": "fontus_testing_collect", "configuration": {"key": key}}
        )
        all_links += [{"from": c, "to": "_collect"} for c in collects]
    try:
        pipeline = Pipeline.from_dict(
            {"pipeline": {"name": key, "nodes": all_nodes, "links": all_links}}, registry=registry
        )
        result = pipeline.run(timeout=timeout)
        return RunOutput(tuple(_COLLECTED[key]), result)
    finally:
        _FEEDS.pop(key, None)
        _COLLECTED.pop(key, None)


@dataclass(frozen=True)
class Comparison:
    """Outputs of one run locally and one behind a server; ``equal`` compares each node's stream."""

    local: RunOutput
    remote: RunOutput

    @property
    def equal(self) -> bool:
        return _by_creator(self.local.records) == _by_creator(self.remote.records)

    def diff(self) -> str:
        a = [json.dumps(r, sort_keys=True) for r in _by_creator(self.local.records)]
        b = [json.dumps(r, sort_keys=True) for r in _by_creator(self.remote.records)]
        return "\n".join(difflib.unified_diff(a, b, "local", "remote", lineterm="", n=1))


def _by_creator(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records grouped by creator, each creator's order kept.

    Outputs of parallel branches interleave differently from run to run (they run
    on separate threads, locally too); what must match is each node's own stream.
    """
    return sorted(records, key=lambda r: str(r.get("creator")))


def compare_node(
    mark: str,
    configuration: Mapping[str, Any] | None = None,
    inputs: Sequence[Payload | Message[Any]] = (),
    *,
    server: LoopbackServer | None = None,
    timeout: float = RUN_TIMEOUT_S,
) -> Comparison:
    """Run ``mark`` locally and behind a loopback server (started here unless given)."""
    local = run_node(mark, configuration, inputs, timeout=timeout)
    own = server is None
    srv = server or LoopbackServer(["--allow", mark]).start()
    try:
        remote = run_node(mark, configuration, inputs, remote=srv.target, timeout=timeout)
    finally:
        if own:
            srv.stop()
    return Comparison(local, remote)


def compare_pipeline(
    nodes: Sequence[Mapping[str, Any]],
    links: Sequence[tuple[str, str]],
    remote_nodes: Sequence[str],
    target: str,
    *,
    inputs: Sequence[Payload | Message[Any]] = (),
    feeds: Sequence[str] = (),
    collects: Sequence[str] = (),
    timeout: float = RUN_TIMEOUT_S,
) -> Comparison:
    """Run a pipeline as given, then with ``remote_nodes`` switched to ``remote: target``."""
    local = run_pipeline(
        nodes, links, inputs=inputs, feeds=feeds, collects=collects, timeout=timeout
    )
    switched = [{**n, "remote": target} if n["name"] in remote_nodes else dict(n) for n in nodes]
    remote = run_pipeline(
        switched, links, inputs=inputs, feeds=feeds, collects=collects, timeout=timeout
    )
    return Comparison(local, remote)

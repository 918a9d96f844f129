"""Validation against the registry: every problem named, with its fix, all at once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import pytest

from fontus.core import (
    Message,
    Node,
    ObjectPayload,
    Pipeline,
    PipelineInvalid,
    Registry,
    Sink,
    Source,
    default_registry,
    validate_pipeline,
)
from fontus.core.config import parse_pipeline


class Numbers(Source):
    def __init__(
        self, count: int = 5, start: int = 0, every_ms: float = 0.0, forever: bool = False
    ) -> None:
        self.count = count

    def generate(self) -> Iterator[ObjectPayload]:
        yield from ()


class Collect(Sink):
    def update(self, message: Message[Any]) -> None:
        pass


class PassOn(Node):
    def update(self, message: Message[Any]) -> None:
        self.transmit(message)


class Scale(Node):
    """Multiplies.

    Args:
        factor: what to multiply by.
        mode: how to round.
    """

    def __init__(self, factor: float, mode: Literal["floor", "ceil"] = "floor") -> None:
        self.factor = factor
        self.mode = mode

    def update(self, message: Message[Any]) -> None:
        self.transmit(message)


class Broken(Node):
    def __init__(self, level: int = 0) -> None:
        raise RuntimeError("cannot open the device")

    def update(self, message: Message[Any]) -> None:
        pass


class Plain(Node):
    def update(self, message: Message[Any]) -> None:
        pass


def make_registry() -> Registry:
    registry = Registry(entry_points=False)
    for cls in (Numbers, Collect, PassOn, Scale, Broken, Plain):
        registry.add(cls)
    return registry


def pipeline_dict(
    nodes: Sequence[dict[str, Any]], links: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    return {"pipeline": {"nodes": list(nodes), "links": [{"from": a, "to": b} for a, b in links]}}


def problems_of(
    nodes: Sequence[dict[str, Any]], links: Sequence[tuple[str, str]] = ()
) -> tuple[str, ...]:
    with pytest.raises(PipelineInvalid) as info:
        Pipeline.from_dict(pipeline_dict(nodes, links), registry=make_registry())
    return info.value.problems


SRC = {"name": "src", "mark": "numbers"}
SINK = {"name": "sink", "mark": "collect"}


def test_a_valid_pipeline_builds() -> None:
    pipeline = Pipeline.from_dict(
        pipeline_dict(
            [SRC, {"name": "x", "mark": "scale", "configuration": {"factor": 2}}, SINK],
            [("src", "x"), ("x", "sink")],
        ),
        registry=make_registry(),
    )
    assert list(pipeline.nodes) == ["src", "x", "sink"]
    assert pipeline.nodes["x"].factor == 2.0  # int converted to the declared float
    assert isinstance(pipeline.nodes["x"].factor, float)


def test_unknown_mark_suggests_close_matches() -> None:
    assert problems_of([{"name": "a", "mark": "colect"}]) == (
        "node 'a': unknown mark 'colect'; did you mean 'collect'?",
    )


def test_unknown_mark_without_close_match_says_how_to_list_marks() -> None:
    assert problems_of([{"name": "a", "mark": "zzzz"}]) == (
        "node 'a': unknown mark 'zzzz'; run 'fontus nodes' to list the available marks",
    )


def test_unknown_argument_suggests_the_close_one() -> None:
    found = problems_of(
        [SRC, {"name": "x", "mark": "scale", "configuration": {"factr": 2, "factor": 1}}]
    )
    assert found == ("node 'x': unknown argument 'factr' for mark 'scale'; did you mean 'factor'?",)


def test_unknown_argument_without_close_match_lists_the_arguments() -> None:
    found = problems_of([{"name": "s", "mark": "numbers", "configuration": {"zzz": 1}}])
    assert found == (
        "node 's': unknown argument 'zzz' for mark 'numbers'; "
        "arguments are count, start, every_ms, forever",
    )


def test_unknown_argument_for_a_node_without_arguments() -> None:
    config = parse_pipeline(
        pipeline_dict([{"name": "p", "mark": "plain", "configuration": {"a": 1}}])
    )
    with pytest.raises(PipelineInvalid) as info:
        validate_pipeline(config, make_registry())
    assert info.value.problems == (
        "node 'p': unknown argument 'a' for mark 'plain'; it takes no arguments",
    )


def test_mistyped_argument_names_the_type_and_value() -> None:
    found = problems_of(
        [
            {"name": "s", "mark": "numbers", "configuration": {"count": "5"}},
            {"name": "x", "mark": "scale", "configuration": {"factor": 1, "mode": "round"}},
        ]
    )
    assert found == (
        "node 's': argument 'count' must be int, got str '5'",
        "node 'x': argument 'mode' must be 'floor' | 'ceil', got str 'round'",
    )


def test_long_values_are_shortened_in_messages() -> None:
    (problem,) = problems_of(
        [{"name": "s", "mark": "numbers", "configuration": {"count": "x" * 100}}]
    )
    assert problem.endswith("got str 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...")


def test_missing_required_argument_gives_type_and_help() -> None:
    assert problems_of([{"name": "x", "mark": "scale"}]) == (
        "node 'x': missing required argument 'factor' (float) (what to multiply by.); "
        "add it under configuration",
    )


def test_duplicate_names() -> None:
    assert problems_of([SRC, {"name": "src", "mark": "numbers"}]) == (
        "node 'src': duplicate name; node names must be unique",
    )


def test_dangling_link_suggests_the_close_name() -> None:
    assert problems_of([SRC, SINK], [("src", "snk"), ("nowhere", "sink")]) == (
        "link src -> snk: 'to' names unknown node 'snk'; did you mean 'sink'?",
        "link nowhere -> sink: 'from' names unknown node 'nowhere'",
    )


def test_duplicate_link() -> None:
    assert problems_of([SRC, SINK], [("src", "sink"), ("src", "sink")]) == (
        "link src -> sink: declared twice; remove the duplicate",
    )


def test_self_link_is_reported_once() -> None:
    found = problems_of([SRC, {"name": "p", "mark": "pass_on"}], [("p", "p")])
    assert found == ("link p -> p: a node cannot link to itself",)


def test_cycle_is_shown_as_a_path() -> None:
    found = problems_of(
        [SRC, {"name": "a", "mark": "pass_on"}, {"name": "b", "mark": "pass_on"}],
        [("src", "a"), ("a", "b"), ("b", "a")],
    )
    assert found == ("links form a cycle: a -> b -> a; pipelines must be acyclic, remove one link",)


def test_source_with_inputs_and_sink_with_outputs() -> None:
    found = problems_of(
        [SRC, {"name": "src2", "mark": "numbers"}, SINK, {"name": "p", "mark": "pass_on"}],
        [("src", "src2"), ("sink", "p")],
    )
    assert found == (
        "node 'src2': is a source (mark 'numbers') but has inputs from src; remove those links",
        "node 'sink': is a sink (mark 'collect') but links to p; remove those links",
    )


def test_declared_type_must_match_the_mark() -> None:
    assert problems_of([{"name": "s", "type": "sink", "mark": "numbers"}]) == (
        "node 's': type is 'sink' but mark 'numbers' is a source; set type: source or remove it",
    )


def test_bad_inbox_sync_and_on_error_values_are_reported() -> None:
    with pytest.raises(PipelineInvalid) as info:
        parse_pipeline(
            pipeline_dict(
                [
                    {"name": "a", "mark": "collect", "inbox": {"capacity": -1}},
                    {"name": "b", "mark": "collect", "sync": "zipper"},
                    {"name": "c", "mark": "collect", "on_error": "retry"},
                ],
                [],
            )
        )
    assert info.value.problems == (
        "node 'a': inbox.capacity must be an int >= 1, got -1",
        "node 'b': sync must be one of passthrough, zip, window, got 'zipper'",
        "node 'c': on_error must be one of skip, stop, got 'retry'",
    )


def test_a_node_whose_constructor_fails_is_reported_with_the_error() -> None:
    assert problems_of([{"name": "b", "mark": "broken"}]) == (
        "node 'b': mark 'broken' could not be built: RuntimeError: cannot open the device",
    )


def test_a_remote_node_without_the_warp_mark_says_what_to_install() -> None:
    found = problems_of(
        [SRC, {"name": "r", "mark": "collect", "remote": "host:50051"}], [("src", "r")]
    )
    assert len(found) == 1
    assert found[0].startswith(
        "node 'r': runs remotely, which needs the 'warp' mark of fontus.remote; "
        "install it with pip install 'fontus[remote]'"
    )


def test_remote_marks_need_not_be_installed_for_validation() -> None:
    config = parse_pipeline(
        pipeline_dict([SRC, {"name": "r", "mark": "not_here", "remote": "host:1"}], [("src", "r")])
    )
    registry = make_registry()
    registry.add(default_registry().get("warp").cls, "warp")  # the installed Warp, as shipped
    resolved = validate_pipeline(config, registry)
    assert [(r.config.name, r.spec.mark) for r in resolved] == [("src", "numbers"), ("r", "warp")]
    # The remote mark travels to the server unchecked here: it checks it at Open.
    assert resolved[1].arguments["node"] == {"mark": "not_here", "configuration": {}}


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of(
        [
            SRC,
            SRC,
            {"name": "x", "mark": "scal"},
            {"name": "y", "mark": "scale", "configuration": {"factor": "big", "mod": "ceil"}},
            SINK,
        ],
        [("src", "y"), ("y", "ghost"), ("sink", "y")],
    )
    assert sorted(found) == sorted(
        [
            "node 'src': duplicate name; node names must be unique",
            "link y -> ghost: 'to' names unknown node 'ghost'",
            "node 'x': unknown mark 'scal'; did you mean 'scale'?",
            "node 'y': unknown argument 'mod' for mark 'scale'; did you mean 'mode'?",
            "node 'y': argument 'factor' must be float, got str 'big'",
            "node 'sink': is a sink (mark 'collect') but links to y; remove those links",
        ]
    )

"""Pipelines: end of stream, configure ordering, error policies, stop, timeout, stats."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fontus.core import (
    ConfigError,
    GraphError,
    Message,
    Node,
    NodeError,
    ObjectPayload,
    Pipeline,
    Sink,
    Source,
)

Build = Callable[..., Pipeline]
Until = Callable[..., bool]

#: Bound of every run()/wait(): a broken test fails instead of hanging.
RUN_TIMEOUT_S = 10.0

SRC = {"name": "src", "mark": "numbers", "configuration": {"count": 5}}
SINK = {"name": "sink", "mark": "collect"}


def forever(every_ms: float = 0.0) -> dict[str, Any]:
    return {
        "name": "src",
        "mark": "numbers",
        "configuration": {"forever": True, "every_ms": every_ms},
    }


# -- end of stream -----------------------------------------------------------------


def test_pipeline_ends_by_itself_when_sources_end(build: Build) -> None:
    pipeline = build([SRC, {"name": "p", "mark": "pass_on"}, SINK], [("src", "p"), ("p", "sink")])
    assert pipeline.state == "created"
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert (result.state, result.ok, result.error) == ("done", True, None)
    assert pipeline.state == "done"
    assert pipeline.nodes["sink"].values == [0, 1, 2, 3, 4]
    assert all(s.state == "done" for s in result.stats.values())
    assert 0 < result.elapsed_s < RUN_TIMEOUT_S


def test_flush_runs_once_after_the_last_message_then_destroy(build: Build) -> None:
    pipeline = build([SRC, SINK], [("src", "sink")])
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    sink = pipeline.nodes["sink"]
    assert (sink.flushes, sink.flushed_after, sink.destroyed) == (1, 5, 1)


class Pending(Node):
    """Holds every input and transmits them all at flush (end of stream)."""

    def __init__(self) -> None:
        self.held: list[Message[Any]] = []

    def update(self, message: Message[Any]) -> None:
        self.held.append(message)

    def flush(self) -> None:
        for message in self.held:
            self.transmit(message)


def test_what_a_node_transmits_in_flush_reaches_downstream_before_it_ends(build: Build) -> None:
    pipeline = build(
        [SRC, {"name": "hold", "mark": "pending"}, SINK],
        [("src", "hold"), ("hold", "sink")],
        Pending,
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    sink = pipeline.nodes["sink"]
    assert sink.values == [0, 1, 2, 3, 4]
    assert sink.flushed_after == 5


def test_diamond_graph_ends_exactly_once_per_node(build: Build) -> None:
    pipeline = build(
        [SRC, {"name": "left", "mark": "pass_on"}, {"name": "right", "mark": "pass_on"}, SINK],
        [("src", "left"), ("src", "right"), ("left", "sink"), ("right", "sink")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    nodes = pipeline.nodes
    assert nodes["left"].flushes == nodes["right"].flushes == nodes["sink"].flushes == 1
    assert nodes["sink"].destroyed == 1
    assert sorted(nodes["sink"].values) == sorted([*range(5), *range(5)])
    assert nodes["sink"].flushed_after == 10  # flushed only after both branches ended
    assert result.stats["sink"].received == 10


def test_a_node_with_several_sources_ends_after_the_last_one(build: Build) -> None:
    pipeline = build(
        [
            {"name": "fast", "mark": "numbers", "configuration": {"count": 2}},
            {"name": "slow", "mark": "numbers", "configuration": {"count": 3, "every_ms": 20}},
            SINK,
        ],
        [("fast", "sink"), ("slow", "sink")],
    )
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    assert pipeline.nodes["sink"].flushed_after == 5


# -- configure ordering ------------------------------------------------------------


class Paused(Source):
    """Yields n = 0..first-1, waits for ``go``, then yields first..first+rest-1."""

    def __init__(self, first: int = 20, rest: int = 20) -> None:
        self.first = first
        self.rest = rest
        self.go = threading.Event()
        self.paused = threading.Event()

    def generate(self) -> Iterator[ObjectPayload]:
        for i in range(self.first):
            yield ObjectPayload({"n": i})
        self.paused.set()
        while not self.go.wait(0.01):
            if self.stopping:
                return
        for i in range(self.first, self.first + self.rest):
            yield ObjectPayload({"n": i})


def test_configure_reaches_set_on_config_after_every_message_queued_before_it(
    build: Build,
) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "paused", "configuration": {"first": 20, "rest": 20}},
            {"name": "sink", "mark": "collect", "configuration": {"delay_ms": 3}},
        ],
        [("src", "sink")],
        Paused,
    )
    src, sink = pipeline.nodes["src"], pipeline.nodes["sink"]
    pipeline.start()
    try:
        assert src.paused.wait(RUN_TIMEOUT_S)  # all of 0..19 are sent: queued or processed
        processed_before = len(sink.messages)
        pipeline.configure("sink", "gain", 2)
    finally:
        src.go.set()
    assert pipeline.wait(RUN_TIMEOUT_S)
    # The slow sink had not caught up, so the change overtook nothing that was queued.
    assert processed_before < 20
    assert sink.pairs == [(n, 1.0) for n in range(20)] + [(n, 2.0) for n in range(20, 40)]
    assert isinstance(sink.gain, float)  # converted to the declared type


class Tuned(Sink):
    def __init__(self) -> None:
        self.changes: list[tuple[str, Any]] = []

    def update(self, message: Message[Any]) -> None:
        pass

    def set_on_config(self, prop: str, value: Any) -> None:
        self.changes.append((prop, value))


def test_configure_reaches_sources_and_custom_set_on_config(build: Build, until: Until) -> None:
    pipeline = build(
        [forever(every_ms=2), {"name": "sink", "mark": "tuned"}], [("src", "sink")], Tuned
    )
    pipeline.start()
    try:
        pipeline.configure("src", "every_ms", 1)
        pipeline.configure("sink", "anything", {"a": [1]})
        assert until(lambda: pipeline.nodes["src"].every_ms == 1.0)
        assert until(lambda: pipeline.nodes["sink"].changes == [("anything", {"a": (1,)})])
    finally:
        pipeline.stop()
        assert pipeline.wait(RUN_TIMEOUT_S)


def test_configure_checks_the_node_and_the_value(build: Build) -> None:
    pipeline = build([SRC, SINK], [("src", "sink")])
    with pytest.raises(GraphError, match="no node named 'snk'; nodes are src, sink"):
        pipeline.configure("snk", "gain", 1.0)
    with pytest.raises(ConfigError, match="node 'sink': argument 'gain' must be float, got 'loud'"):
        pipeline.configure("sink", "gain", "loud")
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    with pytest.raises(GraphError, match="pipeline 'test' has ended \\(done\\); cannot configure"):
        pipeline.configure("sink", "gain", 2.0)


def test_configuring_a_node_that_finished_its_stream_is_refused_while_the_run_goes_on(
    build: Build, until: Until
) -> None:
    # The sink is slow, so the pipeline still runs after the source has finished.
    sink = {"name": "sink", "mark": "collect", "configuration": {"delay_ms": 100.0}}
    pipeline = build([{**SRC, "configuration": {"count": 3}}, sink], [("src", "sink")])
    pipeline.start()
    try:
        assert until(lambda: pipeline.stats()["src"].state == "done")
        assert pipeline.state == "running"
        with pytest.raises(GraphError, match="node 'src' has finished its stream"):
            pipeline.configure("src", "every_ms", 1.0)
        pipeline.configure("sink", "gain", 2.0)  # still reading: accepted
    finally:
        assert pipeline.wait(RUN_TIMEOUT_S)
    assert pipeline.result().ok
    assert pipeline.nodes["sink"].gain == 2.0


def test_configuring_an_unknown_attribute_is_counted_as_an_error(build: Build, caplog: Any) -> None:
    pipeline = build([SRC, SINK], [("src", "sink")])
    pipeline.configure("sink", "volume", 3)  # queued before start: applied first
    with caplog.at_level(logging.ERROR):
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    assert result.stats["sink"].errors == 1
    assert "node 'sink': set_on_config(): cannot configure 'volume'" in caplog.text
    assert "cannot configure 'volume'" in caplog.text


# -- errors ----------------------------------------------------------------------


def test_skip_counts_errors_logs_them_and_continues(build: Build, caplog: Any) -> None:
    pipeline = build(
        [SRC, {"name": "p", "mark": "pass_on", "configuration": {"fail_on": 2}}, SINK],
        [("src", "p"), ("p", "sink")],
    )
    with caplog.at_level(logging.ERROR):
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok and result.error is None
    assert result.stats["p"].errors == 1
    assert pipeline.nodes["sink"].values == [0, 1, 3, 4]
    (failed_id,) = pipeline.nodes["p"].failed_ids
    assert (
        f"node 'p': update() raised ValueError: n is 2 on message {failed_id} "
        "(on_error: skip, continuing)" in caplog.text
    )


def test_stop_fails_the_run_with_a_node_error_naming_node_and_message(build: Build) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "numbers", "configuration": {"forever": True, "every_ms": 1}},
            {"name": "p", "mark": "pass_on", "configuration": {"fail_on": 3}, "on_error": "stop"},
            SINK,
        ],
        [("src", "p"), ("p", "sink")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.state == "failed" and not result.ok
    assert isinstance(result.error, NodeError)
    assert result.error.node == "p"
    (failed_id,) = pipeline.nodes["p"].failed_ids
    assert str(result.error) == (
        f"node 'p': update() raised ValueError: n is 3 on message {failed_id} (on_error: stop)"
    )
    assert pipeline.error is result.error
    assert result.stats["p"].errors == 1
    assert pipeline.state == "failed"


class FailingWarmup(Node):
    def warmup(self) -> None:
        raise RuntimeError("model file missing")

    def update(self, message: Message[Any]) -> None:
        pass


def test_warmup_failure_fails_start_naming_the_node(build: Build) -> None:
    pipeline = build(
        [SRC, {"name": "model", "mark": "failing_warmup"}, SINK],
        [("src", "model"), ("src", "sink")],
        FailingWarmup,
    )
    with pytest.raises(NodeError) as info:
        pipeline.start()
    assert info.value.node == "model"
    assert str(info.value) == "node 'model': warmup failed: RuntimeError: model file missing"
    assert pipeline.state == "failed"
    assert pipeline.nodes["sink"].destroyed == 1  # nodes already warmed up are released
    assert pipeline.nodes["sink"].messages == []
    with pytest.raises(NodeError, match="model file missing"):
        build(
            [SRC, {"name": "model", "mark": "failing_warmup"}], [("src", "model")], FailingWarmup
        ).run(timeout=RUN_TIMEOUT_S)


def test_several_warmup_failures_are_named_together(build: Build) -> None:
    pipeline = build(
        [SRC, {"name": "m1", "mark": "failing_warmup"}, {"name": "m2", "mark": "failing_warmup"}],
        [("src", "m1"), ("src", "m2")],
        FailingWarmup,
    )
    with pytest.raises(
        NodeError,
        match=r"warmup failed on several nodes \(2\):\n  - node 'm1': .*\n  - node 'm2': ",
    ) as caught:
        pipeline.start()
    assert str(caught.value).count("model file missing") == 2


class BadSource(Source):
    def __init__(self, mode: str = "raise") -> None:
        self.mode = mode

    def generate(self) -> Iterator[Any]:
        yield ObjectPayload({"n": 0})
        if self.mode == "raise":
            raise OSError("device unplugged")
        yield {"n": 1}  # not a payload
        yield ObjectPayload({"n": 2})


def test_a_source_generator_error_is_counted_and_ends_the_source(build: Build, caplog: Any) -> None:
    pipeline = build([{"name": "src", "mark": "bad_source"}, SINK], [("src", "sink")], BadSource)
    with caplog.at_level(logging.ERROR):
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    assert result.stats["src"].errors == 1
    assert pipeline.nodes["sink"].values == [0]
    assert "node 'src': generate() raised OSError: device unplugged" in caplog.text


def test_a_source_yielding_a_non_payload_is_an_error_not_a_crash(build: Build, caplog: Any) -> None:
    pipeline = build(
        [{"name": "src", "mark": "bad_source", "configuration": {"mode": "junk"}}, SINK],
        [("src", "sink")],
        BadSource,
    )
    with caplog.at_level(logging.ERROR):
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok
    assert result.stats["src"].errors == 1
    assert pipeline.nodes["sink"].values == [0, 2]
    assert "transmit() takes a Message or a Payload, got dict" in caplog.text


class BadDestroy(Sink):
    def update(self, message: Message[Any]) -> None:
        pass

    def destroy(self) -> None:
        raise RuntimeError("already closed")


def test_a_destroy_error_is_logged_and_does_not_fail_the_run(build: Build, caplog: Any) -> None:
    pipeline = build([SRC, {"name": "sink", "mark": "bad_destroy"}], [("src", "sink")], BadDestroy)
    with caplog.at_level(logging.WARNING):
        assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    assert "node 'sink': destroy() raised RuntimeError: already closed" in caplog.text


# -- stop, abort, timeout ------------------------------------------------------------


def test_stop_drains_queued_messages_and_flushes(build: Build, until: Until) -> None:
    pipeline = build(
        [forever(), {"name": "sink", "mark": "collect", "configuration": {"delay_ms": 1}}],
        [("src", "sink")],
    )
    pipeline.start()
    assert until(lambda: len(pipeline.nodes["sink"].messages) >= 10)
    pipeline.stop()
    assert pipeline.wait(RUN_TIMEOUT_S)
    result = pipeline.result()
    assert result.state == "stopped" and not result.ok
    sink = pipeline.nodes["sink"]
    assert len(sink.messages) == result.stats["src"].sent  # nothing queued was lost
    assert sink.values == list(range(len(sink.values)))
    assert sink.flushes == 1


def test_stop_without_grace_leaves_at_once_without_draining(build: Build, until: Until) -> None:
    pipeline = build(
        [forever(), {"name": "sink", "mark": "collect", "configuration": {"delay_ms": 20}}],
        [("src", "sink")],
    )
    pipeline.start()
    assert until(lambda: pipeline.stats()["sink"].queue_depth >= 32)
    t0 = time.monotonic()
    pipeline.stop(graceful=False)
    assert pipeline.wait(RUN_TIMEOUT_S)
    assert time.monotonic() - t0 < 2.0  # not 64 x 20 ms of draining
    result = pipeline.result()
    assert result.state == "stopped"
    sink = pipeline.nodes["sink"]
    assert len(sink.messages) < result.stats["src"].sent
    assert sink.flushes == 0
    assert sink.destroyed == 1
    assert result.stats["sink"].state == "aborted"


def test_run_with_timeout_reports_timeout(build: Build) -> None:
    pipeline = build([forever(every_ms=5), SINK], [("src", "sink")])
    result = pipeline.run(timeout=0.3)
    assert result.state == "timeout" and not result.ok
    assert 0.3 <= result.elapsed_s < RUN_TIMEOUT_S
    assert pipeline.nodes["sink"].flushes == 1


def test_a_pipeline_runs_once(build: Build) -> None:
    pipeline = build([SRC, SINK], [("src", "sink")])
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    with pytest.raises(GraphError, match="pipeline 'test' was already started \\(done\\)"):
        pipeline.start()


def test_leaving_a_with_block_stops_the_pipeline(build: Build) -> None:
    with build([forever(every_ms=1), SINK], [("src", "sink")]) as pipeline:
        pipeline.start()
    assert pipeline.wait(0)
    assert pipeline.result().state == "stopped"
    assert pipeline.nodes["sink"].flushes == 1


def test_sources_see_stopping_and_sleep_returns_early(build: Build) -> None:
    pipeline = build([forever(every_ms=60000), SINK], [("src", "sink")])
    pipeline.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    pipeline.stop()
    assert pipeline.wait(RUN_TIMEOUT_S)
    assert time.monotonic() - t0 < 2.0


# -- stats ---------------------------------------------------------------------------


def test_stats_count_received_sent_errors_and_latency(build: Build) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "numbers", "configuration": {"count": 20}},
            {"name": "p", "mark": "pass_on", "configuration": {"fail_on": 3}},
            {"name": "sink", "mark": "collect", "configuration": {"delay_ms": 1}},
        ],
        [("src", "p"), ("p", "sink")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert list(result.stats) == ["src", "p", "sink"]
    src, p, sink = result.stats["src"], result.stats["p"], result.stats["sink"]
    assert (src.kind, src.mark, src.sent, src.received, src.total) == (
        "source",
        "numbers",
        20,
        0,
        20,
    )
    assert (p.kind, p.received, p.sent, p.errors) == ("proc", 20, 19, 1)
    assert (sink.kind, sink.received, sink.sent, sink.errors, sink.dropped) == ("sink", 19, 0, 0, 0)
    assert (sink.queue_depth, sink.queue_capacity) == (0, 64)
    assert 1.0 <= sink.p50_ms <= sink.p99_ms
    assert sink.rate > 0 and sink.elapsed_s > 0
    assert sink.as_dict()["received"] == 19
    assert pipeline.progress() == (20, 20)


def test_stats_show_the_queue_while_running(build: Build, until: Until) -> None:
    pipeline = build(
        [
            {"name": "src", "mark": "numbers", "configuration": {"count": 30}},
            {
                "name": "sink",
                "mark": "collect",
                "configuration": {"delay_ms": 10},
                "inbox": {"capacity": 8},
            },
        ],
        [("src", "sink")],
    )
    assert pipeline.stats()["sink"].state == "created"
    pipeline.start()
    try:
        assert until(lambda: pipeline.stats()["sink"].queue_depth == 8)
        running = pipeline.stats()["sink"]
        assert (running.state, running.queue_capacity) == ("running", 8)
        done, total = pipeline.progress()
        assert total == 30 and 8 <= done <= 30
    finally:
        pipeline.stop(graceful=False)
        assert pipeline.wait(RUN_TIMEOUT_S)


def test_progress_total_is_unknown_for_endless_sources(build: Build, until: Until) -> None:
    pipeline = build([forever(every_ms=1), SINK], [("src", "sink")])
    assert pipeline.progress() == (0, None)
    pipeline.start()
    try:
        assert until(lambda: pipeline.progress()[0] >= 3)
        assert pipeline.progress()[1] is None
    finally:
        pipeline.stop()
        assert pipeline.wait(RUN_TIMEOUT_S)


def test_a_node_crash_fails_the_run_and_releases_producers_blocked_on_it(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = build(
        [forever(), {"name": "sink", "mark": "collect", "inbox": {"capacity": 1}}],
        [("src", "sink")],
    )

    def broken_process(message: Message[Any], update: Any = None) -> bool:
        time.sleep(0.05)  # let the source fill the inbox and block on it
        raise RuntimeError("internal bug")

    # An error outside update() (here: in the runner's own handling of a message, around
    # the node's update) crashes the node thread.
    monkeypatch.setattr(pipeline._runners["sink"], "_process", broken_process)
    pipeline.start()
    try:
        assert pipeline.wait(RUN_TIMEOUT_S), "the source stayed blocked on the dead inbox"
    finally:
        pipeline.stop(graceful=False)
    result = pipeline.result()
    assert result.state == "failed"
    assert str(result.error) == "node 'sink': crashed: RuntimeError: internal bug"


def test_from_file_reads_expands_and_overrides(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, registry_of: Callable[..., Any]
) -> None:
    monkeypatch.setenv("FONTUS_TEST_COUNT_START", "10")
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: '1'\n"
        "pipeline:\n"
        "  name: from-file\n"
        "  nodes:\n"
        "    - {name: src, mark: numbers, configuration: {count: 2, start: '${FONTUS_TEST_COUNT_START}'}}\n"
        "    - {name: sink, mark: collect}\n"
        "  links:\n"
        "    - {from: src, to: sink}\n"
    )
    with pytest.raises(ConfigError, match="argument 'start' must be int, got str '10'"):
        Pipeline.from_file(path, registry=registry_of())
    pipeline = Pipeline.from_file(path, ["src.start=10", "src.count=3"], registry=registry_of())
    assert pipeline.name == "from-file"
    assert pipeline.run(timeout=RUN_TIMEOUT_S).ok
    assert pipeline.nodes["sink"].values == [10, 11, 12]

"""Faults under a running pipeline (ARCHITECTURE §3.2 point 6, §3.4; issue 5 item 6).

Real ``fontus serve`` processes on 127.0.0.1 are killed, restarted, frozen and
drained while a Warp streams to them.  For a deterministic stateless node the
downstream ``jsonl`` must be identical, line for line, to a local run of the same
pipeline: nothing lost, nothing duplicated.  A stateful node restarts from empty
state (documented), and a request that cannot finish while no server is up is
reported, never dropped.  Each fault is injected once the sink has received some
outputs (polled from the pipeline stats), not after a fixed sleep.

The failover numbers (kill, restart, SIGSTOP) are printed (``-s``) and merged into
``fault_numbers.json`` under the pytest base temporary directory.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fontus.core import Pipeline
from fontus.remote.admin import server_stats
from fontus.remote.warp import DEFAULT_KEEPALIVE_S, DEFAULT_WINDOW
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

#: The fault servers: the marks they host; -v logs their sessions (lifecycle only).
SERVE_ARGS = ("-v", "--allow", "gain,running_sum,delay")
#: Messages of the audio runs: 20 ms chunks of a sine tone.
COUNT = 2000
#: A local ``delay`` per message, so that the stream lasts a few seconds and a fault lands mid-stream.
PACE_S = 0.001
#: Faults are injected once the sink has this many outputs (a fifth of the stream).
FAULT_AFTER = 400
#: Generous per-request deadline for the runs that must not time out: a frozen
#: replica is detected by keepalive (4 s) long before it.
REQUEST_TIMEOUT_S = 20.0
#: Bound on one faulty run; each takes a few seconds (SIGSTOP: keepalive more).
RUN_TIMEOUT_S = 45.0
#: How often a running pipeline's sink is polled.
SAMPLE_S = 0.005
#: How long the only server stays down in the restart tests.
DOWN_S = 1.0
#: The audio of one request of audio_pipeline: 20 ms of float32 samples at 16 kHz.
SINE_CHUNK_BYTES = 320 * 4
#: Slack on timing bounds: the watchdog ticks every 0.5 s, the deadline check every
#: 0.5 s at most, and this machine may be loaded.
SLACK_S = 2.0

CONNECTION_LOGGER = "fontus.remote._connection"


# -- pipelines -------------------------------------------------------------------------


def audio_pipeline(
    out: Path,
    remote: dict[str, Any] | None = None,
    count: int = COUNT,
    pace: float = PACE_S,
    remote_pace: bool = False,
) -> Pipeline:
    """sine (20 ms chunks) -> rate (delay ``pace``) -> g (gain, remote when given) -> out
    (jsonl).  The delay passes messages on unchanged: the output does not depend on ``pace``.

    With ``remote_pace`` the delay runs on the server too (one remote group): every
    replica then always holds requests in flight, whatever the machine's speed.
    """
    gain: dict[str, Any] = {"name": "g", "mark": "gain", "configuration": {"factor": 0.5}}
    rate: dict[str, Any] = {"name": "rate", "mark": "delay", "configuration": {"seconds": pace}}
    if remote is not None:
        gain["remote"] = remote
        if remote_pace:
            rate["remote"] = remote
    return Pipeline.from_dict(
        {
            "pipeline": {
                "name": "faults",
                "nodes": [
                    {
                        "name": "src",
                        "mark": "sine",
                        "configuration": {"duration_s": count * 0.02, "chunk_ms": 20},
                    },
                    rate,
                    gain,
                    {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
                ],
                "links": [
                    {"from": "src", "to": "rate"},
                    {"from": "rate", "to": "g"},
                    {"from": "g", "to": "out"},
                ],
            }
        }
    )


def test_a_server_back_without_messagepack_trees_gets_the_column_form_from_then_on(
    servers: Callable[..., list[LoopbackServer]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The restarted server offers no MessagePack trees (another version, or
    # FONTUS_VALUE_TREES=columns): the Warp says so once and writes columns after it.
    (first,) = servers(1)
    count = 300
    out = tmp_path / "remote.jsonl"
    remote = {"target": first.target, "timeout": REQUEST_TIMEOUT_S}
    pipeline = counter_pipeline(out, "running_sum", remote, count)
    fault = restarter(servers, first, env={"FONTUS_VALUE_TREES": "columns"})
    with caplog.at_level(logging.WARNING, logger=CONNECTION_LOGGER):
        run = run_with_fault(pipeline, fault, after=100)
    assert run.state == "done"
    assert [r["payload"]["n"] for r in records(out)] == list(range(count))
    assert run.extra["value_trees"] == "columns" and run.extra["reconnects"] >= 1
    said = [r for r in caplog.records if "does not read MessagePack trees" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]


def test_requests_replayed_to_a_server_without_msgpack_are_sent_in_the_column_form(
    servers: Callable[..., list[LoopbackServer]], tmp_path: Path
) -> None:
    # The restarted server cannot read MessagePack at all (msgpack not installed: hidden
    # here by a module of that name that refuses to import). The requests waiting for
    # an answer when the first server died were written with MessagePack trees; the
    # Warp writes them again in the column form before replaying them, so none fails.
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "msgpack.py").write_text('raise ImportError("msgpack hidden by the test")\n')
    (first,) = servers(1)
    count = 300
    out = tmp_path / "remote.jsonl"
    remote = {"target": first.target, "timeout": REQUEST_TIMEOUT_S, "on_error": "stop"}
    pipeline = counter_pipeline(out, "running_sum", remote, count)
    fault = restarter(servers, first, env={"PYTHONPATH": str(hidden)})
    run = run_with_fault(pipeline, fault, after=100)
    assert run.state == "done", str(pipeline.error)
    assert [r["payload"]["n"] for r in records(out)] == list(range(count))
    assert run.extra["value_trees"] == "columns" and run.extra["reconnects"] >= 1
    assert run.extra["replayed"] >= 1  # requests were waiting at the fault: re-encoded
    assert run.extra["failures"] == 0


def counter_pipeline(out: Path, mark: str, remote: dict[str, Any], count: int) -> Pipeline:
    """counter {"n": i} -> rate (local delay) -> g (``mark``, remote) -> out (jsonl)."""
    return Pipeline.from_dict(
        {
            "pipeline": {
                "name": "faults",
                "nodes": [
                    {"name": "src", "mark": "counter", "configuration": {"count": count}},
                    {"name": "rate", "mark": "delay", "configuration": {"seconds": PACE_S}},
                    {"name": "g", "mark": mark, "remote": remote},
                    {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
                ],
                "links": [
                    {"from": "src", "to": "rate"},
                    {"from": "rate", "to": "g"},
                    {"from": "g", "to": "out"},
                ],
            }
        }
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The jsonl of the audio pipeline run locally: what every faulty run must reproduce."""
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    result = audio_pipeline(out).run(timeout=RUN_TIMEOUT_S)
    assert result.ok, result.error
    text = out.read_text()
    assert text.count("\n") == COUNT
    return text


# -- servers -----------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[Callable[..., list[LoopbackServer]]]:
    """Starts ``fontus serve`` processes (in parallel); each is resumed and killed afterwards."""
    started: list[LoopbackServer] = []

    def start(n: int = 1, port: int = 0, env: dict[str, str] | None = None) -> list[LoopbackServer]:
        new = [LoopbackServer(SERVE_ARGS, port=port, env=env) for _ in range(n)]
        started.extend(new)
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda s: s.start(), new))
        return new

    yield start
    for server in started:
        release(server)


def restarter(
    servers: Callable[..., list[LoopbackServer]],
    server: LoopbackServer,
    down_s: float = DOWN_S,
    env: dict[str, str] | None = None,
) -> Callable[[], None]:
    """A fault: SIGKILL ``server`` (reaped, so its port is free), wait ``down_s``, start a
    new server on the same port (with ``env`` added to its environment)."""
    port = server.port

    def restart() -> None:
        server.kill()
        time.sleep(down_s)
        servers(1, port=port, env=env)

    return restart


def release(server: LoopbackServer) -> None:
    """SIGCONT (in case it is frozen), then SIGKILL and reap: never leave a process behind."""
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)
        server.kill()


# -- running with a fault ------------------------------------------------------------------


@dataclass
class FaultyRun:
    state: str
    elapsed_s: float
    #: Seconds from the start to the fault.
    fault_at: float
    #: Outputs the sink had when the fault was injected.
    received_at_fault: int
    #: (seconds since start, outputs at the sink), sampled every SAMPLE_S.
    samples: list[tuple[float, int]]
    extra: dict[str, Any]

    def longest_stall_after_fault(self) -> float:
        """The longest time the sink received nothing, from the fault on."""
        last_change, last_count, longest = self.fault_at, self.received_at_fault, 0.0
        for t, count in self.samples:
            if t < self.fault_at:
                continue
            if count != last_count:
                longest = max(longest, t - last_change)
                last_change, last_count = t, count
        return longest

    def failover_numbers(self, **more: Any) -> dict[str, Any]:
        """What every fault test records: failover time, replays, stall, run time, and ``more``."""
        return {
            "failover_s": self.extra["failover_s"],
            "replayed": self.extra["replayed"],
            "longest_output_stall_s": self.longest_stall_after_fault(),
            "run_s": self.elapsed_s,
            **more,
        }


def run_with_fault(
    pipeline: Pipeline, fault: Callable[[], None], after: int = FAULT_AFTER
) -> FaultyRun:
    """Run ``pipeline``; call ``fault`` once its sink ``out`` has ``after`` outputs (bounded)."""
    start = time.monotonic()
    pipeline.start()
    deadline = start + RUN_TIMEOUT_S
    samples: list[tuple[float, int]] = []
    fault_at, received_at_fault = -1.0, -1
    try:
        while not pipeline.wait(SAMPLE_S):
            now = time.monotonic()
            received = pipeline.stats()["out"].received
            samples.append((now - start, received))
            if fault_at < 0 and received >= after:
                fault_at, received_at_fault = time.monotonic() - start, received
                fault()
            assert now < deadline, f"pipeline still {pipeline.state} after {RUN_TIMEOUT_S}s"
    finally:
        if not pipeline.wait(0):
            pipeline.stop(reason="test failed", graceful=False)
            pipeline.wait(10)
    elapsed = time.monotonic() - start
    assert fault_at >= 0, f"the stream ended before {after} outputs: no fault was injected"
    result = pipeline.result()
    name = "rate+g" if "rate+g" in result.stats else "g"
    extra = dict(result.stats[name].extra or {})
    return FaultyRun(result.state, elapsed, fault_at, received_at_fault, samples, extra)


@pytest.fixture(scope="module")
def numbers(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, dict[str, Any]], None]:
    """Records a test's failover numbers: printed, and merged into fault_numbers.json."""
    path = tmp_path_factory.getbasetemp() / "fault_numbers.json"

    def record(name: str, values: dict[str, Any]) -> None:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\n{name}: {json.dumps(data[name])}\nfault numbers written to {path}")

    return record


class SignalOne:
    """A fault: checks that each replica holds one of the Warp's ``streams`` sessions (the
    Warp spreads them), then sends ``sig`` to ``victim``."""

    def __init__(self, victim: LoopbackServer, replicas: list[LoopbackServer], sig: int) -> None:
        self.victim, self.replicas, self.sig = victim, replicas, sig
        #: Wall-clock time of the signal (comparable with log records' ``created``).
        self.at = 0.0

    def __call__(self) -> None:
        sessions = [server_stats(r.target).active_sessions for r in self.replicas]
        assert sessions == [1] * len(self.replicas), f"Warp sessions per replica: {sessions}"
        self.at = time.time()
        self.victim.signal(self.sig)


def wait_for_lines(server: LoopbackServer, text: str, timeout: float = 5.0) -> list[str]:
    """Lines of ``server``'s log holding ``text``, once there are any (its reader thread may lag)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in list(server.output) if text in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def broke_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == CONNECTION_LOGGER and " broke (" in r.getMessage()
    ]


# -- the tests ---------------------------------------------------------------------------


def test_killing_one_of_two_replicas_fails_over_and_the_output_is_identical(
    servers: Callable[..., list[LoopbackServer]],
    reference: str,
    numbers: Callable[[str, dict[str, Any]], None],
    tmp_path: Path,
) -> None:
    a, b = servers(2)
    out = tmp_path / "remote.jsonl"
    remote = {"target": [a.target, b.target], "streams": 2, "timeout": REQUEST_TIMEOUT_S}
    # Paced on the server (rate -> g run as one group there), so each replica always
    # holds requests in flight when it is killed: there is always something to replay.
    pipeline = audio_pipeline(out, remote, pace=PACE_S, remote_pace=True)
    run = run_with_fault(pipeline, SignalOne(a, [a, b], signal.SIGKILL))

    assert run.state == "done"
    assert out.read_text() == reference
    extra = run.extra
    assert extra["reconnects"] >= 1
    assert extra["replayed"] > 0
    assert (extra["failures"], extra["timeouts"]) == (0, 0)
    assert extra["outputs"] == COUNT
    assert b.process is not None and b.process.poll() is None
    numbers(
        "kill",
        run.failover_numbers(
            reconnects=extra["reconnects"], killed_after_outputs=run.received_at_fault
        ),
    )


def test_the_only_server_restarted_on_its_port_the_pipeline_waits_and_loses_nothing(
    servers: Callable[..., list[LoopbackServer]],
    reference: str,
    numbers: Callable[[str, dict[str, Any]], None],
    tmp_path: Path,
) -> None:
    (first,) = servers(1)
    out = tmp_path / "remote.jsonl"
    remote = {"target": first.target, "timeout": REQUEST_TIMEOUT_S}
    run = run_with_fault(audio_pipeline(out, remote), restarter(servers, first))

    assert run.state == "done"
    assert out.read_text() == reference
    extra = run.extra
    assert extra["reconnects"] >= 1
    assert (extra["failures"], extra["timeouts"]) == (0, 0)
    # Traffic counts every stream of the connection, the one before the restart too:
    # each request carried a chunk of 320 float32 samples at least once.
    assert extra["bytes_out"] >= extra["requests"] * SINE_CHUNK_BYTES
    # The Warp cannot have reconnected before the new server listened.
    assert extra["failover_s"] >= DOWN_S
    numbers("restart", run.failover_numbers(down_s=DOWN_S))


def test_a_frozen_replica_is_detected_within_keepalive_and_failed_over(
    servers: Callable[..., list[LoopbackServer]],
    reference: str,
    numbers: Callable[[str, dict[str, Any]], None],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="fontus.remote")
    a, b = servers(2)
    out = tmp_path / "remote.jsonl"
    remote = {"target": [a.target, b.target], "streams": 2, "timeout": REQUEST_TIMEOUT_S}
    freeze = SignalOne(a, [a, b], signal.SIGSTOP)
    try:
        run = run_with_fault(audio_pipeline(out, remote), freeze)
        broke = broke_records(caplog)
        assert a.process is not None and a.process.poll() is None  # frozen, not dead
    finally:
        release(a)

    assert run.state == "done"
    assert out.read_text() == reference
    extra = run.extra
    assert extra["reconnects"] >= 1
    assert (extra["failures"], extra["timeouts"]) == (0, 0)
    assert broke, "the Warp logged no broken session"
    detection_s = broke[0].created - freeze.at
    bound = DEFAULT_KEEPALIVE_S + SLACK_S
    assert detection_s <= bound, f"frozen replica detected after {detection_s:.2f}s"
    stall = run.longest_stall_after_fault()
    assert stall <= bound + 2.0, f"outputs stalled {stall:.2f}s"
    numbers(
        "sigstop",
        run.failover_numbers(
            detection_s=detection_s,
            keepalive_s=DEFAULT_KEEPALIVE_S,
            how=broke[0].getMessage().split(" broke (", 1)[1][:160],
        ),
    )


def test_a_draining_replica_finishes_its_work_and_the_warp_moves_on(
    servers: Callable[..., list[LoopbackServer]],
    reference: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="fontus.remote")
    a, b = servers(2)
    out = tmp_path / "remote.jsonl"
    remote = {"target": [a.target, b.target], "streams": 2, "timeout": REQUEST_TIMEOUT_S}
    run = run_with_fault(audio_pipeline(out, remote), SignalOne(a, [a, b], signal.SIGTERM))
    assert a.process is not None
    assert a.process.wait(30) == 0, a.log()

    assert run.state == "done"
    assert out.read_text() == reference
    extra = run.extra
    assert extra["reconnects"] >= 1
    assert (extra["failures"], extra["timeouts"]) == (0, 0)
    # The drained session ended with UNAVAILABLE ("draining"), which the Warp took as a break.
    broke = [r.getMessage() for r in broke_records(caplog)]
    assert any("server unavailable" in m and "draining" in m for m in broke), broke
    # ...after finishing every request it had taken: one output each, no failure.
    ended = wait_for_lines(a, " ended: ")
    assert len(ended) == 1, a.log()
    for line in ended:
        words = line.split(" ended: ", 1)[1].split()
        requests, outputs, failures = int(words[0]), int(words[2]), int(words[4])
        assert requests == outputs and failures == 0, line
    # The other replica took the drained session over: its own and that one.
    assert server_stats(b.target).sessions_total == 2


def test_a_stateful_node_restarts_from_empty_state_after_a_server_restart(
    servers: Callable[..., list[LoopbackServer]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="fontus.remote")
    (first,) = servers(1)
    count = 600
    out = tmp_path / "remote.jsonl"
    remote = {"target": first.target, "timeout": REQUEST_TIMEOUT_S}
    restart = restarter(servers, first)
    run = run_with_fault(counter_pipeline(out, "running_sum", remote, count), restart, after=150)

    assert run.state == "done"
    assert run.extra["reconnects"] >= 1
    assert (run.extra["failures"], run.extra["timeouts"]) == (0, 0)
    logged = [r.getMessage() for r in caplog.records if r.name == CONNECTION_LOGGER]
    assert any("stateful node restarts from empty state" in m for m in logged), logged
    lines = records(out)
    # Replay loses and duplicates nothing: every input once, in order...
    ns = [line["payload"]["n"] for line in lines]
    assert ns == list(range(count))
    # ...but the totals start again from 0 at the first request of the new session.
    totals = [line["payload"]["total"] for line in lines]
    running = [sum(range(i + 1)) for i in range(count)]
    restart_at = next((i for i in range(count) if totals[i] != running[i]), count)
    assert run.received_at_fault <= restart_at < count
    assert totals[restart_at:] == [sum(range(restart_at, i + 1)) for i in range(restart_at, count)]


def test_a_dns_target_reaches_the_server_through_grpc_name_resolution(
    servers: Callable[..., list[LoopbackServer]], tmp_path: Path
) -> None:
    (server,) = servers(1)
    count = 300
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    assert audio_pipeline(local_out, count=count).run(timeout=RUN_TIMEOUT_S).ok
    # localhost may also resolve to ::1, where nothing listens: round robin with
    # health checks must still find 127.0.0.1.
    remote = {"target": f"dns:///localhost:{server.port}", "timeout": REQUEST_TIMEOUT_S}
    result = audio_pipeline(remote_out, remote, count=count).run(timeout=RUN_TIMEOUT_S)
    assert result.ok, result.error
    assert remote_out.read_text() == local_out.read_text()
    extra = result.stats["g"].extra or {}
    assert (extra["reconnects"], extra["failures"]) == (0, 0)


UNSENT = "not sent: the server has been unreachable"


def error_lines(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """(answered, reported errors, the input index of every line in sink order)."""
    lines = records(out)
    errors = [line for line in lines if line["meta"].get("fontus.error")]
    answered = [line for line in lines if not line["meta"].get("fontus.error")]
    keys = [
        line["payload"]["seq"] - 1 if line["meta"].get("fontus.error") else line["payload"]["n"]
        for line in lines
    ]
    return answered, errors, keys


def unreachable_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "server unreachable for" in r.getMessage()]


def outage_run(
    servers: Callable[..., list[LoopbackServer]],
    caplog: pytest.LogCaptureFixture,
    out: Path,
    count: int,
    remote: dict[str, Any],
    down_s: float | None = None,
) -> FaultyRun:
    """counter -> gain on the only server, killed after 16 outputs: for good, or
    restarted on its port after ``down_s``.  Remote logs are captured."""
    caplog.set_level(logging.INFO, logger="fontus.remote")
    (server,) = servers(1)
    fault = server.kill if down_s is None else restarter(servers, server, down_s)
    pipeline = counter_pipeline(out, "gain", {"target": server.target, **remote}, count)
    return run_with_fault(pipeline, fault, after=16)


def test_requests_that_cannot_finish_while_the_only_server_is_down_are_reported(
    servers: Callable[..., list[LoopbackServer]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    count, timeout = 160, 1.5
    out = tmp_path / "remote.jsonl"
    run = outage_run(servers, caplog, out, count, {"timeout": timeout, "on_error": "emit"})

    # The requests in flight time out; once the server has been away longer than
    # timeout, the rest fail at once instead of a timeout per window (which would
    # take (160 - 16) / 16 + 1 = 10 waves of 1.5 s here).
    assert run.state == "done"
    assert run.elapsed_s - run.fault_at <= 2 * timeout + SLACK_S
    answered, errors, keys = error_lines(out)
    assert errors, "no request was reported"
    # Never dropped silently: each input is either answered or reported, in order.
    assert keys == list(range(count))
    assert len(answered) >= run.received_at_fault
    timed_out = [e for e in errors if "within timeout" in e["payload"]["error"]]
    unsent = [e for e in errors if e["payload"]["error"].startswith(UNSENT)]
    assert len(timed_out) + len(unsent) == len(errors)
    # The window in flight when the stream broke, and requests sent into the slots the
    # first timeouts freed before the server had been away for a whole timeout.
    assert 0 < len(timed_out) <= 2 * DEFAULT_WINDOW
    assert len(unsent) >= count - run.received_at_fault - 2 * DEFAULT_WINDOW
    extra = run.extra
    assert extra["failures"] == len(errors)
    assert (extra["timeouts"], extra["unsent"]) == (len(timed_out), len(unsent))
    assert extra["reconnects"] == 0
    assert broke_records(caplog), "the Warp did not log the broken session"
    assert len(unreachable_records(caplog)) == 1, "the outage is announced once"


def test_with_skip_requests_failed_at_once_are_logged_at_most_once_a_second(
    servers: Callable[..., list[LoopbackServer]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    count = 3000
    out = tmp_path / "remote.jsonl"
    run = outage_run(servers, caplog, out, count, {"timeout": 0.5})  # on_error: skip

    assert run.state == "done"
    unsent = run.extra["unsent"]
    assert unsent >= count // 2, "most inputs should have failed at once"
    skipped = [r.getMessage() for r in caplog.records if UNSENT in r.getMessage()]
    # Thousands of failures, one line a second, each counting the ones it stands for.
    assert 1 <= len(skipped) <= math.ceil(run.elapsed_s - run.fault_at) + 1, skipped
    reported = sum(
        1 + int(m.split("; ")[-1].split()[0]) if "more like it" in m else 1 for m in skipped
    )
    assert reported <= unsent
    assert any("more like it since the last report" in m for m in skipped), skipped
    assert len(records(out)) == count - run.extra["failures"]


def test_requests_flow_again_when_a_server_down_past_timeout_comes_back(
    servers: Callable[..., list[LoopbackServer]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    count = 10_000
    out = tmp_path / "remote.jsonl"
    # Down 2.5 s, longer than the 1 s timeout: requests fail at once meanwhile.
    remote = {"timeout": 1.0, "on_error": "emit"}
    run = outage_run(servers, caplog, out, count, remote, down_s=2.5)

    assert run.state == "done"
    answered, errors, keys = error_lines(out)
    assert keys == list(range(count)), "an input was lost, duplicated or reordered"
    unsent = [e["payload"]["seq"] - 1 for e in errors if e["payload"]["error"].startswith(UNSENT)]
    assert unsent, "no request failed at once while the server was away"
    # After the server came back, inputs were answered again.
    assert answered[-1]["payload"]["n"] > max(unsent)
    extra = run.extra
    assert extra["reconnects"] >= 1
    assert extra["unsent"] == len(unsent)
    assert len(unreachable_records(caplog)) == 1

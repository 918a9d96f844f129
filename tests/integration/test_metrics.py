"""Prometheus metrics: ``fontus serve --metrics-port`` and ``fontus run --metrics-port``.

Real processes on 127.0.0.1 only, scraped over HTTP (urllib, and ``curl`` when
installed).  Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fontus.core import ConfigError, Pipeline
from fontus.metrics import MISSING_PROMETHEUS, serve_pipeline_metrics
from fontus.remote.server import ServerConfig
from fontus.testing import LoopbackServer

FONTUS = [sys.executable, "-m", "fontus"]
#: Bound on one pipeline run: the runs here take about 2 s.
RUN_TIMEOUT_S = 30.0
#: Bound on waiting for a value to show up in a scrape (they take a few 100 ms).
SCRAPE_WAIT_S = 15.0
#: Bound on one scrape.
SCRAPE_TIMEOUT_S = 5.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> tuple[str, Samples]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as reply:
        text = reply.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(port: int, ready: Callable[[Samples], bool]) -> Samples:
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while True:
        try:
            _, samples = scrape(port)
        except (urllib.error.URLError, ConnectionError):
            samples = {}
        if samples and ready(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics on port {port} not ready within {SCRAPE_WAIT_S}s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def metrics_server() -> Iterator[tuple[LoopbackServer, int]]:
    """``fontus serve --allow identity,fail_every --metrics-port P``."""
    port = free_port()
    server = LoopbackServer(["--allow", "identity,fail_every", "--metrics-port", str(port)])
    server.start()
    try:
        yield server, port
    finally:
        server.stop()


def _remote_pipeline(target: str, count: int, rate: float) -> Pipeline:
    # Different remote fields keep the two nodes in two sessions (one per mark).
    return Pipeline.from_dict(
        {
            "version": "1",
            "pipeline": {
                "name": "metrics",
                "nodes": [
                    {
                        "name": "src",
                        "mark": "counter",
                        "configuration": {"count": count, "rate": rate},
                    },
                    {"name": "same", "mark": "identity", "remote": target},
                    {
                        "name": "flaky",
                        "mark": "fail_every",
                        "configuration": {"k": 4},
                        "remote": {"target": target, "window": 8},
                    },
                    {"name": "out", "mark": "null"},
                ],
                "links": [
                    {"from": "src", "to": "same"},
                    {"from": "same", "to": "flaky"},
                    {"from": "flaky", "to": "out"},
                ],
            },
        }
    )


def test_serve_exposes_sessions_requests_failures_bytes_and_latency_per_mark(
    metrics_server: tuple[LoopbackServer, int], tmp_path: Path
) -> None:
    server, port = metrics_server
    _, before = scrape(port)
    opened_before = value(before, "fontus_server_sessions_opened_total", mark="identity")
    assert opened_before is not None  # every hosted mark has its series from the start
    assert value(before, "fontus_server_sessions_active", mark="fail_every") == 0
    assert value(before, "fontus_server_round_trip_seconds_count", mark="fail_every") is not None
    count = 60
    pipeline = _remote_pipeline(server.target, count, rate=60.0)
    pipeline.start()
    try:
        running = scrape_until(
            port,
            lambda s: (
                (value(s, "fontus_server_sessions_active", mark="identity") or 0) >= 1
                and (value(s, "fontus_server_requests_total", mark="fail_every") or 0) > 0
            ),
        )
        assert pipeline.state == "running"  # seen while running, not only after
        assert value(running, "fontus_server_queue_depth", mark="identity") is not None
        assert pipeline.wait(RUN_TIMEOUT_S)
    finally:
        pipeline.stop()
    assert pipeline.result().state == "done"

    after = scrape_until(
        port, lambda s: value(s, "fontus_server_sessions_active", mark="identity") == 0
    )
    assert value(after, "fontus_server_sessions_active", mark="fail_every") == 0
    assert value(after, "fontus_server_queue_depth", mark="identity") == 0
    assert value(after, "fontus_server_sessions_opened_total", mark="identity") == opened_before + 1
    ok, failed = count - count // 4, count // 4
    for mark, outputs in (("identity", count), ("fail_every", ok)):
        assert value(after, "fontus_server_requests_total", mark=mark) == count
        assert value(after, "fontus_server_outputs_total", mark=mark) == outputs
        assert value(after, "fontus_server_tails_total", mark=mark) == 0  # small messages
        for direction in ("in", "out"):
            assert value(after, "fontus_server_bytes_total", mark=mark, direction=direction) > 0
        for histogram in ("fontus_server_processing_seconds", "fontus_server_round_trip_seconds"):
            assert value(after, f"{histogram}_count", mark=mark) == outputs  # one per Done
            assert value(after, f"{histogram}_bucket", mark=mark, le="+Inf") == outputs
            assert value(after, f"{histogram}_bucket", mark=mark, le="0.0001") is not None
            assert value(after, f"{histogram}_sum", mark=mark) > 0
    failures = "fontus_server_request_failures_total"
    assert value(after, failures, mark="fail_every", code="node_error") == failed
    assert value(after, failures, mark="identity", code="node_error") == 0
    assert value(after, failures, mark="fail_every", code="deadline_exceeded") == 0

    if shutil.which("curl"):
        curl = subprocess.run(
            ["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{port}/metrics"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        assert 'fontus_server_requests_total{mark="identity"}' in curl.stdout
        assert 'fontus_server_processing_seconds_bucket{le="+Inf",mark="fail_every"}' in curl.stdout
        (tmp_path / "server-metrics.txt").write_text(curl.stdout)
        print(f"\n$ curl -s http://127.0.0.1:{port}/metrics\n{curl.stdout}")


def test_run_metrics_port_exposes_node_and_warp_series_while_running(
    catalogue_server: LoopbackServer, write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_pipeline(
        tmp_path / "slow.yaml",
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 40, "rate": 20}},
            {"name": "double", "mark": "identity", "remote": catalogue_server.target},
            {"name": "out", "mark": "null"},
        ],
        [("src", "double"), ("double", "out")],
        name="slow",
    )
    port = free_port()
    process = subprocess.Popen(
        [*FONTUS, "run", str(path), "--metrics-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        node = {"pipeline": "slow", "node": "double", "mark": "identity"}
        samples = scrape_until(
            port,
            lambda s: (
                (value(s, "fontus_warp_requests_total", **node) or 0) >= 5
                and (
                    value(s, "fontus_node_received_total", pipeline="slow", node="out", mark="null")
                    or 0
                )
                > 0
            ),
        )
        assert process.poll() is None  # scraped while the pipeline runs (40 at 20/s: ~2 s)
        for name in ("src", "double", "out"):
            mark = {"src": "counter", "double": "identity", "out": "null"}[name]
            labels = {"pipeline": "slow", "node": name, "mark": mark}
            for series in ("received", "sent", "errors", "dropped"):
                assert value(samples, f"fontus_node_{series}_total", **labels) is not None
            assert value(samples, "fontus_node_queue_depth", **labels) is not None
            for q in ("0.5", "0.99"):
                assert (
                    value(samples, "fontus_node_update_latency_seconds", **labels, quantile=q)
                    is not None
                )
        assert (
            value(samples, "fontus_node_sent_total", pipeline="slow", node="src", mark="counter")
            > 0
        )
        assert value(samples, "fontus_warp_failures_total", **node) == 0
        assert value(samples, "fontus_warp_timeouts_total", **node) == 0
        assert value(samples, "fontus_warp_in_flight", **node) is not None
        for direction in ("in", "out"):
            assert value(samples, "fontus_warp_bytes_total", **node, direction=direction) > 0
        # Counters of arrays that went uncopied: there are none here (small messages).
        for series in ("tails_out", "tails_in", "tail_refs"):
            assert value(samples, f"fontus_warp_{series}_total", **node) == 0
        assert value(samples, "fontus_warp_round_trip_seconds", **node, quantile="0.5") > 0
        assert value(samples, "fontus_warp_info", **node, target=catalogue_server.target) == 1
        # Only Warps have warp series.
        assert (
            value(
                samples, "fontus_warp_requests_total", pipeline="slow", node="src", mark="counter"
            )
            is None
        )
        _, err = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, err
    assert f"metrics on http://127.0.0.1:{port}/metrics" in err
    with pytest.raises(urllib.error.URLError):  # the endpoint stops with the run
        scrape(port)


def test_pipeline_metrics_need_no_server_and_read_stats_at_scrape_time() -> None:
    pipeline = Pipeline.from_dict(
        {
            "version": "1",
            "pipeline": {
                "name": "local",
                "nodes": [
                    {"name": "src", "mark": "counter", "configuration": {"count": 25}},
                    {"name": "out", "mark": "null"},
                ],
                "links": [{"from": "src", "to": "out"}],
            },
        }
    )
    with serve_pipeline_metrics(pipeline, 0) as endpoint:
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        _, before = scrape(endpoint.port)
        assert (
            value(before, "fontus_node_received_total", pipeline="local", node="out", mark="null")
            == 0
        )
        assert pipeline.run(RUN_TIMEOUT_S).ok
        _, after = scrape(endpoint.port)
        assert (
            value(after, "fontus_node_received_total", pipeline="local", node="out", mark="null")
            == 25
        )
        assert not any(name.startswith("fontus_warp_") for name, _ in after)


def test_a_busy_metrics_port_is_a_config_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pipeline = Pipeline.from_dict(
            {
                "version": "1",
                "pipeline": {"name": "p", "nodes": [{"name": "s", "mark": "counter"}], "links": []},
            }
        )
        with pytest.raises(ConfigError, match=re.escape(f"cannot listen on 127.0.0.1:{port}")):
            serve_pipeline_metrics(pipeline, port)


_HIDE_PROMETHEUS = (
    "import sys; sys.modules['prometheus_client'] = None; "
    "from fontus.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("command", ["serve", "run"])
def test_metrics_port_without_prometheus_client_says_what_to_install(
    command: str, write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    if command == "serve":
        args: list[Any] = ["serve", "--allow", "identity", "--port", "0"]
    else:
        path = write_pipeline(tmp_path / "p.yaml", [{"name": "s", "mark": "counter"}], [])
        args = ["run", path]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _HIDE_PROMETHEUS,
            *map(str, args),
            "--metrics-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert MISSING_PROMETHEUS in done.stderr
    assert "listening on" not in done.stdout


def test_metrics_off_loopback_need_insecure_like_the_server() -> None:
    with pytest.raises(ConfigError, match=r"refusing to serve metrics on 0\.0\.0\.0"):
        ServerConfig(metrics_port=9100, metrics_host="0.0.0.0")
    assert ServerConfig(metrics_port=9100, metrics_host="0.0.0.0", insecure=True).metrics_port
    assert ServerConfig(metrics_port=9100, metrics_host="::1").metrics_host == "::1"
    with pytest.raises(ConfigError, match=r"--metrics-port must be 0\.\.65535"):
        ServerConfig(metrics_port=70000)


def test_the_pipeline_metrics_module_does_not_import_grpc() -> None:
    code = (
        "import sys, fontus.metrics; "
        "print(','.join(m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def tail_counts(samples: Samples) -> tuple[float, float]:
    """The server's (tails, tail_refs) counters for identity in one scrape."""
    tails = value(samples, "fontus_server_tails_total", mark="identity")
    refs = value(samples, "fontus_server_tail_refs_total", mark="identity")
    assert tails is not None and refs is not None
    return tails, refs


@pytest.mark.parametrize("array_refs", [False, True], ids=["as tails", "by reference"])
def test_serve_counts_outputs_sent_back_uncopied(
    metrics_server: tuple[LoopbackServer, int],
    run_frames: Callable[..., Pipeline],
    array_refs: bool,
) -> None:
    # 1080p frames through identity at window 4.  With array_refs off, the frames
    # written while others are in flight go whole and their outputs go back as tails
    # (decision 0015); with it on (the default), every output names its own request's
    # array instead (decision 0016), whole frames and frames in parts alike.
    server, port = metrics_server
    _, before = scrape(port)
    tails_before, refs_before = tail_counts(before)
    pipeline = run_frames(server.target, 4, 8, RUN_TIMEOUT_S, array_refs=array_refs)
    stream = pipeline.nodes["node"]._conns[0].stream
    if array_refs:
        assert (stream.tail_refs_in, stream.tails_in) == (8, 0)
    else:
        assert stream.tails_in > 0 and stream.tail_refs_in == 0
    after = scrape_until(
        port, lambda s: value(s, "fontus_server_sessions_active", mark="identity") == 0
    )
    tails, refs = tail_counts(after)
    assert (tails - tails_before, refs - refs_before) == (stream.tails_in, stream.tail_refs_in)

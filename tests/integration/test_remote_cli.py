"""The remote side of the ``fontus`` command: ``serve`` refusals, ``remote describe|stats``,
``remotize``, and Juturna's pipeline forms (``mark: warp``, ``warped: true``)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fontus.core import Pipeline
from fontus.nodes import PROCESSOR_MARKS
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.timeout(60)

Fontus = Callable[..., subprocess.CompletedProcess[str]]
FontusMany = Callable[..., list[subprocess.CompletedProcess[str]]]
#: The exit code of an invalid pipeline, argument or mark.
EXIT_INVALID = 2
#: What the catalogue server allows (conftest's PROCESSORS) and node_server's gain factor.
PROCESSORS = PROCESSOR_MARKS
NODE_SERVER_FACTOR = 0.5
#: Bound on the in-process pipeline that runs while the stats command asks.
RUN_TIMEOUT_S = 30.0


# -- fontus serve refuses to start ---------------------------------------------------

#: id -> (arguments after ``serve --port 0``, with {folder} for the test's files; what
#: the error must say).  A node whose constructor refuses is a run-time failure
#: (exit 1, as the issue asks); everything else is an invalid invocation (exit 2).
SERVE_REFUSALS = {
    "unknown mark in --allow": (["--allow", "gain,nope"], "unknown mark 'nope'"),
    "unknown mark in --node": (["--node", "nope"], "unknown mark 'nope'"),
    "a source": (["--allow", "counter"], "mark 'counter' is a source"),
    "plugin that does not import": (
        ["--plugins", "{folder}/plugins", "--allow", "broken"],
        "broken.py failed to import: SyntaxError",
    ),
    "unknown argument in --config": (
        ["--node", "gain", "--config", "{folder}/bad_argument.json"],
        "unknown argument 'facter' for mark 'gain'; did you mean 'factor'?",
    ),
    "value the node refuses in --config": (
        ["--node", "fail_every", "--config", "{folder}/refused_value.json"],
        "could not be built from --node fail_every --config: ValueError: fail_every: k must be >= 0",
    ),
    "--config that is not JSON": (
        ["--node", "gain", "--config", "{folder}/not_json.json"],
        "invalid JSON",
    ),
    "--config that does not exist": (
        ["--node", "gain", "--config", "{folder}/missing.json"],
        "file not found",
    ),
    # Refused before binding: nothing ever listens on 0.0.0.0 here.
    "all interfaces without TLS": (["--host", "0.0.0.0", "--allow", "gain"], "--insecure"),
}


@pytest.fixture(scope="module")
def serve_refusals(
    tmp_path_factory: pytest.TempPathFactory, fontus_many: FontusMany
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every refused ``fontus serve`` of SERVE_REFUSALS, run at the same time, by case."""
    folder = tmp_path_factory.mktemp("serve-refusals")
    (folder / "bad_argument.json").write_text('{"facter": 2.0}')
    (folder / "not_json.json").write_text("{oops")
    (folder / "refused_value.json").write_text('{"k": -1}')
    (folder / "plugins").mkdir()
    (folder / "plugins" / "broken.py").write_text(
        "from fontus.core import Node\n\n"
        "class Broken(Node):\n"
        "    mark = 'broken'\n"
        "    def update(self, message) -> None\n"  # no colon: a SyntaxError
    )
    commands = [
        ["serve", "--port", "0", *(a.format(folder=folder) for a in args)]
        for args, _ in SERVE_REFUSALS.values()
    ]
    return dict(zip(SERVE_REFUSALS, fontus_many(*commands), strict=True))


@pytest.mark.parametrize("case", list(SERVE_REFUSALS))
def test_serve_refuses_to_start_and_says_why(
    serve_refusals: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    done = serve_refusals[case]
    expected = SERVE_REFUSALS[case][1]
    code = 1 if case == "value the node refuses in --config" else EXIT_INVALID
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "listening on" not in done.stdout
    assert done.stderr.startswith("fontus: error: ")
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


# -- fontus remote describe | stats ----------------------------------------------------


def test_remote_describe_prints_each_mark_with_its_arguments(
    catalogue_server: LoopbackServer, fontus: Fontus
) -> None:
    done = fontus("remote", "describe", catalogue_server.target)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"{catalogue_server.target}: fontus ")
    assert "hosting catalogue, isolated sessions" in out
    assert "value trees: columns, msgpack" in out
    for mark in PROCESSORS:
        assert re.search(rf"^{mark} \(proc\): \S", out, re.MULTILINE), f"{mark} missing:\n{out}"
    for argument, kind, default in (
        ("factor", "float", "1.0"),
        ("times", "int", "1"),
        ("seconds", "float", "0.0"),
        ("field", "str", "'n'"),
        ("threshold_db", "float", "-40.0"),
    ):
        assert re.search(rf"│ {argument}\s+│ {kind}\s+│ {re.escape(default)}\s+│", out), (
            f"no row for {argument}:\n{out}"
        )


def test_remote_stats_shows_the_session_of_a_running_pipeline(
    catalogue_server: LoopbackServer, fontus: Fontus, build_pipeline: Callable[..., Pipeline]
) -> None:
    pipeline = build_pipeline(
        [
            # Far more than the test needs: it stops the pipeline once it has asked.
            {"name": "src", "mark": "counter", "configuration": {"count": 5000}},
            {
                "name": "watched",
                "mark": "delay",
                "configuration": {"seconds": 0.01},
                "remote": {"target": catalogue_server.target, "window": 2},
            },
            {"name": "out", "mark": "collect"},
        ],
        [("src", "watched"), ("watched", "out")],
    )
    pipeline.start()
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (pipeline.stats()["watched"].extra or {}).get("outputs", 0) < 3:
            assert time.monotonic() < deadline and pipeline.state == "running"
            time.sleep(0.01)
        session = (pipeline.stats()["watched"].extra or {})["session"]
        done = fontus("remote", "stats", catalogue_server.target)
    finally:
        pipeline.stop()
        assert pipeline.wait(RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert re.search(r"\d+ active sessions \(\d+ since start\), \d+ requests", done.stdout)
    row = next((line for line in done.stdout.splitlines() if session in line), None)
    assert row is not None, f"no row for session {session}:\n{done.stdout}"
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:5] == [session, "True", cells[2], "watched", "delay"]
    assert cells[2].startswith("watched@")  # the client names itself after the node
    assert int(cells[5]) >= 3  # requests so far


# -- Juturna's forms, against fontus serve --node and fontus remotize --------------------

SINE = {"duration_s": 0.2, "dtype": "int16"}


def gain_pipeline(out: Path, gain: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": "src", "mark": "sine", "configuration": SINE},
        {"name": "gain", **gain},
        {"name": "out", "mark": "jsonl", "configuration": {"path": str(out)}},
    ]


GAIN_LINKS = [("src", "gain"), ("gain", "out")]


def same_as_local_gain(
    folder: Path,
    factor: float,
    remote_gain: dict[str, Any],
    write_pipeline: Callable[..., Path],
    fontus_many: FontusMany,
) -> None:
    """Runs a local gain ``factor`` and ``remote_gain`` at once; their outputs must be equal."""
    local_out, remote_out = folder / "local.jsonl", folder / "remote.jsonl"
    local = write_pipeline(
        folder / "local.yaml",
        gain_pipeline(local_out, {"mark": "gain", "configuration": {"factor": factor}}),
        GAIN_LINKS,
    )
    remote = write_pipeline(
        folder / "remote.yaml", gain_pipeline(remote_out, remote_gain), GAIN_LINKS
    )
    for done in fontus_many(["run", "-q", local], ["run", "-q", remote]):
        assert done.returncode == 0, done.stderr
    assert local_out.read_bytes()
    assert remote_out.read_bytes() == local_out.read_bytes()


@pytest.mark.parametrize(
    "remote_config", [None, {"factor": 0.25}], ids=["server config", "client remote_config"]
)
def test_mark_warp_with_grpc_host_and_port_runs_the_served_node(
    node_server: LoopbackServer,
    tmp_path: Path,
    write_pipeline: Callable[..., Path],
    fontus_many: FontusMany,
    remote_config: dict[str, Any] | None,
) -> None:
    configuration: dict[str, Any] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": node_server.port,
        "timeout": 5,
    }
    if remote_config is not None:
        configuration["remote_config"] = remote_config
    factor = (remote_config or {}).get("factor", NODE_SERVER_FACTOR)
    same_as_local_gain(
        tmp_path,
        factor,
        {"mark": "warp", "configuration": configuration},
        write_pipeline,
        fontus_many,
    )


def test_warped_node_with_warp_configuration_runs_remotely_with_its_configuration(
    node_server: LoopbackServer,
    tmp_path: Path,
    write_pipeline: Callable[..., Path],
    fontus_many: FontusMany,
) -> None:
    gain = {
        "mark": "gain",
        "configuration": {"factor": 0.25},
        "warped": True,
        "warp_configuration": {
            "grpc_host": "127.0.0.1",
            "grpc_port": node_server.port,
            "timeout": 5,
        },
    }
    same_as_local_gain(tmp_path, 0.25, gain, write_pipeline, fontus_many)


def test_remotize_serves_one_node_like_juturna_remotize(
    gain_config: Path,
    listening: Callable[..., Any],
    tmp_path: Path,
    write_pipeline: Callable[..., Path],
    fontus_many: FontusMany,
) -> None:
    service = listening(
        "remotize", "-n", "gain-service", "-N", "demo", "-m", "gain", "-p", "0", "-c", gain_config
    )
    gain = {
        "mark": "gain",
        "warped": True,
        "warp_configuration": {"grpc_host": "127.0.0.1", "grpc_port": service.port, "timeout": 5},
    }
    same_as_local_gain(tmp_path, NODE_SERVER_FACTOR, gain, write_pipeline, fontus_many)
    assert service.stop() == 0  # SIGTERM: a drain, then exit 0
    assert "fontus serve: stopped" in service.lines


@pytest.mark.parametrize(("window", "granted"), [(0, 1), (4, 4)], ids=["default", "explicit"])
def test_against_a_juturna_service_the_window_defaults_to_one_request_in_flight(
    node_server: LoopbackServer,
    build_pipeline: Callable[..., Pipeline],
    window: int,
    granted: int,
) -> None:
    # Juturna's server may run concurrent calls out of order; unless asked, one at a time.
    warp = {
        "target": node_server.target,
        "protocol": "juturna",
        "timeout": 5,
        **({"window": window} if window else {}),
    }
    pipeline = build_pipeline(
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 20}},
            {"name": "w", "mark": "warp", "configuration": warp},
            {"name": "out", "mark": "collect"},
        ],
        [("src", "w"), ("w", "out")],
    )
    result = pipeline.run(timeout=RUN_TIMEOUT_S)
    assert result.ok, result.error
    extra = result.stats["w"].extra or {}
    assert (extra["window"], extra["outputs"], extra["failures"]) == (granted, 20, 0)


def test_validate_counts_the_file_as_written_and_names_the_remote_sessions(
    tmp_path: Path, write_pipeline: Callable[..., Path], fontus: Fontus
) -> None:
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            {"name": "src", "mark": "counter"},
            {"name": "a", "mark": "repeat", "remote": "127.0.0.1:1"},
            {"name": "b", "mark": "identity", "remote": "127.0.0.1:1"},
            {"name": "out", "mark": "null"},
        ],
        [("src", "a"), ("a", "b"), ("b", "out")],
    )
    done = fontus("validate", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 4 nodes, 3 links (1 remote session: a+b)"


# -- the event loop (uvloop when installed, FONTUS_EVENT_LOOP=asyncio) --------------------


def test_server_and_client_on_asyncios_own_loop_give_what_a_local_node_gives(
    tmp_path: Path, write_pipeline: Callable[..., Path], fontus: Fontus
) -> None:
    """The rest of the suite runs on uvloop where it is installed: this keeps the fallback tested."""
    env = {"FONTUS_EVENT_LOOP": "asyncio"}
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    with LoopbackServer(["--allow", "gain"], env=env) as server:
        local = write_pipeline(
            tmp_path / "local.yaml",
            gain_pipeline(local_out, {"mark": "gain", "configuration": {"factor": 0.25}}),
            GAIN_LINKS,
        )
        remote = write_pipeline(
            tmp_path / "remote.yaml",
            gain_pipeline(
                remote_out,
                {"mark": "gain", "configuration": {"factor": 0.25}, "remote": server.target},
            ),
            GAIN_LINKS,
        )
        for path in (local, remote):
            done = fontus("run", "-q", path, env=env)
            assert done.returncode == 0, done.stderr
        assert any("asyncio event loop" in line for line in server.output), list(server.output)
    assert local_out.read_bytes()
    assert remote_out.read_bytes() == local_out.read_bytes()


def test_an_unknown_event_loop_is_refused_at_start_naming_the_variable(fontus: Fontus) -> None:
    done = fontus("serve", "--port", "0", "--allow", "gain", env={"FONTUS_EVENT_LOOP": "tokio"})
    assert done.returncode == EXIT_INVALID, (done.stdout, done.stderr)
    assert "listening on" not in done.stdout
    assert done.stderr.startswith("fontus: error: FONTUS_EVENT_LOOP='tokio' is not one of")
    assert "Traceback" not in done.stderr


def test_a_loopback_server_can_be_started_by_another_launcher(
    tmp_path: Path, build_pipeline: Callable[..., Pipeline]
) -> None:
    # What runs the fontus command line can be replaced (a benchmark runs it under a
    # profiler): the launcher gets "serve ..." and the server is reached as usual.
    marker = tmp_path / "argv.txt"
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from fontus.cli import main\n"
        "Path(sys.argv[1]).write_text(' '.join(sys.argv[2:]))\n"
        "raise SystemExit(main(sys.argv[2:]))\n"
    )
    server = LoopbackServer(
        ["--allow", "identity"], launcher=[sys.executable, str(launcher), str(marker)]
    )
    with server:
        assert marker.read_text().startswith("serve --host 127.0.0.1 --port 0 --allow identity")
        pipeline = build_pipeline(
            [
                {"name": "src", "mark": "counter", "configuration": {"count": 3}},
                {"name": "id", "mark": "identity", "remote": server.target},
                {"name": "out", "mark": "collect"},
            ],
            [("src", "id"), ("id", "out")],
        )
        result = pipeline.run(timeout=RUN_TIMEOUT_S)
        assert result.ok, result.error
        assert len(pipeline.nodes["out"].messages) == 3  # type: ignore[attr-defined]

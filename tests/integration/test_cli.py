"""The ``fontus`` command, run as a real process (``python -m fontus``)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FONTUS = [sys.executable, "-m", "fontus"]
EXAMPLES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("examples/*.json")])
#: Generous per-command bound: the commands here take well under a second or two.
COMMAND_TIMEOUT_S = 30.0
BUILTIN_MARKS = (
    "counter",
    "sine",
    "test_pattern",
    "wav_file",
    "jsonl_file",
    "identity",
    "repeat",
    "delay",
    "gain",
    "energy_vad",
    "running_sum",
    "fail_every",
    "grayscale",
    "jsonl",
    "null",
    "wav",
)


def fontus(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FONTUS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        cwd=cwd,
        env=env,
    )


def pipeline_file(
    folder: Path,
    nodes: list[dict[str, Any]],
    links: list[tuple[str, str]],
    *,
    name: str = "test",
    plugins: list[str] | None = None,
) -> Path:
    body: dict[str, Any] = {
        "version": "1",
        "pipeline": {
            "name": name,
            "nodes": nodes,
            "links": [{"from": a, "to": b} for a, b in links],
        },
    }
    if plugins:
        body["plugins"] = plugins
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def counter_to_jsonl(folder: Path, *, count: int, rate: float = 0.0, **node: Any) -> Path:
    """counter -> identity -> jsonl (output at folder/out.jsonl)."""
    return pipeline_file(
        folder,
        [
            {"name": "src", "mark": "counter", "configuration": {"count": count, "rate": rate}},
            {"name": "pass", "mark": "identity", **node},
            {"name": "out", "mark": "jsonl", "configuration": {"path": str(folder / "out.jsonl")}},
        ],
        [("src", "pass"), ("pass", "out")],
    )


def jsonl_payloads(path: Path) -> list[Any]:
    """The payload of every record the jsonl sink wrote (each line must be valid JSON)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["payload"] for line in lines]


def summary_row(stdout: str, node: str) -> list[str]:
    """The cells of ``node``'s row in the plain summary table."""
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == node:
            return cells
    raise AssertionError(f"no row for node {node!r} in:\n{stdout}")


# -- help, version --------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    done = fontus("--version")
    assert done.returncode == 0
    assert re.match(r"fontus \d+\.\d+", done.stdout)


def test_help_documents_the_exit_codes() -> None:
    done = fontus("--help")
    assert done.returncode == 0
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\s+{code}\s", done.stdout, re.MULTILINE), done.stdout
    for command in ("run", "validate", "nodes"):
        assert command in done.stdout


def test_console_script_runs_the_same_command() -> None:
    script = Path(sys.executable).parent / "fontus"
    if not script.exists():
        pytest.skip(f"no console script at {script} (package not installed in this venv)")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    assert done.returncode == 0
    assert done.stdout == fontus("--version").stdout


def test_no_subcommand_is_a_usage_error() -> None:
    done = fontus()
    assert done.returncode == 2
    assert "usage: fontus" in done.stderr


# -- run ------------------------------------------------------------------------


@pytest.mark.skipif(not EXAMPLES, reason="no examples/*.yaml or *.json yet")
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_run_example_ends_with_summary(example: Path, tmp_path: Path) -> None:
    # Examples are written to run from the repository root; run them from a scratch
    # folder that sees the same examples/ so that their out/ files stay out of the tree.
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    done = fontus("run", Path("examples") / example.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "done after" in done.stdout
    assert "\x1b[" not in done.stdout  # not a terminal: no colour codes


def test_run_prints_summary_of_every_node_and_exits_0(tmp_path: Path) -> None:
    path = pipeline_file(
        tmp_path,
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 5}},
            {"name": "twice", "mark": "repeat", "configuration": {"times": 2}},
            {"name": "sum", "mark": "running_sum", "configuration": {"field": "n"}},
            {"name": "file", "mark": "jsonl", "configuration": {"path": str(tmp_path / "o.jsonl")}},
            {"name": "drop", "mark": "null"},
        ],
        [("src", "twice"), ("twice", "sum"), ("sum", "file"), ("sum", "drop")],
        name="small",
    )
    done = fontus("run", path)
    assert done.returncode == 0, done.stderr
    assert "pipeline small: done after" in done.stdout
    header = done.stdout.splitlines()[0].split()
    assert header[:5] == ["node", "mark", "kind", "received", "sent"]
    assert summary_row(done.stdout, "src")[:5] == ["src", "counter", "source", "0", "5"]
    assert summary_row(done.stdout, "sum")[3:5] == ["10", "10"]
    assert summary_row(done.stdout, "drop")[3] == "10"
    assert [row["total"] for row in jsonl_payloads(tmp_path / "o.jsonl")][-1] == 2 * sum(range(5))


def test_run_quiet_prints_nothing(tmp_path: Path) -> None:
    done = fontus("run", counter_to_jsonl(tmp_path, count=3), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert len(jsonl_payloads(tmp_path / "out.jsonl")) == 3


def test_set_overrides_a_node_argument(tmp_path: Path) -> None:
    done = fontus("run", counter_to_jsonl(tmp_path, count=3), "--set", "src.count=7")
    assert done.returncode == 0, done.stderr
    assert [row["n"] for row in jsonl_payloads(tmp_path / "out.jsonl")] == list(range(7))


def test_set_naming_an_unknown_node_exits_2(tmp_path: Path) -> None:
    done = fontus("run", counter_to_jsonl(tmp_path, count=3), "--set", "srcc.count=7")
    assert done.returncode == 2
    assert "no node named 'srcc'" in done.stderr


def test_run_of_a_missing_file_exits_2_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    done = fontus("run", missing)
    assert done.returncode == 2
    assert done.stderr.startswith("fontus: error: ")
    assert str(missing) in done.stderr
    assert "Traceback" not in done.stderr


def test_node_error_with_on_error_stop_exits_1(tmp_path: Path) -> None:
    path = pipeline_file(
        tmp_path,
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 20}},
            {"name": "flaky", "mark": "fail_every", "configuration": {"k": 3}, "on_error": "stop"},
            {"name": "out", "mark": "null"},
        ],
        [("src", "flaky"), ("flaky", "out")],
    )
    done = fontus("run", path)
    assert done.returncode == 1
    assert "fontus: error: node 'flaky'" in done.stderr
    assert "failed after" in done.stdout
    assert "Traceback" not in done.stderr


def test_warmup_failure_exits_1_naming_the_node(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    path = counter_to_jsonl(tmp_path, count=3)
    done = fontus("run", path, "--set", f"out.path={tmp_path / 'a_file' / 'out.jsonl'}")
    assert done.returncode == 1
    assert "fontus: error: node 'out': warmup failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_timeout_stops_a_slow_pipeline_and_exits_1(tmp_path: Path) -> None:
    path = counter_to_jsonl(tmp_path, count=10_000, rate=20.0)
    began = time.monotonic()
    done = fontus("run", path, "--timeout", "0.5")
    assert time.monotonic() - began < 10
    assert done.returncode == 1
    assert "stopped after --timeout 0.5 s before the sources ended" in done.stderr
    assert "timeout after" in done.stdout


def _wait_for_lines(path: Path, count: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {count} lines within {deadline_s} s")


def test_sigterm_drains_prints_summary_and_exits_130(tmp_path: Path) -> None:
    path = counter_to_jsonl(tmp_path, count=100_000, rate=50.0)
    proc = subprocess.Popen(
        [*FONTUS, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_lines(tmp_path / "out.jsonl", 5)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "SIGTERM received" in stderr
    assert "stopped after" in stdout
    produced = int(summary_row(stdout, "src")[4].replace(",", ""))
    rows = jsonl_payloads(tmp_path / "out.jsonl")  # every line is valid JSON
    assert [row["n"] for row in rows] == list(range(produced))


_SLOW_PLUGIN = '''
import time

from fontus import Node


class Stubborn(Node):
    """Sleeps without looking at the stop request, like a long model call."""

    mark = "stubborn"

    def update(self, message):
        time.sleep(0.1)
        self.transmit(message)
'''


def test_second_interrupt_aborts_without_draining(tmp_path: Path) -> None:
    # 64 queued messages at 0.1 s each would take 6 s to drain; the abort must not wait.
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stubborn.py").write_text(_SLOW_PLUGIN, encoding="utf-8")
    path = pipeline_file(
        tmp_path,
        [
            {"name": "src", "mark": "counter", "configuration": {"count": 1000}},
            {"name": "slow", "mark": "stubborn"},
            {
                "name": "out",
                "mark": "jsonl",
                "configuration": {"path": str(tmp_path / "out.jsonl")},
            },
        ],
        [("src", "slow"), ("slow", "out")],
        plugins=["plugins"],
    )
    proc = subprocess.Popen(
        [*FONTUS, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_lines(tmp_path / "out.jsonl", 2)  # running, so the handlers are installed
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert time.monotonic() - began < 3.0
    assert "aborting" in stderr
    assert "stopped after" in stdout


def test_json_log_format_writes_one_object_per_line(tmp_path: Path) -> None:
    done = fontus("-v", "run", counter_to_jsonl(tmp_path, count=2), "--log-format", "json", "-q")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records
    assert {"time", "level", "logger", "message"} <= set(records[0])


def test_live_table_on_a_terminal_shows_every_node(tmp_path: Path) -> None:
    path = pipeline_file(
        tmp_path,
        [
            {"name": "ticker", "mark": "counter", "configuration": {"count": 20, "rate": 20.0}},
            {"name": "middle", "mark": "identity"},
            {"name": "sinkhole", "mark": "null"},
        ],
        [("ticker", "middle"), ("middle", "sinkhole")],
    )
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes `fontus run` on the pseudo-terminal
        try:
            os.execve(sys.executable, [*FONTUS, "run", str(path)], env)
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))
    assert "pipeline test  running" in text  # the live view's title, not the summary's
    for name in ("ticker", "middle", "sinkhole"):
        assert name in text
    assert "/20" in text  # the progress of a source with a known total
    assert "done after" in text
    assert "\x1b[" in output.decode(errors="replace")  # a terminal gets colour and cursor moves


# -- validate ---------------------------------------------------------------------


def test_validate_reports_ok_with_counts(tmp_path: Path) -> None:
    done = fontus("validate", counter_to_jsonl(tmp_path, count=3))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 3 nodes, 2 links"


_PLUGIN = '''
from fontus import Node


class NeedsThing(Node):
    """Needs a thing."""

    mark = "needs_thing"

    def __init__(self, thing: str) -> None:
        self.thing = thing

    def update(self, message):
        self.transmit(message)
'''

_SRC = {"name": "src", "mark": "counter", "configuration": {"count": 3}}
_ID = {"name": "mid", "mark": "identity"}
_OUT = {"name": "out", "mark": "null"}

INVALID: dict[str, tuple[list[dict[str, Any]], list[tuple[str, str]], list[str]]] = {
    "unknown mark": (
        [{"name": "src", "mark": "countr"}, _OUT],
        [("src", "out")],
        ["node 'src'", "unknown mark 'countr'", "did you mean 'counter'"],
    ),
    "unknown argument": (
        [{"name": "src", "mark": "counter", "configuration": {"cont": 3}}, _OUT],
        [("src", "out")],
        ["node 'src'", "unknown argument 'cont'", "did you mean 'count'"],
    ),
    "mistyped argument": (
        [{"name": "src", "mark": "counter", "configuration": {"count": "many"}}, _OUT],
        [("src", "out")],
        ["node 'src'", "argument 'count' must be int", "'many'"],
    ),
    "missing required argument": (
        [_SRC, {"name": "needy", "mark": "needs_thing"}, _OUT],
        [("src", "needy"), ("needy", "out")],
        ["node 'needy'", "missing required argument 'thing'"],
    ),
    "duplicate name": (
        [_SRC, _ID, {"name": "mid", "mark": "repeat"}, _OUT],
        [("src", "mid"), ("mid", "out")],
        ["node 'mid'", "duplicate name"],
    ),
    "dangling link": (
        [_SRC, _OUT],
        [("src", "out"), ("src", "outt")],
        ["link src -> outt", "unknown node 'outt'", "did you mean 'out'"],
    ),
    "cycle": (
        [_SRC, _ID, {"name": "again", "mark": "identity"}, _OUT],
        [("src", "mid"), ("mid", "again"), ("again", "mid"), ("again", "out")],
        ["cycle", "mid -> again -> mid"],
    ),
    "source with inputs": (
        [_SRC, _ID, {"name": "src2", "mark": "counter"}, _OUT],
        [("src", "mid"), ("mid", "src2"), ("mid", "out")],
        ["node 'src2'", "is a source", "inputs from mid"],
    ),
    "sink with outputs": (
        [_SRC, _OUT, _ID],
        [("src", "out"), ("out", "mid")],
        ["node 'out'", "is a sink", "links to mid"],
    ),
    "missing environment variable": (
        [
            {
                "name": "src",
                "mark": "counter",
                "configuration": {"count": "${FONTUS_TEST_SURELY_UNSET}"},
            },
            _OUT,
        ],
        [("src", "out")],
        ["node 'src'", "count", "${FONTUS_TEST_SURELY_UNSET}", "not set"],
    ),
}


@pytest.mark.parametrize("case", INVALID)
def test_validate_invalid_pipeline_exits_2_naming_node_and_field(case: str, tmp_path: Path) -> None:
    nodes, links, expected = INVALID[case]
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "needs_thing.py").write_text(_PLUGIN, encoding="utf-8")
    path = pipeline_file(tmp_path, nodes, links, plugins=["plugins"])
    env = {k: v for k, v in os.environ.items() if k != "FONTUS_TEST_SURELY_UNSET"}
    done = fontus("validate", path, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("fontus: error: ")
    for text in expected:
        assert text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_pipeline_with_verbose_shows_the_traceback(tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, [{"name": "src", "mark": "countr"}], [])
    done = fontus("validate", path, "-v")
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert "did you mean 'counter'" in done.stderr


# -- nodes --------------------------------------------------------------------------


def test_nodes_lists_every_builtin_mark_with_its_kind() -> None:
    done = fontus("nodes")
    assert done.returncode == 0, done.stderr
    kinds = {}
    for line in done.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 2:
            kinds[cells[0]] = cells[1]
    for mark in BUILTIN_MARKS:
        assert mark in kinds, f"{mark} missing from:\n{done.stdout}"
    assert kinds["counter"] == "source"
    assert kinds["identity"] == "proc"
    assert kinds["jsonl"] == "sink"


def test_nodes_mark_shows_its_arguments_with_types_and_defaults() -> None:
    done = fontus("nodes", "counter")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert rows["count"][1:3] == ["int", "10"]
    assert rows["rate"][1:3] == ["float", "0.0"]


def test_nodes_mark_says_whether_the_node_is_served_on_the_event_loop() -> None:
    light, heavy = fontus("nodes", "gain"), fontus("nodes", "delay")
    assert light.returncode == heavy.returncode == 0, (light.stderr, heavy.stderr)
    assert "light: served on fontus serve's event loop" in light.stdout
    assert "light" not in heavy.stdout


def test_nodes_unknown_mark_exits_2() -> None:
    done = fontus("nodes", "nope")
    assert done.returncode == 2
    assert "unknown mark 'nope'" in done.stderr
    assert "fontus nodes" in done.stderr  # no close match: says how to list them


def test_nodes_misspelt_mark_suggests_the_close_one() -> None:
    done = fontus("nodes", "countr")
    assert done.returncode == 2
    assert "did you mean 'counter'?" in done.stderr


def test_nodes_with_plugins_includes_the_plugin_marks(tmp_path: Path) -> None:
    (tmp_path / "needs_thing.py").write_text(_PLUGIN, encoding="utf-8")
    listed = fontus("nodes", "--plugins", tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "needs_thing" in listed.stdout
    shown = fontus("nodes", "needs_thing", "--plugins", tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"thing\s+str\s+required", shown.stdout), shown.stdout


def test_nodes_with_missing_plugin_folder_exits_2(tmp_path: Path) -> None:
    done = fontus("nodes", "--plugins", tmp_path / "absent")
    assert done.returncode == 2
    assert "absent" in done.stderr

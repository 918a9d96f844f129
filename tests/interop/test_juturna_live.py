"""Live interop: real Juturna 2.1.1 pipelines and servers talking to real Fontus ones, both ways.

* **Juturna client → Fontus server.**  A Juturna ``Pipeline`` (run by
  ``juturna_pipeline.py`` in the Python 3.12 venv) whose nodes are
  ``warped: true`` to ``fontus serve --node MARK`` processes hosting
  ``identity``, ``gain``, ``grayscale`` and ``repeat``; its sinks write every
  message they receive, and the values are compared here.
* **Fontus client → Juturna server.**  ``python -m juturna remotize`` hosting a
  Juturna plugin node written for these tests (``juturna_plugins/``), called by
  Fontus pipelines (``fontus_client.py``) in each config form.  Juturna listens
  on every interface, so server and clients run in a private network namespace
  (``netns.py`` under ``unshare``).
* ``protocol: auto`` picks Juturna's protocol against ``juturna remotize`` and
  Fontus's against ``fontus serve``.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fontus.core import Pipeline
from fontus.remote.warp import Warp
from fontus.testing import LoopbackServer

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "juturna_plugins" / "plugins"
JUTURNA_PIPELINE = HERE / "juturna_pipeline.py"
FONTUS_CLIENT = HERE / "fontus_client.py"
NETNS = HERE / "netns.py"
RunJuturna = Callable[..., str]

#: The Juturna pipeline waits this long for its sinks; the run itself takes about a second.
JUTURNA_PIPELINE_WAIT_S = 20
#: Bound of the Juturna-side process (interpreter start, pipeline, direct call).
JUTURNA_RUN_TIMEOUT_S = 60
#: Each Fontus client pipeline against juturna remotize: 500 messages take under a second.
FONTUS_CLIENT_TIMEOUT_S = 30
#: The whole namespace job: Juturna's server start (~1 s) and four clients.
NETNS_JOB_TIMEOUT_S = 180
#: Inside the private namespace nothing else listens, so a fixed port is safe.
JUTURNA_PORT = 50051
MESSAGES = 500
GAIN = 0.5
SERVER_GAIN = 2.0


# -- Juturna pipeline → fontus serve ----------------------------------------------------------
def inputs() -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The cases the Juturna source emits (JSON) and their arrays (.npz)."""
    rng = np.random.default_rng(7)
    s16 = rng.integers(-32768, 32768, size=(480, 2), dtype=np.int16)
    s16[:4] = [[32767, -32768], [16383, -16383], [1, -1], [3, -3]]  # rounding and the extremes
    arrays = {
        "audio_s16": s16,
        "audio_f32": rng.uniform(-1, 1, 320).astype(np.float32),
        "image_rgb": rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8),
        "image_bgr": rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8),
        "bytes": np.frombuffer(bytes(range(256)) * 4, dtype=np.uint8),
    }
    cases = [
        {
            "case": "audio_s16",
            "kind": "audio",
            "array": "audio_s16",
            "sampling_rate": 48000,
            "channels": 2,
            "audio_format": "s16le",
            "start": 1.0,
            "end": 1.01,
        },
        {
            "case": "audio_f32",
            "kind": "audio",
            "array": "audio_f32",
            "sampling_rate": 16000,
            "channels": 1,
            "audio_format": "f32le",
            "start": 0.0,
            "end": 0.02,
        },
        {
            "case": "image_rgb",
            "kind": "image",
            "array": "image_rgb",
            "width": 32,
            "height": 24,
            "depth": 3,
            "pixel_format": "rgb24",
            "timestamp": 3.5,
        },
        {"case": "bytes", "kind": "bytes", "array": "bytes"},
        {
            "case": "object",
            "kind": "object",
            "data": {
                "n": 3,
                "x": 2.5,
                "text": "é ✓",
                "flag": True,
                "nothing": None,
                "items": [1, 2, {"t": False}],
                "nested": {"k": -7, "big": 2**40},
            },
        },
    ]
    return cases, arrays


#: Sent to grayscale only, after image_rgb.
IMAGE_BGR = {
    "case": "image_bgr",
    "kind": "image",
    "array": "image_bgr",
    "width": 32,
    "height": 24,
    "depth": 3,
    "pixel_format": "bgr24",
    "timestamp": 4.0,
}


def warped(name: str, server: LoopbackServer, configuration: dict[str, Any]) -> dict[str, Any]:
    """A Juturna node in its ``warped`` form, sent to ``server`` (Juturna's warp node does it)."""
    return {
        "name": name,
        "type": "proc",
        "mark": "unused-when-warped",
        "configuration": configuration,
        "warped": True,
        "warp_configuration": {"grpc_host": "127.0.0.1", "grpc_port": server.port, "timeout": 10},
    }


def sink(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "sink",
        "mark": "interop_collect",
        "configuration": {"path": f"{name}.jsonl"},
    }


@pytest.fixture(scope="module")
def fontus_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LoopbackServer]]:
    config = tmp_path_factory.mktemp("gain") / "gain.json"
    config.write_text(json.dumps({"factor": SERVER_GAIN}))
    servers = {
        "identity": LoopbackServer(["--node", "identity"]),
        "gain": LoopbackServer(["--node", "gain", "--config", str(config)]),
        "grayscale": LoopbackServer(["--node", "grayscale"]),
        "repeat": LoopbackServer(["--node", "repeat"]),
    }
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def juturna_run(
    run_juturna: RunJuturna,
    fontus_servers: dict[str, LoopbackServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One Juturna pipeline run through every server, and one direct call; what came back."""
    work = tmp_path_factory.mktemp("juturna-pipeline")
    shutil.copytree(PLUGINS, work / "plugins")
    cases, arrays = inputs()
    images = [next(c for c in cases if c["case"] == "image_rgb"), IMAGE_BGR]
    np.savez(work / "arrays.npz", **arrays)
    (work / "cases.json").write_text(json.dumps(cases))
    (work / "images.json").write_text(json.dumps(images))
    feed = {"cases": "cases.json", "arrays": "arrays.npz"}
    s = fontus_servers
    nodes = [
        {"name": "feed", "type": "source", "mark": "interop_feed", "configuration": feed},
        {
            "name": "images",
            "type": "source",
            "mark": "interop_feed",
            "configuration": {**feed, "cases": "images.json"},
        },
        warped("identity", s["identity"], {}),
        warped("gain", s["gain"], {"factor": GAIN}),
        warped("grayscale", s["grayscale"], {}),
        warped("nothing", s["repeat"], {"times": 0}),
        warped("several", s["repeat"], {"times": 3}),
    ]
    remote = ["identity", "gain", "nothing", "several"]
    links = [("feed", r) for r in remote] + [("images", "grayscale")]
    links += [(r, f"{r}_out") for r in [*remote, "grayscale"]]
    nodes += [sink(f"{r}_out") for r in [*remote, "grayscale"]]
    expect = {f"{r}_out.jsonl": len(cases) for r in remote} | {"grayscale_out.jsonl": len(images)}
    job = {
        "timeout": JUTURNA_PIPELINE_WAIT_S,
        "expect": expect,
        "config": {
            "version": "1",
            "plugins": ["plugins"],
            "pipeline": {
                "name": "interop",
                "id": "interop-live",
                "folder": "pipe",
                "nodes": nodes,
                "links": [{"from": a, "to": b} for a, b in links],
            },
        },
    }
    (work / "job.json").write_text(json.dumps(job))
    run = json.loads(
        run_juturna(
            [str(JUTURNA_PIPELINE), "run", "job.json"], cwd=work, timeout=JUTURNA_RUN_TIMEOUT_S
        )
    )
    call = json.loads(
        run_juturna(
            [str(JUTURNA_PIPELINE), "call", s["gain"].target],
            cwd=work,
            timeout=JUTURNA_RUN_TIMEOUT_S,
        )
    )
    received = {
        r: [json.loads(line) for line in (work / f"{r}_out.jsonl").read_text().splitlines()]
        for r in [*remote, "grayscale"]
    }
    return {
        "run": run,
        "call": call,
        "received": received,
        "cases": cases,
        "images": images,
        "arrays": arrays,
    }


def array_of(record: dict[str, Any]) -> np.ndarray:
    data = base64.b64decode(record["b64"])
    return np.frombuffer(data, dtype=record["dtype"]).reshape(record["shape"])


def as_struct(value: Any) -> Any:
    """``value`` as it comes back from a google.protobuf.Struct: every number a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: as_struct(v) for k, v in value.items()}
    return [as_struct(v) for v in value]


def same_types(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_types(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_types, a, b))
    return type(a) is type(b)


def check_unchanged(record: dict[str, Any], case: dict[str, Any], arrays: dict[str, Any]) -> None:
    """``record`` (what a Juturna sink received) carries ``case`` exactly as it was sent."""
    payload = record["payload"]
    assert record["meta"] == {"case": case["case"]}
    assert payload["kind"] == case["kind"]
    if case["kind"] == "audio":
        got = array_of(payload["audio"])
        want = arrays[case["array"]]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        for field in ("sampling_rate", "channels", "start", "end"):
            assert payload[field] == case[field], field
        # Juturna 2.1.1's Warp neither writes audio_format nor reads it back (see
        # test_audio_format_makes_the_round_trip_in_a_juturna_envelope for the wire field).
        assert payload["audio_format"] == ""
    elif case["kind"] == "image":
        got = array_of(payload["image"])
        np.testing.assert_array_equal(got, arrays[case["array"]])
        assert got.dtype == np.uint8
        for field in ("width", "height", "depth", "pixel_format", "timestamp"):
            assert payload[field] == case[field], field
    elif case["kind"] == "bytes":
        assert base64.b64decode(payload["b64"]) == arrays[case["array"]].tobytes()
    else:
        want = as_struct(case["data"])
        assert payload["data"] == want
        assert same_types(payload["data"], want)


def test_juturna_pipeline_gets_every_payload_back_unchanged_from_fontus_identity(
    juturna_run: dict[str, Any],
) -> None:
    assert juturna_run["run"]["complete"], juturna_run["run"]
    received = juturna_run["received"]["identity"]
    cases = juturna_run["cases"]
    assert [r["meta"]["case"] for r in received] == [c["case"] for c in cases]
    for record, case in zip(received, cases, strict=True):
        check_unchanged(record, case, juturna_run["arrays"])


def test_fontus_gain_scales_audio_with_the_juturna_nodes_configuration(
    juturna_run: dict[str, Any],
) -> None:
    # The warped node's configuration ({"factor": 0.5}) travels as the envelope's
    # configuration and opens this client's session with it, over the server's --config.
    received = juturna_run["received"]["gain"]
    cases, arrays = juturna_run["cases"], juturna_run["arrays"]
    assert [r["meta"]["case"] for r in received] == [c["case"] for c in cases]
    for record, case in zip(received, cases, strict=True):
        if case["kind"] != "audio":
            check_unchanged(record, case, arrays)  # gain passes other payloads on
            continue
        source = arrays[case["array"]]
        got = array_of(record["payload"]["audio"])
        if source.dtype.kind == "f":
            want = source * np.float32(GAIN)
        else:  # integers: rounded half to even, clipped to the type
            want = np.clip(np.rint(source.astype(np.float64) * GAIN), -32768, 32767).astype(
                source.dtype
            )
        assert got.dtype == source.dtype and got.shape == source.shape
        np.testing.assert_array_equal(got, want)
        assert record["payload"]["sampling_rate"] == case["sampling_rate"]
        assert record["payload"]["channels"] == case["channels"]


def test_fontus_grayscale_returns_bt601_luma_to_juturna(juturna_run: dict[str, Any]) -> None:
    received = juturna_run["received"]["grayscale"]
    images, arrays = juturna_run["images"], juturna_run["arrays"]
    assert [r["meta"]["case"] for r in received] == [c["case"] for c in images]
    for record, case in zip(received, images, strict=True):
        source = arrays[case["array"]].astype(np.int64)
        r, g, b = (
            source[..., i] for i in ((0, 1, 2) if case["pixel_format"] == "rgb24" else (2, 1, 0))
        )
        # Y = 0.299 R + 0.587 G + 0.114 B, rounded half up, in exact integer arithmetic.
        want = ((299 * r + 587 * g + 114 * b + 500) // 1000).astype(np.uint8)
        payload = record["payload"]
        got = array_of(payload["image"])
        assert got.dtype == np.uint8 and got.shape == (24, 32)
        np.testing.assert_array_equal(got, want)
        assert (payload["pixel_format"], payload["depth"]) == ("gray8", 1)
        assert (payload["width"], payload["height"]) == (32, 24)
        assert payload["timestamp"] == case["timestamp"]


def test_node_emitting_nothing_gets_a_prompt_reply_that_juturna_forwards_as_an_empty_message(
    juturna_run: dict[str, Any],
) -> None:
    # repeat times=0 emits nothing.  Fontus replies at once with no message (metadata
    # outputs=0); Juturna's Warp forwards every reply, so its sink gets a Message whose
    # payload is None, and the next request goes through (Juturna's own server would
    # time out instead, and the exception would end the Warp's update thread).
    received = juturna_run["received"]["nothing"]
    assert len(received) == len(juturna_run["cases"])
    assert all(
        r == {"creator": "", "version": 0, "meta": {}, "payload": {"kind": "none"}}
        for r in received
    )
    assert juturna_run["run"]["seconds"] < JUTURNA_PIPELINE_WAIT_S / 2


def test_node_emitting_several_outputs_reaches_juturna_as_its_first(
    juturna_run: dict[str, Any],
) -> None:
    received = juturna_run["received"]["several"]
    cases = juturna_run["cases"]
    assert [r["meta"]["case"] for r in received] == [c["case"] for c in cases]
    for record, case in zip(received, cases, strict=True):
        check_unchanged(record, case, juturna_run["arrays"])


def test_audio_format_makes_the_round_trip_in_a_juturna_envelope(
    juturna_run: dict[str, Any],
) -> None:
    # Juturna's own stub and envelope helper, with field 8 set by hand (its Warp never sets it).
    call = juturna_run["call"]
    audio = call["audio"]
    assert audio["audio_format"] == "s16le"
    assert (audio["dtype"], audio["shape"], audio["channels"]) == ("int16", [160, 2], 2)
    assert (audio["sampling_rate"], audio["start"], audio["end"]) == (16000, 0.5, 0.51)
    sent = np.frombuffer(base64.b64decode(call["sent"]["b64"]), dtype=np.int16)
    got = np.frombuffer(base64.b64decode(audio["b64"]), dtype=np.int16)
    np.testing.assert_array_equal(
        got, sent * 2
    )  # the server's --config factor: no configuration sent
    assert call["response_to"] == "direct-request-1"
    assert call["id"] and call["id"] != "direct-request-1"
    assert (call["receiver"], call["ttl"]) == ("jt-direct", 10)
    assert call["metadata"]["outputs"] == 1.0


# -- Fontus pipelines → juturna remotize, in a private network namespace -----------------------
def client_pipeline(name: str, node: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1",
        "pipeline": {
            "name": name,
            "nodes": [
                {
                    "name": "numbers",
                    "type": "source",
                    "mark": "counter",
                    "configuration": {"count": MESSAGES},
                },
                {"name": "label", **node},
                {
                    "name": "out",
                    "type": "sink",
                    "mark": "jsonl",
                    "configuration": {"path": f"{name}.jsonl"},
                },
            ],
            "links": [{"from": "numbers", "to": "label"}, {"from": "label", "to": "out"}],
        },
    }


TARGET = f"127.0.0.1:{JUTURNA_PORT}"
JUTURNA_FORM = {"grpc_host": "127.0.0.1", "grpc_port": JUTURNA_PORT, "timeout": 10}
CLIENTS = {
    # Fontus's one-field form, naming the protocol and pipelining 32 requests.
    "explicit": {
        "mark": "interop_label",
        "remote": {"target": TARGET, "protocol": "juturna", "window": 32},
    },
    # Juturna's warp node form: protocol auto by default; remote_config travels too.
    "auto": {
        "mark": "warp",
        "configuration": {**JUTURNA_FORM, "remote_config": {"prefix": "not-applied"}},
    },
    # Juturna's warped form, with protocol auto spelled out.
    "warped_auto": {
        "mark": "interop_label",
        "warped": True,
        "warp_configuration": {**JUTURNA_FORM, "protocol": "auto"},
    },
    # Juturna's warped form as a Juturna user writes it.
    "warped_default": {
        "mark": "interop_label",
        "warped": True,
        "warp_configuration": JUTURNA_FORM,
    },
}


@pytest.fixture(scope="module")
def juturna_server_run(
    juturna_python: str, private_netns: list[str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``juturna remotize`` and every client of CLIENTS, one after another, in one namespace."""
    work = tmp_path_factory.mktemp("juturna-remotize")
    shutil.copytree(PLUGINS, work / "plugins")
    (work / "config.json").write_text(json.dumps({"prefix": "jt-live", "offset": 1000}))
    clients = []
    for name, node in CLIENTS.items():
        (work / f"{name}.json").write_text(json.dumps(client_pipeline(name, node)))
        clients.append(
            {
                "name": name,
                "argv": [sys.executable, str(FONTUS_CLIENT), f"{name}.json", "20"],
                "cwd": str(work),
                "timeout": FONTUS_CLIENT_TIMEOUT_S,
            }
        )
    server = [
        juturna_python,
        "-m",
        "juturna",
        "remotize",
        *("-n", "label", "-m", "interop_label", "-P", "plugins", "-N", "interop"),
        *("-p", str(JUTURNA_PORT), "-c", "config.json"),
    ]
    job = {
        "server": {
            "argv": server,
            "cwd": str(work),
            "env": {"PYTHONDONTWRITEBYTECODE": "1"},
            "port": JUTURNA_PORT,
            "log": str(work / "juturna-server.log"),
        },
        "clients": clients,
    }
    (work / "job.json").write_text(json.dumps(job))
    try:
        done = subprocess.run(
            [*private_netns, sys.executable, str(NETNS), "job.json"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=NETNS_JOB_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the namespace job did not finish within {NETNS_JOB_TIMEOUT_S} s")
    server_log = (
        (work / "juturna-server.log").read_text() if (work / "juturna-server.log").exists() else ""
    )
    if done.returncode != 0:
        pytest.fail(
            f"netns.py failed (exit {done.returncode}): {done.stderr}\n{server_log[-3000:]}"
        )
    report = json.loads(done.stdout)
    results = {}
    for client in report["clients"]:
        name = client["name"]
        out = work / f"{name}.jsonl"
        results[name] = {
            **client,
            "report": json.loads(client["stdout"]) if client["returncode"] == 0 else None,
            "records": [json.loads(x) for x in out.read_text().splitlines()]
            if out.exists()
            else [],
        }
    return {"clients": results, "server_log": server_log}


def client_result(run: dict[str, Any], name: str) -> dict[str, Any]:
    result = run["clients"][name]
    assert result["returncode"] == 0, result["stderr"][-3000:]
    report = result["report"]
    assert report["state"] == "done", report
    return result


def check_labels(records: list[dict[str, Any]]) -> None:
    """Every output correct, in input order, each input processed exactly once."""
    assert len(records) == MESSAGES
    for n, record in enumerate(records):
        payload = record["payload"]
        # Juturna's server ignores the configuration a client sends; its -c file applies.
        assert {k: v for k, v in payload.items() if k != "calls"} == {
            "n": float(n),
            "square": float(n * n),
            "shifted": float(n + 1000),
            "label": f"jt-live-{n}",
        }, f"record {n}"
    calls = sorted(int(r["payload"]["calls"]) for r in records)
    # One shared node instance serves every client: its call counter runs on across them.
    assert calls == list(range(calls[0], calls[0] + MESSAGES))


def test_fontus_warp_gets_correct_ordered_outputs_from_juturna_remotize(
    juturna_server_run: dict[str, Any],
) -> None:
    result = client_result(juturna_server_run, "explicit")
    warp = result["report"]["warps"]["label"]
    assert warp["protocol"] == "juturna"
    assert (warp["requests"], warp["outputs"], warp["failures"]) == (MESSAGES, MESSAGES, 0)
    check_labels(result["records"])


def test_protocol_auto_detects_juturna_remotize(juturna_server_run: dict[str, Any]) -> None:
    result = client_result(juturna_server_run, "auto")
    assert result["report"]["warps"]["label"]["protocol"] == "juturna"
    check_labels(result["records"])


def test_warped_form_with_protocol_auto_detects_juturna_remotize(
    juturna_server_run: dict[str, Any],
) -> None:
    result = client_result(juturna_server_run, "warped_auto")
    assert result["report"]["warps"]["label"]["protocol"] == "juturna"
    check_labels(result["records"])


def test_warped_form_detects_juturna_remotize_by_default(
    juturna_server_run: dict[str, Any],
) -> None:
    result = client_result(juturna_server_run, "warped_default")
    assert result["report"]["warps"]["label"]["protocol"] == "juturna"
    check_labels(result["records"])


def run_fontus_client(node: dict[str, Any], out: Path, count: int = 20) -> Pipeline:
    """``counter → node → jsonl`` in this process; returns the finished pipeline."""
    raw = client_pipeline("in-process", node)
    raw["pipeline"]["nodes"][0]["configuration"]["count"] = count
    raw["pipeline"]["nodes"][2]["configuration"]["path"] = str(out)
    pipeline = Pipeline.from_dict(raw)
    result = pipeline.run(timeout=FONTUS_CLIENT_TIMEOUT_S)
    assert result.state == "done", result.error
    return pipeline


def test_protocol_auto_picks_fontus_against_fontus_serve(
    fontus_servers: dict[str, LoopbackServer], tmp_path: Path
) -> None:
    # Juturna's warp form (auto by default) against fontus serve: Fontus's own protocol,
    # shown by every output of a node that emits two per input reaching the sink
    # (Juturna's wire would carry only the first).
    out = tmp_path / "out.jsonl"
    node = {
        "mark": "warp",
        "configuration": {
            "grpc_host": "127.0.0.1",
            "grpc_port": fontus_servers["repeat"].port,
            "timeout": 10,
            "remote_config": {"times": 2},
        },
    }
    warp = run_fontus_client(node, out).nodes["label"]
    assert isinstance(warp, Warp) and warp.protocol == "fontus"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["payload"]["n"] for r in records] == [n for n in range(20) for _ in range(2)]


def test_protocol_juturna_against_fontus_serve_delivers_the_first_of_several_outputs_and_warns(
    fontus_servers: dict[str, LoopbackServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out.jsonl"
    node = {
        "mark": "repeat",
        "configuration": {"times": 3},
        "remote": {"target": fontus_servers["repeat"].target, "protocol": "juturna"},
    }
    with caplog.at_level(logging.WARNING, logger="fontus.remote._juturna_client"):
        run_fontus_client(node, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["payload"]["n"] for r in records] == [float(n) for n in range(20)]
    warnings = [
        r.getMessage() for r in caplog.records if "outputs for one request" in r.getMessage()
    ]
    assert len(warnings) == 1 and "emitted 3 outputs" in warnings[0], warnings

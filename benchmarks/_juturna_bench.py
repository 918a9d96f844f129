"""The Juturna column of ``remote.py``: Juturna 2.1.1's own Warp against its own ``juturna remotize``.

``remote.py`` calls :func:`measure_juturna` once per payload and repeat, in the
same run as its Fontus columns.  Everything Juturna runs in the Python 3.12
venv of ``scripts/juturna_venv.sh`` (``.venv-juturna``), inside private user,
network and PID namespaces (``unshare``): ``juturna remotize`` listens on every
interface, so it never runs in the machine's own network.  One long-lived
*driver* (this file, ``--driver``, the first process of those namespaces)
brings ``lo`` up, starts ``python -m juturna remotize`` hosting ``bench_echo``
(a Juturna node that transmits what it receives), and then, per request on its
stdin, runs a Juturna ``Pipeline``: ``bench_feed → warp → bench_stamp``, the
same shape as the Fontus rows.

* msgs/s: messages received by the sink over first stamp → last arrival (as
  ``_bench.RunResult.rate``), the source producing as fast as Juturna's queues
  take messages; Juturna's Warp has one call in flight, so this is its only
  window.
* p50 / p99: the Warp's round trip, each ``SendAndReceive`` call timed by a gRPC
  client interceptor on the Warp's channel (the counterpart of a Fontus Warp's
  ``rtt``), without the first ``WARMUP_MESSAGES``.
* MB/s: msgs/s x the size of Juturna's request envelope for that payload.

Payloads are the Fontus rows' own, handed over as Juturna ``ProtoMessage``
bytes (Fontus's Juturna codec) and read with Juturna's reader.  The one
exception: Juturna's wire has no bytes inside objects, so the 20-key object's
bytes value travels as its base64 text.

When the venv or namespaces are not available the column reads "not run" and
the reason is printed once.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Runs a program as the first process of fresh user (root inside), network (only lo)
#: and PID namespaces; --kill-child ends it, and so the namespaces, if unshare is killed.
NETNS_PREFIX = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
#: Inside the private network nothing else listens, so a fixed port is safe.
PORT = 50051
#: scripts/juturna_venv.sh is quick when the venv is up to date; creating it takes minutes.
VENV_TIMEOUT_S = 600
#: Python 3.12 start, Juturna import and juturna remotize start, on a loaded machine.
DRIVER_START_TIMEOUT_S = 90
#: A run is bounded by max_s; this covers draining what is in flight and the pipeline's stop.
RUN_SLACK_S = 60
#: The driver gives the server this long to exit on SIGTERM.
SERVER_STOP_S = 5.0
#: As in _bench: round trips of the first messages are start-up, not the steady state.
WARMUP_MESSAGES = 10
#: Juturna's Warp call timeout (seconds), also the envelope's ttl.
WARP_TIMEOUT_S = 60


# -- the benchmark side (Fontus's venv) --------------------------------------------------------
class _Driver:
    """The driver process in its namespaces, spoken to one JSON line at a time."""

    def __init__(self, python: str) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fontus-juturna-bench-"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
        self.stderr = open(self.workdir / "driver.log", "w")  # noqa: SIM115 - lives with the driver
        self.process = subprocess.Popen(
            [*NETNS_PREFIX, python, str(Path(__file__).resolve()), "--driver", str(self.workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )
        line = self.read(DRIVER_START_TIMEOUT_S)
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"the Juturna driver did not start: {line!r}\n{self.log()}")

    def read(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer from the Juturna driver within {timeout:.0f} s")
        return self.process.stdout.readline()

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.read(timeout)
        if not line:
            raise RuntimeError(f"the Juturna driver exited:\n{self.log()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def log(self) -> str:
        tails = []
        for name in ("driver.log", "server.log"):
            path = self.workdir / name
            if path.exists():
                tails.append(f"-- {name}:\n" + path.read_text()[-3000:])
        return "\n".join(tails)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the driver ends on EOF, and its namespaces with it
            try:
                self.process.wait(SERVER_STOP_S + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


_driver: _Driver | None = None
_unavailable = ""


def _juturna_python() -> str:
    explicit = os.environ.get("FONTUS_JUTURNA_PYTHON")
    if explicit:
        return explicit
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "juturna_venv.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=VENV_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(" ".join(done.stderr.split()) or f"exit {done.returncode}")
    return done.stdout.strip().splitlines()[-1]


def _get_driver() -> _Driver | None:
    global _driver, _unavailable
    if _driver is None and not _unavailable:
        try:
            if shutil.which(NETNS_PREFIX[0]) is None:
                raise RuntimeError("'unshare' (util-linux) is not installed")
            _driver = _Driver(_juturna_python())
            atexit.register(_driver.close)
        except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
            _unavailable = str(exc)
            print(f"  juturna column not run: {_unavailable}", flush=True)
    return _driver


def _juturna_form(payload: Any) -> Any:
    """``payload`` as Juturna's wire can carry it: bytes inside objects become base64 text."""
    from fontus.core import ObjectPayload

    if not isinstance(payload, ObjectPayload):
        return payload

    def convert(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return ObjectPayload(convert(payload.data))


def measure_juturna(case: Any, max_s: float, cell_type: Any) -> Any:
    """One run of ``case`` (``remote.Case``) through Juturna's hop, as a ``cell_type``; None if not run."""
    driver = _get_driver()
    if driver is None:
        return None
    from fontus.core import Message
    from fontus.remote.juturna import message_to_proto

    path = driver.workdir / f"{case.name.replace(' ', '_')}.bin"
    if not path.exists():
        proto = message_to_proto(Message(_juturna_form(case.payload), creator="bench").freeze())
        path.write_bytes(proto.SerializeToString())
    answer = driver.ask(
        {"payload": str(path), "count": case.count, "max_s": max_s}, max_s + RUN_SLACK_S
    )
    if answer.get("error"):
        raise RuntimeError(f"juturna {case.name}: {answer['error']}\n{driver.log()}")
    if answer["received"] != answer["produced"]:
        raise RuntimeError(
            f"juturna {case.name}: {answer['received']} of {answer['produced']} messages arrived"
        )
    rate = answer["received"] / answer["wall_s"] if answer["wall_s"] > 0 else 0.0
    return cell_type(
        msgs_per_s=rate,
        p50_ms=answer["rtt_p50_ms"],
        p99_ms=answer["rtt_p99_ms"],
        mb_per_s=rate * answer["envelope_bytes"] / 1e6,
        messages=answer["received"],
        extra={
            "envelope_bytes": answer["envelope_bytes"],
            "source_to_sink_p50_ms": answer["source_to_sink_p50_ms"],
        },
    )


# -- the driver (Juturna's venv, inside the namespaces) -----------------------------------------
_FEED = """
import threading, time
from juturna.components import Message, Node
from juturna.payloads import ControlPayload, ControlSignal
from juturna.remotizer.c_protos.payloads_pb2 import ProtoMessage
from juturna.remotizer.utils import deserialize_message

PRODUCED = []


class BenchFeed(Node):
    def __init__(self, payload, count, max_s, **kwargs):
        super().__init__(**kwargs)
        with open(payload, "rb") as f:
            self._payload = deserialize_message(ProtoMessage.FromString(f.read())).payload
        self._count, self._max_s = count, max_s
        self._halt = threading.Event()
        self._deadline = None
        PRODUCED.clear()

    def warmup(self):
        self.set_source(self._emit, by=0, mode="post")

    def stop(self):
        self._halt.set()
        super().stop()

    def _emit(self):
        now = time.perf_counter()
        if self._deadline is None:
            self._deadline = now + self._max_s
        if len(PRODUCED) >= self._count or now > self._deadline:
            self._halt.wait()
            return Message(creator=self.name, payload=ControlPayload(ControlSignal.STOP))
        message = Message(creator=self.name, version=len(PRODUCED), payload=self._payload)
        message.timers["bench.t0"] = now
        PRODUCED.append(now)
        return message

    def update(self, message):
        self.transmit(message)
"""
_ECHO = """
from juturna.components import Node


class BenchEcho(Node):
    def update(self, message):
        self.transmit(message)
"""
_STAMP = """
import time
from juturna.components import Node

ARRIVALS = []


class BenchStamp(Node):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        ARRIVALS.clear()

    def update(self, message):
        now = time.perf_counter()
        ARRIVALS.append((message.timers.get("bench.t0", now), now))
"""
_PLUGINS = {
    ("source", "bench_feed"): (_FEED, 'payload = ""\ncount = 1\nmax_s = 1.0\n'),
    ("proc", "bench_echo"): (_ECHO, ""),
    ("sink", "bench_stamp"): (_STAMP, ""),
}


def _write_plugins(workdir: Path) -> None:
    for (kind, mark), (code, arguments) in _PLUGINS.items():
        folder = workdir / "plugins" / "nodes" / kind / f"_{mark}"
        folder.mkdir(parents=True)
        (folder / f"{mark}.py").write_text(code)
        (folder / "config.toml").write_text(f"[arguments]\n{arguments}\n[meta]\n")


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _bring_lo_up() -> None:
    import fcntl
    import socket
    import struct

    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        raise SystemExit(f"driver: interfaces {names}: not a private network namespace")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def _wait_for_port(server: subprocess.Popen[bytes], timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "driver: juturna remotize did not start (see server.log)"
                ) from None
            time.sleep(0.05)


def _time_warp_calls(rtts: list[float]) -> None:
    """Time every unary call of channels made from now on (Juturna's Warp makes one in warmup)."""
    import grpc

    class Timer(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            started = time.perf_counter()
            call = continuation(details, request)
            call.result()
            rtts.append(time.perf_counter() - started)
            return call

    plain = grpc.insecure_channel

    def timed_channel(*args: Any, **kwargs: Any) -> Any:
        return grpc.intercept_channel(plain(*args, **kwargs), Timer())

    grpc.insecure_channel = timed_channel


def _run_case(request: dict[str, Any], number: int, rtts: list[float]) -> dict[str, Any]:
    import importlib

    from juturna.components import Pipeline
    from juturna.remotizer.c_protos.payloads_pb2 import ProtoMessage
    from juturna.remotizer.utils import create_envelope

    feed = importlib.import_module("plugins.nodes.source._bench_feed.bench_feed")
    stamp = importlib.import_module("plugins.nodes.sink._bench_stamp.bench_stamp")
    message = ProtoMessage.FromString(Path(request["payload"]).read_bytes())
    envelope = create_envelope(message=message, configuration={}, metadata={}, creator="warp")
    config = {
        "version": "1",
        "plugins": ["plugins"],
        "pipeline": {
            "name": "bench",
            "id": f"bench-{number}",
            "folder": f"runs/{number}",
            "nodes": [
                {
                    "name": "src",
                    "type": "source",
                    "mark": "bench_feed",
                    "configuration": {k: request[k] for k in ("payload", "count", "max_s")},
                },
                {
                    "name": "warp",
                    "type": "proc",
                    "mark": "warp",
                    "configuration": {
                        "grpc_host": "127.0.0.1",
                        "grpc_port": PORT,
                        "timeout": WARP_TIMEOUT_S,
                        "remote_config": {},
                    },
                },
                {"name": "sink", "type": "sink", "mark": "bench_stamp", "configuration": {}},
            ],
            "links": [{"from": "src", "to": "warp"}, {"from": "warp", "to": "sink"}],
        },
    }
    pipeline = Pipeline(config)
    pipeline.warmup()
    rtts.clear()
    pipeline.start()
    deadline = time.monotonic() + request["max_s"] + RUN_SLACK_S / 2
    while time.monotonic() < deadline:
        produced = len(feed.PRODUCED)
        if (
            produced
            and len(stamp.ARRIVALS) >= produced
            and (
                produced >= request["count"]
                or time.perf_counter() > feed.PRODUCED[0] + request["max_s"]
            )
        ):
            break
        time.sleep(0.01)
    pipeline.stop()
    pipeline.destroy()
    arrivals = list(stamp.ARRIVALS)
    steady = rtts[WARMUP_MESSAGES:] or rtts
    latencies = [a - t0 for t0, a in arrivals][WARMUP_MESSAGES:]
    return {
        "produced": len(feed.PRODUCED),
        "received": len(arrivals),
        "wall_s": arrivals[-1][1] - arrivals[0][0] if arrivals else 0.0,
        "rtt_p50_ms": _quantile(steady, 0.5) * 1000,
        "rtt_p99_ms": _quantile(steady, 0.99) * 1000,
        "source_to_sink_p50_ms": _quantile(latencies, 0.5) * 1000,
        "envelope_bytes": envelope.ByteSize(),
    }


def driver_main(workdir: Path) -> int:
    """The first process of the namespaces: server, then one pipeline run per stdin line."""
    _bring_lo_up()
    _write_plugins(workdir)
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))  # Juturna imports plugins as packages from here
    with open(workdir / "server.log", "w") as log:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "juturna", "remotize", "-n", "bench", "-m", "bench_echo"),
                *("-P", "plugins", "-N", "bench", "-p", str(PORT)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(server, DRIVER_START_TIMEOUT_S)
            rtts: list[float] = []
            _time_warp_calls(rtts)
            print("ready", flush=True)
            for number, line in enumerate(sys.stdin):
                try:
                    answer = _run_case(json.loads(line), number, rtts)
                except Exception as exc:  # noqa: BLE001 - reported to the benchmark, which raises
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(answer), flush=True)
        finally:
            server.terminate()
            try:
                server.wait(SERVER_STOP_S)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        raise SystemExit(driver_main(Path(sys.argv[2])))
    raise SystemExit(f"usage: {sys.argv[0]} --driver WORKDIR (started by remote.py)")

"""The Juturna side of the live interop tests: runs in the Python 3.12 venv with juturna[warp]==2.1.1.

Uses Juturna's own code only (its ``Pipeline``, its ``warp`` node, its gRPC stub)::

    python juturna_pipeline.py run JOB.json
        JOB = {"config": <a Juturna pipeline config>, "expect": {"path.jsonl": lines},
               "timeout": seconds}
        Builds the pipeline (plugins are looked up from the working folder), starts
        it, waits until every listed file has its lines (or the timeout), stops it.
        stdout: {"lines": {path: count}, "seconds": s, "complete": bool}

    python juturna_pipeline.py call HOST:PORT
        One SendAndReceive through Juturna's own stub and envelope helper, with an
        AudioProtoPayload whose ``audio_format`` is set (Juturna's Warp never sets it).
        stdout: the reply's fields as JSON.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf.json_format import MessageToDict
from juturna.components import Pipeline
from juturna.remotizer.c_protos import messaging_service_pb2_grpc
from juturna.remotizer.c_protos.payloads_pb2 import AudioProtoPayload, ProtoMessage
from juturna.remotizer.utils import create_envelope

#: How often ``run`` looks at the sinks' files.
POLL_S = 0.05
#: Bound of the direct call of ``call``.
CALL_TIMEOUT_S = 10


def count_lines(path: str) -> int:
    try:
        return Path(path).read_text().count("\n")
    except FileNotFoundError:
        return 0


def run(job: dict[str, Any]) -> dict[str, Any]:
    # Juturna imports plugins as packages ("plugins.nodes.proc._mark.mark") relative to
    # the folder holding plugins/, which is ours; a script's own folder is on sys.path, not it.
    sys.path.insert(0, os.getcwd())
    pipeline = Pipeline(job["config"])
    pipeline.warmup()
    started = time.monotonic()
    pipeline.start()
    deadline = started + job["timeout"]
    expect: dict[str, int] = job["expect"]
    while time.monotonic() < deadline:
        if all(count_lines(p) >= n for p, n in expect.items()):
            break
        time.sleep(POLL_S)
    seconds = time.monotonic() - started
    # Let anything beyond the expected lines arrive too, so the test sees extras.
    time.sleep(0.2)
    pipeline.stop()
    pipeline.destroy()
    lines = {p: count_lines(p) for p in expect}
    return {
        "lines": lines,
        "seconds": seconds,
        "complete": all(lines[p] >= n for p, n in expect.items()),
    }


def call(target: str) -> dict[str, Any]:
    samples = (np.arange(320, dtype=np.int16) - 160).reshape(160, 2)
    audio = AudioProtoPayload(
        audio_data=samples.tobytes(),
        dtype="int16",
        shape=list(samples.shape),
        sampling_rate=16000,
        channels=2,
        start=0.5,
        end=0.51,
        audio_format="s16le",
    )
    message = ProtoMessage(creator="jt-direct", version=7, id=7, created_at=time.time())
    message.payload.Pack(audio)
    envelope = create_envelope(
        message=message,
        configuration={},
        metadata={},
        creator="jt-direct",
        id="direct-request-1",
        timeout=CALL_TIMEOUT_S,
    )
    with grpc.insecure_channel(target) as channel:
        stub = messaging_service_pb2_grpc.MessagingServiceStub(channel)
        reply = stub.SendAndReceive(envelope, timeout=CALL_TIMEOUT_S)
    out = AudioProtoPayload()
    reply.message.payload.Unpack(out)
    return {
        "id": reply.id,
        "response_to": reply.response_to,
        "receiver": reply.receiver,
        "ttl": reply.ttl,
        "metadata": MessageToDict(reply.metadata),
        "sent": {"b64": base64.b64encode(samples.tobytes()).decode(), "shape": [160, 2]},
        "audio": {
            "dtype": out.dtype,
            "shape": list(out.shape),
            "b64": base64.b64encode(out.audio_data).decode(),
            "sampling_rate": out.sampling_rate,
            "channels": out.channels,
            "start": out.start,
            "end": out.end,
            "audio_format": out.audio_format,
        },
    }


def main() -> None:
    command, argument = sys.argv[1], sys.argv[2]
    if command == "run":
        result = run(json.loads(Path(argument).read_text()))
    elif command == "call":
        result = call(argument)
    else:
        raise SystemExit(f"unknown command {command!r}; use run or call")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
